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
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from fastsqla_lint.config import Config
from fastsqla_lint.source import DecodeError, SourceText, decode

if TYPE_CHECKING:  # the engine, the index and LibCST are imported only when a file must be parsed
    from fastsqla_lint import engine
    from fastsqla_lint.diagnostics import Applicability
    from fastsqla_lint.index import ModuleSummary, ProjectIndex

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds a project marker.

    Without a marker, the folder that holds the top-level package of `start` (the nearest folder that is
    not itself a package and has a package in it: `services/billing` for
    `services/billing/app/routers/x.py` and for `services/billing/scripts/init_db.py`), so that a
    service of a monorepo without its own pyproject.toml is still linted as one project. Failing that,
    `start`'s folder.
    """
    start = start.absolute()
    here = _folder_of(start)
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in ROOT_MARKERS):
            return folder
    return _package_parent(here) or here


def _package_parent(here: Path) -> Path | None:
    for folder in (here, *here.parents):
        if (folder / "__init__.py").exists():
            continue
        if folder == folder.parent or folder == Path.home():
            return None
        try:
            if any((child / "__init__.py").exists() for child in folder.iterdir() if child.is_dir()):
                return folder
        except OSError:
            return None
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


def declares_project(folder: Path) -> bool:
    """Whether `folder` holds something that makes it a project's root or changes its settings:
    `pyproject.toml`, `setup.py`, `setup.cfg`, `.git`, a lock file, `requirements*.txt`, `fastsqla-lint.toml`."""

    from fastsqla_lint.config import STANDALONE
    from fastsqla_lint.versions import DECLARATION_MARKERS

    try:
        names = os.listdir(folder)  # one listing instead of a look-up per marker
    except OSError:
        return False
    markers = {*DECLARATION_MARKERS, STANDALONE}
    return any(n in markers or (n.startswith("requirements") and n.endswith(".txt")) for n in names)


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
        under its parent's settings). Without either, the folder holding the file's top-level package;
        failing that, the project is only the requested files: a lone script is not a reason to read
        every file around it, nor is a home folder or `/`.
        """
        path = path.absolute()
        folder = path if path.is_dir() else existing_folder(path.parent)
        config = self.for_folder(folder)
        candidates = [r for r in (self.marker_root(folder), config.root if config.path else None) if r]
        if not candidates:
            # No marker: the folder holding the file's top-level package (see `find_root`), if any.
            parent = _package_parent(folder)
            if parent is None:
                return folder, False
            candidates = [parent]
        root = Path(max(candidates, key=lambda r: len(Path(r).parts))).absolute()
        return root, root.parent != root and root != Path.home()


def import_roots(root: Path, config: Config) -> tuple[Path, ...]:
    """Where top-level packages live: `src` from config, else `src/` if present, plus the root.

    When the root is itself a package (it has an `__init__.py`, as an app folder with its own
    `pyproject.toml` may), modules are named from the folder above its topmost package, so that
    `from .database import engine` in `app/main.py` means `app.database`.
    """
    roots: list[Path] = []
    for s in config.src:
        p = Path(s)
        roots.append(p if p.is_absolute() else (root / p))
    if not roots and (root / "src").is_dir() and not (root / "src" / "__init__.py").exists():
        roots.append(root / "src")
    top = root
    while (top / "__init__.py").is_file() and top.parent != top:
        top = top.parent
    if top != root:
        roots.append(top)
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
    index: ProjectIndex = field(default_factory=lambda: _empty_index())
    requested: list[Path] = field(default_factory=list)  # the files to report on, in order


def _empty_index() -> ProjectIndex:
    from fastsqla_lint.index import ProjectIndex

    return ProjectIndex()


def read_source(path: str | Path) -> bytes:
    """A file's bytes. A named pipe or a device would be read forever (or opening it would block): OSError."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "it is not a regular file")
    with open(path, "rb") as fh:
        return fh.read()


def load_file(
    path: Path,
    display: str,
    roots: tuple[Path, ...],
    data: bytes | None = None,
    name: tuple[str | None, bool] | None = None,
) -> LoadedFile:
    """Read (unless `data` is given), decode and parse one file. Never raises for bad content.
    `name`: its module name and is-package, when the caller knows them."""
    from fastsqla_lint import engine
    from fastsqla_lint.index import module_name_for

    if data is None:
        try:
            data = read_source(path)
        except OSError as exc:
            diag = engine.syntax_diagnostic(display, f"The file cannot be read: {exc.strerror or exc}")
            return LoadedFile(path, display, None, engine.Parsed(display, "", None, _names(), diag))
    try:
        source = decode(data)
    except DecodeError as exc:
        diag = engine.syntax_diagnostic(display, f"The file cannot be decoded: {exc}", exc.line, exc.column)
        return LoadedFile(path, display, None, engine.Parsed(display, "", None, _names(), diag), data=data)
    module_name, is_package = name if name is not None else module_name_for(path, roots)
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
    from fastsqla_lint.index import ProjectIndex

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
    from fastsqla_lint import engine

    loaded = project.files[path]
    assert loaded.parsed is not None
    return engine.lint_parsed(loaded.parsed, project.config, project.index)


def fix_file(project: Project, path: Path, threshold: Applicability) -> engine.FixOutcome:
    from fastsqla_lint import engine

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

    def __init__(self, tree: ConfigTree, walked: Iterable[Path] = ()) -> None:
        self.tree = tree
        self._keys: dict[str, tuple] = {}  # per folder
        # folders whose whole tree was walked for the targets (`check .`): a project under one of them
        # need not be walked again for its other files
        self.walked = tuple(walked)
        self.folders: list[Path] = []  # every folder looked into (discovery's walks and the projects')
        self.display: Callable[[str], str] | None = None  # how other files are shown (None: `display_path`)

    def key_of(self, path: str | Path) -> tuple:
        """(config file, project root, walkable) of the project `path` belongs to; cached per folder."""
        parent, name = os.path.split(os.fspath(path))
        key = self._keys.get(parent)
        if key is None:
            folder = existing_folder(Path(parent))
            root, walkable = self.tree.project_root(folder / name)
            key = (self.tree.for_folder(folder).path, root, walkable)
            self._keys[parent] = key
        return key

    def groups(self, targets: Iterable) -> list[Group]:
        found: dict[tuple, Group] = {}
        for target in targets:
            key = self.key_of(target.path)
            group = found.get(key)
            if group is None:
                # The settings (and the targeted versions) of the project are those of its root folder.
                config = self.tree.for_folder(key[1]) if key[2] else self.tree.for_path(Path(target.path))
                if config.path != key[0]:
                    config = self.tree.for_path(Path(target.path))
                group = found[key] = Group(root=key[1], config=config, walkable=key[2])
            group.targets.append(target)
        return list(found.values())

    def project_files(self, group: Group, excluder) -> list[tuple[str, str]]:
        """The path and display of every file of the group's project (requested ones first)."""
        from fastsqla_lint.discovery import display_path, walk

        files = [(t.path, t.display) for t in group.targets]
        if not group.walkable:
            return files
        if any(not t.explicit for t in group.targets) and any(
            w == group.root or w in group.root.parents for w in self.walked
        ):
            # a walk from a folder holding the root found the targets: they are all the project's files
            return files
        requested = {t.path for t in group.targets}
        key = (group.config.path, group.root, group.walkable)
        display = self.display or display_path
        for path in walk(group.root, excluder, self.folders):
            if path not in requested and self.key_of(path) == key:
                files.append((path, display(path)))
        return files


