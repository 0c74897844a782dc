"""The language server: `fastsqla-lint lsp`, pygls over stdio.

State lives on `FastsqlaLanguageServer`: the configuration, the workspace's module summaries and the
project index built from them, and one `DocState` per open document. The handlers below are plain
functions registered with `@server.feature`.

- Diagnostics are published on open and save, and on change after a short pause (150 ms); a newer
  version of a document cancels the lint of an older one, and only the latest version is published.
- Open buffers are linted from their text. A buffer's own module-level facts (its summary) replace the
  ones read from disk, and the index is rebuilt from the summaries, so the file being edited is seen by
  the others and the other files are seen by it.
- The workspace index is built in the background right after `initialize`; every lint and fix runs on
  one worker thread after it, so the first diagnostics already know the whole workspace. `didSave` and
  `workspace/didChangeWatchedFiles` keep it current; a changed `pyproject.toml` reloads everything.
- Each diagnostic carries its fix in `data` (edits already in client position units, tagged with the
  document version), so code actions never re-lint: one `quickfix` per fix, "Ignore FSLxxx for this
  line", and `source.fixAll.fastsqla-lint` (safe fixes; unsafe ones too when `unsafe-fixes` is on).
- Positions are sent in the negotiated encoding (UTF-16 unless the client offers another); the engine's
  columns are code points and go through pygls' position codec.
- Internal errors are written to the client's log (`window/logMessage`); the server keeps running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace.position_codec import PositionCodec

from fastsqla_lint import __version__, engine, project
from fastsqla_lint.config import DEFAULT, Config, ConfigError
from fastsqla_lint.diagnostics import Applicability, Diagnostic, LineIndex, Position, Severity
from fastsqla_lint.discovery import PYTHON_SUFFIXES, Excluder, Target, display_path, is_python_file
from fastsqla_lint.fixes import text_edits
from fastsqla_lint.index import EMPTY_INDEX, ModuleSummary, ProjectIndex, module_name_for
from fastsqla_lint.noqa import ALL, add_noqa, parse_noqa

SOURCE = "fastsqla-lint"
FIX_ALL_KIND = "source.fixAll.fastsqla-lint"
DEBOUNCE_SECONDS = 0.15
CONFIG_FILE = "pyproject.toml"
WATCHERS = ("**/*.py", "**/*.pyi", f"**/{CONFIG_FILE}")

_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


@dataclass
class DocState:
    """What the server keeps about one open document."""

    uri: str
    path: Path | None  # None for unsaved, untitled buffers
    display: str  # the path the engine reports and matches per-file-ignores against
    task: asyncio.Task | None = None  # the pending or running lint
    version: int | None = None  # the version the published diagnostics belong to
    generation: int = -1  # the index generation the document was last linted against
    published: list[types.Diagnostic] = field(default_factory=list)
    fix_all: tuple[int | None, int, list[types.TextEdit]] | None = None  # (version, generation, edits)


class Positions:
    """Code point positions of one text -> LSP positions in the negotiated encoding."""

    def __init__(self, text: str, codec: PositionCodec) -> None:
        self.text = text
        self.lines = LineIndex(text)
        self.codec = codec

    def position(self, pos: Position) -> types.Position:
        offset = self.lines.offset(pos)
        pos = self.lines.position(offset)
        start = self.lines.line_start(pos.line)
        return types.Position(line=pos.line - 1, character=self.codec.client_num_units(self.text[start:offset]))

    def range(self, start: Position, end: Position) -> types.Range:
        return types.Range(start=self.position(start), end=self.position(end))

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line break."""
        start = self.lines.line_start(line)
        end = self.lines.starts[line] if line < len(self.lines.starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")


@dataclass
class BufferFacts:
    """What an open buffer puts in its project's index, from its text: its summary, and what the
    prefilter knows of it (module name, relevant by itself, the module names its imports may run)."""

    summary: ModuleSummary
    module_name: str | None
    hit: bool
    targets: tuple[str, ...]


@dataclass
class WorkspaceProject:
    """One project of the workspace, as `check` groups files (its root, settings and import roots).

    `files` are its files on disk as the check pipeline knows them (`project.FileState`: module name and
    import scan of each; the summary of each file its index needs, loaded from the cache or parsed).
    Open buffers' facts replace their files' in the index."""

    root: Path
    config: Config
    roots: tuple[Path, ...]
    files: dict[Path, project.FileState] = field(default_factory=dict)
    buffers: dict[Path, BufferFacts] = field(default_factory=dict)
    index: ProjectIndex = EMPTY_INDEX
    tried: set[Path] = field(default_factory=set)  # files parsed for their summary that had none

    @property
    def needles(self) -> tuple[bytes, ...]:
        from fastsqla_lint.prefilter import standalone_needles
        from fastsqla_lint.registry import selected_rules

        return standalone_needles(selected_rules(self.config))


class SettingsTree(project.ConfigTree):
    """`check`'s settings per folder, except that a bad settings file is shown to the user and the
    defaults apply below it: the server keeps running."""

    def __init__(self, show: Callable[[str], None]) -> None:
        super().__init__(None)
        self.show = show

    def for_folder(self, folder: Path) -> Config:
        try:
            return super().for_folder(folder)
        except ConfigError as exc:
            self.show(f"fastsqla-lint: {exc}; using the default settings")
            config = self._by_folder[folder] = dataclasses.replace(DEFAULT, root=folder)
            return config


class FastsqlaLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(SOURCE, __version__)
        self.root: Path | None = None
        self.options: dict[str, Any] = {}  # initializationOptions
        self.options_ok = True
        self.config: Config = DEFAULT  # the workspace folder's: for buffers outside every project
        self.tree = SettingsTree(self.show)
        self.planner = project.Planner(self.tree)
        self.excluder = Excluder(self.tree.for_folder)
        self.projects: dict[tuple, WorkspaceProject] = {}  # by `Planner.key_of`
        self.generation = 0  # counts index changes
        self.docs: dict[str, DocState] = {}
        # One worker: the index build, lints and fixes run one after the other, in the order asked.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastsqla-lint")
        self.loop: asyncio.AbstractEventLoop | None = None
        self._progress_tokens = itertools.count(1)

    # -- talking to the client (always from the event loop's thread) ----------------------------
    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        params = types.LogMessageParams(type=kind, message=message)
        if self.loop is not None and threading.current_thread() is not threading.main_thread():
            self.loop.call_soon_threadsafe(self.window_log_message, params)
        else:
            self.window_log_message(params)

    def show(self, message: str) -> None:
        """A problem the user must fix (a bad configuration): shown, and logged."""
        params = types.ShowMessageParams(type=types.MessageType.Error, message=message)
        if self.loop is not None and threading.current_thread() is not threading.main_thread():
            self.loop.call_soon_threadsafe(self.window_show_message, params)
        else:
            self.window_show_message(params)
        self.log(message, types.MessageType.Error)

    def progress(self, title: str) -> Callable[[str], None]:
        """Show `title` as work in progress in a client that supports it (from the worker thread); the
        function returned ends it with a message. The client must answer the token's creation before
        the work begins: an end that comes first waits for it."""
        if self.loop is None or not self.supports("window.work_done_progress"):
            return lambda message: None
        token = f"fastsqla-lint-{next(self._progress_tokens)}"
        state: dict[str, Any] = {"begun": False, "end": None}

        def created(future: Any) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title))
            state["begun"] = True
            if state["end"] is not None:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=state["end"]))

        def finish(message: str) -> None:
            state["end"] = message
            if state["begun"]:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

        loop = self.loop
        loop.call_soon_threadsafe(lambda: self.work_done_progress.create(token).add_done_callback(created))
        return lambda message: loop.call_soon_threadsafe(finish, message)

    def report_server_error(self, error: Exception, source: Any) -> None:
        self.log(f"fastsqla-lint: internal error: {error!r}", types.MessageType.Error)

    async def run(self, fn: Callable, *args: Any) -> Any:
        """Run `fn(*args)` on the worker; cancelling the caller drops it if it has not started."""
        return await asyncio.wrap_future(self.worker.submit(fn, *args))

    @property
    def codec(self) -> PositionCodec:
        return self.workspace.position_codec

    def supports(self, capability: str) -> bool:
        return bool(get_capability(self.client_capabilities, capability, False))

    # -- workspace state (worker thread only) ----------------------------------------------------
    def load_workspace(self) -> None:
        """Read the settings afresh. Projects are indexed when a document of theirs is first linted
        (`project_of`); the open buffers' facts are put back into theirs."""
        buffers = {path: facts for proj in self.projects.values() for path, facts in proj.buffers.items()}
        self.tree = SettingsTree(self.show)
        self.planner = project.Planner(self.tree)
        self.planner.display = self.display_of  # relative to the workspace folder, whatever the working folder
        self.excluder = Excluder(self.tree.for_folder)
        self.projects = {}
        self.options_ok = True
        try:
            apply_options(DEFAULT, self.options)
        except ConfigError as exc:
            self.show(f"fastsqla-lint: {exc}; initializationOptions ignored")
            self.options_ok = False
        self.config = self.configure(
            self.tree.for_folder(project.existing_folder(self.root)) if self.root is not None else DEFAULT
        )
        changed: dict[int, WorkspaceProject] = {}
        for path, facts in buffers.items():
            proj = self.project_of(path)
            if proj is not None:
                proj.buffers[path] = facts
                changed[id(proj)] = proj
        for proj in changed.values():
            self.refresh(proj, scans_changed=True)
        self.generation += 1

    def index_project(self, path: Path) -> WorkspaceProject:
        """Index the project `path` belongs to the way `check` run in the workspace folder would: every
        file of the project read and its imports scanned, the files its index needs (the prefilter's
        parse set) summarised, from the cache when they are there, else parsed (in a pool of processes
        when there are many) and cached."""
        import time

        clock = time.perf_counter()
        [group] = self.planner.groups([Target(str(path), self.display_of(path))])
        group.config = self.configure(group.config)
        # A project's files come from a walk of its root. A folder that is no project's (no marker, no
        # package) groups the files directly in it, as `check .` would; a home folder or `/`, none.
        group.targets = [] if group.walkable else self.files_in(group.root)
        if not group.walkable and not group.targets:
            return WorkspaceProject(group.root, group.config, project.import_roots(group.root, group.config))
        stats = project.RunStats()
        cache_root = self.cache_root()
        done = self.progress(f"fastsqla-lint: indexing {self.display_of(group.root)}")
        summarised = 0
        try:
            [run] = project.check_groups([group], self.planner, self.excluder, cache_root=cache_root, stats=stats,
                                         lint=False)
            found = WorkspaceProject(run.root, run.config, run.roots)
            found.files = {Path(f.path): f for f in run.files}
            found.index = run.index(cache_root)
            summarised = sum(f.summary is not None for f in run.files)
        finally:  # the files the index needs are summarised: from the cache, or parsed now
            summary = f"{stats.files} file{'s' * (stats.files != 1)}, {summarised} summarised, {stats.parsed} parsed"
            done(summary)
        self.log(
            f"fastsqla-lint: indexed {self.display_of(run.root)} in {time.perf_counter() - clock:.2f} s ({summary})"
        )
        return found

    def files_in(self, folder: Path) -> list[Target]:
        """The Python files directly in `folder` that are not excluded (none in a home folder or `/`)."""
        import os

        if folder == Path.home() or folder.parent == folder:
            return []
        try:
            names = sorted(e.name for e in os.scandir(folder) if e.is_file())
        except OSError:
            return []
        paths = [folder / n for n in names]
        wanted = [p for p in paths if is_python_file(p) and not self.excluder.is_excluded(p, False)]
        return [Target(str(p), self.display_of(p)) for p in wanted]

    def cache_root(self) -> Path | None:
        """Where the workspace's summaries are cached: where `check` run in the workspace folder keeps
        them (`FASTSQLA_LINT_CACHE_DIR`, else `.fastsqla-lint-cache` in its project root); None with
        `FASTSQLA_LINT_NO_CACHE` set or `"cache": false` in initializationOptions."""
        import os

        off = self.options_ok and self.options.get("cache") is False
        if off or _truthy(os.environ.get("FASTSQLA_LINT_NO_CACHE")):
            return None
        folder = os.environ.get("FASTSQLA_LINT_CACHE_DIR")
        if folder:
            return Path(folder).absolute()
        assert self.root is not None
        return project.default_cache_dir(self.root)

    def configure(self, config: Config) -> Config:
        """`config` with the client's initializationOptions applied (unless they are bad)."""
        return apply_options(config, self.options) if self.options_ok else config

    def project_of(self, path: Path | None, index: bool = True) -> WorkspaceProject | None:
        """The project a workspace file belongs to, indexed now if it was not (`index=False`: None
        then); None for untitled buffers and files outside the workspace."""
        if path is None or not self.in_workspace(path):
            return None
        key = self.planner.key_of(path)
        found = self.projects.get(key)
        if found is None and index:
            found = self.projects[key] = self.index_project(path)
        return found

    def refresh(self, proj: WorkspaceProject, scans_changed: bool) -> None:
        """Rebuild a project's index after its files' or buffers' facts changed. When an import scan
        changed, the files the index now needs are parsed first (a buffer that starts importing
        SQLAlchemy makes the modules it imports, and those importing it, matter)."""
        if scans_changed:
            self.load_needed(proj)
        summaries = [proj.buffers[p].summary if p in proj.buffers else f.summary for p, f in proj.files.items()]
        summaries.extend(b.summary for p, b in proj.buffers.items() if p not in proj.files)
        proj.index = ProjectIndex([s for s in summaries if s is not None], root=proj.root, src_roots=proj.roots)
        self.generation += 1

    def load_needed(self, proj: WorkspaceProject) -> None:
        """Parse the files of the project's parse set (its buffers' scans counted) not summarised yet."""
        from fastsqla_lint.prefilter import parse_set

        table: dict[Path, tuple[str | None, bool, tuple[str, ...]]] = {}
        for path, f in proj.files.items():
            if f.targets is not None:
                table[path] = (f.module_name, f.hit, f.targets)
        for path, b in proj.buffers.items():
            table[path] = (b.module_name, b.hit, b.targets)
        for path in parse_set(table, proj.buffers):
            f = proj.files.get(path)
            if f is None or path in proj.buffers or f.summary is not None or path in proj.tried:
                continue
            f.summary = project.load_file(path, f.display, proj.roots, name=(f.module_name, f.is_package)).summary
            if f.summary is None:
                proj.tried.add(path)

    def in_workspace(self, path: Path | None) -> bool:
        if path is None or self.root is None:
            return False
        try:
            path.relative_to(self.root)
        except ValueError:
            return False
        return True

    def display_of(self, path: str | Path | None) -> str:
        if path is None:
            return "<untitled>"
        if self.root is None:
            return str(path)
        return display_path(path, self.root)  # relative to the workspace folder when under it, as `check`'s

    def settings_of(self, state: DocState, make: bool = True) -> tuple[Config, ProjectIndex, str | None, bool]:
        """The settings and index a document is linted with, and its module name and is-package
        (`make=False`: without indexing its project, from the event loop's thread)."""
        proj = self.project_of(state.path, index=make)
        if state.path is None:
            return self.config, EMPTY_INDEX, None, False
        if proj is None:
            return (self.config, EMPTY_INDEX, *module_name_for(state.path, (state.path.parent,)))
        return (proj.config, proj.index, *module_name_for(state.path, proj.roots or (state.path.parent,)))

    def lint_buffer(self, state: DocState, text: str) -> engine.FileResult:
        """Lint an open buffer from its text, after putting its own facts into its project's index."""
        config, _, name, is_package = self.settings_of(state)
        proj = self.project_of(state.path)  # indexed by now
        with engine.collector_paused():
            parsed = engine.parse(text, state.display, name, is_package)
            summary = engine.summary_of(parsed)  # before the lint: the walk adds local imports to the names
            if summary is not None and proj is not None:
                assert state.path is not None
                hit, targets = project.scan_facts(text.encode("utf-8", "surrogatepass"), name, is_package, proj.needles)
                self.put_buffer(proj, state.path, BufferFacts(summary, name, hit, targets))
            state.generation = self.generation
            return engine.lint_parsed(parsed, config, proj.index if proj is not None else EMPTY_INDEX)

    def put_buffer(self, proj: WorkspaceProject, path: Path, facts: BufferFacts) -> None:
        """An open buffer's facts replace what its project's index held for the file."""
        before = proj.buffers.get(path)
        if before == facts:
            return
        proj.buffers[path] = facts
        held = before or proj.files.get(path)
        if held is None or held.summary != facts.summary or _scan(held) != _scan(facts):
            self.refresh(proj, held is None or _scan(held) != _scan(facts))

    def fix_buffer(self, state: DocState, text: str) -> str:
        config, index, name, is_package = self.settings_of(state)
        threshold = Applicability.UNSAFE if config.unsafe_fixes else Applicability.SAFE
        outcome = engine.fix_text(text, state.display, config, index, threshold, name, is_package)
        for warning in outcome.warnings:
            self.log(f"fastsqla-lint: {warning}", types.MessageType.Warning)
        return outcome.text

    def reload_file(self, path: Path) -> None:
        """Re-read one workspace file from disk (gone: forgotten); an open buffer's facts still win."""
        from fastsqla_lint.cache import content_hash

        proj = self.project_of(path, index=False)  # a project not indexed yet will read the file then
        if proj is None:
            return
        old = proj.files.get(path)
        before = None if old is None else (old.summary, _scan(old))
        data = None
        if path.is_file() and not self.excluder.is_excluded_with_parents(path, self.root):
            try:
                data = project.read_source(path)
            except OSError:
                pass
        if data is None:
            proj.files.pop(path, None)
        else:
            f = old or project.FileState(str(path), self.display_of(path), len(proj.files), False, False)
            proj.files[path] = f
            f.module_name, f.is_package = module_name_for(path, proj.roots)
            f.hash = content_hash(data)
            f.hit, f.targets = project.scan_facts(data, f.module_name, f.is_package, proj.needles)
            proj.tried.discard(path)
            if f.summary is not None:  # needed before: parsed again (a broken file keeps its last good facts)
                loaded = project.load_file(path, f.display, proj.roots, data, (f.module_name, f.is_package))
                f.summary = loaded.summary or f.summary
        now = proj.files.get(path)
        after = None if now is None else (now.summary, _scan(now))
        if after != before and path not in proj.buffers:
            self.refresh(proj, before is None or after is None or before[1] != after[1])

    def forget_buffer(self, path: Path) -> None:
        """A buffer was closed: its file's facts come from disk again."""
        proj = self.project_of(path, index=False)
        facts = proj.buffers.pop(path, None) if proj is not None else None
        if proj is None or facts is None:
            return
        disk = proj.files.get(path)
        if disk is None or disk.summary != facts.summary or _scan(disk) != _scan(facts):
            self.refresh(proj, disk is None or _scan(disk) != _scan(facts))


