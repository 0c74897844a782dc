"""The check pipeline (project.check_groups): the prefilter, one parse per file with recorded index queries,
the process pool and the cache never change a finding.

A generated monorepo (bench/make_corpus.py: services with planted pitfalls among ordinary modules) plus a
hand-written service whose findings depend on files that import no library (`TRICKY`) is linted several
ways, and the findings are compared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import loaded_by_cli, run_cli, write_files
from fastsqla_lint.discovery import Excluder, absolute, discover
from fastsqla_lint.project import ConfigTree, Planner, RunStats, check_groups

ROOT = Path(__file__).resolve().parent.parent

# A service whose findings need files that import neither SQLAlchemy nor FastAPI: a package re-exporting
# the session factory, a settings module holding the URL, a script and a dependency importing only the
# project, and a helper matched by attribute name alone (`exec_driver_sql`).
TRICKY = {
    "services/tricky/pyproject.toml": '[project]\nname = "tricky"\n',
    "services/tricky/app/__init__.py": '"""Re-exports."""\nfrom .database import SessionLocal  # noqa: F401\n',
    "services/tricky/app/settings.py": 'DATABASE_URL = "sqlite:///./tricky.db"\n',
    "services/tricky/app/database.py": (
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.orm import declarative_base, sessionmaker\n\n"
        "from . import settings\n\n"
        "engine = create_engine(settings.DATABASE_URL)\n"
        "SessionLocal = sessionmaker(bind=engine)\n"
        "Base = declarative_base()\n"
    ),
    "services/tricky/app/models.py": (
        "from sqlalchemy import Column, Integer\n\nfrom .database import Base\n\n\n"
        "class Item(Base):\n    __tablename__ = 'items'\n    id = Column(Integer, primary_key=True)\n"
    ),
    "services/tricky/app/deps.py": (
        "from app import SessionLocal\n\n\ndef get_db():\n    db = SessionLocal()\n    yield db\n    db.close()\n"
    ),
    "services/tricky/app/crud.py": (
        "from app import SessionLocal\n\ndb = SessionLocal()\n\n\ndef count():\n    return db.query(1).count()\n"
    ),
    "services/tricky/app/routes.py": (
        "from fastapi import APIRouter, Depends\n\nfrom . import crud\nfrom .deps import get_db\n\n"
        "router = APIRouter()\n\n\n@router.get('/items')\ndef items(db=Depends(get_db)):\n"
        "    return {'n': crud.count()}\n"
    ),
    "services/tricky/scripts/init_db.py": (
        "from app.database import Base, engine\n\n\ndef main():\n    Base.metadata.create_all(bind=engine)\n"
    ),
    "services/tricky/tools/raw.py": (
        "def run(conn, name):\n    return conn.exec_driver_sql(f'select * from {name}')\n"
    ),
    "services/tricky/app/broken.py": "from sqlalchemy import text\n\ndef broken(:\n    pass\n",
    "libs/broken_unrelated.py": "def broken(:\n    pass\n",
}
TRICKY_CODES = {"FSL001", "FSL002", "FSL004", "FSL005", "FSL014", "FSL900"}


def make_corpus(folder: Path, files: int, seed: int) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "make_corpus.py"), str(folder), "--files", str(files), "--seed", str(seed)],
        check=True,
        capture_output=True,
    )
    # each service is its own project (as in a monorepo), so `from app.database import ...` resolves
    write_files(folder, {"pyproject.toml": '[project]\nname = "corpus"\n\n[tool.fastsqla-lint]\n'})
    for service in (folder / "services").iterdir():
        write_files(service, {"pyproject.toml": f'[project]\nname = "{service.name}"\n'})
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = make_corpus(tmp_path_factory.mktemp("pipeline") / "corpus", files=240, seed=7)
    write_files(folder, TRICKY)
    return folder


def lint(folder: Path, *paths: str, jobs: int = 1, cache: Path | None = None, prefilter: bool = True,
         stats: RunStats | None = None) -> set[tuple]:
    """Every finding of a run, as (path, line, column, code, message)."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        tree = ConfigTree()
        excluder = Excluder(tree.for_folder)
        planner = Planner(tree)
        given = [Path(p) for p in (paths or (".",))]
        targets = discover(given, excluder, stop_for=lambda p: tree.project_root(p)[0])
        planner.walked = tuple(absolute(p) for p in given if p.is_dir())
        runs = check_groups(
            planner.groups(targets), planner, excluder, jobs=jobs, cache_root=cache, stats=stats,
            prefilter_files=prefilter,
        )
    finally:
        os.chdir(here)
    found = set()
    for run in runs:
        for result in run.results.values():
            assert not result.internal_errors, result.internal_errors
            found.update((d.path, d.start.line, d.start.column, d.code, d.message) for d in result.diagnostics)
    return found