# --------------------------------------------------------------------------------------------------
# The check pipeline: every requested file's diagnostics with one parse per file, a process pool and
# the cache. See docs/performance.md for the design and its measurements.
#
# 1. List each project's files; stat them. A run entry of the cache whose files all have the same
#    content (same stat signature, else the same hash) gives the answer without parsing or importing
#    LibCST.
# 2. Otherwise read and hash the changed files and scan their imports (`prefilter`): only files that are
#    relevant, or support a relevant one, are parsed at all. The manifests (stat signatures, hashes,
#    import scans) are saved now.
# 3. A parsed file whose cache entry (keyed by content) is there gives its summary, and its diagnostics
#    with the index queries they depend on. The others are parsed in chunks (each project's connected
#    import components, imported modules first), summarised and linted at once against a provisional
#    index made of the chunk and the summaries already known, every index query recorded.
# 4. The project index is built from all summaries; each lint's recorded queries are replayed against it,
#    and the few files for which some answer changed are parsed and linted again.


@dataclass(slots=True)  # one per file of every project, skipped or not: no per-instance dict
class FileState:
    """One file of a project, as the pipeline sees it."""

    path: str  # absolute, as discovery found it (a `Path` per file of every project would cost 3x its string)
    shown: str | int  # how it is reported (`display`): the string, or where it starts in `path` when it ends it
    pos: int  # its place in the project's file list
    requested: bool
    always: bool  # parsed even when the prefilter would skip it (named explicitly, or an editor buffer)
    given: bytes | None = None  # contents that do not come from disk (stdin)
    sig: bytes | None = None  # `cache.stat_signature` (None: not on disk, or not read from disk)
    hash: str | None = None
    data: bytes | None = None  # kept only while the file may still be parsed
    hit: bool = False  # relevant by itself (prefilter.Scan.hit)
    targets: tuple[str, ...] | None = None  # the module names its imports may run (`scan_facts`)
    module_name: str | None = None
    is_package: bool = False
    summary: ModuleSummary | None = None
    payload: tuple | None = None  # (diagnostics, internal errors) of a lint
    records: dict | None = None  # the index queries that lint made
    linted_now: bool = False

    def __post_init__(self) -> None:
        # Most files are shown by their path relative to the working (or workspace) folder, the end of
        # `path`: the place where it starts is kept instead of a second string (about 95 bytes a file).
        shown, path = self.shown, self.path
        if type(shown) is str and path.endswith(shown):
            self.shown = len(path) - len(shown)

    @property
    def display(self) -> str:
        shown = self.shown
        return self.path[shown:] if type(shown) is int else shown


@dataclass
class RunStats:
    """What a run did (printed with `check --stats`, read by the bench)."""

    files: int = 0
    read: int = 0  # files whose bytes were read (not known unchanged from their stat signature)
    parse_set: int = 0
    parse_set_bytes: int = 0
    parse_set_files: list = field(default_factory=list)  # their display paths (the bench parses the same files)
    parsed: int = 0
    entries_hit: int = 0
    relinted: int = 0
    replayed: int = 0  # lints whose index queries were replayed against the project's final index
    whole_run_hit: bool = False
    jobs: int = 1
    peak_rss_kb: int = 0  # peak resident memory of the run's own process, not its workers (Linux: kilobytes)
    workers_peak_rss_kb: int = 0  # the largest peak of its pools' workers, as they last reported it (0: no pool)
    seconds: dict = field(default_factory=dict)  # wall time of each step (files, prefilter, lint, index, relint)

    def lap(self, step: str, since: float) -> float:
        import time

        now = time.perf_counter()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + now - since, 3)
        return now

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


