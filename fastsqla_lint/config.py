"""Configuration: `[tool.fastsqla-lint]` of the nearest `pyproject.toml` -> a frozen `Config`.

Finding the settings for a path (see docs/configuration.md):
- `--config FILE` wins: a `pyproject.toml` is read for its `[tool.fastsqla-lint]` table, any other file
  (`fastsqla-lint.toml`, ...) holds the same keys at top level.
- Otherwise, from the path's folder upward, the first folder with a `fastsqla-lint.toml`, or with a
  `pyproject.toml` that has a `[tool.fastsqla-lint]` table, gives the settings. A `pyproject.toml` without the
  table does not stop the search; an empty table does (that is how a nested project opts out of a parent's
  settings). Settings are never merged across files: the nearest file is the whole configuration.
- No file: defaults, with `root` at the project root (`project.find_root`).

The versions the project targets come from `target-versions`, and for the packages it does not name, from
the project's own declarations (`versions.infer_versions`) in the nearest folder at or above the path that
declares anything.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from fastsqla_lint.versions import TRACKED, VersionRange, Versions, declarations_root, exact, from_specifier, infer_versions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_EXCLUDE = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".env",
    "env",
    "build",
    "dist",
    "node_modules",
    "__pycache__",
    ".tox",
    ".nox",
    "site-packages",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".fastsqla-lint-cache",
    ".eggs",
)

TABLE = "tool.fastsqla-lint"
STANDALONE = "fastsqla-lint.toml"


class ConfigError(Exception):
    """A configuration problem the user must fix; the CLI exits 2 with this message."""


@dataclass(frozen=True)
class Config:
    path: Path | None = None  # the pyproject.toml (or --config file) the settings came from
    root: Path | None = None  # the project root the settings apply to
    select: tuple[str, ...] | None = None  # None: every rule that is on by default
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    fix: bool = False
    unsafe_fixes: bool = False
    output_format: str | None = None
    src: tuple[str, ...] = ()  # absolute import roots (relative entries are resolved against the config's folder)
    target_versions: tuple[tuple[str, str], ...] = ()
    versions: Versions = field(default_factory=Versions)
    rule_options: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()

    def options_for(self, code: str) -> dict:
        for c, opts in self.rule_options:
            if c == code:
                return dict(opts)
        return {}


DEFAULT = Config()


# --------------------------------------------------------------------------------------------------
# Finding the file
# --------------------------------------------------------------------------------------------------


def find_config_file(start: Path) -> Path | None:
    """The nearest `fastsqla-lint.toml`, or `pyproject.toml` with a `[tool.fastsqla-lint]` table, at or above `start`."""
    start = start.absolute()
    here = start if start.is_dir() else start.parent
    for folder in (here, *here.parents):
        standalone = folder / STANDALONE
        if standalone.is_file():
            return standalone
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _table(_read_toml(pyproject), pyproject) is not None:
            return pyproject
    return None


def load_config(
    start: Path, explicit: Path | None = None, infer: Callable[[Path], Versions] = infer_versions
) -> Config:
    """The settings that apply to `start` (a file or folder), from `explicit` if given.

    Raises ConfigError for a missing or invalid file, an unknown key, a value of the wrong type or an
    unknown rule code. `versions` combines `target-versions` with what the project near `start` declares.
    """
    if explicit is not None:
        path: Path | None = explicit.absolute()
        if not path.is_file():
            raise ConfigError(f"{explicit}: configuration file not found")
    else:
        path = find_config_file(start)
    if path is None:
        from fastsqla_lint.project import find_root

        config = Config(root=find_root(start))
    else:
        data = _read_toml(path)
        if path.name == "pyproject.toml":
            table = _table(data, path) or {}
            where = f"{_display(path)} [{TABLE}]"
        else:
            table = data
            where = _display(path)
        config = parse_table(table, where, path.parent)
        config = replace(config, path=path, root=path.parent)
    inferred = infer(declarations_root(start))
    explicit_ranges = {pkg: _target_range(pkg, v) for pkg, v in config.target_versions}
    return replace(config, versions=inferred.with_ranges(explicit_ranges))


class ConfigResolver:
    """`load_config` for many paths, reading each folder's settings once (what a run over a tree needs)."""

    def __init__(self, explicit: Path | None = None) -> None:
        self.explicit = explicit
        self._by_folder: dict[Path, Config] = {}
        self._versions: dict[Path, Versions] = {}

    def for_path(self, path: Path) -> Config:
        path = path.absolute()
        folder = path if path.is_dir() else path.parent
        config = self._by_folder.get(folder)
        if config is None:
            config = self._by_folder[folder] = load_config(folder, self.explicit, self._infer)
        return config

    def _infer(self, root: Path) -> Versions:
        if root not in self._versions:
            self._versions[root] = infer_versions(root)
        return self._versions[root]


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{_display(path)}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_display(path)}: not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{_display(path)}: cannot be read: {exc.strerror or exc}") from None


