"""A run over projects: files -> one parse each -> project index -> lint (and fix) each requested file.

This is the layer between the pure engine and the two front ends (CLI, LSP). It reads files but writes
nothing; writing fixed files is `writer.py`'s job, called by the CLI.

The files of a run are grouped by the config that governs them (the nearest `pyproject.toml` with a
`[tool.fastsqla-lint]` table, or `--config`). For each group, the index covers the whole project (every
Python file under its root that is not excluded), even when only some files were requested, as
pre-commit does; only the requested files are reported.
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
    return marker_root(start) or _folder_of(start.absolute())


def marker_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds a project marker, or None."""
    here = _folder_of(start.absolute())
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in ROOT_MARKERS):
            return folder
    return None


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def existing_folder(path: Path) -> Path:
    """The nearest existing folder at or above `path` (for paths that name a file not on disk)."""
    path = path.absolute()
    for folder in (path, *path.parents):
        if folder.is_dir():
            return folder
    return Path.cwd()


def load_config(start: Path, explicit: Path | None = None) -> Config:
    """`config.load_config` (nearest `[tool.fastsqla-lint]` upward from `start`, or `explicit`)."""
    from fastsqla_lint import config as cfg

    loader = getattr(cfg, "load_config", None)
    if loader is None:  # pragma: no cover - only before configuration loading exists
        return cfg.Config()
    return loader(start, explicit)


class ConfigResolver:
    """The config governing each folder, loaded once per folder that can change it.

    A folder without `pyproject.toml` (or another project marker) has the same config as its parent, so
    the config is only looked up again where a marker appears. Raises `ConfigError` from the loader.
    """

    def __init__(self, explicit: Path | None = None) -> None:
        self.explicit = explicit
        self._by_folder: dict[Path, Config] = {}

    def for_folder(self, folder: Path) -> Config:
        found = self._by_folder.get(folder)
        if found is not None:
            return found
        parent = self._by_folder.get(folder.parent)
        if self.explicit is not None and self._by_folder:
            found = next(iter(self._by_folder.values()))
        elif parent is not None and not any((folder / m).exists() for m in ROOT_MARKERS):
            found = parent
        else:
            found = load_config(folder, self.explicit)
        self._by_folder[folder] = found
        return found

    def for_path(self, path: Path) -> Config:
        path = path.absolute()
        return self.for_folder(path if path.is_dir() else existing_folder(path.parent))


def project_root(config: Config, path: Path) -> tuple[Path, bool]:
    """The root of the project `path` belongs to, and whether the whole project can be loaded.

    The root is the config's root, else the nearest folder with a project marker. Without either, the
    project is only the requested files (a lone script is not a reason to read every file around it).
    """
    root = config.root or marker_root(path)
    if root is None:
        return existing_folder(path.parent), False
    root = Path(root).absolute()
    walkable = root.parent != root and root != Path.home()
    return root, walkable


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
    data: bytes | None = None  # the bytes as read (what a write must still find on disk)


@dataclass
class Project:
    root: Path
    config: Config
    roots: tuple[Path, ...]
    files: dict[Path, LoadedFile] = field(default_factory=dict)
    index: ProjectIndex = field(default_factory=ProjectIndex)
    requested: list[Path] = field(default_factory=list)  # the files to report on, in order


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
        return LoadedFile(path, display, None, engine.Parsed(display, "", None, _names(), diag), data=data)
    module_name, is_package = module_name_for(path, roots)
    parsed = engine.parse(source.text, display, module_name, is_package)
    return LoadedFile(path, display, source, parsed, engine.summary_of(parsed), data=data)


def _names():
    from fastsqla_lint.names import NameResolver

    return NameResolver()


def build_project(
    root: Path,
    config: Config,
    files: Iterable[tuple[Path, str]],
    requested: Iterable[Path] | None = None,
    contents: dict[Path, bytes] | None = None,
) -> Project:
    """Load every file of the project once and build the frozen index from their summaries.

    `requested` are the files to report on (default: all of `files`); `contents` gives the text of files
    that do not come from disk (stdin, an editor buffer).
    """
    roots = import_roots(root, config)
    project = Project(root=root, config=config, roots=roots)
    contents = contents or {}
    for path, display in files:
        if path not in project.files:
            project.files[path] = load_file(path, display, roots, contents.get(path))
    project.requested = list(project.files) if requested is None else list(dict.fromkeys(requested))
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


@dataclass
class Group:
    """The requested files that share one project (same config, same root)."""

    root: Path
    config: Config
    walkable: bool  # whether the rest of the project is loaded for the index
    targets: list = field(default_factory=list)  # discovery.Target


class Planner:
    """Groups files by project, and lists the other files of a project for its index."""

    def __init__(self, resolver: ConfigResolver) -> None:
        self.resolver = resolver
        self._keys: dict[Path, tuple] = {}

    def key_of(self, path: Path) -> tuple:
        """(config file, project root, walkable) of the project `path` belongs to; cached per folder."""
        folder = existing_folder(path.parent)
        key = self._keys.get(folder)
        if key is None:
            config = self.resolver.for_folder(folder)
            root, walkable = project_root(config, folder / path.name)
            key = (config.path, root, walkable)
            self._keys[folder] = key
        return key

    def groups(self, targets: Iterable) -> list[Group]:
        found: dict[tuple, Group] = {}
        for target in targets:
            key = self.key_of(target.path)
            group = found.get(key)
            if group is None:
                config = self.resolver.for_path(target.path)
                group = found[key] = Group(root=key[1], config=config, walkable=key[2])
            group.targets.append(target)
        return list(found.values())

    def project_files(self, group: Group, excluder) -> list[tuple[Path, str]]:
        """Every file of the group's project (requested ones first), for one load and one index."""
        from fastsqla_lint.discovery import display_path, walk

        files = [(t.path, t.display) for t in group.targets]
        if not group.walkable:
            return files
        requested = {t.path for t in group.targets}
        key = (group.config.path, group.root, group.walkable)
        for path in walk(group.root, excluder):
            if path not in requested and self.key_of(path) == key:
                files.append((path, display_path(path)))
        return files


def load_group(group: Group, planner: Planner, excluder, contents: dict[Path, bytes] | None = None) -> Project:
    """Load a group's whole project once (one parse per file) and build its index."""
    files = planner.project_files(group, excluder)
    return build_project(group.root, group.config, files, [t.path for t in group.targets], contents)
