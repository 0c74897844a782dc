"""What versions of SQLAlchemy / FastAPI / ... the checked project targets.

A `Versions` maps a distribution name to a `VersionRange` (lower and upper bounds, either may be unknown).
Rules ask `versions.at_least("sqlalchemy", "2.0")`, which answers True, False or None (unknown), and take
their conservative path on None.

The bounds come from `target-versions` in the configuration (`config.py`) or, when that is absent, from the
project's own declarations, read by `infer_versions(root)`:

- lock files (`uv.lock`, `poetry.lock`, `pdm.lock`): exact versions, which win over everything else;
- exact pins (`==2.0.30`) in `requirements*.txt` / `requirements/*.txt` (with `-r` / `-c` includes),
  `[project]` dependencies, optional dependencies, `[dependency-groups]`, `[tool.poetry.*dependencies]`
  and `setup.cfg`'s `install_requires`;
- otherwise the ranges declared there. Several declarations of one package are combined as a union: the
  project claims to work with any of them, so only what holds for all of them is known.

SQLModel pins SQLAlchemy: every SQLModel release from 0.0.12 on requires SQLAlchemy >= 2.0 (0.0.12 - 0.0.16:
`>=2.0.0,<2.1.0`; 0.0.50: `>=2.0.14,<2.2.0`), and every earlier one requires SQLAlchemy < 2.0 (0.0.8:
`<=1.4.41`; 0.0.11: `<2.0.0`). So a project whose SQLModel range lies wholly on one side of 0.0.12 gets
that SQLAlchemy fact, intersected with what it declares for SQLAlchemy itself.

Unknown stays unknown: a package that nothing declares (or declares without a version) has no bounds.
"""

from __future__ import annotations

import configparser
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# The distributions whose versions the rules care about.
TRACKED = ("sqlalchemy", "fastapi", "sqlmodel", "pydantic", "starlette")

_NUM = re.compile(r"\d+(?:\.\d+)*")

Version = tuple[int, ...]


@lru_cache(maxsize=256)  # rules ask about the same few versions for every function they visit
def parse_version(text: str) -> Version | None:
    """The release numbers of a version string (`"2.0.30rc1"` -> `(2, 0, 30)`), None if there are none."""
    m = _NUM.search(text)
    if not m:
        return None
    return tuple(int(p) for p in m.group(0).split("."))


def _pad(v: Version, n: int = 3) -> Version:
    return v + (0,) * (n - len(v)) if len(v) < n else v


def _bump(v: Version, index: int) -> Version:
    """The first version after the series `v[:index + 1]`: `_bump((2, 0, 3), 1)` -> `(2, 1)`."""
    v = _pad(v, index + 1)
    return v[:index] + (v[index] + 1,)


def _next(v: Version) -> Version:
    """The smallest version string greater than `v` (an exclusive bound for `<= v`)."""
    return _pad(v) + (1,)


def _show(v: Version) -> str:
    return ".".join(map(str, v))