def codes_in(found: set[tuple], prefix: str) -> set[str]:
    return {f[3] for f in found if f[0].startswith(prefix)}


@pytest.fixture(scope="module")
def unfiltered(corpus) -> set[tuple]:
    """The reference: every file parsed and linted, one process, no cache."""
    return lint(corpus, prefilter=False, jobs=2)


def test_reference_run_finds_the_planted_pitfalls(corpus, unfiltered):
    assert TRICKY_CODES <= codes_in(unfiltered, "services/tricky/") | codes_in(unfiltered, "libs/")
    planted = [line.split("\t") for line in (corpus / "EXPECTED.tsv").read_text().splitlines()[1:]]
    found_at = {(f[0], f[1]) for f in unfiltered}
    hits = sum((path, int(line)) in found_at for path, line, _ in planted)
    assert planted and hits >= 0.75 * len(planted)  # the corpus exercises the rules (recall is the bench's)


def test_prefilter_changes_no_finding(corpus, unfiltered):
    stats = RunStats()
    filtered = lint(corpus, stats=stats)
    assert stats.parse_set < stats.files / 2  # most files are not parsed at all
    # the only difference: an unparsable file that imports nothing the rules know is not parsed
    assert unfiltered - filtered == {f for f in unfiltered if f[0] == "libs/broken_unrelated.py"}
    assert {f[3] for f in unfiltered - filtered} == {"FSL900"}
    assert filtered <= unfiltered


def check_tree(folder: Path, **options) -> tuple[list, list]:
    """`check_groups` over the whole of `folder` (run from there): its runs, and the groups it was given."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        tree = ConfigTree()
        excluder = Excluder(tree.for_folder)
        planner = Planner(tree, walked=(absolute(Path(".")),))
        groups = planner.groups(discover([Path(".")], excluder, stop_for=lambda p: tree.project_root(p)[0]))
        return check_groups(groups, planner, excluder, **options), groups
    finally:
        os.chdir(here)


def test_a_check_keeps_the_states_of_its_parse_set_only(corpus, tmp_path):
    """Once the parse set is known (and the manifests saved), a run that lints forgets its skipped files:
    their states are not held while the rest is linted. What a saved check needs of them, every file's
    path, signature and hash, is kept when the run has a cache; an index-only run keeps every file."""
    runs_of = {}
    for lint_files, cache in ((True, tmp_path / "cache"), (True, None), (False, None)):
        stats = RunStats()
        runs, groups = check_tree(corpus, jobs=1, cache_root=cache, stats=stats, lint=lint_files)
        runs_of[lint_files, cache is not None] = runs
        assert all(not g.targets for g in groups)  # consumed
        kept = sorted(f.display for r in runs for f in r.files)
        if lint_files:
            assert kept == sorted(stats.parse_set_files) and len(kept) == stats.parse_set < stats.files
            assert all([f.pos for f in r.files] == list(range(len(r.files))) for r in runs)
        else:
            assert len(kept) == stats.files
    whole = [r.listing() for r in runs_of[False, False]]
    assert [r.listing() for r in runs_of[True, True]] == whole
    assert sum(len(p[0].split("\0")) for p in whole) == stats.files
    with pytest.raises(RuntimeError):  # dropped without a cache: no saved check can ask for it
        runs_of[True, False][0].listing()


def test_a_run_that_will_not_fix_leaves_the_summaries_in_its_workers(corpus, tmp_path, monkeypatch):
    """A project whose files all go into one chunk has its index built by that chunk's worker. A run
    whose caller will not fix files (`summaries=False`: the CLI without `--fix` or `--diff`) leaves
    those summaries there; the project's index, if asked for after all, is the same, its summaries found
    again (from the cache when there is one, else by parsing)."""
    import fastsqla_lint.project as project

    cache = tmp_path / "cache"
    kept, _ = check_tree(corpus, jobs=2, summaries=True)
    left, _ = check_tree(corpus, jobs=2, summaries=False)
    cached, _ = check_tree(corpus, jobs=2, summaries=False, cache_root=cache)
    assert [r.root for r in kept] == [r.root for r in left] == [r.root for r in cached]
    assert sum(r.whole_chunk for r in left) >= 3 and not all(r.whole_chunk for r in left)
    for a, b, c in zip(kept, left, cached):
        assert a.results.keys() == b.results.keys() == c.results.keys()
        assert [a.results[k].diagnostics for k in a.results] == [b.results[k].diagnostics for k in b.results]
        assert not a.summaries_missing
        if b.whole_chunk:
            assert b.summaries_missing and not any(f.summary for f in b.files)
            assert any(f.summary for f in a.files)
        else:
            assert not b.summaries_missing and [f.summary for f in b.files] == [f.summary for f in a.files]
        assert b.index().modules == a.index().modules  # found again by parsing
        with monkeypatch.context() as m:  # from the cache: nothing is parsed
            m.setattr(project, "load_file", lambda *a, **k: pytest.fail("parsed again"))
            assert c.index(cache).modules == a.index().modules


def test_standalone_needles_are_needed(corpus, monkeypatch):
    """Without FSL014's standalone needle the prefilter would drop its finding in `tools/raw.py`."""
    from fastsqla_lint.rules.interpolated_sql import InterpolatedSql

    monkeypatch.setattr(InterpolatedSql, "standalone_needles", ())
    found = lint(corpus, "services/tricky")
    assert "FSL014" not in codes_in(found, "services/tricky/tools/")