def _scan(facts: project.FileState | BufferFacts) -> tuple:
    """What the prefilter knows of a file or a buffer: its module name, whether it is relevant by
    itself, the module names its imports may run."""
    return facts.module_name, facts.hit, facts.targets


def _truthy(value: str | None) -> bool:
    """An environment variable set the way click reads a flag's (`1`, `true`, `yes`, `on`)."""
    return (value or "").strip().lower() in {"1", "true", "t", "yes", "y", "on"}


def apply_options(config: Config, options: dict[str, Any]) -> Config:
    """`initializationOptions` override `select`, `ignore` and `unsafe-fixes` (and `cache`, checked
    here, turns the cache off: `FastsqlaLanguageServer.cache_root`)."""
    from fastsqla_lint.registry import check_selectors

    changes: dict[str, Any] = {}
    for key in ("select", "ignore"):
        value = options.get(key)
        if value is None:
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"initializationOptions.{key} must be a list of rule codes")
        check_selectors(value, f"initializationOptions.{key}")
        changes[key] = tuple(v.strip().upper() for v in value)
    for key in ("unsafe-fixes", "unsafe_fixes", "unsafeFixes"):
        if key in options:
            if not isinstance(options[key], bool):
                raise ConfigError(f"initializationOptions.{key} must be true or false")
            changes["unsafe_fixes"] = options[key]
    if not isinstance(options.get("cache", True), bool):
        raise ConfigError("initializationOptions.cache must be true or false")
    return dataclasses.replace(config, **changes) if changes else config


