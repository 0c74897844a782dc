"""Configuration: `[tool.fastsqla-lint]` of the nearest `pyproject.toml` -> a frozen `Config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastsqla_lint.versions import Versions

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
    src: tuple[str, ...] = ()
    target_versions: tuple[tuple[str, str], ...] = ()
    versions: Versions = field(default_factory=Versions)
    rule_options: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()

    def options_for(self, code: str) -> dict:
        for c, opts in self.rule_options:
            if c == code:
                return dict(opts)
        return {}


DEFAULT = Config()