def test_processes_change_no_finding(corpus, unfiltered):
    one = lint(corpus, jobs=1)
    assert one == lint(corpus, jobs=3)
    assert one == {f for f in unfiltered if f[0] != "libs/broken_unrelated.py"}


def test_reading_files_in_the_pool_changes_no_finding(corpus, unfiltered, monkeypatch, tmp_path):
    """A run with many files to read reads, hashes and scans them in the pool (`project._survey`): the
    same findings, with and without a cache, and the cache it writes answers the next run."""
    import fastsqla_lint.project as project
    from fastsqla_lint import cache as cache_mod

    surveyed = []
    real = project._survey

    def spy(runs, unread, *args):
        surveyed.append(sum(map(len, unread)))  # each project's files to read
        return real(runs, unread, *args)

    monkeypatch.setattr(project, "SURVEY_MIN_FILES", 1)
    monkeypatch.setattr(cache_mod, "RACY_SECONDS", -60.0)  # every file counts as settled: nothing re-read
    monkeypatch.setattr(project, "_survey", spy)
    expected = {f for f in unfiltered if f[0] != "libs/broken_unrelated.py"}
    stats = RunStats()
    assert lint(corpus, jobs=2, stats=stats) == expected
    assert surveyed and sum(surveyed) == stats.files and stats.read == stats.files
    cache = tmp_path / "cache"
    assert lint(corpus, jobs=2, cache=cache) == expected
    stats = RunStats()
    assert lint(corpus, jobs=2, cache=cache, stats=stats) == expected
    assert stats.whole_run_hit and stats.read == 0 and len(surveyed) == 2


def start_methods(monkeypatch) -> list[str]:
    """The start method of every pool the runs make from now on (filled as they make them)."""
    import fastsqla_lint.project as project

    methods: list[str] = []
    real = project._pool_context

    def spy(*args):
        ctx = real(*args)
        methods.append(ctx.get_start_method())
        return ctx

    monkeypatch.setattr(project, "_pool_context", spy)
    return methods


