"""The cache (.fastsqla-lint-cache): findings are the same with and without it, after any change, and when
its entries are damaged; a run with nothing changed imports neither LibCST nor the rules."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import loaded_by_cli, run_cli, write_files
from fastsqla_lint import cache as cache_mod
from fastsqla_lint.project import RunStats
from test_pipeline import TRICKY, lint, make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = make_corpus(tmp_path_factory.mktemp("cache") / "corpus", files=120, seed=11)
    write_files(folder, TRICKY)
    return folder


def tricky(folder: Path) -> Path:
    """The hand-written service of test_pipeline on its own, as a project."""
    return write_files(folder, {k.split("/", 2)[2]: v for k, v in TRICKY.items() if "tricky" in k})


@pytest.fixture(scope="module")
def reference(corpus) -> set[tuple]:
    return lint(corpus, jobs=2)


def entries(cache: Path, kind: str) -> list[Path]:
    return [p for p in cache.glob(f"*/{kind}/*/*") if p.is_file()]


def test_cache_changes_no_finding(corpus, reference, tmp_path, monkeypatch):
    # every file counts as settled, however soon after the corpus was written the runs come
    monkeypatch.setattr(cache_mod, "RACY_SECONDS", -60.0)
    cache = tmp_path / "cache"
    cold = RunStats()
    assert lint(corpus, cache=cache, jobs=2, stats=cold) == reference
    assert not cold.whole_run_hit and cold.parsed == cold.parse_set
    warm = RunStats()
    assert lint(corpus, cache=cache, stats=warm) == reference
    assert warm.whole_run_hit and warm.read == 0 and warm.parsed == 0
    for entry in entries(cache, "runs"):  # without the run entry: every file's own entry
        entry.unlink()
    per_file = RunStats()
    assert lint(corpus, cache=cache, stats=per_file) == reference
    assert not per_file.whole_run_hit and per_file.parsed == 0 and per_file.entries_hit == per_file.parse_set


def test_a_change_rechecks_the_files_whose_answers_changed(tmp_path):
    project = tricky(tmp_path / "p")
    cache = tmp_path / "cache"
    before = lint(project, cache=cache)
    assert ("app/deps.py", 4, 4, "FSL002") in {f[:4] for f in before}
    # routes.py stops using get_db: get_db is no longer a dependency, so deps.py has nothing to report
    routes = project / "app" / "routes.py"
    routes.write_text(routes.read_text().replace("db=Depends(get_db)", "db=None"))
    stats = RunStats()
    after = lint(project, cache=cache, stats=stats)
    assert after == lint(project)  # what a run without the cache says
    assert "FSL002" not in {f[3] for f in after}
    assert stats.entries_hit > 0 and stats.relinted >= 1
    assert stats.parsed == 1 + stats.relinted < stats.parse_set  # routes.py, then the files it concerns


def test_pre_commit_shape(corpus, reference, tmp_path):
    """A warm cache, five changed files named on the command line: the findings of a full run for them."""
    cache = tmp_path / "cache"
    lint(corpus, cache=cache, jobs=2)
    broken = {f[0] for f in reference if f[3] == "FSL900"}  # a trailing line moves a syntax error
    changed = sorted({f[0] for f in reference if f[0].startswith("services/")} - broken)[:5]
    assert len(changed) == 5
    for name in changed:
        with open(corpus / name, "a") as fh:
            fh.write("# touched\n")
    try:
        stats = RunStats()
        found = lint(corpus, *changed, cache=cache, stats=stats)
        assert found == {f for f in reference if f[0] in changed}  # a trailing comment moves nothing
        assert found and stats.parsed <= len(changed) + stats.relinted and stats.entries_hit > 0
    finally:
        for name in changed:
            path = corpus / name
            path.write_text(path.read_text().removesuffix("# touched\n"))


def test_damaged_entries_are_misses(tmp_path):
    project = tricky(tmp_path / "p")
    cache = tmp_path / "cache"
    reference = lint(project, cache=cache)
    damaged = [p for p in cache.rglob("*") if p.is_file() and p.parent != cache]
    assert len(damaged) > 10
    for i, path in enumerate(damaged):
        path.write_bytes(b"" if i % 2 else b"\x80\x05garbage")
    stats = RunStats()
    assert lint(project, cache=cache, stats=stats) == reference
    assert stats.entries_hit == 0 and stats.parsed == stats.parse_set


def test_an_entry_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    c = cache_mod.Cache(tmp_path / "cache", stamp="x")
    c.store("files", "ab" * 16, {"summary": None})
    path = next((tmp_path / "cache").rglob("abab*"))
    path.write_bytes(pickle.dumps(Payload()))
    assert c.load("files", "ab" * 16) is None
    assert not marker.exists()


def test_a_value_that_cannot_be_pickled_leaves_no_file(tmp_path):
    """The pickle is written as it is made: one that fails halfway leaves neither an entry nor a
    temporary file, and the cache still takes the next entry."""
    c = cache_mod.Cache(tmp_path / "cache", stamp="x")
    c.store("files", "ab" * 16, {"summary": None, "rows": [1, 2, 3], "bad": lambda: None})
    assert c.load("files", "ab" * 16) is None
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.parent.name != "cache"]
    c.store("files", "cd" * 16, {"summary": None})
    assert c.writable and c.load("files", "cd" * 16) == {"summary": None}


def test_the_manifest_is_saved_before_the_chunks_run(tmp_path, monkeypatch):
    """Each project's manifest (a row per file) is written once the parse set is known, not while the
    chunks' results are held: a run stopped in its chunks has written it, and the next run reads no file
    whose signature it vouches for."""
    from fastsqla_lint import project as proj

    monkeypatch.setattr(cache_mod, "RACY_SECONDS", -60.0)
    project = tricky(tmp_path / "p")
    cache = tmp_path / "cache"

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(proj, "_execute", stopped)
        with pytest.raises(KeyboardInterrupt):
            lint(project, cache=cache)
    assert len(entries(cache, "stats")) == 1 and not entries(cache, "files") and not entries(cache, "runs")
    stats = RunStats()
    assert lint(project, cache=cache, stats=stats) == lint(project)
    assert stats.read == 0 and stats.parsed == stats.parse_set > 0


def test_a_chunks_entries_are_one_file_linked_under_each_key(tmp_path, monkeypatch):
    """`Cache.store_many`: one file for the chunk, a hard link per key, read once per run; replaced keys
    read their new entry; where links cannot be made, each entry is stored alone."""
    c = cache_mod.Cache(tmp_path / "cache", stamp="x")
    values = {f"{i:02x}" * 16: {"summary": None, "payload": ((), ()), "n": i} for i in range(5)}
    c.store_many("files", values)
    paths = [c._path("files", k) for k in values]
    assert len({os.stat(p).st_ino for p in paths}) == 1 and os.stat(paths[0]).st_nlink == 5
    assert not [p for p in (tmp_path / "cache").rglob(".tmp-*")]  # no temporary name left behind

    reads = []
    real_loads = cache_mod.loads
    monkeypatch.setattr(cache_mod, "loads", lambda data: reads.append(1) or real_loads(data))
    reader = cache_mod.Cache(tmp_path / "cache", stamp="x")
    assert [reader.load("files", k) for k in values] == list(values.values())
    assert len(reads) == 1
    assert reader.load("files", "ff" * 16) is None

    first = next(iter(values))
    c.store("files", first, {"summary": None, "payload": None, "n": "new"})
    assert reader.load("files", first)["n"] == "new"  # a new file, not the one read before
    assert reader.load("files", list(values)[1])["n"] == 1

    def no_links(*args):
        raise OSError("links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    alone = {f"a{i}" * 16: {"summary": None, "n": i} for i in range(3)}
    c.store_many("files", alone)
    assert len({os.stat(c._path("files", k)).st_ino for k in alone}) == 3
    assert [cache_mod.Cache(tmp_path / "cache", stamp="x").load("files", k) for k in alone] == list(alone.values())


def test_cache_folder_ignores_itself(tmp_path):
    project = write_files(tmp_path, {"pyproject.toml": '[project]\nname = "p"\n', **{
        k.split("/", 2)[2]: v for k, v in TRICKY.items() if "tricky" in k and k.endswith(".py")}})
    assert run_cli("check", cwd=project).returncode == 1
    folder = project / ".fastsqla-lint-cache"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    other = write_files(tmp_path / "other", {"pyproject.toml": "", "a.py": "import sqlalchemy\n"})
    assert run_cli("check", "--no-cache", cwd=other).returncode == 0
    assert not (other / ".fastsqla-lint-cache").exists()


def test_warm_run_imports_neither_libcst_nor_the_rules(tmp_path):
    project = write_files(tmp_path, {"pyproject.toml": '[project]\nname = "p"\n', **{
        k.split("/", 2)[2]: v for k, v in TRICKY.items() if "tricky" in k and k.endswith(".py")}})
    prefixes = ("libcst", "fastsqla_lint.rules")
    cold, cold_loaded = loaded_by_cli("check", "--output-format", "concise", cwd=project, prefixes=prefixes)
    warm, warm_loaded = loaded_by_cli("check", "--output-format", "concise", cwd=project, prefixes=prefixes)
    assert "FSL002" in cold and "libcst" in cold_loaded
    assert warm == cold
    assert warm_loaded == []


def test_concurrent_runs_share_a_cache(tmp_path):
    project = tricky(tmp_path / "p")
    cache = tmp_path / "cache"
    args = [sys.executable, "-m", "fastsqla_lint", "check", "--output-format", "concise", "--cache-dir", str(cache)]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    procs = [subprocess.Popen(args, cwd=project, stdout=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outputs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 1 for p in procs)
    expected = run_cli(*args[3:-2], "--no-cache", cwd=project).stdout
    assert outputs == [expected] * 4 and run_cli(*args[3:], cwd=project).stdout == expected
    assert len(expected.splitlines()) == len(lint(project)) + 2  # the findings, "Found ...", "[*] ..."


def test_a_saved_check_notices_every_change(tmp_path):
    """The same command with nothing changed is answered from its saved findings; a new file, an ignore
    file or a setting changed since makes it run again, with the findings of a run without the cache."""
    project = tricky(tmp_path / "p")
    write_files(project, {"pyproject.toml": '[project]\nname = "p"\n', "app/plain.py": "x = 1\n"})

    def both() -> tuple[str, str]:
        cached = run_cli("check", "--output-format", "concise", cwd=project).stdout
        return cached, run_cli("check", "--no-cache", "--output-format", "concise", cwd=project).stdout

    def settle() -> None:
        """A settings file changed less than RACY_SECONDS before a check was saved makes it untrusted: each
        change below would then be noticed whatever the saved check holds."""
        time.sleep(cache_mod.RACY_SECONDS + 0.2)

    settle()
    first, fresh = both()
    assert first == fresh and "app/deps.py" in first
    assert both() == (fresh, fresh)
    answered = run_cli("check", "--output-format", "concise", "--stats", cwd=project)
    assert answered.stdout == fresh and '"files"' not in answered.stderr  # the saved check answered: no run
    write_files(project, {"app/plain.py": "x = 2\n"})  # a skipped file's content, in an unchanged folder listing
    ran = run_cli("check", "--output-format", "concise", "--stats", cwd=project)
    assert ran.stdout == fresh and '"files"' in ran.stderr
    write_files(project, {"app/extra.py": 'from sqlalchemy import create_engine\ne = create_engine("sqlite://")\n'})
    cached, fresh = both()
    assert cached == fresh and "app/extra.py" in cached
    # a file the prefilter skipped, now holding a finding (in a folder whose listing is unchanged)
    write_files(project, {"app/plain.py": 'from sqlalchemy import create_engine\ne = create_engine("sqlite://")\n'})
    cached, fresh = both()
    assert cached == fresh and "app/plain.py" in cached
    write_files(project, {".gitignore": "app/deps.py\n"})
    settle()
    cached, fresh = both()
    assert cached == fresh and "app/deps.py" not in cached
    write_files(project, {"pyproject.toml": '[project]\nname = "p"\n\n[tool.fastsqla-lint]\nignore = ["FSL005"]\n'})
    cached, fresh = both()
    assert cached == fresh and "FSL005" not in cached and "FSL001" in cached


def test_files_dated_past_2262_are_checked_and_cached(tmp_path):
    """A stat signature holds any timestamp: nanoseconds since 1970 pass 64 bits in 2262, and a file can
    carry such a date (a bad clock, an archive). The cache then works as for any other file."""
    project = tricky(tmp_path / "p")
    write_files(project, {"pyproject.toml": '[project]\nname = "p"\n'})
    far = 2**63 + 10**18  # 2294
    for path in project.rglob("*.py"):
        try:
            os.utime(path, ns=(far, far))
        except (OSError, OverflowError, ValueError):
            pytest.skip("this file system or platform cannot date a file past 2262")
    if os.stat(next(project.rglob("*.py"))).st_mtime_ns < 2**63:
        pytest.skip("this file system clamps dates before 2262")
    fresh = run_cli("check", "--no-cache", "--output-format", "concise", cwd=project)
    assert fresh.returncode == 1 and "FSL002" in fresh.stdout
    for _ in range(2):  # writes the cache, then is answered from it
        cached = run_cli("check", "--output-format", "concise", cwd=project)
        assert (cached.returncode, cached.stdout, cached.stderr) == (1, fresh.stdout, "")


def test_packed_file_listings_round_trip():
    rows = [("/a b/x.py", b"1:2:3:4", "00ff"), ("/a b/\u00e9\n.py", b"5:6:7:8", "ff00")]
    packed = [cache_mod.pack_files(*map(list, zip(*rows[:1]))), cache_mod.pack_files([], [], []),
              cache_mod.pack_files(*map(list, zip(*rows[1:])))]
    assert list(cache_mod.unpack_files(cache_mod.join_packs(packed))) == rows
    assert list(cache_mod.unpack_files(cache_mod.join_packs([cache_mod.pack_files([], [], [])]))) == []


def test_snapshots_see_listings_settings_and_contents(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_mod, "RACY_SECONDS", -60.0)  # every file counts as settled
    root = write_files(tmp_path / "p", {"pyproject.toml": "", "app/a.py": "x = 1\n", "app/notes.txt": ""})
    files = cache_mod.pack_files([str(root / "app/a.py")], [cache_mod.stat_signature(os.stat(root / "app/a.py"))],
                                 [cache_mod.content_hash(b"x = 1\n")])

    def snap() -> dict:
        return cache_mod.take_snapshot([str(root), str(root / "app")], [str(tmp_path)], [], files)

    assert cache_mod.snapshot_holds(snap())
    taken = snap()
    (root / "app" / "other.txt").write_text("not Python")  # discovery does not see it
    (root / "app" / "__pycache__").mkdir()
    assert cache_mod.snapshot_holds(taken)
    for change in (
        lambda: (root / "app" / "b.py").write_text(""),  # a new module
        lambda: (root / "app" / "sub").mkdir(),  # a new folder
        lambda: (root / "pyproject.toml").write_text("[tool.fastsqla-lint]\n"),  # settings
        lambda: (root / "app" / ".gitignore").write_text("a.py\n"),  # exclusions
        lambda: (tmp_path / "requirements.txt").write_text("sqlalchemy<2\n"),  # versions, above the tree
        lambda: (root / "app" / "a.py").write_text("x = 2\n"),  # a file's content
    ):
        taken = snap()
        assert cache_mod.snapshot_holds(taken)
        change()
        assert not cache_mod.snapshot_holds(taken)


def test_fix_edits_are_computed_only_for_formats_that_show_them(tmp_path):
    """concise and github need only to know that a fix exists; json, sarif and full show its edits. A
    cached or saved result made without edits never answers a run that shows them, and one made with
    edits answers both kinds."""
    import json

    project = tricky(tmp_path / "p")
    write_files(project, {"pyproject.toml": '[project]\nname = "p"\n'})
    time.sleep(cache_mod.RACY_SECONDS + 0.2)  # a settings file changed just now is never trusted by a saved check
    cache = tmp_path / "cache"

    def as_json(*extra: str) -> list[dict]:
        out = run_cli("check", "--output-format", "json", "--cache-dir", str(cache), *extra, cwd=project).stdout
        return json.loads(out)

    def concise() -> str:
        return run_cli("check", "--output-format", "concise", "--cache-dir", str(cache), cwd=project).stdout

    reference = as_json("--no-cache")
    fixable = [d for d in reference if d["fix"] is not None]
    assert fixable and all(d["fix"]["edits"] for d in fixable)
    plain = run_cli("check", "--output-format", "concise", "--no-cache", cwd=project).stdout
    assert "[*]" in plain

    assert concise() == plain  # cold, cached without edits (saved check and file entries)
    assert as_json() == reference  # the saved check cannot answer: computed again, with edits
    assert concise() == plain  # answered by the saved check made with edits
    for entry in entries(cache, "checks"):  # without saved checks: file entries made without edits
        entry.unlink()
    for entry in entries(cache, "runs"):
        entry.unlink()
    assert concise() == plain
    for entry in entries(cache, "checks") + entries(cache, "runs"):
        entry.unlink()
    assert as_json() == reference