@dataclass
class GroupRun:
    """The outcome of one project: each requested file's diagnostics, and the index when one was built."""

    root: Path
    config: Config
    roots: tuple[Path, ...]
    files: list[FileState]
    # path -> engine.FileResult of each requested file with diagnostics or internal errors (`result`)
    results: dict[Path, object] = field(default_factory=dict)
    config_key: str = ""
    imports: dict[int, list[int]] = field(default_factory=dict)  # see `_build_graph`
    importers: dict[int, list[int]] = field(default_factory=dict)
    # no summary was loaded or kept (answered by the cache's run entry, or a run that will not fix files, whose
    # only chunk's worker built the index itself: `check_groups`): `index` finds them again
    summaries_missing: bool = False
    whole_chunk: bool = False  # every file to parse went into one chunk, linted against the final index
    skipped_dropped: bool = False  # `files` holds the parse set only (see `drop_skipped`)
    _listing: tuple | None = None  # (`listing()`,) when it was kept as the skipped files were dropped
    _index: ProjectIndex | None = None

    def drop_skipped(self, selected: list[FileState], keep_listing: bool) -> None:
        """Forget the files the prefilter skips, once the parse set is known and the manifests saved:
        a skipped file has nothing to report, and its state (path, display, module name, import scan)
        is not held while the parse set is linted. `keep_listing`: every file's path, signature and hash
        are kept first, for a saved check (`listing`). The parse set's files are renumbered."""
        if keep_listing:
            self._listing = (self.listing(),)
        self.files = selected
        for pos, f in enumerate(selected):
            f.pos = pos
        self.skipped_dropped = True

    def listing(self) -> tuple[str, bytes, str] | None:
        """The paths, stat signatures and content hashes of all the project's files (`cache.pack_files`:
        what a saved check compares); None when a file was not read from disk."""
        from fastsqla_lint.cache import pack_files

        if self.skipped_dropped:
            if self._listing is None:
                raise RuntimeError("the skipped files were dropped without keeping their listing")
            return self._listing[0]
        paths, sigs, hashes = [], [], []
        for f in self.files:
            if f.sig is None or f.hash is None:
                return None
            paths.append(f.path)
            sigs.append(f.sig)
            hashes.append(f.hash)
        return pack_files(paths, sigs, hashes)

    @property
    def requested(self) -> list[FileState]:
        return [f for f in self.files if f.requested]

    def result(self, state: FileState):
        """A requested file's `engine.FileResult`. Only those with something to report are kept: a run
        over many files reports in few."""
        found = self.results.get(state.path)
        return found if found is not None else _file_result(state.display, None)

    def data_of(self, state: FileState) -> bytes | None:
        """The bytes of a file as this run saw them (read again from disk if they were not kept)."""
        if state.given is not None:
            return state.given
        if state.data is not None:
            return state.data
        try:
            return read_source(state.path)
        except OSError:
            return None

    def index(self, cache_root: Path | None = None) -> ProjectIndex:
        """The project index (built from cached summaries when the run did not need it)."""
        if self._index is None:
            from fastsqla_lint.cache import Cache
            from fastsqla_lint.index import ProjectIndex

            summaries = [f.summary for f in self.files if f.summary is not None]
            if self.summaries_missing:
                summaries = _summaries_for(self, Cache(cache_root) if cache_root is not None else None)
            self._index = ProjectIndex(summaries, root=self.root, src_roots=self.roots)
        return self._index

    def project(self, cache_root: Path | None = None) -> Project:
        """A `Project` over this run's index, for fixing files (`load_file` them into `files`)."""
        return Project(root=self.root, config=self.config, roots=self.roots, index=self.index(cache_root),
                       requested=[Path(f.path) for f in self.requested])