def test_pools_started_by_a_process_with_threads_change_no_finding(corpus, unfiltered, monkeypatch):
    """A process running other threads (the language server) starts its workers from a fork server, not
    by forking itself: same findings, the survey and the chunks both in the pool."""
    import threading

    import fastsqla_lint.project as project

    real = project._pool_context
    methods = start_methods(monkeypatch)
    monkeypatch.setattr(project, "SURVEY_MIN_FILES", 1)
    monkeypatch.setattr(project, "FORK_SERVER_MIN_FILES", 10**9)  # as a run over few files
    out: dict = {}
    worker = threading.Thread(target=lambda: out.setdefault("found", lint(corpus, jobs=2)))
    worker.start()
    worker.join()
    assert out["found"] == {f for f in unfiltered if f[0] != "libs/broken_unrelated.py"}
    assert methods == ["forkserver", "forkserver"]
    assert real().get_start_method() == "fork"  # this thread alone: the run's state is shared by forking


def test_the_language_server_indexes_the_workspace_like_check(corpus, unfiltered):
    """The server's workspace index: the same projects (each service its own), the same parse set, and
    for every file the diagnostics `check` reports when it parses every file."""
    from fastsqla_lint.lsp import DocState, FastsqlaLanguageServer

    stats = RunStats()
    lint(corpus, stats=stats)
    ls = FastsqlaLanguageServer()
    ls.root = corpus
    ls.load_workspace()
    assert ls.projects == {}  # a project is indexed when one of its documents is first linted
    found = set()
    for path in sorted(corpus.rglob("*.py")):
        rel = path.relative_to(corpus).as_posix()
        state = DocState(uri=path.as_uri(), path=path, display=rel)
        result = ls.lint_buffer(state, path.read_text(encoding="utf-8"))
        assert not result.internal_errors
        found.update((d.path, d.start.line, d.start.column, d.code, d.message) for d in result.diagnostics)
    assert found == unfiltered
    assert len(ls.projects) == len({p.parent for p in corpus.glob("services/*/pyproject.toml")}) + 1
    summarised = {f.display for proj in ls.projects.values() for f in proj.files.values() if f.summary is not None}
    assert summarised == set(stats.parse_set_files) - {"libs/broken_unrelated.py", "services/tricky/app/broken.py"}


def test_a_run_over_many_files_starts_its_workers_from_a_fork_server(corpus, unfiltered, monkeypatch, tmp_path):
    """A run requesting many files starts a fork server at once (its workers then hold none of the run's
    per-file state), and every pool of the run starts from it: the survey, the chunks and the lints done
    again against the final index. The same findings."""
    import fastsqla_lint.project as project

    real = project._pool_context
    methods = start_methods(monkeypatch)
    monkeypatch.setattr(project, "_main_runs_again", lambda: False)  # pytest's own script guards its work
    monkeypatch.setattr(project, "SURVEY_MIN_FILES", 1)
    monkeypatch.setattr(project, "FORK_SERVER_MIN_FILES", 1)
    monkeypatch.setattr(project, "CHUNK_BYTES", 1)  # a chunk per file: provisional lints, some done again
    stats = RunStats()
    assert lint(corpus, jobs=2, stats=stats) == {f for f in unfiltered if f[0] != "libs/broken_unrelated.py"}
    assert stats.relinted > 0
    assert methods == ["forkserver"] * 3
    assert real().get_start_method() == "fork"  # a run over fewer files forks its workers from its own process
    # a run the cache may answer (it holds every project's manifest) does not start one
    started = []
    real_start = project._start_fork_server
    monkeypatch.setattr(project, "_start_fork_server", lambda: started.append(True) or real_start())
    for _ in range(2):
        lint(corpus, jobs=2, cache=tmp_path / "cache")
    assert started == [True]


