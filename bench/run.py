#!/usr/bin/env python3
"""The speed bench: fastsqla-lint against its floors, Fixit and ruff, on generated monorepos, in one run.

Usage::

    python bench/run.py [--files 10000] [--seed 1] [--jobs N] [--repeat 3]
                        [--fixit-files 1000] [--no-fixit] [--no-ruff] [--out bench/results/run.md]

Corpora come from `bench/make_corpus.py` (a copy of the shared generator, so the bench runs on its own)
and are kept under `bench/.corpora/<files>-<seed>/` (git-ignored) for the next run. Each gets a
`pyproject.toml` at its top and one per service, as a monorepo has: each service is its own project, so
`from app.database import ...` in its scripts and tests resolves. The floors only read `.py` files, so
the markers change nothing for them.

What is timed (each a whole process, wall clock, in `--repeat` rounds that run every measurement once in
turn, so that all see the same machine load; medians; peak RSS is the largest
process of the run: the process and its children from `wait4`, and the linter's pool workers from its
`--stats` line, since a run over many files starts them from a fork server, whose children `wait4` does
not see). After the rounds, one more untimed run of each floor parse and cold run samples the summed
memory of its whole process tree (`tree_memory`: PSS and RSS, from `/proc`, Linux only):

  floor read / hash / parse   `bench/floors.py` (a copy of the shared one): read every file; read and
                              hash; read and LibCST-parse the files containing `sqlalchemy`/`fastapi`,
                              with the same number of processes as our runs; and read every file and
                              LibCST-parse the files the linter's prefilter chooses (listed by an untimed
                              run first), which shows how much of the cold run's ratio is more files
  cold                        `fastsqla-lint check --no-cache --output-format concise` (what CI and
                              pre-commit print: a fix's text edits are not computed)
  cold, skipped files         the cold run on the same corpus plus two copies (hard links, under
                              `skipped0/`, `skipped1/`) of every file the prefilter skips: checked to
                              parse the same files and find the same; the main process's peak RSS (from
                              `--stats`) against the plain cold run's shows what each skipped file costs
  cold, json                  the same with `--output-format json`, which shows every fix's edits
  cold, writing the cache     concise with the cache on (first run into an empty cache folder)
  warm                        nothing changed since the previous run
  pre-commit                  5 service files changed (a comment appended), named on the command line,
                              cache warm for the rest; checked: the same findings as a full run's
  fixit                       `fixit lint` with one trivial rule (`bench/fixit_trivial_rule.py`), on a
                              smaller corpus of `--fixit-files` (it takes minutes on 10,000 files),
                              extrapolated per file to the big corpus: said so in the table
  ruff                        `ruff check --select FAST,S608`, cold (`--no-cache`) and warm, if installed

Before measuring, the linter's modules are byte-compiled, as pip does when it installs a package: with
`PYTHONDONTWRITEBYTECODE` set (some machines and containers set it) every run would otherwise compile
the linter's sources again (0.1 s of a run that imports the rules) where no installed copy does.

It prints the ratios against the targets of issue 5, the recall of the planted pitfalls (EXPECTED.tsv)
and writes a markdown table (`--out`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPORA = HERE / ".corpora"
PITFALL_CODES = {
    "module-level-session": "FSL001",
    "get-db-without-finally": "FSL002",
    "orm-response-model": "FSL003",
    "create-all-without-models": "FSL004",
    "sqlite-check-same-thread": "FSL005",
}


# -- corpora -----------------------------------------------------------------------------------------------


def corpus(files: int, seed: int) -> Path:
    """The generated corpus of `files` files (made once, then reused), with its project markers."""
    folder = CORPORA / f"{files}-{seed}"
    done = folder / ".complete"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        CORPORA.mkdir(parents=True, exist_ok=True)
        print(f"generating a {files}-file corpus in {folder} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(HERE / "make_corpus.py"), str(folder), "--files", str(files), "--seed", str(seed)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        done.write_text("")
    # The monorepo's settings at its top (an empty table: the defaults, and no settings from above, such
    # as this repository's own), and one project per service.
    (folder / "pyproject.toml").write_text('[project]\nname = "corpus"\n\n[tool.fastsqla-lint]\n')
    for service in sorted((folder / "services").iterdir()):
        (service / "pyproject.toml").write_text(f'[project]\nname = "{service.name}"\n')
    return folder


def link(src, dst) -> None:
    """A hard link, or a copy where the file system has none."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def with_skipped(base: Path, parse_set: set[str], copies: int) -> tuple[Path, int]:
    """`base` plus `copies` more copies of every file the linter skips there, under new top-level folders
    `skipped<i>/` (hard links where the file system has them; made once): more files that the prefilter
    reads and skips, and nothing else. A copy imports what its original imports, which made no file
    relevant there, and nothing imports it, so the parse set stays the same (the bench checks it).
    Returns the folder and how many files it adds."""
    folder = CORPORA / f"{base.name}-skipped{copies}"
    skipped = sorted(p for p in base.rglob("*.py") if p.relative_to(base).as_posix() not in parse_set)
    done = folder / ".complete"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        print(f"linking {base} plus {copies} copies of its {len(skipped)} skipped files into {folder} ...",
              file=sys.stderr)
        shutil.copytree(base, folder, copy_function=link, ignore=shutil.ignore_patterns(".complete"))
        for path in skipped:
            rel = path.relative_to(base)
            for i in range(copies):
                target = folder / f"skipped{i}" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                link(path, target)
        done.write_text("")
    return folder, copies * len(skipped)


