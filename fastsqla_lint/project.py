"""A run over projects: files -> one parse each -> project index -> lint (and fix) each requested file.

This is the layer between the pure engine and the two front ends (CLI, LSP). It reads files but writes
nothing; writing fixed files is `writer.py`'s job, called by the CLI.

The files of a run are grouped by the config that governs them (the nearest `pyproject.toml` with a
`[tool.fastsqla-lint]` table, or `--config`). For each group, the index covers the whole project (every
Python file under its root that is not excluded), even when only some files were requested, as
pre-commit does; only the requested files are reported.
"""

from __future__ import annotations

import errno
import stat
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
    here = _folder_of(start)
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in ROOT_MARKERS):
            return folder
    return here


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def existing_folder(path: Path) -> Path:
    """The nearest existing folder at or above `path` (for paths that name a file not on disk)."""
    path = path.absolute()
    for folder in (path, *path.parents):
        if folder.is_dir():
            return folder
    return Path.cwd()


def declares_project(folder: Path) -> bool:
    """Whether `folder` holds something that makes it a project's root or changes its settings:
    `pyproject.toml`, `setup.py`, `setup.cfg`, `.git`, a lock file, `requirements*.txt`, `fastsqla-lint.toml`."""
    from fastsqla_lint.config import STANDALONE
    from fastsqla_lint.versions import DECLARATION_MARKERS

    if any((folder / m).exists() for m in (*DECLARATION_MARKERS, STANDALONE)):
        return True
    try:
        return any(folder.glob("requirements*.txt"))
    except OSError:
        return False


class ConfigTree:
    """The config governing each folder of a run, read again only in folders that can change it.

    A folder that declares nothing (`declares_project`) has its parent's config, so a walk over a tree
    reads the settings once per project rather than once per folder. Loading raises `ConfigError`.
    """

    def __init__(self, explicit: Path | None = None) -> None:
        from fastsqla_lint.config import ConfigResolver

        self.explicit = explicit
        self._loader = ConfigResolver(explicit)
        self._by_folder: dict[Path, Config] = {}
        self._marks: dict[Path, bool] = {}

    def declares(self, folder: Path) -> bool:
        found = self._marks.get(folder)
        if found is None:
            found = self._marks[folder] = declares_project(folder)
        return found

    def for_folder(self, folder: Path) -> Config:
        found = self._by_folder.get(folder)
        if found is None:
            parent = self._by_folder.get(folder.parent)
            if parent is not None and not self.declares(folder):
                found = parent
            else:
                found = self._loader.for_path(folder)
            self._by_folder[folder] = found
        return found

    def for_path(self, path: Path) -> Config:
        path = path.absolute()
        return self.for_folder(path if path.is_dir() else existing_folder(path.parent))

    def marker_root(self, folder: Path) -> Path | None:
        """The nearest folder at or above `folder` that declares a project, or None."""
        for f in (folder, *folder.parents):
            if self.declares(f):
                return f
        return None

    def project_root(self, path: Path) -> tuple[Path, bool]:
        """The root of the project `path` belongs to, and whether the whole project may be loaded.

        The root is the nearest of the folder of the config file and the nearest folder that declares a
        project (so an example app with its own `pyproject.toml` or `requirements.txt` is its own project
        under its parent's settings). Without either, the project is only the requested files: a lone
        script is not a reason to read every file around it, nor is a home folder or `/`.
        """
        path = path.absolute()
        folder = path if path.is_dir() else existing_folder(path.parent)
        config = self.for_folder(folder)
        candidates = [r for r in (self.marker_root(folder), config.root if config.path else None) if r]
        if not candidates:
            return folder, False
        root = Path(max(candidates, key=lambda r: len(Path(r).parts))).absolute()
        return root, root.parent != root and root != Path.home()


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
            if not stat.S_ISREG(path.stat().st_mode):  # a named pipe or a device would be read forever
                raise OSError(errno.EINVAL, "it is not a regular file")
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

    def __init__(self, tree: ConfigTree) -> None:
        self.tree = tree
        self._keys: dict[Path, tuple] = {}

    def key_of(self, path: Path) -> tuple:
        """(config file, project root, walkable) of the project `path` belongs to; cached per folder."""
        folder = existing_folder(path.parent)
        key = self._keys.get(folder)
        if key is None:
            root, walkable = self.tree.project_root(folder / path.name)
            key = (self.tree.for_folder(folder).path, root, walkable)
            self._keys[folder] = key
        return key

    def groups(self, targets: Iterable) -> list[Group]:
        found: dict[tuple, Group] = {}
        for target in targets:
            key = self.key_of(target.path)
            group = found.get(key)
            if group is None:
                # The settings (and the targeted versions) of the project are those of its root folder.
                config = self.tree.for_folder(key[1]) if key[2] else self.tree.for_path(target.path)
                if config.path != key[0]:
                    config = self.tree.for_path(target.path)
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