def test_the_fork_server_is_not_used_where_workers_would_run_the_main_module_again(monkeypatch):
    """A worker started from a fork server imports the main module again: only safe for `python -m` of a
    package, `python -c`, an interactive session and the `fastsqla-lint` script."""
    import types

    import fastsqla_lint.project as project
    from fastsqla_lint.cli import console

    def main_module(spec_name=None, file=None, **names):
        module = types.ModuleType("__main__")
        module.__spec__ = types.SimpleNamespace(name=spec_name) if spec_name else None
        if file is not None:
            module.__file__ = file
        module.__dict__.update(names)
        return module

    for module, again in (
        (main_module("fastsqla_lint.__main__", "/x/fastsqla_lint/__main__.py"), False),  # python -m fastsqla_lint
        (main_module("tool", "/x/tool.py"), True),  # python -m tool: a plain module
        (main_module(), False),  # python -c
        (main_module(file="/venv/bin/fastsqla-lint", console=console), False),  # the script pip made
        (main_module(file="/home/me/lint_all.py"), True),  # a script of the user's
    ):
        monkeypatch.setitem(sys.modules, "__main__", module)
        assert project._main_runs_again() is again


def test_a_script_without_a_main_guard_runs_a_big_check(corpus, tmp_path):
    """A script calling the linter at its top level (no `if __name__ == "__main__":`) would be run again in
    every worker started from a fork server, which would then never start: its workers fork from it."""
    script = tmp_path / "lint_all.py"
    script.write_text(
        "import sys\n"
        "from fastsqla_lint import project\n"
        "from fastsqla_lint.cli import main\n"
        "project.SURVEY_MIN_FILES = project.FORK_SERVER_MIN_FILES = 1\n"
        "main(['check', '--no-cache', '--output-format', 'concise', '--jobs', '2'])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ran = subprocess.run([sys.executable, str(script)], cwd=corpus, capture_output=True, text=True, env=env,
                         timeout=120)  # it never ends if its workers run it again
    expected = run_cli("check", "--no-cache", "--output-format", "concise", "--jobs", "2", cwd=corpus)
    assert (ran.returncode, ran.stdout) == (1, expected.stdout) and "Traceback" not in ran.stderr


def test_provisional_lints_are_checked_against_the_final_index(tmp_path):
    """Files linted before the files that change their answers (one file per chunk) come out right."""
    import fastsqla_lint.project as project
    import fastsqla_lint.recording as recording

    folder = write_files(tmp_path, {k: v for k, v in TRICKY.items() if k.startswith("services/tricky/")})
    recorders = []

    class Counting(recording.RecordingIndex):
        def __init__(self, *args, **kwargs):
            recorders.append(self)
            super().__init__(*args, **kwargs)

    recording.RecordingIndex, original_recorder = Counting, recording.RecordingIndex
    try:
        whole = RunStats()
        expected = lint(folder / "services" / "tricky", jobs=1, stats=whole)
        # one chunk holds the whole project: linted against the project's own index, nothing replayed,
        # and with no cache to write, no query recorded
        assert whole.parsed > 1 and whole.replayed == 0 and whole.relinted == 0
        assert recorders == []
        stats = RunStats()
        original = project.CHUNK_BYTES
        project.CHUNK_BYTES = 1
        try:
            assert lint(folder / "services" / "tricky", jobs=1, stats=stats) == expected
        finally:
            project.CHUNK_BYTES = original
        # every lint was recorded and replayed, and the dependency learnt from routes.py made deps.py be
        # linted again
        assert len(recorders) == stats.parsed - stats.relinted
        assert stats.replayed == stats.parsed - stats.relinted and stats.relinted > 0
        recorders.clear()
        assert lint(folder / "services" / "tricky", jobs=1, cache=tmp_path / "cache") == expected
        assert len(recorders) == whole.parsed  # a cache entry holds the queries
    finally:
        recording.RecordingIndex = original_recorder


def test_deferred_fixes_match_materialized_ones():
    """`lint_parsed(edits=False)` reports the same fixes (applicability and title) without their edits."""
    from fastsqla_lint import engine
    from fastsqla_lint.config import DEFAULT

    text = (
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.orm import sessionmaker\n"
        "engine = create_engine('sqlite:///./app.db')\n"
        "SessionLocal = sessionmaker(bind=engine)\n"
        "db = SessionLocal()\n"
    )
    parsed = engine.parse(text, "m.py", "m", False)
    full = engine.lint_parsed(parsed, DEFAULT).diagnostics
    deferred = engine.lint_parsed(engine.parse(text, "m.py", "m", False), DEFAULT, edits=False).diagnostics
    assert [d.fix is not None for d in full] == [d.fix is not None for d in deferred] and any(d.fix for d in full)
    for a, b in zip(full, deferred):
        assert (a.code, a.start, a.message) == (b.code, b.start, b.message)
        if a.fix is not None:
            assert a.fix.edits and b.fix.edits is None
            assert (a.fix.applicability, a.fix.title) == (b.fix.applicability, b.fix.title)