# -- diagnostics ----------------------------------------------------------------------------------
def to_lsp(diag: Diagnostic, positions: Positions, version: int | None) -> types.Diagnostic:
    data: dict[str, Any] = {"version": version}
    fix = diag.fix
    if fix is not None and fix.applicability > Applicability.DISPLAY_ONLY:
        data["fix"] = {
            "title": fix.title,
            "applicability": fix.applicability.label,
            "edits": [
                {
                    "range": _range_json(positions.range(e.start_pos, e.end_pos)),
                    "newText": e.content,
                }
                for e in fix.edits
            ],
        }
    url = diag.url or _rule_url(diag.code)
    return types.Diagnostic(
        range=positions.range(diag.start, diag.end),
        message=diag.message,
        severity=_SEVERITY.get(diag.severity, types.DiagnosticSeverity.Warning),
        code=diag.code,
        code_description=types.CodeDescription(href=url) if url else None,
        source=SOURCE,
        data=data,
    )


def _rule_url(code: str) -> str | None:
    from fastsqla_lint.registry import get

    rule = get(code)
    return rule.url() if rule is not None else None


def _range_json(r: types.Range) -> dict:
    return {
        "start": {"line": r.start.line, "character": r.start.character},
        "end": {"line": r.end.line, "character": r.end.character},
    }