# -- timing ------------------------------------------------------------------------------------------------


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, int, str, str]:
    """(wall seconds, peak RSS in MB of the largest process of the run, stdout, stderr) of one command."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        # wait4: the child's peak RSS, which on Linux includes its own reaped children (the process pool)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text_out, text_err = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    return wall, max(usage.ru_maxrss, workers_peak_kb(text_err)) // 1024, text_out, text_err


def workers_peak_kb(err: str) -> int:
    """The largest peak RSS of the linter's pool workers, from its `--stats` line: a run over many files
    starts its workers from a fork server, so they are not children that wait4 reports on."""
    for line in err.splitlines():
        if line.startswith("{") and "workers_peak_rss_kb" in line:
            return json.loads(line)["workers_peak_rss_kb"]
    return 0


def tree_memory(cmd: list[str], cwd: Path, env: dict | None = None) -> dict | None:
    """The peak of the summed memory of a command's whole process tree (main process, fork server,
    workers), sampled every 20 ms from `/proc` in an untimed run (sampling costs CPU): PSS, where a page
    shared by n processes counts 1/n in each (what the tree really holds), and RSS, where it counts in
    full in each. None where `/proc/<pid>/smaps_rollup` does not exist (not Linux)."""
    if not Path(f"/proc/{os.getpid()}/smaps_rollup").exists():
        return None

    def descendants(root: int) -> list[int]:
        kids: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    stat = Path(f"/proc/{name}/stat").read_text()
                except OSError:
                    continue
                kids.setdefault(int(stat[stat.rfind(")") + 2 :].split()[1]), []).append(int(name))
        out, stack = [root], [root]
        while stack:
            for kid in kids.get(stack.pop(), ()):
                out.append(kid)
                stack.append(kid)
        return out

    def usage(pid: int) -> tuple[int, int]:
        pss = rss = 0
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
        except OSError:  # the process has just ended
            pass
        return pss, rss

    peak = {"pss": 0, "rss": 0, "processes": 0}
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    while proc.poll() is None:
        pids = descendants(proc.pid)
        both = [usage(pid) for pid in pids]
        peak["pss"] = max(peak["pss"], sum(p for p, _ in both) // 1024)
        peak["rss"] = max(peak["rss"], sum(r for _, r in both) // 1024)
        peak["processes"] = max(peak["processes"], len(pids))
        time.sleep(0.02)
    return peak


def timed(label: str, cmd: list[str], cwd: Path, repeat: int, env: dict | None = None, before=None) -> dict:
    walls, rss, out, err = [], [], "", ""
    for i in range(repeat):
        if before is not None:
            before(i)
        wall, peak, out, err = run(cmd, cwd, env)
        walls.append(wall)
        rss.append(peak)
    result = {"label": label, "median": statistics.median(walls), "runs": walls, "rss": max(rss), "out": out,
              "err": err}
    print(f"  {label:<28} median {result['median']:8.2f} s  ({', '.join(f'{w:.2f}' for w in walls)})  "
          f"peak RSS {result['rss']} MB", file=sys.stderr)
    return result


def lint_cmd(*args: str, jobs: int) -> list[str]:
    return [sys.executable, "-m", "fastsqla_lint", "check", "--exit-zero", "-j", str(jobs), *args]


# -- the bench ---------------------------------------------------------------------------------------------


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "loop": python_loop_seconds(),
    }


def python_loop_seconds() -> float:
    """The best of three runs of a plain Python loop (10 million additions): how fast this machine runs
    Python code at the moment, to compare the absolute times of runs made on other days."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best, 2)