REMOVED_IMPORTS = {
    "pyproject.toml": '[project]\nname = "p"\n',
    "app/__init__.py": "",
    "app/database.py": (
        "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import sessionmaker\n\n"
        'engine = create_engine("postgresql://localhost/app")\nSessionLocal = sessionmaker(bind=engine)\n\n\n'
        "def get_db():\n    db = SessionLocal()\n    try:\n        yield db\n    finally:\n        db.close()\n"
    ),
    # the shared session's factory import goes: decided by the import block alone
    "app/routes.py": (
        '"""Routes."""\nfrom fastapi import APIRouter\nfrom app.database import SessionLocal\n\n'
        "router = APIRouter()\ndb = SessionLocal()\n\n\n"
        '@router.get("/items")\ndef list_items():\n    return db.execute("select 1").all()\n'
    ),
    # an alias, named again only in the comment of the statement the fix removes
    "app/alias.py": (
        "from fastapi import APIRouter\nfrom app.database import SessionLocal as Maker\n\n"
        "router = APIRouter()\ndb = Maker()  # Maker\n\n\n"
        '@router.get("/items")\ndef list_items():\n    return db.execute("select 1").all()\n'
    ),
    # still used further down: the whole module decides, and keeps it
    "app/kept.py": (
        "from fastapi import APIRouter\nfrom app.database import SessionLocal, engine\n\n"
        "router = APIRouter()\ndb = SessionLocal()\n\n\n"
        '@router.get("/items")\ndef list_items():\n    return db.execute("select 1").all()\n\n\n'
        "def script():\n    with SessionLocal() as s:\n        return s\n"
    ),
}


def test_statement_local_fix_edits_make_the_whole_module_transform_text(corpus, tmp_path):
    """A fix's edits come from the statements it touches and the leading import block when that is provably
    the same (`fixes._local_edits`): the fixed text must be the whole-module transform's, for the
    imports it adds and the imports it removes, on every fixture and the generated corpus."""
    from fastsqla_lint import engine, fixes
    from fastsqla_lint.config import DEFAULT

    def fixed(text: str, edits) -> str:
        for e in sorted(edits or (), key=lambda e: e.start, reverse=True):
            text = text[: e.start] + e.content + text[e.end :]
        return text

    seen = {"add": 0, "remove": 0, "local remove": 0}
    real_local, real_materialize = fixes._local_edits, engine.materialize

    def local(module, request, index, locator, text):
        found = real_local(module, request, index, locator, text)
        if request.remove_imports and found is not None:
            seen["local remove"] += 1
        return found

    def both(module, request, title, index, locator=None, text=None):
        made = real_materialize(module, request, title, index, locator, text)
        whole = real_materialize(module, request, title, index)
        source = text if text is not None else module.code
        assert fixed(source, made and made.edits) == fixed(source, whole and whole.edits)
        assert made is None or list(made.edits) == sorted(made.edits, key=lambda e: (e.start, e.end))
        seen["add"] += bool(request.add_imports)
        seen["remove"] += bool(request.remove_imports)
        return made

    fixes._local_edits, engine.materialize = local, both
    try:
        for path in sorted((Path(__file__).parent / "fixtures").glob("FSL0*/**/*.py")):
            parsed = engine.parse(path.read_text(encoding="utf-8"), str(path), "app.routes", False)
            engine.lint_parsed(parsed, DEFAULT)
        # in this process, with each project's index (fixes that move a session into a dependency)
        lint(corpus, jobs=1)
        found = lint(write_files(tmp_path / "p", REMOVED_IMPORTS), jobs=1)
    finally:
        fixes._local_edits, engine.materialize = real_local, real_materialize
    assert {(f[0], f[3]) for f in found} >= {(f"app/{n}.py", "FSL001") for n in ("routes", "alias", "kept")}
    assert seen["add"] > 5 and seen["remove"] >= 4 and seen["local remove"] >= 3, seen