def _range_from_json(r: dict) -> types.Range:
    return types.Range(
        start=types.Position(line=r["start"]["line"], character=r["start"]["character"]),
        end=types.Position(line=r["end"]["line"], character=r["end"]["character"]),
    )


def _path_of(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    fs = to_fs_path(uri)
    return Path(fs).absolute() if fs else None


def _is_python(uri: str, language_id: str | None = None) -> bool:
    if language_id == "python":
        return True
    path = uri.split("?", 1)[0].split("#", 1)[0]
    return path.endswith(PYTHON_SUFFIXES)


def schedule_lint(ls: FastsqlaLanguageServer, uri: str, delay: float = 0.0) -> None:
    """(Re)start the lint of one document; a lint still pending for it is cancelled."""
    state = ls.docs.get(uri)
    if state is None:
        return
    if state.task is not None and not state.task.done():
        state.task.cancel()
    state.task = asyncio.ensure_future(lint_and_publish(ls, uri, delay))


def relint_stale_documents(ls: FastsqlaLanguageServer, also: str | None = None) -> None:
    """Re-lint the open documents last linted against an older index (and `also`)."""
    for uri, state in list(ls.docs.items()):
        if uri == also or state.generation != ls.generation:
            schedule_lint(ls, uri)


async def lint_and_publish(ls: FastsqlaLanguageServer, uri: str, delay: float) -> None:
    if delay:
        await asyncio.sleep(delay)
    state = ls.docs.get(uri)
    if state is None:
        return
    doc = ls.workspace.get_text_document(uri)
    text, version = doc.source, doc.version
    try:
        result = await ls.run(ls.lint_buffer, state, text)
    except asyncio.CancelledError:
        raise
    except Exception:
        ls.log(f"fastsqla-lint: linting {uri} failed:\n{traceback.format_exc()}", types.MessageType.Error)
        return
    for message in result.internal_errors:
        ls.log(f"fastsqla-lint: {message}", types.MessageType.Error)
    if ls.docs.get(uri) is not state or doc.version != version:
        return  # closed, or a newer version is being linted
    positions = Positions(text, ls.codec)
    state.version = version
    state.published = [to_lsp(d, positions, version) for d in result.diagnostics]
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, diagnostics=state.published, version=version)
    )


