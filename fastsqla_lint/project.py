"""A run over a project: files -> one parse each -> project index -> lint (and fix) each requested file.

This is the layer between the pure engine and the two front ends (CLI, LSP). It reads files but writes
nothing; writing fixed files is the CLI's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from fastsqla_lint import engine
from fastsqla_lint.config import Config
from fastsqla_lint.diagnostics import Applicability
from fastsqla_lint.index import ModuleSummary, ProjectIndex, module_name_for
from fastsqla_lint.source import DecodeError, SourceText, decode

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds a project marker (else `start`'s folder)."""
    start = start.absolute()
    here = start if start.is_dir() else start.parent
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in ROOT_MARKERS):
            return folder
    return here


def import_roots(root: Path, config: Config) -> tuple[Path, ...]:
    """Where top-level packages live: `src` from config, else `src/` if present, plus the root."""
    roots: list[Path] = []
    for s in config.src:
        p = Path(s)
        roots.append(p if p.is_absolute() else (root / p))
    if not roots and (root / "src").is_dir() and not (root / "src" / "__init__.py").exists():
        roots.append(root / "src")
    roots.append(root)
    out: list[Path] = []
    for r in roots:
        r = r.absolute()
        if r not in out:
            out.append(r)
    return tuple(out)


@dataclass
class LoadedFile:
    path: Path
    display: str  # the path as reported to the user
    source: SourceText | None
    parsed: engine.Parsed | None
    summary: ModuleSummary | None = None


@dataclass
class Project:
    root: Path
    config: Config
    roots: tuple[Path, ...]
    files: dict[Path, LoadedFile] = field(default_factory=dict)
    index: ProjectIndex = field(default_factory=ProjectIndex)


def load_file(path: Path, display: str, roots: tuple[Path, ...], data: bytes | None = None) -> LoadedFile:
    """Read (unless `data` is given), decode and parse one file. Never raises for bad content."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            diag = engine.syntax_diagnostic(display, f"The file cannot be read: {exc.strerror or exc}")
            return LoadedFile(path, display, None, engine.Parsed(display, "", None, _names(), diag))
    try:
        source = decode(data)
    except DecodeError as exc:
        diag = engine.syntax_diagnostic(display, f"The file cannot be decoded: {exc}", exc.line, exc.column)
        return LoadedFile(path, display, None, engine.Parsed(display, "", None, _names(), diag))
    module_name, is_package = module_name_for(path, roots)
    parsed = engine.parse(source.text, display, module_name, is_package)
    return LoadedFile(path, display, source, parsed, engine.summary_of(parsed))


def _names():
    from fastsqla_lint.names import NameResolver

    return NameResolver()


def build_project(root: Path, config: Config, files: Iterable[tuple[Path, str]]) -> Project:
    """Load every file of the project once and build the frozen index from their summaries."""
    roots = import_roots(root, config)
    project = Project(root=root, config=config, roots=roots)
    for path, display in files:
        project.files[path] = load_file(path, display, roots)
    summaries = [f.summary for f in project.files.values() if f.summary is not None]
    project.index = ProjectIndex(summaries, root=root, src_roots=roots)
    return project


def lint_file(project: Project, path: Path) -> engine.FileResult:
    loaded = project.files[path]
    assert loaded.parsed is not None
    return engine.lint_parsed(loaded.parsed, project.config, project.index)


def fix_file(project: Project, path: Path, threshold: Applicability) -> engine.FixOutcome:
    loaded = project.files[path]
    assert loaded.parsed is not None
    names = loaded.parsed.names
    return engine.fix_text(
        loaded.parsed.text,
        loaded.display,
        project.config,
        project.index,
        threshold,
        module_name=names.module_name,
        is_package=names.is_package,
        parsed=loaded.parsed,
    )