def _table(data: dict, path: Path) -> dict | None:
    tool = data.get("tool")
    if not isinstance(tool, dict) or "fastsqla-lint" not in tool:
        return None
    table = tool["fastsqla-lint"]
    if not isinstance(table, dict):
        raise ConfigError(f"{_display(path)}: [{TABLE}] must be a table, not {_type(table)}")
    return table


# --------------------------------------------------------------------------------------------------
# Reading the table
# --------------------------------------------------------------------------------------------------


def _type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _strings(value: object, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be an array of strings, not {_type(value)} ({value!r})")
    return tuple(value)


def _selectors(value: object, where: str, key: str) -> tuple[str, ...]:
    from fastsqla_lint.registry import check_selectors

    codes = tuple(s.strip().upper() for s in _strings(value, where, key))
    try:
        check_selectors(codes)
    except ConfigError as exc:
        from fastsqla_lint.registry import all_rules

        valid = ", ".join(r.code for r in all_rules())
        raise ConfigError(f"{where}: `{key}`: {exc}; valid codes: ALL, {valid} or a prefix of them") from None
    return codes


def _bool(value: object, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: `{key}` must be true or false, not {_type(value)} ({value!r})")
    return value


def _output_format(value: object, where: str, key: str) -> str:
    from fastsqla_lint.output import FORMAT_NAMES

    if not isinstance(value, str) or value not in FORMAT_NAMES:
        raise ConfigError(f"{where}: `{key}` must be one of {', '.join(FORMAT_NAMES)}, not {value!r}")
    return value


def _per_file_ignores(value: object, where: str, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: `{key}` must be a table of glob = [codes], not {_type(value)}")
    return tuple((glob, _selectors(codes, where, f"{key}.{glob!r}")) for glob, codes in value.items())


def _target_versions(value: object, where: str, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: `{key}` must be a table such as {{sqlalchemy = \"2.0\"}}, not {_type(value)}")
    out = []
    for pkg, version in value.items():
        name = pkg.lower().replace("_", "-")
        if name not in TRACKED:
            raise ConfigError(
                f"{where}: `{key}`: unknown package {pkg!r}{_suggest(name, TRACKED)}; "
                f"valid packages: {', '.join(TRACKED)}"
            )
        if not isinstance(version, str) or not _target_range(name, version).known:
            raise ConfigError(
                f"{where}: `{key}.{pkg}` must be a version string such as \"2.0\" or \">=2.0,<3\", not {version!r}"
            )
        out.append((name, version))
    return tuple(out)


def _target_range(package: str, version: str) -> VersionRange:
    source = f"target-versions.{package}"
    text = version.strip()
    if text[:1].isdigit():
        return exact(text, source)
    return from_specifier(text, source)


def _rules(value: object, where: str, key: str) -> tuple[tuple[str, tuple[tuple[str, object], ...]], ...]:
    from fastsqla_lint import registry

    if not isinstance(value, dict):
        raise ConfigError(f"{where}: `{key}` must be a table of rule tables ([{TABLE}.rules.FSL005]), not {_type(value)}")
    out = []
    for code, options in value.items():
        rule = registry.get(code)
        if rule is None:
            raise ConfigError(f"{where}: `{key}.{code}`: unknown rule code (see `fastsqla-lint rules`)")
        if not isinstance(options, dict):
            raise ConfigError(f"{where}: `{key}.{code}` must be a table of options, not {_type(options)}")
        # A rule declares its options as a class attribute `options = {"name": default, ...}`.
        declared: dict[str, object] = dict(getattr(rule, "options", None) or {})
        for name, opt in options.items():
            if name not in declared:
                valid = ", ".join(sorted(declared)) if declared else "none"
                raise ConfigError(
                    f"{where}: `{key}.{rule.code}`: unknown option {name!r}{_suggest(name, declared)}; "
                    f"valid options: {valid}"
                )
            default = declared[name]
            if default is not None and not _same_type(opt, default):
                raise ConfigError(
                    f"{where}: `{key}.{rule.code}.{name}` must be {_type(default)}, not {_type(opt)} ({opt!r})"
                )
        out.append((rule.code, tuple(options.items())))
    return tuple(out)


def _same_type(value: object, default: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, list)
    return isinstance(value, type(default))


def _suggest(name: str, valid) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# key -> (Config field, reader)
KEYS: dict[str, tuple[str, Callable[[object, str, str], Any]]] = {
    "select": ("select", _selectors),
    "extend-select": ("extend_select", _selectors),
    "ignore": ("ignore", _selectors),
    "per-file-ignores": ("per_file_ignores", _per_file_ignores),
    "exclude": ("exclude", _strings),
    "extend-exclude": ("extend_exclude", _strings),
    "fix": ("fix", _bool),
    "unsafe-fixes": ("unsafe_fixes", _bool),
    "output-format": ("output_format", _output_format),
    "src": ("src", _strings),
    "target-versions": ("target_versions", _target_versions),
    "rules": ("rule_options", _rules),
}


def parse_table(table: dict, where: str = "configuration", base: Path | None = None) -> Config:
    """A Config from the keys of a `[tool.fastsqla-lint]` table; `where` names it in error messages.

    Relative `src` entries are resolved against `base` (the config file's folder).
    """
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}{_suggest(key, KEYS)}; valid keys: {', '.join(KEYS)}"
            )
        attr, reader = KEYS[key]
        values[attr] = reader(value, where, key)
    if "src" in values and base is not None:
        values["src"] = tuple(str(p if Path(p).is_absolute() else (base / p)) for p in values["src"])  # type: ignore[union-attr]
    return Config(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# debug-config
# --------------------------------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return _toml_value(str(value))


def _toml_key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else _toml_value(key)


def format_config(config: Config) -> str:
    """The resolved settings as TOML (what `debug-config` prints); comments tell where things came from."""
    from fastsqla_lint.registry import selected_codes

    lines = [
        f"# settings: {config.path if config.path else 'defaults (no configuration file found)'}",
        f"# root: {config.root if config.root else '.'}",
        f"[{TABLE}]",
    ]
    if config.select is None:
        lines.append("# select: the rules that are on by default")
    else:
        lines.append(f"select = {_toml_value(config.select)}")
    lines += [
        f"extend-select = {_toml_value(config.extend_select)}",
        f"ignore = {_toml_value(config.ignore)}",
        f"per-file-ignores = {_toml_value({glob: list(codes) for glob, codes in config.per_file_ignores})}",
        f"exclude = {_toml_value(config.exclude)}",
        f"extend-exclude = {_toml_value(config.extend_exclude)}",
        f"fix = {_toml_value(config.fix)}",
        f"unsafe-fixes = {_toml_value(config.unsafe_fixes)}",
    ]
    if config.output_format is None:
        lines.append("# output-format: full on a terminal, concise otherwise")
    else:
        lines.append(f"output-format = {_toml_value(config.output_format)}")
    lines.append(f"src = {_toml_value(config.src)}")
    lines.append(f"target-versions = {_toml_value(dict(config.target_versions))}")
    for code, opts in config.rule_options:
        lines += ["", f"[{TABLE}.rules.{code}]"]
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in opts]
    lines += ["", "# selected rules: " + (", ".join(sorted(selected_codes(config))) or "none")]
    lines.append("# versions:")
    for pkg in TRACKED:
        rng = config.versions.get(pkg)
        origin = f" (from {rng.source})" if rng.known and rng.source else ""
        lines.append(f"#   {pkg} {rng}{origin}")
    return "\n".join(lines) + "\n"