# -- the server and its handlers --------------------------------------------------------------------
server = FastsqlaLanguageServer()


@server.feature(types.INITIALIZE)
def initialize(ls: FastsqlaLanguageServer, params: types.InitializeParams) -> None:
    ls.loop = asyncio.get_running_loop()
    ls.options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
    root = None
    if params.workspace_folders:
        root = _path_of(params.workspace_folders[0].uri)
    elif params.root_uri:
        root = _path_of(params.root_uri)
    elif params.root_path:
        root = Path(params.root_path).absolute()
    ls.root = root
    future = ls.worker.submit(ls.load_workspace)  # in the background; lints queue up behind it
    future.add_done_callback(lambda f: _log_failure(ls, f, "building the workspace index"))


def _log_failure(ls: FastsqlaLanguageServer, future: Any, what: str) -> None:
    exc = future.exception() if not future.cancelled() else None
    if exc is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        ls.log(f"fastsqla-lint: {what} failed:\n{tb}", types.MessageType.Error)


@server.feature(types.INITIALIZED)
async def initialized(ls: FastsqlaLanguageServer, params: types.InitializedParams) -> None:
    if not ls.supports("workspace.did_change_watched_files.dynamic_registration"):
        return
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern=glob) for glob in WATCHERS]
    )
    registration = types.Registration(
        id="fastsqla-lint-watched-files",
        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=options,
    )
    try:
        await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
    except Exception as exc:
        ls.log(f"fastsqla-lint: could not register file watchers: {exc}", types.MessageType.Warning)