CONCISE = re.compile(r"^(?P<file>.+?):(?P<row>\d+):(?P<col>\d+): (?P<code>FSL\d+) (?:\[\*\] )?(?P<message>.*)$")


def findings(text: str) -> list[dict]:
    """The findings of a run's output, concise (what CI and pre-commit print) or json, in json's shape."""
    if text.lstrip().startswith("["):
        return json.loads(text)
    found = []
    for line in text.splitlines():
        m = CONCISE.match(line)
        if m:
            found.append({"filename": m["file"], "location": {"row": int(m["row"]), "column": int(m["col"])},
                          "code": m["code"], "message": m["message"]})
    return found


def recall(folder: Path, found: list[dict]) -> dict:
    expected = []
    for line in (folder / "EXPECTED.tsv").read_text().splitlines()[1:]:
        path, row, kind = line.split("\t")
        expected.append((path, int(row), PITFALL_CODES[kind]))
    at = {(f["filename"], f["location"]["row"], f["code"]) for f in found}
    covered = [e for e in expected if e in at]
    planted = {(p, r) for p, r, _ in expected}
    outside = sorted(
        (f["filename"], f["location"]["row"], f["code"], f["message"]) for f in found
        if (f["filename"], f["location"]["row"]) not in planted
    )
    return {"expected": len(expected), "covered": len(covered), "outside": outside,
            "missed": sorted(set(expected) - set(covered))}