def test_an_import_still_named_after_the_block_is_removed_by_the_whole_module():
    """`fixes._named_after`: any later occurrence of a removed import's name (code, comment or string)
    sends the fix to the whole-module transform; none lets the import block decide alone."""
    from fastsqla_lint.fixes import _named_after

    text = "from app.db import SessionLocal, engine\nimport os.path\n\nx = 1\n"
    start = text.index("x = 1")
    specs = [("app.db", "SessionLocal", None)]
    assert not _named_after(text, start, [], specs)
    assert _named_after(text + "# SessionLocal\n", start, [], specs)
    assert not _named_after(text + "y = SessionLocalMaker\n", start, [], specs)
    assert _named_after(text + "y = app.SessionLocal\n", start, [], specs)
    # the fixed text counts: a replaced statement's new text, not its old one
    old = text + "db = SessionLocal()\n"
    at = old.index("db = ")
    assert _named_after(old, start, [], specs)
    assert not _named_after(old, start, [(at, len(old), "db = None\n")], specs)
    assert _named_after(text, start, [(start, start + 5, "x = SessionLocal")], specs)
    # `import os.path` binds `os`; an alias binds the alias only
    assert _named_after(text + "os.getcwd()\n", start, [], [("os.path", None, None)])
    assert not _named_after(text + "SessionLocal()\n", start, [], [("app.db", "SessionLocal", "Maker")])


def test_a_run_that_shows_no_edits_never_loads_the_codemods(tmp_path):
    """concise output computes no fix edits, so LibCST's codemods and matchers (a large import) stay
    unloaded; json output computes the edits."""
    project = write_files(tmp_path / "p", {"pyproject.toml": '[project]\nname = "p"\n', **{
        k.split("/", 2)[2]: v for k, v in TRICKY.items() if "tricky" in k and k.endswith(".py")}})
    runs = {fmt: loaded_by_cli("check", "--no-cache", "--jobs", "1", "--output-format", fmt, cwd=project,
                               prefixes=("libcst.matchers", "libcst.codemod")) for fmt in ("concise", "json")}
    assert "[*]" in runs["concise"][0] and '"edits"' in runs["json"][0]
    assert runs["concise"][1] == []