@server.feature(types.SHUTDOWN)
def shutdown(ls: FastsqlaLanguageServer, params: None) -> None:
    for state in ls.docs.values():
        if state.task is not None:
            state.task.cancel()
    ls.worker.shutdown(wait=False, cancel_futures=True)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: FastsqlaLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    if not _is_python(doc.uri, doc.language_id):
        return
    path = _path_of(doc.uri)
    ls.docs[doc.uri] = DocState(uri=doc.uri, path=path, display=ls.display_of(path))
    schedule_lint(ls, doc.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: FastsqlaLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    schedule_lint(ls, params.text_document.uri, DEBOUNCE_SECONDS)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: FastsqlaLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    path = _path_of(uri)
    if path is not None and path.name == CONFIG_FILE:
        await reload_workspace(ls)
        return
    if path is not None and ls.in_workspace(path) and path.suffix in PYTHON_SUFFIXES:
        try:
            await ls.run(ls.reload_file, path)
        except Exception:
            ls.log(f"fastsqla-lint: re-reading {path} failed:\n{traceback.format_exc()}", types.MessageType.Error)
    # What the saved file says is now final: every document linted against an older index catches up.
    relint_stale_documents(ls, also=uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
async def did_close(ls: FastsqlaLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    state = ls.docs.pop(uri, None)
    if state is None:
        return
    if state.task is not None:
        state.task.cancel()
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    if state.path is not None:
        await ls.run(ls.forget_buffer, state.path)
        relint_stale_documents(ls)


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
async def did_change_watched_files(ls: FastsqlaLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
    paths = [p for p in (_path_of(c.uri) for c in params.changes) if p is not None]
    if any(p.name == CONFIG_FILE for p in paths):
        await reload_workspace(ls)
        return
    for path in paths:
        if path.suffix in PYTHON_SUFFIXES and ls.in_workspace(path):
            try:
                await ls.run(ls.reload_file, path)
            except Exception:
                ls.log(f"fastsqla-lint: re-reading {path} failed:\n{traceback.format_exc()}", types.MessageType.Error)
    relint_stale_documents(ls)


async def reload_workspace(ls: FastsqlaLanguageServer) -> None:
    """The configuration changed: read it again, rebuild the index, re-lint what is open."""
    try:
        await ls.run(ls.load_workspace)
    except Exception:
        ls.log(f"fastsqla-lint: reloading the workspace failed:\n{traceback.format_exc()}", types.MessageType.Error)
    for state in ls.docs.values():
        state.display = ls.display_of(state.path)
        state.fix_all = None
        state.generation = -1
    relint_stale_documents(ls)


# -- code actions -------------------------------------------------------------------------------------
def _wanted(kind: str, only: Sequence[str] | None) -> bool:
    if only is None:
        return True
    return any(kind == o or kind.startswith(f"{o}.") for o in only)


def _workspace_edit(ls: FastsqlaLanguageServer, uri: str, version: int | None, edits: list[types.TextEdit]):
    if ls.supports("workspace.workspace_edit.document_changes"):
        ident = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=ident, edits=edits)])
    return types.WorkspaceEdit(changes={uri: edits})


def _data_of(state: DocState, version: int | None, diag: types.Diagnostic) -> dict | None:
    """The data the server attached to `diag`, if it belongs to the document's current version."""
    data = diag.data if isinstance(diag.data, dict) else None
    if data is None and state.version == version:  # a client that does not send data back
        for published in state.published:
            if published.code == diag.code and published.range == diag.range:
                data = published.data
                break
    if data is None or data.get("version") != version:
        return None
    return data


def _quick_fix(ls, uri: str, version: int | None, diag: types.Diagnostic, fix: dict) -> types.CodeAction:
    unsafe = fix.get("applicability") != Applicability.SAFE.label
    title = f"{diag.code}: {fix['title']}" + (" (unsafe fix)" if unsafe else "")
    edits = [types.TextEdit(range=_range_from_json(e["range"]), new_text=e["newText"]) for e in fix["edits"]]
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diag],
        is_preferred=not unsafe,
        edit=_workspace_edit(ls, uri, version, edits),
    )