def pre_commit_files(folder: Path, found: list[dict]) -> list[str]:
    """Five service files from five services, some with findings, some without (deterministic)."""
    with_findings = sorted({f["filename"] for f in found if f["filename"].startswith("services/")})
    services = sorted(p for p in (folder / "services").iterdir() if p.is_dir())
    chosen: list[str] = []
    for name in with_findings[:3]:
        chosen.append(name)
    for service in services:
        if len(chosen) == 5:
            break
        candidate = f"services/{service.name}/app/models.py"
        if (folder / candidate).exists() and candidate not in chosen and not any(
            c.startswith(f"services/{service.name}/") for c in chosen
        ):
            chosen.append(candidate)
    return chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fixit-files", type=int, default=1000, help="corpus size for Fixit (extrapolated per file)")
    ap.add_argument("--no-fixit", action="store_true")
    ap.add_argument("--no-ruff", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "run.md")
    args = ap.parse_args()

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "fastsqla_lint")], check=True)
    info = machine()
    print(f"machine: {info}", file=sys.stderr)
    big = corpus(args.files, args.seed)
    n_files = sum(1 for _ in big.rglob("*.py"))
    cache = HERE / "results" / f"cache-{args.files}-{args.seed}"
    shutil.rmtree(cache, ignore_errors=True)
    env = {"PYTHONPATH": str(REPO)}
    rows: dict[str, dict] = {}
    r, j = args.repeat, args.jobs

    print(f"corpus {big} ({n_files} files), {j} processes, {r} rounds", file=sys.stderr)
    floors = HERE / "floors.py"
    cached = lint_cmd("--cache-dir", str(cache), "--stats", "--output-format", "concise", jobs=j)
    ruff_exe = None if args.no_ruff else (shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff"))
    ruff_select = ["check", "--select", "FAST,S608", "--exit-zero", "--quiet"]
    ruff_cache = HERE / "results" / "ruff-cache"
    if ruff_exe:
        shutil.rmtree(ruff_cache, ignore_errors=True)
        run([ruff_exe, *ruff_select, "--cache-dir", str(ruff_cache), "."], big)
    state: dict = {"changed": [], "originals": {}}

    def fresh_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    def touch() -> None:
        if not state["changed"]:
            state["changed"] = pre_commit_files(big, findings(rows["cold"]["out"]))
            state["originals"] = {name: (big / name).read_bytes() for name in state["changed"]}
        for name in state["changed"]:
            (big / name).write_bytes(state["originals"][name] + f"# bench edit {time.time()}\n".encode())

    def restore() -> None:
        for name, data in state["originals"].items():
            (big / name).write_bytes(data)

    # The files the linter parses (its prefilter's choice), for the floor that parses the same files.
    _, _, _, err = run(lint_cmd("--no-cache", "--stats", "--output-format", "concise", jobs=j), big, env)
    parse_list = HERE / "results" / f"parse-set-{args.files}-{args.seed}.txt"
    parse_list.parent.mkdir(parents=True, exist_ok=True)
    parse_names = json.loads(err.strip().splitlines()[0])["parse_set_files"]
    parse_list.write_text("".join(f"{name}\n" for name in parse_names))
    # The same corpus with many more files that the prefilter skips: memory must not grow with them.
    padded, added = with_skipped(big, set(parse_names), 2)

    # Each round runs every measurement once, in this order, so that all of them see the same machine
    # load (the machine may be shared); the medians are taken over the rounds.
    plan = [
        ("floor read", "floor read", [sys.executable, str(floors), "read", ".", "--jobs", str(j)], None, None, None),
        ("floor hash", "floor hash", [sys.executable, str(floors), "hash", ".", "--jobs", str(j)], None, None, None),
        ("floor parse", "floor parse --prefilter",
         [sys.executable, str(floors), "parse", ".", "--jobs", str(j), "--prefilter"], env, None, None),
        ("floor parse same", "floor parse, linter's files",
         [sys.executable, str(floors), "parse", ".", "--jobs", str(j), "--files-from", str(parse_list)], env, None,
         None),
        ("cold", "cold (--no-cache)", lint_cmd("--no-cache", "--stats", "--output-format", "concise", jobs=j), env,
         None, None),
        ("cold skipped", f"cold, +{added} skipped files", lint_cmd("--no-cache", "--stats", "--output-format",
         "concise", jobs=j), env, None, None, padded),
        ("cold json", "cold, json (fix edits)",
         lint_cmd("--no-cache", "--stats", "--output-format", "json", jobs=j), env,
         None, None),
        ("cold cache", "cold, writing the cache", cached, env, fresh_cache, None),
        ("warm", "warm (nothing changed)", cached, env, None, None),
        ("pre-commit", "pre-commit (5 files)", None, env, touch, restore),
    ]
    if ruff_exe:
        plan += [
            ("ruff cold", "ruff cold", [ruff_exe, *ruff_select, "--no-cache", "."], None, None, None),
            ("ruff warm", "ruff warm", [ruff_exe, *ruff_select, "--cache-dir", str(ruff_cache), "."], None, None,
             None),
        ]
    samples: dict[str, list] = {}
    try:
        for i in range(r):
            print(f"round {i + 1}/{r}", file=sys.stderr)
            for key, label, cmd, cmd_env, before, after, *where in plan:
                if before is not None:
                    before()
                if cmd is None:  # the pre-commit run names the changed files
                    cmd = [*cached, *state["changed"]]
                wall, peak, out, err = run(cmd, where[0] if where else big, cmd_env)
                if after is not None:
                    after()
                samples.setdefault(key, []).append((wall, peak, out, err))
                walls = [w for w, *_ in samples[key]]
                rows[key] = {"label": label, "median": statistics.median(walls), "runs": walls,
                             "rss": max(p for _, p, _, _ in samples[key]), "out": out, "err": err}
                print(f"  {label:<28} {wall:8.2f} s  peak RSS {peak} MB", file=sys.stderr)
    finally:
        restore()
    # The whole process tree's memory, in one more (untimed) run of each.
    trees = {}
    for key, label, cmd, cmd_env, _, _, *where in plan[2:6]:  # the floor parses, the cold runs
        trees[key] = tree_memory(cmd, where[0] if where else big, cmd_env)
        if trees[key] is not None:
            print(f"  {label:<28} whole tree: peak PSS {trees[key]['pss']} MB, RSS {trees[key]['rss']} MB, "
                  f"{trees[key]['processes']} processes", file=sys.stderr)
    found = findings(rows["cold"]["out"])
    stats = json.loads(rows["cold"]["err"].strip().splitlines()[0]) if rows["cold"]["err"].strip() else {}
    padded_stats = json.loads(rows["cold skipped"]["err"].strip().splitlines()[0])
    skipped_same = findings(rows["cold skipped"]["out"]) == found
    memory = {
        "added": added,
        "files": (stats.get("files"), padded_stats.get("files")),
        "parse_set": (stats.get("parse_set"), padded_stats.get("parse_set")),
        "parent_mb": (stats.get("peak_rss_kb", 0) / 1024, padded_stats.get("peak_rss_kb", 0) / 1024),
        "peak_mb": (rows["cold"]["rss"], rows["cold skipped"]["rss"]),
        "rounds_mb": ([p for _, p, _, _ in samples["cold"]], [p for _, p, _, _ in samples["cold skipped"]]),
        "same": skipped_same,
        "trees": trees,
    }
    warm_same = findings(rows["warm"]["out"]) == found
    json_same = sorted((f["filename"], f["location"]["row"], f["code"]) for f in findings(rows["cold json"]["out"])) \
        == sorted((f["filename"], f["location"]["row"], f["code"]) for f in found)
    changed = state["changed"]
    expected_pc = sorted((f["filename"], f["location"]["row"], f["code"]) for f in found if f["filename"] in changed)
    got_pc = sorted((f["filename"], f["location"]["row"], f["code"]) for f in findings(rows["pre-commit"]["out"]))
    pre_commit_same = expected_pc == got_pc
    ruff = {k.split()[1]: rows[k] for k in ("ruff cold", "ruff warm") if k in rows}

    fixit = None
    exe = None if args.no_fixit else (shutil.which("fixit", path=str(Path(sys.executable).parent)) or shutil.which("fixit"))
    if exe is None and not args.no_fixit:
        print("  fixit not installed (pip install -e '.[bench]'): skipped", file=sys.stderr)
    if exe is not None:
        small = corpus(min(args.fixit_files, args.files), args.seed) if args.fixit_files < args.files else big
        small_n = sum(1 for _ in small.rglob("*.py"))
        res = timed(f"fixit ({small_n} files)", [exe, "--rules", "fixit_trivial_rule:NoBreakpoint", "lint", "."],
                    small, 1, {"PYTHONPATH": str(HERE)})
        fixit = dict(res, files=small_n, per_file=res["median"] / small_n, extrapolated=res["median"] / small_n * n_files)
    info["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    rec = recall(big, found)
    report = render(info, big, n_files, j, r, rows, stats, fixit, ruff, rec, warm_same, pre_commit_same, changed,
                    json_same, memory)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"(written to {args.out})", file=sys.stderr)
    return 0


def render(info, big, n_files, jobs, repeat, rows, stats, fixit, ruff, rec, warm_same, pre_commit_same, changed,
           json_same, memory=True) -> str:
    floor_read = rows["floor read"]["median"]
    floor_parse = rows["floor parse"]["median"]
    floor_same = rows["floor parse same"]["median"]
    cold = rows["cold"]["median"]
    warm = rows["warm"]["median"]
    pc = rows["pre-commit"]["median"]

    def verdict(value: float, limit: float, smaller: bool = True) -> str:
        ok = value <= limit if smaller else value >= limit
        return "met" if ok else "**not met**"

    lines = [
        f"Corpus: `{big.name}` ({n_files} files, `make_corpus.py --files {n_files}`), {jobs} processes, "
        f"median of {repeat} rounds, each running every measurement once in turn (Fixit: 1 run).",
        "",
        f"Machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}, {info['platform']}; "
        f"load average {fmt_load(info['load'])} before, {fmt_load(info.get('load_after'))} after; a plain "
        f"Python loop of 10 million additions took {info['loop']} s (best of 3).",
        "",
        "| run | median (s) | peak RSS (MB) | ratio | target |",
        "| --- | ---: | ---: | --- | --- |",
        f"| floor: read every file | {floor_read:.2f} | {rows['floor read']['rss']} | 1.00x read | |",
        f"| floor: read + hash | {rows['floor hash']['median']:.2f} | {rows['floor hash']['rss']} | "
        f"{rows['floor hash']['median'] / floor_read:.2f}x read | |",
        f"| floor: LibCST-parse the files mentioning sqlalchemy/fastapi | {floor_parse:.2f} | "
        f"{rows['floor parse']['rss']} | 1.00x parse | |",
        f"| floor: LibCST-parse the files the linter parses ({stats.get('parse_set', '?')}) | {floor_same:.2f} | "
        f"{rows['floor parse same']['rss']} | {floor_same / floor_parse:.2f}x parse | |",
        f"| fastsqla-lint cold (`--no-cache`, concise) | {cold:.2f} | {rows['cold']['rss']} | {cold / floor_parse:.2f}x parse "
        f"({cold / floor_same:.2f}x the same files' parse) | "
        f"<= 1.3x: {verdict(cold / floor_parse, 1.3)}; RSS <= 300 MB: {verdict(rows['cold']['rss'], 300)} |",
        f"| fastsqla-lint cold, {memory['added']} more files that it skips | {rows['cold skipped']['median']:.2f} | "
        f"{rows['cold skipped']['rss']} | {rows['cold skipped']['median'] / cold:.2f}x cold | same findings: {memory['same']} |",
        f"| fastsqla-lint cold, json output (fix edits computed) | {rows['cold json']['median']:.2f} | "
        f"{rows['cold json']['rss']} | {rows['cold json']['median'] / floor_parse:.2f}x parse | same findings: {json_same} |",
        f"| fastsqla-lint cold, writing the cache | {rows['cold cache']['median']:.2f} | {rows['cold cache']['rss']} | "
        f"{rows['cold cache']['median'] / floor_parse:.2f}x parse | |",
        f"| fastsqla-lint warm, nothing changed | {warm:.2f} | {rows['warm']['rss']} | {warm / floor_read:.2f}x read | "
        f"<= 3x: {verdict(warm / floor_read, 3)}; same findings: {warm_same} |",
        f"| fastsqla-lint pre-commit, 5 changed files | {pc:.2f} | {rows['pre-commit']['rss']} | {pc / cold:.3f}x cold | "
        f"<= 0.05x: {verdict(pc / cold, 0.05)}; same findings as the full run: {pre_commit_same} |",
    ]
    if fixit is not None:
        note = "" if fixit["files"] == n_files else (
            f" (measured {fixit['median']:.1f} s on {fixit['files']} files, extrapolated per file)")
        lines.append(
            f"| Fixit, one trivial rule | {fixit['extrapolated']:.1f}{note} | {fixit['rss']} | "
            f"{fixit['extrapolated'] / cold:.1f}x our cold | >= 10x: {verdict(fixit['extrapolated'] / cold, 10, False)} |"
        )
    for label, res in ruff.items():
        extra = f"our warm run takes {warm / res['median']:.2f}x its time" if label == "warm" else ""
        lines.append(f"| ruff `--select FAST,S608`, {label} | {res['median']:.2f} | {res['rss']} | | {extra} |")
    (files, padded_files), (parse_n, padded_parse), (parent, padded_parent) = (
        memory["files"], memory["parse_set"], memory["parent_mb"])
    growth = (padded_parent - parent) * 1024 / memory["added"] * 1000 if memory["added"] else 0.0  # KB per 1,000
    lines += [
        "",
        f"Skipped files and memory: with {memory['added']} more files that the prefilter skips ({files} to "
        f"{padded_files} files; {parse_n} and {padded_parse} parsed), the largest process's peak RSS went from "
        f"{memory['peak_mb'][0]} to {memory['peak_mb'][1]} MB (the largest of the rounds: "
        f"{', '.join(map(str, memory['rounds_mb'][0]))} MB, then {', '.join(map(str, memory['rounds_mb'][1]))} MB) "
        f"and the main process's from {parent:.0f} to {padded_parent:.0f} MB: {growth:.0f} KB per 1,000 skipped "
        "files (last round).",
    ]
    trees = memory.get("trees") or {}
    if all(trees.get(k) for k in ("floor parse", "floor parse same", "cold", "cold skipped")):
        def tree(key: str) -> str:
            t = trees[key]
            return f"{t['pss']} MB PSS ({t['rss']} MB RSS, {t['processes']} processes)"

        lines += [
            "",
            "Whole process tree (one more, untimed run of each, sampled every 20 ms: PSS counts a page shared by "
            f"n processes 1/n in each): the cold run {tree('cold')}, with the skipped files {tree('cold skipped')}; "
            f"the floor parse {tree('floor parse')}, on the linter's files {tree('floor parse same')}.",
        ]
    lines += [
        "",
        f"Cold run: {stats.get('files', '?')} files, {stats.get('parse_set', '?')} parsed (prefilter), "
        f"{stats.get('relinted', '?')} linted again after the index was complete.",
        "",
        f"Planted pitfalls found: {rec['covered']} of {rec['expected']} (EXPECTED.tsv, kinds mapped to "
        f"FSL001-FSL005). Findings elsewhere: {len(rec['outside'])}.",
    ]
    if rec["missed"]:
        lines.append("Missed: " + ", ".join(f"`{p}:{r}` {c}" for p, r, c in rec["missed"][:10]))
    if rec["outside"]:
        lines.append("")
        lines.append("Some findings outside EXPECTED.tsv:")
        lines.append("")
        by_code: dict[str, list] = {}
        for f in rec["outside"]:
            by_code.setdefault(f[2], []).append(f)
        for code in sorted(by_code):
            p, row, _, message = by_code[code][0]
            lines.append(f"- {code} x{len(by_code[code])}, e.g. `{p}:{row}`: {message}")
    lines += ["", f"Pre-commit files: {', '.join(f'`{c}`' for c in changed)}.", ""]
    return "\n".join(lines)


def fmt_load(load) -> str:
    return "?" if not load else " / ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    sys.exit(main())
