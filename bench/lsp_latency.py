#!/usr/bin/env python3
"""What the language server pays per keystroke: change -> diagnostics for ONE module, against one parse.

Usage::

    python bench/lsp_latency.py [FILE ...] [--runs 30] [--lines 500 3000]

Without FILEs it generates FastAPI + SQLAlchemy modules of the given line counts (routes, models, a
SQLite engine the rules report on). For each module it times, in this process, after 2 untimed runs:

  parse   libcst.parse_module(text)
  change  what `fastsqla-lint lsp` does after the debounce when a buffer changes: parse, rebuild the
          module's summary and the project index when it changed, lint against the warm index, and
          convert the diagnostics (with their fixes) to LSP positions in UTF-16

Each `change` run edits a module-level constant, so the summary changes and the index is rebuilt every
time (the worst case). The index holds the module plus 200 other modules' summaries (`--others`). The two are
timed in turn, run after run, so that both see the same machine load. It prints min / median / p90 in
milliseconds and the ratios change/parse of the minimums and of the medians (target: median <= 2x).
"""

from __future__ import annotations

import argparse
import atexit
import importlib.metadata
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import libcst

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastsqla_lint.index import summarize  # noqa: E402
from fastsqla_lint.lsp import DocState, FastsqlaLanguageServer, Positions, to_lsp  # noqa: E402
from fastsqla_lint.names import NameResolver  # noqa: E402
from fastsqla_lint.project import FileState  # noqa: E402
from pygls.workspace.position_codec import PositionCodec  # noqa: E402

HEADER = '''"""Generated module for the LSP latency bench."""
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

VERSION = 0
engine = create_engine("sqlite:///./bench.db")
SessionLocal = sessionmaker(bind=engine)
router = APIRouter()


class Base(DeclarativeBase):
    pass


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()

'''

BLOCK = '''
class Item{i}(Base):
    __tablename__ = "item_{i}"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(default="item {i} 🙂")
    price: Mapped[float] = mapped_column(default={i}.5)


@router.get("/items{i}/{{item_id}}")
def read_item_{i}(item_id: int, db: Annotated[Session, Depends(get_db)]):
    item = db.get(Item{i}, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="not found")
    rows = db.scalars(select(Item{i}).where(Item{i}.price > {i})).all()
    total = sum(r.price for r in rows if r.name)
    return {{"id": item.id, "name": item.name, "total": total, "n": len(rows)}}

'''


def generate(lines: int) -> str:
    parts = [HEADER]
    i = 0
    while sum(p.count("\n") for p in parts) < lines:
        parts.append(BLOCK.format(i=i))
        i += 1
    return "".join(parts)


def other_summaries(n: int) -> list:
    out = []
    for k in range(n):
        text = f"from fastapi import Depends\nURL_{k} = 'sqlite:///./db{k}.db'\nLIMIT = {k}\n"
        names = NameResolver(f"pkg.mod{k}", False)
        module = libcst.parse_module(text)
        names.collect_module_level(module)
        out.append(summarize(module, names, f"pkg/mod{k}.py"))
    return out


def timeit(fns: dict, runs: int) -> dict[str, list[float]]:
    """Run the functions in turn, `runs` times each (interleaved, so that both see the same machine load)."""
    for i in range(2):
        for fn in fns.values():
            fn(i)
    out: dict[str, list[float]] = {what: [] for what in fns}
    for i in range(2, runs + 2):
        for what, fn in fns.items():
            t0 = time.perf_counter()
            fn(i)
            out[what].append((time.perf_counter() - t0) * 1000)
    return {what: sorted(ts) for what, ts in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--lines", type=int, nargs="*", default=[500, 3000])
    ap.add_argument("--others", type=int, default=200, help="other modules in the project's index")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="lsp-latency-"))  # an empty workspace: default settings
    atexit.register(shutil.rmtree, root, True)
    modules = [(f, Path(f).read_text(encoding="utf-8")) for f in args.files] or [
        (f"<generated {n} lines>", generate(n)) for n in args.lines
    ]
    codec = PositionCodec()  # UTF-16, what most clients get

    print(f"libcst {importlib.metadata.version('libcst')}; runs={args.runs}")
    print(f"{'module':28s} {'lines':>6s} {'what':>7s} {'min ms':>8s} {'median':>8s} {'p90':>8s} {'diags':>6s}")
    for label, text in modules:
        ls = FastsqlaLanguageServer()
        ls.root = root
        path = root / "app" / "bench_module.py"
        state = DocState(uri=path.as_uri(), path=path, display="app/bench_module.py")
        proj = ls.project_of(path)
        assert proj is not None
        for i, other in enumerate(other_summaries(args.others)):
            f = FileState(f"/other/{other.path}", other.path, i, False, False)
            f.summary = other
            proj.files[Path(f.path)] = f
        ls.refresh(proj, scans_changed=False)
        variants = [text.replace("VERSION = 0", f"VERSION = {i}", 1) for i in range(args.runs + 2)]
        counts = []

        def change(i: int) -> None:
            current = variants[i]
            result = ls.lint_buffer(state, current)
            positions = Positions(current, codec)
            counts.append(len([to_lsp(d, positions, i) for d in result.diagnostics]))

        def parse(i: int) -> None:
            libcst.parse_module(variants[i])

        lines = text.count("\n")
        timings = timeit({"parse": parse, "change": change}, args.runs)
        mins, medians = {}, {}
        for what, ts in timings.items():
            mins[what], medians[what] = ts[0], statistics.median(ts)
            p90 = ts[min(len(ts) - 1, int(len(ts) * 0.9))]
            diags = str(counts[-1]) if what == "change" else ""
            print(f"{label[-28:]:28s} {lines:6d} {what:>7s} {ts[0]:8.1f} {medians[what]:8.1f} {p90:8.1f} {diags:>6s}")
        ratio_min = mins["change"] / mins["parse"]
        ratio_med = medians["change"] / medians["parse"]
        print(f"{'':28s} {'':6s} {'ratio':>7s} {ratio_min:7.2f}x {ratio_med:7.2f}x")


if __name__ == "__main__":
    main()