def _noqa_action(ls, uri: str, version: int | None, text: str, diag: types.Diagnostic) -> types.CodeAction | None:
    code = str(diag.code)
    if code == engine.SYNTAX_CODE:
        return None
    noqa = parse_noqa(text)
    if ALL in noqa.file_codes or code in noqa.file_codes:
        return None
    target = noqa_line(text, diag.range.start.line + 1)
    positions = Positions(text, ls.codec)
    old = positions.line_text(target)
    new = add_noqa(old, code)
    if new == old:
        return None
    end = types.Position(line=target - 1, character=ls.codec.client_num_units(old))
    edit = types.TextEdit(range=types.Range(start=types.Position(line=target - 1, character=0), end=end), new_text=new)
    return types.CodeAction(
        title=f"Ignore {code} for this line",
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diag],
        edit=_workspace_edit(ls, uri, version, [edit]),
    )


def noqa_line(text: str, line: int) -> int:
    """The line (1-based) whose end can hold a noqa comment for a finding that starts on `line`.

    That is the line itself, unless it ends inside a string that goes on over more lines, or with a
    backslash continuation: then the first line after it where the code can take a comment.
    """
    import io
    import tokenize

    lines = text.splitlines()
    spans: list[tuple[int, int]] = []  # tokens that run over a line end (multi-line strings)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.end[0] > tok.start[0] and tok.type not in (tokenize.NL, tokenize.NEWLINE):
                spans.append((tok.start[0], tok.end[0]))
    except (tokenize.TokenError, SyntaxError):
        return line
    for _ in range(len(lines)):
        moved = max((end for start, end in spans if start <= line < end), default=line)
        if moved == line and line <= len(lines) and lines[line - 1].endswith("\\"):
            moved = line + 1
        if moved == line:
            break
        line = moved
    return line