def check_groups(
    groups: list,
    planner: "Planner",
    excluder,
    contents: dict[str, bytes] | None = None,
    jobs: int | None = None,
    cache_root: Path | None = None,
    stats: RunStats | None = None,
    before_parse=None,
    prefilter_files: bool = True,
    edits: bool = True,
    lint: bool = True,
    summaries: bool = True,
) -> list[GroupRun]:
    """The diagnostics of every requested file of `groups` (see the comment above for the steps).

    `contents`: the text of files that does not come from disk (stdin), by path. `cache_root` is the cache
    folder (None: no cache). `jobs` is the number of processes (None: one per core). Results are identical
    whatever the cache holds and however many processes run.
    `before_parse` is called once the cache cannot answer the whole run (the CLI checks rule selectors).
    `prefilter_files=False` parses every file (the tests compare both ways).
    `edits=False`: fixes carry no text edits (see `engine.lint_parsed`); a cached result made with edits
    serves such a run too, the other way round it is a miss.
    `lint=False`: nothing is linted or reported, the runs only know their files and summaries (what the
    language server indexes a workspace with: `GroupRun.index`). With `lint=True`, a run that parses
    files keeps the states of its parse set only (`GroupRun.drop_skipped`). The groups' targets are
    consumed (emptied).
    `summaries=False`: the caller will not ask for a project's index (`GroupRun.index`, to fix files), so
    the run may leave the summaries in the workers; if it is asked after all, the summaries are found
    again (from the cache, or by parsing).
    """
    import time

    from fastsqla_lint import cache as cache_mod

    stats = stats if stats is not None else RunStats()
    clock = time.perf_counter()
    contents = contents or {}
    jobs = max(1, jobs or _cores())
    stats.jobs = jobs
    cache = cache_mod.Cache(cache_root) if cache_root is not None else None
    # A cold run over many files (a project the cache has no manifest of) starts its workers' fork server
    # now; a run the cache may answer does not pay for one (its pools, if any, fork from this process).
    server = (
        jobs > 1
        and sum(len(g.targets) for g in groups) >= FORK_SERVER_MIN_FILES
        and not (cache is not None and all(cache.holds("stats", _project_key(g.root, _config_key(g.config)))
                                           for g in groups))
        and _start_fork_server()
    )
    runs: list[GroupRun] = []
    for group in groups:
        requested = {t.path for t in group.targets} if lint else set()
        explicit = {t.path for t in group.targets if getattr(t, "explicit", False)} if lint else set()
        files = []
        for path, display in planner.project_files(group, excluder):
            files.append(FileState(path, display, len(files), path in requested, path in explicit or path in contents,
                                   given=contents.get(path)))
        group.targets = []  # consumed: each file's path and display live on in its state only
        run = GroupRun(group.root, group.config, import_roots(group.root, group.config), files)
        run.config_key = _config_key(group.config)
        runs.append(run)
        stats.files += len(files)

    # 1. stat signatures -> hashes known without reading; a run entry when nothing changed
    cwd = os.getcwd()
    manifests = [_load_manifest(cache, run) for run in runs]
    unread = [_hash_files(run, manifest) for run, manifest in zip(runs, manifests)]  # per project
    if jobs > 1 and sum(map(len, unread)) >= SURVEY_MIN_FILES:
        # Many files to read (a cold run): read, hash and scan them in the pool. That needs the rules'
        # needles, so the rules are loaded first, even in the rare run its run entry answers.
        if before_parse is not None:
            before_parse()
            before_parse = None
        _survey(runs, unread, jobs, stats, server)
    else:
        for gi, files in enumerate(unread):
            for f in files:
                _read_file(f, manifests[gi], stats)
    del unread
    run_key = cache_mod.digest(
        "run", cwd, prefilter_files, edits, *[(r.root, r.config_key, tuple(f.display for f in r.requested)) for r in runs]
    ) if cache is not None else ""
    trees = [_tree_digest(run) for run in runs]
    clock = stats.lap("files", clock)
    if cache is not None:
        entry = cache.load("runs", run_key)
        if isinstance(entry, dict) and entry.get("trees") == trees:
            stats.whole_run_hit = True
            for run, results in zip(runs, entry["results"]):
                run.results = {
                    f.path: _file_result(f.display, payload)
                    for f in run.requested
                    if (payload := results.get(f.display)) is not None
                }
                run.summaries_missing = True
                for f in run.files:
                    f.data = None
            _save_manifests(cache, runs, manifests)
            return runs

    if before_parse is not None:
        before_parse()
    clock = stats.lap("files", clock)

    # 2. prefilter: which files are parsed
    from fastsqla_lint import prefilter
    from fastsqla_lint.registry import selected_rules

    parse: list[tuple[GroupRun, list[FileState]]] = []
    for run in runs:
        _scan_files(run, prefilter.standalone_needles(selected_rules(run.config)))
        if prefilter_files:
            chosen = prefilter.parse_set(_Scans(run.files), [i for i, f in enumerate(run.files) if f.always])
        else:
            chosen = set(range(len(run.files)))
        chosen.update(i for i, f in enumerate(run.files) if f.hash is None)  # unreadable: reported as such
        selected = [f for i, f in enumerate(run.files) if i in chosen]
        for i, f in enumerate(run.files):
            if i not in chosen:
                f.data = None
        parse.append((run, selected))
        stats.parse_set += len(selected)
        stats.parse_set_bytes += sum(_size(f) for f in selected)
        stats.parse_set_files.extend(f.display for f in selected)
    if cache is not None:
        # Every file's signature, hash and import scan are known: saved before the chunks, not after
        # them, so that the manifests (a row per file of each project) are not made while the chunks'
        # summaries and results are held.
        _save_manifests(cache, runs, manifests)
    del manifests
    for run, selected in parse:
        if lint:  # the skipped files have nothing to report: their states are not kept while the rest is linted
            run.drop_skipped(selected, keep_listing=cache is not None)
        _build_graph(run, selected)

    # 3. cached entries; the rest is parsed (and linted when requested) in chunks
    from fastsqla_lint.recording import mark

    tasks = []
    for gi, (run, selected) in enumerate(parse):
        missing = []
        for f in selected:
            entry = cache.load("files", _entry_key(run, f)) if cache is not None and f.hash else None
            if isinstance(entry, dict):
                f.summary = entry.get("summary")
                mark(f.summary, _entry_key(run, f))
                if entry.get("payload") is not None and (entry.get("edits", True) or not edits):
                    f.payload, f.records = entry["payload"], entry.get("records") or {}
            if entry is None or (f.requested and f.payload is None):
                missing.append(f)
            else:
                stats.entries_hit += 1
        chunks = _chunks(run, missing)
        # one chunk holding every file to parse: its index is the project's own (see `_work_chunk`)
        run.whole_chunk = len(chunks) == 1 and len(missing) == len(selected)
        # Such a project's worker builds its index itself: when the caller will not fix files, nothing
        # here needs the summaries, and the worker keeps them (8 MB for the corpus's 1,422 files).
        run.summaries_missing = run.whole_chunk and lint and not summaries
        tasks.extend((gi, chunk) for chunk in chunks)
    stats.parsed += sum(len(c) for _, c in tasks)
    clock = stats.lap("prefilter", clock)
    _execute(parse, tasks, jobs, cache, stage="first", edits=edits, server=server, stats=stats,
             summaries=summaries or not lint)
    clock = stats.lap("lint", clock)

    # 4. the index of each project; lints whose recorded answers changed are done again
    from fastsqla_lint.recording import replay

    relint = []
    for gi, (run, selected) in enumerate(parse):
        if run.whole_chunk:  # linted against the project's whole index already: nothing to replay
            continue
        index = run.index()
        memo: dict = {}
        linted = [f for f in selected if f.requested and f.payload is not None]
        stats.replayed += len(linted)
        stale = [f for f in linted if not replay(index, f.records or {}, memo)]
        stats.relinted += len(stale)
        for f in stale:
            f.payload = f.records = None
        for chunk in _chunks(run, stale):
            relint.append((gi, chunk))
    stats.parsed += sum(len(c) for _, c in relint)
    clock = stats.lap("index", clock)
    _execute(parse, relint, jobs, cache, stage="final", edits=edits, server=server, stats=stats)
    clock = stats.lap("relint", clock)

    for run, _ in parse:
        for f in run.requested:  # the parse set's (a run that lints keeps no other file)
            if f.payload is not None and (f.payload[0] or f.payload[1]):
                run.results[f.path] = _file_result(f.display, f.payload)
    if cache is not None:
        cache.store("runs", run_key, {
            "trees": trees,
            # the requested files with something to report (the others have an empty result)
            "results": [{f.display: _payload_of(r.results[f.path]) for f in r.requested if f.path in r.results}
                        for r in runs],
        })
    for run in runs:
        for f in run.files:
            f.data = None
    return runs