def test_a_lint_leaves_no_tree_behind():
    """The collector is paused while files are parsed and linted (`engine.collector_paused`): a tree must
    then be freed by reference counting as soon as the file is done with, never held by cyclic garbage
    until a full collection, nor by a rule helper's cache (`rule.lint_cache`) into the next lints."""
    import gc

    import libcst as cst

    from fastsqla_lint import engine
    from fastsqla_lint.config import DEFAULT

    fixtures = sorted((Path(__file__).parent / "fixtures").glob("FSL0*/before*.py"))
    assert len(fixtures) > 10

    def trees() -> list:
        return [o for o in gc.get_objects() if isinstance(o, cst.Module)]

    gc.collect()
    earlier = trees()  # held by other tests: kept alive here, so their ids cannot be reused
    known = {id(m) for m in earlier}
    try:
        with engine.collector_paused():
            for path in fixtures:
                parsed = engine.parse(path.read_text(encoding="utf-8"), str(path), "app.routes", False)
                engine.summary_of(parsed)
                engine.lint_parsed(parsed, DEFAULT)
                engine.lint_parsed(parsed, DEFAULT, edits=False)
            del parsed
            left = [m for m in trees() if id(m) not in known]  # reachable or not: nothing was collected
            count = len(left)
            del left
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
        held = [o for o in gc.garbage if isinstance(o, cst.Module)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert count == 0
    assert held == []
    assert gc.isenabled()


def test_the_run_state_is_frozen_only_while_chunks_are_worked_on(corpus, unfiltered, monkeypatch):
    """What a run holds before its chunks are parsed is exempt from the cyclic collector meanwhile
    (`engine.long_lived_frozen`), and nothing stays frozen after: a freeze made earlier by someone else
    is left as it was."""
    import gc

    from fastsqla_lint import engine, project

    counts = []
    real = project._execute_tasks

    def spy(*args, **kwargs):
        counts.append(gc.get_freeze_count())
        return real(*args, **kwargs)

    monkeypatch.setattr(project, "_execute_tasks", spy)
    start = gc.get_freeze_count()  # 0, or what the interpreter froze itself (Python 3.12)
    assert start <= engine._FROZEN_AT_START
    for jobs in (1, 2):
        assert lint(corpus, jobs=jobs) == {f for f in unfiltered if f[0] != "libs/broken_unrelated.py"}
    assert counts and all(n > 1000 for n in counts)
    assert gc.get_freeze_count() <= start

    held = [[] for _ in range(3)]  # tracked by the collector, so frozen below
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with engine.long_lived_frozen():
            assert gc.get_freeze_count() >= before
        assert gc.get_freeze_count() >= before > 0
    finally:
        gc.unfreeze()
    del held


def test_the_unvalidated_parse_builds_the_same_trees_and_leaves_validation_on():
    """`engine.parse` skips LibCST's per-node validation while the parser builds a tree: the trees must
    equal a plain `parse_module`'s, and nodes built afterwards (by fixes) are validated again."""
    import inspect
    import threading

    import libcst as cst

    from fastsqla_lint import engine
    from fastsqla_lint.walk import children

    fixtures = sorted((Path(__file__).parent / "fixtures").glob("FSL*/*.py"))
    assert len(fixtures) > 20
    built: set[type] = set()
    for path in fixtures:
        text = path.read_text(encoding="utf-8")
        parsed = engine.parse(text, str(path))
        if parsed.module is None:
            continue
        assert parsed.module.deep_equals(cst.parse_module(text)), path
        assert parsed.module.code == text
        todo = [parsed.module]
        while todo:
            node = todo.pop()
            built.add(type(node))
            todo.extend(children(node))
    # every node class the parser built has the faster `__init__`, which keeps the dataclass's parameters
    assert len(built) > 60
    for cls in built:
        init = cls.__init__
        assert init.__code__.co_name.startswith("_init"), cls  # not the dataclass's `__init__`
        own = inspect.signature(init, follow_wrapped=False).parameters.values()
        dataclass_own = inspect.signature(init.__wrapped__).parameters.values()
        assert [(p.name, p.kind) for p in own] == [(p.name, p.kind) for p in dataclass_own], cls
        assert [p.default for p in own] == [q.default for q in dataclass_own], cls  # the very same objects
    assert cst.Call(cst.Name("f")).args == ()  # a plain default
    assert cst.Comma().whitespace_after.deep_equals(cst.SimpleWhitespace(""))  # a default factory's
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not a name")
    with pytest.raises(cst.CSTValidationError):
        cst.Call(func=cst.Name("f"), lpar=[cst.LeftParen()])  # a parenthesis without its closing one
    # a parse on another thread does not turn validation off here
    paused, resume = threading.Event(), threading.Event()

    def parsing() -> None:
        engine._building.checked = False
        paused.set()
        resume.wait(5)

    other = threading.Thread(target=parsing)
    other.start()
    try:
        assert paused.wait(5)
        with pytest.raises(cst.CSTValidationError):
            cst.Name("not a name")
    finally:
        resume.set()
        other.join()


def test_a_chunk_of_files_shares_one_parser_thread():
    """The parses of one chunk run on the thread `on_parser_stack` started, not on one thread each."""
    import threading

    from fastsqla_lint import engine

    seen = []
    real = engine._parse_unvalidated

    def spy(text):
        seen.append(threading.current_thread())
        return real(text)

    def many():
        return [engine.parse(f"x = {i}\n", f"m{i}.py").module is not None for i in range(3)]

    engine._parse_unvalidated = spy
    try:
        assert engine.on_parser_stack(many) == [True, True, True]
        engine.parse("y = 1\n", "lone.py")
    finally:
        engine._parse_unvalidated = real
    assert seen[0] is not threading.current_thread()
    assert seen[0] is seen[1] is seen[2]
    assert seen[3] is not seen[0]
