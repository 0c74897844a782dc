"""What versions of SQLAlchemy / FastAPI / ... the checked project targets.

A `Versions` maps a distribution name to a `VersionRange` (lower and upper bounds, either may be unknown).
Rules ask `versions.at_least("sqlalchemy", "2.0")`, which answers True, False or None (unknown), and take
their conservative path on None. Where the bounds come from (config or the project's own declarations) is
`config.py`'s business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUM = re.compile(r"\d+(?:\.\d+)*")


def parse_version(text: str) -> tuple[int, ...] | None:
    m = _NUM.search(text)
    if not m:
        return None
    return tuple(int(p) for p in m.group(0).split("."))


def _pad(v: tuple[int, ...], n: int = 3) -> tuple[int, ...]:
    return v + (0,) * (n - len(v)) if len(v) < n else v


@dataclass(frozen=True)
class VersionRange:
    """`low <= version < high` (`high` exclusive); None means unbounded/unknown."""

    low: tuple[int, ...] | None = None
    high: tuple[int, ...] | None = None
    source: str = ""

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

    def __str__(self) -> str:
        lo = ".".join(map(str, self.low)) if self.low else "?"
        hi = ".".join(map(str, self.high)) if self.high else "?"
        return f">={lo},<{hi}"


@dataclass(frozen=True)
class Versions:
    ranges: dict[str, VersionRange] = field(default_factory=dict)

    def get(self, package: str) -> VersionRange:
        return self.ranges.get(_norm(package), VersionRange())

    def at_least(self, package: str, version: str) -> bool | None:
        return self.get(package).at_least(version)

    def below(self, package: str, version: str) -> bool | None:
        return self.get(package).below(version)

    def within(self, package: str, low: str, high: str) -> bool | None:
        return self.get(package).within(low, high)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def exact(version: str, source: str = "") -> VersionRange:
    """The range of exactly one version, as a lock file or `target-versions` gives it."""
    v = parse_version(version)
    if v is None:
        return VersionRange(source=source)
    high = v[:-1] + (v[-1] + 1,) if len(v) >= 3 else _pad(v)[:2] + (_pad(v)[2] + 1,)
    # "2.0" in target-versions means the 2.0 series: [2.0, 2.1)
    if len(v) < 3:
        high = v[:-1] + (v[-1] + 1,)
    return VersionRange(low=v, high=high, source=source)


_SPEC = re.compile(r"(===|==|~=|>=|<=|!=|>|<|\^|~)\s*([0-9][0-9A-Za-z.*+!-]*)")


def from_specifier(spec: str, source: str = "") -> VersionRange:
    """Bounds from a PEP 440 / poetry specifier such as `>=2.0,<3`, `==2.0.30`, `^0.115`, `~=2.0`."""
    low: tuple[int, ...] | None = None
    high: tuple[int, ...] | None = None
    for op, ver in _SPEC.findall(spec):
        v = parse_version(ver.replace("*", "0"))
        if v is None:
            continue
        if op in ("==", "==="):
            if "*" in ver:
                parts = tuple(int(p) for p in ver.split(".") if p != "*")
                return VersionRange(low=parts, high=parts[:-1] + (parts[-1] + 1,), source=source)
            return exact(".".join(map(str, v)) + ("" if len(v) >= 3 else ".0" * (3 - len(v))), source)
        if op in (">=", ">"):
            low = v
        elif op in ("<", "<="):
            high = v if op == "<" else v[:-1] + (v[-1] + 1,)
        elif op in ("~=", "~"):
            low = v
            if len(v) >= 2:
                high = v[:-2] + (v[-2] + 1,)
        elif op == "^":
            low = v
            idx = next((i for i, p in enumerate(v) if p != 0), len(v) - 1)
            high = v[:idx] + (v[idx] + 1,)
    if low is None and high is None and spec.strip() and parse_version(spec) and not _SPEC.search(spec):
        # poetry's bare "2.0.1" means ==2.0.1
        return exact(spec.strip(), source)
    return VersionRange(low=low, high=high, source=source)