class ModuleNames:
    """`index.module_name_for` over many files: each folder is resolved and placed under the roots once."""

    def __init__(self, roots: tuple[Path, ...]) -> None:
        self.roots = roots
        self.resolved_roots = tuple(r.resolve() for r in roots)
        # folder -> (its resolved path, (its parts under each root containing it, all identifiers?))
        self._folders: dict[str, tuple[Path, tuple[tuple[tuple[str, ...], bool], ...]]] = {}
        self._real: dict[str, str] = {}  # folder -> its real path (`_real_folder`)

    def __call__(self, path: str | Path) -> tuple[str | None, bool]:
        from fastsqla_lint.index import module_name_for

        full = os.fspath(path)
        if not os.path.isabs(full) or os.path.islink(full):
            return module_name_for(Path(full), self.roots)
        parent, name = os.path.split(full)
        found = self._folders.get(parent)
        if found is None:
            resolved = Path(self._real_folder(parent))
            under = []
            for root in self.resolved_roots:
                try:
                    parts = resolved.relative_to(root).parts
                except ValueError:
                    continue
                under.append((parts, all(p.isidentifier() for p in parts)))
            found = self._folders[parent] = (resolved, tuple(under))
        resolved, under = found
        # what `module_name_for(resolved / name, resolved_roots, resolved=True)` answers
        dot = name.rfind(".")
        stem = name[:dot] if 0 < dot < len(name) - 1 else name  # `Path.stem`
        is_package = stem == "__init__"
        for parts, identifiers in under:
            if not identifiers:
                continue
            if is_package:
                if parts:
                    return ".".join(parts), True
            elif stem.isidentifier():
                return ".".join((*parts, stem)), False
        return (stem if not is_package else resolved.name) or None, is_package

    def _real_folder(self, folder: str) -> str:
        """`os.path.realpath(folder)` for an absolute folder, from its parent's (found once): one `lstat` per
        folder rather than one per component of its path."""
        real = self._real.get(folder)
        if real is None:
            head, tail = os.path.split(folder)
            if os.name != "posix" or head == folder or tail in ("", ".", "..") or os.path.islink(folder):
                real = os.fspath(Path(folder).resolve())
            else:
                real = os.path.join(self._real_folder(head), tail)
            self._real[folder] = real
        return real


def default_cache_dir(cwd: Path | None = None) -> Path:
    """`.fastsqla-lint-cache` in the project root of the working folder."""
    from fastsqla_lint.cache import FOLDER

    return find_root(cwd or Path.cwd()) / FOLDER


def _cores() -> int:

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _config_key(config: Config) -> str:
    from fastsqla_lint.recording import fingerprint

    return str(fingerprint(config))


def _entry_key(run: GroupRun, f: FileState) -> str:
    from fastsqla_lint.cache import digest

    return digest("file", run.config_key, f.display, f.module_name, f.is_package, f.hash)


def _project_key(root: Path, config_key: str) -> str:
    from fastsqla_lint.cache import digest

    return digest("project", root, config_key)


def _load_manifest(cache, run: GroupRun) -> dict:
    if cache is None:
        return {}
    found = cache.load("stats", _project_key(run.root, run.config_key))
    if not isinstance(found, dict) or not isinstance(found.get("files"), dict):
        return {}
    return found


def _hash_files(run: GroupRun, manifest: dict) -> list[FileState]:
    """Each file's content hash from the manifest, when its stat signature is unchanged and not racy.
    The other files are returned: their bytes must be read (`_read_file`, `_survey`)."""

    from fastsqla_lint.cache import RACY_SECONDS, content_hash, signature_ctime, stat_signature

    known = manifest.get("files", {})
    clean_before = int((manifest.get("written", 0) - RACY_SECONDS) * 1e9)
    unread = []
    for f in run.files:
        if f.given is not None:
            f.hash = content_hash(f.given)
            continue
        try:
            f.sig = stat_signature(os.stat(f.path))
        except OSError:
            f.sig = None
        old = known.get(f.path)
        if f.sig is not None and old is not None and old[0] == f.sig and signature_ctime(f.sig) < clean_before:
            f.hash = old[1]
            f.module_name, f.is_package, f.hit, f.targets = old[2]
        else:
            unread.append(f)
    return unread


def _read_file(f: FileState, manifest: dict, stats: RunStats) -> None:
    """Read and hash one file the manifest did not vouch for (unreadable: no hash)."""
    from fastsqla_lint.cache import content_hash

    try:
        data = read_source(f.path)
    except OSError:
        f.hash = None
        return
    stats.read += 1
    f.hash = content_hash(data)
    f.data = data
    old = manifest.get("files", {}).get(f.path)
    if old is not None and old[1] == f.hash:  # the same content: what the prefilter found still holds
        f.module_name, f.is_package, f.hit, f.targets = old[2]


SURVEY_MIN_FILES = 512  # fewer files to read than this: the parent reads them, a pool would not pay off
SURVEY_CHUNK = 256