async def _fix_all_edits(ls: FastsqlaLanguageServer, state: DocState, text: str, version: int | None):
    if state.fix_all is not None and state.fix_all[:2] == (version, ls.generation):
        return state.fix_all[2]
    generation = ls.generation
    fixed = await ls.run(ls.fix_buffer, state, text)
    positions = Positions(text, ls.codec)
    edits = [
        types.TextEdit(range=positions.range(e.start_pos, e.end_pos), new_text=e.content)
        for e in text_edits(text, fixed)
    ]
    state.fix_all = (version, generation, edits)
    return edits


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND], resolve_provider=False),
)
async def code_action(ls: FastsqlaLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    uri = params.text_document.uri
    state = ls.docs.get(uri)
    if state is None:
        return None
    doc = ls.workspace.get_text_document(uri)
    text, version = doc.source, doc.version
    only = params.context.only
    actions: list[types.CodeAction] = []
    if _wanted(types.CodeActionKind.QuickFix, only):
        ours = [d for d in params.context.diagnostics if d.source == SOURCE]
        fixes, ignores, seen = [], [], set()
        for diag in ours:
            data = _data_of(state, version, diag)
            if data is None:
                continue
            if data.get("fix"):
                fixes.append(_quick_fix(ls, uri, version, diag, data["fix"]))
            key = (diag.code, diag.range.start.line)
            if key not in seen:
                seen.add(key)
                action = _noqa_action(ls, uri, version, text, diag)
                if action is not None:
                    ignores.append(action)
        actions.extend(fixes)
        actions.extend(ignores)
    # "Fix all" runs the fix loop, so it is computed only when asked for by kind (on save, or the
    # editor's source-action menu), not for every cursor move.
    if only is not None and _wanted(FIX_ALL_KIND, only):
        try:
            edits = await _fix_all_edits(ls, state, text, version)
        except asyncio.CancelledError:
            raise
        except Exception:
            ls.log(f"fastsqla-lint: fixing {uri} failed:\n{traceback.format_exc()}", types.MessageType.Error)
            edits = []
        if edits:
            unsafe = ls.settings_of(state, make=False)[0].unsafe_fixes
            title = "fastsqla-lint: Fix all (unsafe fixes included)" if unsafe else "fastsqla-lint: Fix all safe fixes"
            edit = _workspace_edit(ls, uri, version, edits)
            actions.append(types.CodeAction(title=title, kind=FIX_ALL_KIND, edit=edit))
    return actions or None


def main() -> None:
    """`fastsqla-lint lsp`: serve over stdin/stdout until the client says exit."""
    logging.basicConfig(level=logging.WARNING, format="fastsqla-lint lsp: %(levelname)s %(message)s")
    server.start_io()