@dataclass(frozen=True)
class VersionRange:
    """`low <= version < high` (`high` exclusive); None means unbounded or unknown on that side."""

    low: Version | None = None
    high: Version | None = None
    source: str = ""

    @property
    def known(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def empty(self) -> bool:
        return self.low is not None and self.high is not None and _pad(self.low) >= _pad(self.high)

    @property
    def is_exact(self) -> bool:
        """Whether the range is one release (a pin or a lock file entry), not a series."""
        return (
            self.low is not None
            and self.high is not None
            and len(self.low) >= 3
            and self.high == self.low[:-1] + (self.low[-1] + 1,)
        )

    def at_least(self, version: str) -> bool | None:
        v = _pad(parse_version(version) or (0,))
        if self.low is not None and _pad(self.low) >= v:
            return True
        if self.high is not None and _pad(self.high) <= v:
            return False
        return None

    def below(self, version: str) -> bool | None:
        r = self.at_least(version)
        return None if r is None else not r

    def within(self, low: str, high: str) -> bool | None:
        """Whether the version is in `[low, high)`: True, False or None."""
        a = self.at_least(low)
        b = self.below(high)
        if a is False or b is False:
            return False
        if a is True and b is True:
            return True
        return None

    def union(self, other: VersionRange) -> VersionRange:
        """The smallest range holding both (an unbounded side stays unbounded)."""
        low = None if self.low is None or other.low is None else min(self.low, other.low, key=_pad)
        high = None if self.high is None or other.high is None else max(self.high, other.high, key=_pad)
        return VersionRange(low, high, _join(self.source, other.source))

    def intersect(self, other: VersionRange) -> VersionRange:
        """The range allowed by both (may be `empty`)."""
        lows = [v for v in (self.low, other.low) if v is not None]
        highs = [v for v in (self.high, other.high) if v is not None]
        return VersionRange(
            max(lows, key=_pad) if lows else None,
            min(highs, key=_pad) if highs else None,
            _join(self.source, other.source),
        )

    def __str__(self) -> str:
        if not self.known:
            return "unknown"
        if self.is_exact:
            assert self.low is not None
            return f"=={_show(self.low)}"
        parts = []
        if self.low is not None:
            parts.append(f">={_show(self.low)}")
        if self.high is not None:
            parts.append(f"<{_show(self.high)}")
        return ",".join(parts)


def _join(a: str, b: str) -> str:
    if not a or a == b:
        return b
    if not b:
        return a
    return f"{a}; {b}"


@dataclass(frozen=True)
class Versions:
    # not hashed (a dict cannot be), so that a Config holding Versions stays hashable
    ranges: dict[str, VersionRange] = field(default_factory=dict, hash=False)

    def get(self, package: str) -> VersionRange:
        return self.ranges.get(_norm(package), VersionRange())

    def at_least(self, package: str, version: str) -> bool | None:
        return self.get(package).at_least(version)

    def below(self, package: str, version: str) -> bool | None:
        return self.get(package).below(version)

    def within(self, package: str, low: str, high: str) -> bool | None:
        return self.get(package).within(low, high)

    def with_ranges(self, ranges: dict[str, VersionRange]) -> Versions:
        """These versions, with the given packages replaced."""
        merged = dict(self.ranges)
        merged.update({_norm(k): v for k, v in ranges.items()})
        return Versions(merged)


@lru_cache(maxsize=256)
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def exact(version: str, source: str = "") -> VersionRange:
    """One version as a lock file or `target-versions` gives it.

    Three or more numbers name one release (`"2.0.30"` -> `[2.0.30, 2.0.31)`); fewer name a series, as
    `target-versions` uses them (`"2.0"` -> `[2.0, 2.1)`, `"2"` -> `[2, 3)`).
    """
    v = parse_version(version)
    if v is None:
        return VersionRange(source=source)
    return VersionRange(low=v, high=v[:-1] + (v[-1] + 1,), source=source)


_SPEC = re.compile(r"(===|==|~=|>=|<=|!=|>|<|\^|~|=)\s*v?([0-9][0-9A-Za-z.*+!-]*)")


def from_specifier(spec: str, source: str = "") -> VersionRange:
    """Bounds from a PEP 440 or Poetry specifier: `>=2.0,<3`, `==2.0.30`, `==2.0.*`, `~=2.0`, `^0.115`, `~1.4`.

    Poetry's `||` alternatives give the union of their ranges; a bare version (`2.0.1`) means `==`. What
    cannot be read (`*`, a URL, `!=` alone) gives no bound.
    """
    spec = spec.split(";", 1)[0].strip()
    if "|" in spec:
        parts = [p for p in re.split(r"\|\|?", spec) if p.strip()]
        ranges = [from_specifier(p, source) for p in parts]
        out = ranges[0]
        for r in ranges[1:]:
            out = out.union(r)
        return out
    if not _SPEC.search(spec):
        bare = spec.strip()
        if re.fullmatch(r"v?[0-9][0-9A-Za-z.*+!-]*", bare):
            return from_specifier("==" + bare.lstrip("v"), source)
        return VersionRange(source=source)
    low: Version | None = None
    high: Version | None = None

    def raise_low(v: Version) -> None:
        nonlocal low
        if low is None or _pad(v) > _pad(low):
            low = v

    def lower_high(v: Version) -> None:
        nonlocal high
        if high is None or _pad(v) < _pad(high):
            high = v

    for op, ver in _SPEC.findall(spec):
        if "*" in ver:
            series = tuple(int(p) for p in ver.split(".") if p.isdigit())
            if op in ("==", "===", "=") and series:
                raise_low(series)
                lower_high(_bump(series, len(series) - 1))
            continue  # `!=2.0.*` and malformed wildcards give no bound
        v = parse_version(ver)
        if v is None:
            continue
        if op in ("==", "===", "="):  # one release: `==2.0` is 2.0.0
            v = _pad(v)
            raise_low(v)
            lower_high(v[:-1] + (v[-1] + 1,))
        elif op in (">=", ">"):
            raise_low(v)
        elif op == "<":
            lower_high(v)
        elif op == "<=":
            lower_high(_next(v))
        elif op == "~=":  # compatible release: ~=2.0 -> <3, ~=2.0.1 -> <2.1
            raise_low(v)
            if len(v) >= 2:
                lower_high(_bump(v, len(v) - 2))
        elif op == "~":  # Poetry tilde: ~1 -> <2, ~1.4 -> <1.5, ~1.4.2 -> <1.5
            raise_low(v)
            lower_high(_bump(v, min(1, len(v) - 1)))
        elif op == "^":  # Poetry caret: the leftmost non-zero number may not change
            raise_low(v)
            idx = next((i for i, p in enumerate(v) if p != 0), len(v) - 1)
            lower_high(_bump(v, idx))
    return VersionRange(low=low, high=high, source=source)


# --------------------------------------------------------------------------------------------------
# Inference from the project's own declarations
# --------------------------------------------------------------------------------------------------

LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock")
_DECLARATION_GLOBS = ("pyproject.toml", "setup.cfg", "requirements*.txt", "requirements/*.txt", *LOCK_FILES)
# A folder with one of these (or `.git`) is where a project's declarations live.
DECLARATION_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", *LOCK_FILES, ".git")

_REQ = re.compile(
    r"""^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*
        (?:\[[^\]]*\])?\s*                 # extras
        (?P<rest>[^;]*?)\s*                # specifier, or `@ url`
        (?:;.*)?$                          # environment marker
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Declaration:
    """One package requirement found in one file."""

    package: str
    range: VersionRange
    locked: bool = False  # from a lock file


def declarations_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds project declarations or `.git` (else its folder)."""
    start = start.absolute()
    here = start if start.is_dir() else start.parent
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in DECLARATION_MARKERS) or any(folder.glob("requirements*.txt")):
            return folder
    return here


def infer_versions(root: Path) -> Versions:
    """The versions of the tracked packages that the project at `root` declares (unknown ones left out)."""
    found = list(_declarations(root))
    ranges: dict[str, VersionRange] = {}
    for pkg in TRACKED:
        mine = [d for d in found if d.package == pkg and d.range.known]
        locked = [d.range for d in mine if d.locked]
        pinned = [d.range for d in mine if not d.locked and d.range.is_exact]
        chosen = locked or pinned or [d.range for d in mine]
        if chosen:
            combined = chosen[0]
            for r in chosen[1:]:
                combined = combined.union(r)
            if combined.known:
                ranges[pkg] = combined
    _apply_sqlmodel(ranges)
    return Versions(ranges)


# SQLModel 0.0.12 is the first release on SQLAlchemy 2.0 (see the module docstring).
_SQLMODEL_SA2 = (0, 0, 12)


def _apply_sqlmodel(ranges: dict[str, VersionRange]) -> None:
    sm = ranges.get("sqlmodel")
    if sm is None:
        return
    implied: VersionRange | None = None
    if sm.low is not None and _pad(sm.low) >= _SQLMODEL_SA2:
        implied = VersionRange(low=(2, 0), source=f"sqlmodel {sm} requires sqlalchemy>=2.0")
    elif sm.high is not None and _pad(sm.high) <= _SQLMODEL_SA2:
        implied = VersionRange(high=(2, 0), source=f"sqlmodel {sm} requires sqlalchemy<2.0")
    if implied is None:
        return
    sa = ranges.get("sqlalchemy")
    if sa is None:
        ranges["sqlalchemy"] = implied
        return
    both = sa.intersect(implied)
    if not both.empty and (both.low, both.high) != (sa.low, sa.high):
        ranges["sqlalchemy"] = both


def _declarations(root: Path) -> Iterator[Declaration]:
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        yield from _from_pyproject(pyproject)
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file():
        yield from _from_setup_cfg(setup_cfg)
    seen: set[Path] = set()
    for pattern in ("requirements*.txt", "requirements/*.txt"):
        for req in sorted(root.glob(pattern)):
            yield from _from_requirements(req, root, seen)
    for lock in LOCK_FILES:
        path = root / lock
        if path.is_file():
            yield from _from_lock(path, root)


def _load_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


def _requirement(text: str, source: str) -> Declaration | None:
    """A PEP 508 requirement string -> a Declaration of a tracked package, else None."""
    m = _REQ.match(text)
    if not m:
        return None
    name = _norm(m.group("name"))
    if name not in TRACKED:
        return None
    rest = m.group("rest").strip()
    if rest.startswith("@"):  # a direct URL: no version known
        return Declaration(name, VersionRange(source=source))
    rest = rest.strip("()")
    return Declaration(name, from_specifier(rest, source))


def _from_pyproject(path: Path) -> Iterator[Declaration]:
    data = _load_toml(path)
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    for dep in _strings(project.get("dependencies")):
        d = _requirement(dep, "pyproject.toml [project] dependencies")
        if d:
            yield d
    optional = project.get("optional-dependencies")
    if isinstance(optional, dict):
        for extra, deps in optional.items():
            for dep in _strings(deps):
                d = _requirement(dep, f"pyproject.toml [project.optional-dependencies] {extra}")
                if d:
                    yield d
    groups = data.get("dependency-groups")
    if isinstance(groups, dict):
        for group, deps in groups.items():
            for dep in _strings(deps):
                d = _requirement(dep, f"pyproject.toml [dependency-groups] {group}")
                if d:
                    yield d
    poetry = data.get("tool", {}).get("poetry") if isinstance(data.get("tool"), dict) else None
    if isinstance(poetry, dict):
        tables = [("tool.poetry.dependencies", poetry.get("dependencies")),
                  ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies"))]
        if isinstance(poetry.get("group"), dict):
            for gname, group in poetry["group"].items():
                if isinstance(group, dict):
                    tables.append((f"tool.poetry.group.{gname}.dependencies", group.get("dependencies")))
        for where, table in tables:
            if not isinstance(table, dict):
                continue
            for name, value in table.items():
                if _norm(name) in TRACKED:
                    yield Declaration(_norm(name), _poetry_range(value, f"pyproject.toml [{where}]"))


def _poetry_range(value: object, source: str) -> VersionRange:
    if isinstance(value, str):
        return from_specifier(value, source)
    if isinstance(value, dict):
        version = value.get("version")
        return from_specifier(version, source) if isinstance(version, str) else VersionRange(source=source)
    if isinstance(value, list):  # several constraints, each for some environment: any may apply
        ranges = [_poetry_range(v, source) for v in value]
        if not ranges:
            return VersionRange(source=source)
        out = ranges[0]
        for r in ranges[1:]:
            out = out.union(r)
        return out
    return VersionRange(source=source)


def _from_setup_cfg(path: Path) -> Iterator[Declaration]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return
    if parser.has_option("options", "install_requires"):
        for line in parser.get("options", "install_requires").splitlines():
            d = _requirement(line, "setup.cfg install_requires")
            if d:
                yield d
    if parser.has_section("options.extras_require"):
        for extra, value in parser.items("options.extras_require"):
            for line in value.splitlines():
                d = _requirement(line, f"setup.cfg extras_require {extra}")
                if d:
                    yield d


def _requirement_lines(text: str) -> Iterator[str]:
    """Logical lines of a requirements file: `\\` continuations joined, comments dropped."""
    pending = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            yield line
    if pending.strip():
        yield pending.strip()


def _from_requirements(path: Path, root: Path, seen: set[Path]) -> Iterator[Declaration]:
    path = path.resolve()
    if path in seen or not path.is_file():
        return
    seen.add(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    name = _relative(path, root)
    for line in _requirement_lines(text):
        include = re.match(r"^(?:-r|-c|--requirement|--constraint)(?:\s*=\s*|\s+|(?=\S))(?P<file>\S+)", line)
        if include:
            yield from _from_requirements(path.parent / include.group("file"), root, seen)
            continue
        if line.startswith("-"):  # -e, --index-url, --hash, ...
            continue
        line = re.sub(r"\s--\S+.*$", "", line)  # per-requirement options such as --hash=...
        d = _requirement(line, name)
        if d:
            yield d


def _from_lock(path: Path, root: Path) -> Iterator[Declaration]:
    data = _load_toml(path)
    packages = data.get("package")
    if not isinstance(packages, list):
        return
    name = _relative(path, root)
    for pkg in packages:
        if not isinstance(pkg, dict):
            continue
        pname, version = pkg.get("name"), pkg.get("version")
        if isinstance(pname, str) and isinstance(version, str) and _norm(pname) in TRACKED:
            yield Declaration(_norm(pname), exact(version, name), locked=True)


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return str(path)