def _survey(runs: list[GroupRun], unread: list[list[FileState]], jobs: int, stats: RunStats,
            server: bool = False) -> None:
    """Read, hash and scan (`_scan_files`) files (`unread`: each project's) in a pool of `jobs` processes.
    The bytes stay in the workers: a file that is parsed later is read again, and a cache entry is only
    written for bytes that still have the hash found here (see `_work_chunk`).

    The tasks are made as the pool takes them, not all at first. The module names a file's imports may
    run come back as fresh strings in each result; they are interned here, as the worker did, so that
    each name is held once however many files import it."""
    import sys

    from fastsqla_lint import prefilter
    from fastsqla_lint.registry import selected_rules

    shared = {"survey": [(run.roots, prefilter.standalone_needles(selected_rules(run.config))) for run in runs]}
    count = sum(-(-len(files) // SURVEY_CHUNK) for files in unread)  # tasks: each project's files in chunks

    def tasks():
        for gi, files in enumerate(unread):
            for i in range(0, len(files), SURVEY_CHUNK):
                yield [(gi, f.pos, f.path) for f in files[i : i + SURVEY_CHUNK]]

    intern = sys.intern
    processes = min(jobs, count)
    with _pool_context(server).Pool(processes, initializer=_init_worker, initargs=(shared,)) as pool:
        for found, rss in pool.imap_unordered(_survey_chunk, tasks()):
            stats.workers_peak_rss_kb = max(stats.workers_peak_rss_kb, rss)
            for gi, pos, digest, facts in found:
                f = runs[gi].files[pos]
                f.hash = digest
                if digest is not None:
                    stats.read += 1
                    f.module_name, f.is_package, f.hit, targets = facts
                    f.targets = tuple(map(intern, targets))


def _survey_chunk(task: list) -> tuple[list, int]:
    from fastsqla_lint.cache import content_hash

    groups = _SHARED["survey"]
    names = _SHARED.setdefault("names", {})
    out = []
    for gi, pos, path in task:
        try:
            data = read_source(path)
        except OSError:
            out.append((gi, pos, None, None))
            continue
        roots, needles = groups[gi]
        name_of = names.get(gi) or names.setdefault(gi, ModuleNames(roots))
        module_name, is_package = name_of(path)
        hit, targets = scan_facts(data, module_name, is_package, needles)
        out.append((gi, pos, content_hash(data), (module_name, is_package, hit, targets)))
    return out, peak_rss_kb()


def scan_facts(data: bytes, module_name: str | None, is_package: bool, needles: tuple[bytes, ...]) -> tuple:
    """What the prefilter keeps of one file: (relevant by itself, the module names its imports may run).

    Every file of a project is kept with its import targets until the parse set is known, skipped ones
    included: the names are interned (most recur across files: `typing`, `app.models`) and held in a
    sorted tuple (a set of fresh strings took about 2.5 KB more per file)."""
    import sys

    from fastsqla_lint import prefilter

    found = prefilter.scan(data, needles)
    return found.hit, tuple(sorted(map(sys.intern, prefilter.import_targets(found.imports, module_name, is_package))))


def _scan_files(run: GroupRun, needles: tuple[bytes, ...]) -> None:
    """Module name, relevance and import targets of the files the manifest did not know."""
    name_of = None
    for f in run.files:
        if f.targets is not None:
            continue
        name_of = name_of or ModuleNames(run.roots)
        f.module_name, f.is_package = name_of(f.path)
        if f.hash is None:
            continue
        data = f.data if f.data is not None else run.data_of(f)
        f.hit, f.targets = scan_facts(data or b"", f.module_name, f.is_package, needles)


class _Scans:
    """What `prefilter.parse_set` reads of a project's scanned files, by position: (module name, relevant by
    itself, import targets), each tuple made as it is read (a dict of them took 3 MB at 27,000 files)."""

    def __init__(self, files: list[FileState]) -> None:
        self.files = files

    def items(self):
        for i, f in enumerate(self.files):
            if f.targets is not None:
                yield i, (f.module_name, f.hit, f.targets)

    def __getitem__(self, i: int) -> tuple:
        f = self.files[i]
        if f.targets is None:
            raise KeyError(i)
        return f.module_name, f.hit, f.targets

    def __contains__(self, i: object) -> bool:
        return isinstance(i, int) and 0 <= i < len(self.files) and self.files[i].targets is not None


def _tree_digest(run: GroupRun) -> str:
    from fastsqla_lint.cache import digest

    return digest("tree", *sorted(f"{f.path}\x01{f.hash}" for f in run.files))


def _save_manifests(cache, runs: list[GroupRun], manifests: list[dict]) -> None:
    import time

    for run, manifest in zip(runs, manifests):
        files = {
            f.path: (f.sig, f.hash, (f.module_name, f.is_package, f.hit, f.targets))
            for f in run.files
            if f.sig is not None and f.hash is not None and f.targets is not None
        }
        if files == manifest.get("files"):
            continue
        cache.store("stats", _project_key(run.root, run.config_key), {"written": time.time(), "files": files})


def _payload_of(result) -> tuple:
    return (tuple(result.diagnostics), tuple(result.internal_errors))


def _file_result(display: str, payload: tuple | None):
    from fastsqla_lint.diagnostics import FileResult

    diagnostics, errors = payload if payload is not None else ((), ())
    return FileResult(display, list(diagnostics), list(errors))


CHUNK_BYTES = 256 * 1024  # source per chunk: its trees (about 190x) are held while the chunk is linted
_SHARED: dict = {}  # what the workers of a stage share (set before the pool starts, or in-process)


def _build_graph(run: GroupRun, selected: list[FileState]) -> None:
    """The import edges among a project's parsed files (from their import scans): `run.imports[pos]` are
    the files `pos` imports (and its parent packages), `run.importers[pos]` the files importing it."""
    from fastsqla_lint import prefilter

    by_name: dict[str, list[int]] = {}
    for f in selected:
        if f.module_name:
            by_name.setdefault(f.module_name, []).append(f.pos)
    run.imports, run.importers = {}, {}
    for f in selected:
        names = set(f.targets or ())
        if f.module_name:
            names.update(prefilter.parents_of(f.module_name))
        targets = sorted({g for n in names for g in by_name.get(n, ()) if g != f.pos})
        run.imports[f.pos] = targets
        for g in targets:
            run.importers.setdefault(g, []).append(f.pos)


def _chunks(run: GroupRun, files: list[FileState], size: int | None = None) -> list[list[FileState]]:
    """`files` cut into chunks: connected import components together, imported modules first, big
    components split (in that order) and small ones packed, each chunk about `size` bytes of source."""
    if not files:
        return []
    size = size or CHUNK_BYTES
    members = {id(f) for f in files}
    imports = {
        id(f): [g for g in (run.files[p] for p in run.imports.get(f.pos, ())) if id(g) in members] for f in files
    }
    # components (undirected)
    parent: dict[int, int] = {id(f): id(f) for f in files}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for f in files:
        for g in imports[id(f)]:
            a, b = find(id(f)), find(id(g))
            if a != b:
                parent[a] = b
    components: dict[int, list[FileState]] = {}
    for f in files:
        components.setdefault(find(id(f)), []).append(f)
    # imported modules first (depth-first post-order; a cycle is cut where it is met)
    ordered: list[list[FileState]] = []
    for comp in components.values():
        seen: set[int] = set()
        order: list[FileState] = []
        for start in comp:
            if id(start) in seen:
                continue
            stack = [(start, iter(imports[id(start)]))]
            seen.add(id(start))
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    order.append(node)
                elif id(nxt) not in seen:
                    seen.add(id(nxt))
                    stack.append((nxt, iter(imports[id(nxt)])))
        ordered.append(order)
    ordered.sort(key=lambda c: -sum(_size(f) for f in c))  # big components first: better balance
    chunks: list[list[FileState]] = []
    current: list[FileState] = []
    weight = 0
    for comp in ordered:
        for f in comp:
            if current and weight + _size(f) > size:
                chunks.append(current)
                current, weight = [], 0
            current.append(f)
            weight += _size(f)
    if current:
        chunks.append(current)
    return chunks


def _size(f: FileState) -> int:
    if f.data is not None:
        return len(f.data)
    if f.given is not None:
        return len(f.given)
    if f.sig is None:
        return 1
    from fastsqla_lint.cache import signature_size

    return signature_size(f.sig)


def _context(run: GroupRun, chunk: list[FileState]) -> list:
    """The known summaries a chunk's provisional index needs: what its files import (transitively),
    their packages, and the files importing them (whose facts, `Depends(get_db)`, concern them)."""
    seen = {f.pos for f in chunk}
    out = []
    for f in chunk:
        for p in run.importers.get(f.pos, ()):
            g = run.files[p]
            if p not in seen and g.summary is not None:
                seen.add(p)
                out.append(g.summary)
    stack = [f.pos for f in chunk]
    while stack:
        for p in run.imports.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                g = run.files[p]
                if g.summary is not None:
                    out.append(g.summary)
                stack.append(p)
    return out


def _task(stage: str, gi: int, run: GroupRun, chunk: list[FileState], with_context: bool) -> tuple:
    """What a worker needs for one chunk. A project's only chunk (`GroupRun.whole_chunk`) holds all the
    summaries of its index: the worker builds that index itself, in file order, as `GroupRun.index` does."""
    specs = []
    for f in chunk:
        data = run.data_of(f)
        specs.append((f.pos, f.path, f.display, data, f.hash, f.requested, _entry_key(run, f),
                      (f.module_name, f.is_package)))
        f.data = None
    whole = stage == "first" and run.whole_chunk
    context = _context(run, chunk) if with_context and not whole else None
    return (stage, gi, specs, context, whole)


def _execute(parse: list, tasks: list, jobs: int, cache, stage: str, edits: bool = True, server: bool = False,
             stats: RunStats | None = None, summaries: bool = True) -> None:
    """Run the chunk tasks (in this process, or in a pool of `jobs` processes) and take their results.
    `summaries=False`: a project's only chunk (`GroupRun.whole_chunk`) sends no summaries back."""
    if not tasks:
        return
    from fastsqla_lint.engine import long_lived_frozen

    with long_lived_frozen():
        _execute_tasks(parse, tasks, jobs, cache, stage, edits, server, stats, summaries)


def _execute_tasks(parse: list, tasks: list, jobs: int, cache, stage: str, edits: bool, server: bool,
                   stats: RunStats | None, summaries: bool) -> None:
    groups = [(run.config, run.root, run.roots) for run, _ in parse]
    shared = {"groups": groups, "cache": (cache.root, cache.stamp) if cache is not None else None, "edits": edits,
              "summaries": summaries}
    if stage == "final":
        relinted = {gi for gi, _ in tasks}
        shared["indexes"] = [run.index() if gi in relinted else None for gi, (run, _) in enumerate(parse)]

    def take(results: list) -> None:
        _, gi, items, _ = results
        run = parse[gi][0]
        for pos, summary, payload, records in items:
            f = run.files[pos]
            if summary is not None or f.summary is None:
                f.summary = summary
            if payload is not None:
                f.payload, f.records = payload, records
            f.linted_now = True

    total = sum(len(c) for _, c in tasks)
    if jobs <= 1 or len(tasks) < 2 or total < 8:
        global _SHARED
        _SHARED = shared
        try:
            for gi, chunk in tasks:
                take(_work(_task(stage, gi, parse[gi][0], chunk, stage == "first")))
        finally:
            _SHARED = {}
        return
    ctx = _pool_context(server)
    import queue

    finished: queue.SimpleQueue = queue.SimpleQueue()  # results (or a worker's exception) as they come
    with ctx.Pool(min(jobs, len(tasks)), initializer=_init_worker, initargs=(shared,)) as pool:
        pending = list(tasks)
        running = 0
        window = 2 * jobs  # tasks are made (their files read) only as workers can take them
        while pending or running:
            while pending and running < window:
                gi, chunk = pending.pop(0)
                task = _task(stage, gi, parse[gi][0], chunk, stage == "first")
                pool.apply_async(_work, (task,), callback=finished.put, error_callback=finished.put)
                running += 1
            # whichever task ends first frees its place: a long chunk does not hold up the others
            result = finished.get()
            running -= 1
            if isinstance(result, BaseException):
                raise result
            take(result)
            if stats is not None:
                stats.workers_peak_rss_kb = max(stats.workers_peak_rss_kb, result[3])


FORK_SERVER_MIN_FILES = SURVEY_MIN_FILES  # a run requesting this many files starts its workers from a fork server
_fork_server_started = False


def _start_fork_server() -> bool:
    """Start this process's fork server (once), with LibCST and the rules imported in it. A run over many
    files does so when it starts: the server's imports then overlap with the run's listing, stat calls and
    rule loading, and its workers hold none of the run's per-file state (a worker forked from the run's
    own process would hold a copy of it, one record per file of every project, skipped ones included).
    False where there is no fork server (Windows), or where its workers would run this process's main
    module again (`_main_runs_again`)."""
    global _fork_server_started
    if _fork_server_started:
        return True
    if _main_runs_again():
        return False
    import multiprocessing
    import pkgutil

    from fastsqla_lint import rules

    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:
        return False
    from multiprocessing import forkserver

    ctx.set_forkserver_preload([__name__, "fastsqla_lint.engine", "fastsqla_lint.registry",
                                *(f"{rules.__name__}.{m.name}" for m in pkgutil.iter_modules(rules.__path__))])
    try:
        forkserver.ensure_running()
    except OSError:  # its socket cannot be made (no writable temporary folder, too long a path): fork then
        return False
    _fork_server_started = True
    return True


def _main_runs_again() -> bool:
    """Whether a worker started from a fork server would run this process's main module again: Python
    imports it in each such worker (as `__mp_main__`), and a script that does not guard its work with
    `if __name__ == "__main__":` would start over there, pool and all. Not for `python -m` of a package
    (its `__main__` is left alone), `python -c`, an interactive session, or the `fastsqla-lint` script,
    which guards its call (its module holds `cli.console`)."""
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return not (spec.name == "__main__" or spec.name.endswith(".__main__"))
    if getattr(main, "__file__", None) is None:
        return False
    from fastsqla_lint.cli import console

    return getattr(main, "console", None) is not console


def _pool_context(server: bool = False):
    """How worker processes start: forked from this one, which shares the run's state at no cost, unless
    other threads run here (the language server's): a fork copies only the forking thread, and a lock
    another thread held then stays held in the child. Then from a fork server, a clean process.
    `server`: the run started the fork server (`_start_fork_server`), its workers start from it."""
    import multiprocessing
    import threading

    if server and _fork_server_started:
        return multiprocessing.get_context("forkserver")
    for method in ("fork", "forkserver") if threading.active_count() == 1 else ("forkserver",):
        try:
            return multiprocessing.get_context(method)
        except ValueError:
            continue
    return multiprocessing.get_context()


def peak_rss_kb() -> int:
    """This process's peak resident memory (kilobytes on Linux; 0 where it cannot be known)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):  # no `resource` module on Windows
        return 0


def _init_worker(shared: dict) -> None:
    global _SHARED
    _SHARED = shared


def _work(task: tuple) -> tuple:
    """Parse, summarise and (for requested files) lint one chunk; write its cache entries.

    The cyclic garbage collector is paused meanwhile (see `engine.collector_paused`), and the chunk runs
    on one thread whose stack fits the parser (`engine.on_parser_stack`), not one thread per file."""
    from fastsqla_lint.engine import collector_paused, on_parser_stack

    with collector_paused():
        return on_parser_stack(_work_chunk, task)


def _work_chunk(task: tuple) -> tuple:
    from fastsqla_lint import engine
    from fastsqla_lint.cache import Cache, content_hash
    from fastsqla_lint.index import ProjectIndex
    from fastsqla_lint.recording import RecordingIndex, mark

    stage, gi, specs, context, whole = task
    config, root, roots = _SHARED["groups"][gi]
    cache_info = _SHARED.get("cache")
    cache = Cache(*cache_info) if cache_info is not None else None
    loaded = [(spec, load_file(Path(spec[1]), spec[2], roots, spec[3], spec[7])) for spec in specs]
    for spec, lf in loaded:
        mark(lf.summary, spec[6])
    if stage == "final":
        index = _SHARED["indexes"][gi]
    else:
        summaries = list(context or ())
        ordered = sorted(loaded, key=lambda item: item[0][0]) if whole else loaded  # whole: file order
        summaries.extend(lf.summary for _, lf in ordered if lf.summary is not None)
        index = ProjectIndex(summaries, root=root, src_roots=roots)
    # A lint's index queries are recorded to check its result against another index later: the project's
    # final one (the index here is provisional) or a later run's (a cache entry). A lint against the
    # project's whole index, with no cache to write, records nothing.
    record = cache is not None or (stage == "first" and not whole)
    send_summaries = not whole or _SHARED["summaries"]
    memo: dict = {}
    out = []
    entries: dict[str, dict] = {}
    for spec, lf in loaded:
        pos, path, display, data, digest, lint, entry_key, _ = spec
        payload = records = None
        if lint and lf.parsed is not None:
            recorder = RecordingIndex(index, memo) if record else None
            asked = index if recorder is None else recorder
            try:
                result = engine.lint_parsed(lf.parsed, config, asked, edits=_SHARED["edits"])
            except Exception as exc:  # a bug in the linter must not stop the other files
                result = engine.FileResult(display, [], [f"{display}: internal error: {exc!r}"])
            payload = (tuple(result.diagnostics), tuple(result.internal_errors))
            records = recorder.records if recorder is not None else None
        out.append((pos, lf.summary if send_summaries else None, payload, records))
        if cache is not None and digest is not None and data is not None and content_hash(data) == digest:
            entries[entry_key] = {
                "summary": lf.summary, "payload": payload, "records": records, "edits": _SHARED["edits"],
            }
    if cache is not None:
        cache.store_many("files", entries)
    return (stage, gi, out, peak_rss_kb())


def _summaries_for(run: GroupRun, cache) -> list:
    """The summaries of a project's parsed files when the run holds none (`GroupRun.summaries_missing`),
    from the cache or parsed now: for fixing after a run answered from its run entry, or one that left
    them in its workers. A cache entry without a summary (a file that cannot be parsed) is not parsed again."""
    from fastsqla_lint import prefilter
    from fastsqla_lint.registry import selected_rules

    _scan_files(run, prefilter.standalone_needles(selected_rules(run.config)))
    chosen = prefilter.parse_set(_Scans(run.files), [i for i, f in enumerate(run.files) if f.always])
    out = []
    for i in sorted(chosen):
        f = run.files[i]
        entry = cache.load("files", _entry_key(run, f)) if cache is not None and f.hash else None
        if isinstance(entry, dict):
            summary = entry.get("summary")
        else:
            name = (f.module_name, f.is_package)
            summary = load_file(Path(f.path), f.display, run.roots, run.data_of(f), name).summary
        f.summary = summary
        if summary is not None:
            out.append(summary)
    return out
