"""Fuzzing the engine with every rule selected: random valid programs, and mutated rule fixtures and apps.

For any text: the prefilter's import scan returns; linting never raises and reports no internal error (an unparsable text gets `FSL900` and
nothing else); fixing (unsafe fixes included) never raises, never warns, and its result parses; fixing
again changes nothing; a text without applicable fixes comes back byte for byte.

The default run is bounded to a few seconds. `FASTSQLA_FUZZ_EXAMPLES=N` runs N examples per test (CI sets
a medium value in `.ci/run`); `FASTSQLA_FUZZ_SEED` picks another seed for the mutation fuzzer and the
program generators (derandomized otherwise). A failure names the seed, the source and the mutations, so
it can be replayed.
"""

from __future__ import annotations

import io
import json
import os
import random
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from fastsqla_lint import engine, prefilter
from fastsqla_lint import project as proj
from fastsqla_lint.config import parse_table
from fastsqla_lint.diagnostics import Applicability
from fastsqla_lint.registry import all_rules

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES = int(os.environ.get("FASTSQLA_FUZZ_EXAMPLES") or 0)
SEED = int(os.environ.get("FASTSQLA_FUZZ_SEED") or 20240917)
CONFIG = parse_table({"select": ["ALL"]}, where="fuzz")
CODES = {r.code for r in all_rules()}
ROOT = Path("/fuzz-project")


def _examples(default: int) -> int:
    return EXAMPLES or default


@lru_cache(maxsize=None)
def _sources() -> tuple[Path, ...]:
    rules = sorted(FIXTURES.glob("FSL*/before*.py"))
    apps = sorted(FIXTURES.glob("apps/**/*.py"))
    return tuple(rules + apps)


@lru_cache(maxsize=None)
def _layout(source: Path) -> tuple[str, tuple[tuple[str, bytes], ...]]:
    """Where the source sits in its project, and the project's other modules (a rule folder's `project/`,
    or the rest of an app), so that cross-module facts reach the rules as in the fixture tests."""
    apps = FIXTURES / "apps"
    if apps in source.parents:
        folder = source.parent
        while folder.parent != apps:
            folder = folder.parent
        rel = source.relative_to(folder).as_posix()
    else:
        folder = source.parent / "project"
        first = source.read_text(encoding="utf-8").partition("\n")[0]
        module = json.loads(first.partition("OPTIONS:")[2]).get("module") if "OPTIONS:" in first else None
        rel = (module or source.stem).replace(".", "/") + ".py"
    if not folder.is_dir():
        return rel, ()
    others = tuple(
        (p.relative_to(folder).as_posix(), p.read_bytes()) for p in sorted(folder.rglob("*.py")) if p != source
    )
    return rel, tuple((r, data) for r, data in others if r != rel)


def _project(text: str, rel: str, neighbours: tuple[tuple[str, bytes], ...]) -> tuple[proj.Project, Path]:
    """A project in memory: the text at `rel` next to the neighbours (nothing is read from disk)."""
    contents = {ROOT / r: data for r, data in neighbours}
    target = ROOT / rel
    contents[target] = text.encode("utf-8", "surrogatepass")
    files = [(path, path.relative_to(ROOT).as_posix()) for path in contents]
    return proj.build_project(ROOT, CONFIG, files, [target], contents), target


def check_invariants(text: str, source: Path | None = None, context: str = "") -> None:
    where = f"\n{context}\n--- text ---\n{text}" if context else f"\n--- text ---\n{text}"
    rel, neighbours = _layout(source) if source is not None else ("app/module.py", ())
    prefilter.scan(text.encode("utf-8", "surrogatepass"), (b"execute",))  # the text pass before any parse
    project, target = _project(text, rel, neighbours)
    loaded = project.files[target]
    result = proj.lint_file(project, target)
    assert not result.internal_errors, "\n".join(result.internal_errors) + where
    codes = [d.code for d in result.diagnostics]
    assert set(codes) <= CODES, codes
    if loaded.parsed.module is None:
        assert codes == ["FSL900"], codes
        return
    assert "FSL900" not in codes, where

    def fix(current: str) -> engine.FixOutcome:
        names = loaded.parsed.names
        return engine.fix_text(
            current, rel, CONFIG, project.index, Applicability.UNSAFE, names.module_name, names.is_package
        )

    outcome = fix(text)
    assert not outcome.result.internal_errors, "\n".join(outcome.result.internal_errors) + where
    assert not outcome.warnings, "\n".join(outcome.warnings) + where
    if outcome.fixed == 0:
        assert outcome.text == text, where
        return
    try:
        cst.parse_module(outcome.text)
    except Exception as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"the fixed text does not parse: {exc}{where}\n--- fixed ---\n{outcome.text}")
    again = fix(outcome.text)
    assert again.fixed == 0 and again.text == outcome.text, (
        f"fixing is not idempotent{where}\n--- fixed once ---\n{outcome.text}\n--- fixed twice ---\n{again.text}"
    )


# -- random valid programs ----------------------------------------------------------------------------

# Derandomized: a CI run must take the same (bounded) time every time; hypothesmith's generators can draw
# for many minutes on an unlucky random seed. `FASTSQLA_FUZZ_SEED` explores other programs.
FUZZ_SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck),
                     derandomize="FASTSQLA_FUZZ_SEED" not in os.environ)


@seed(SEED)
@settings(max_examples=_examples(15), **FUZZ_SETTINGS)
@given(hypothesmith.from_grammar())
def test_random_programs_from_the_grammar(source):
    check_invariants(source)


@seed(SEED)
@settings(max_examples=_examples(15), **FUZZ_SETTINGS)
@given(hypothesmith.from_node())
def test_random_programs_from_libcst_nodes(source):
    check_invariants(source)


@seed(SEED)
@settings(max_examples=_examples(10), **FUZZ_SETTINGS)
@given(st.sampled_from(_sources()), hypothesmith.from_node(), st.booleans())
def test_random_code_around_the_fixtures(fixture, generated, after):
    """A rule fixture (full of findings) with random valid code before or after it."""
    text = fixture.read_text(encoding="utf-8")
    text = f"{text}\n{generated}" if after else f"{generated}\n{text}"
    check_invariants(text, fixture, context=f"source: {fixture.relative_to(FIXTURES)}")


# -- mutated fixtures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def _spans(text: str, unit: str) -> list[Span]:
    """Tokens (as character spans) or lines of `text`."""
    if unit == "line":
        spans, pos = [], 0
        for line in text.splitlines(keepends=True):
            spans.append(Span(pos, pos + len(line)))
            pos += len(line)
        return spans
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (tokenize.ENDMARKER, tokenize.DEDENT) or tok.start == tok.end:
                continue
            spans.append(Span(starts[tok.start[0] - 1] + tok.start[1], starts[tok.end[0] - 1] + tok.end[1]))
    except (tokenize.TokenError, SyntaxError, IndexError):
        pass  # a mutant that no longer tokenizes: the tokens read so far
    return spans


def mutate(text: str, rng: random.Random) -> tuple[str, str]:
    """One random edit: delete, duplicate or swap tokens or lines. Returns the text and what was done."""
    unit = rng.choice(("token", "token", "line"))
    spans = _spans(text, unit)
    if len(spans) < 2:
        return text, "nothing"
    op = rng.choice(("delete", "duplicate", "swap"))
    a = rng.randrange(len(spans))
    s = spans[a]
    if op == "delete":
        return text[: s.start] + text[s.end :], f"delete {unit} {text[s.start:s.end]!r} at {s.start}"
    if op == "duplicate":
        return text[: s.end] + text[s.start : s.end] + text[s.end :], f"duplicate {unit} {text[s.start:s.end]!r} at {s.start}"
    b = rng.randrange(len(spans))
    first, second = sorted((s, spans[b]), key=lambda x: x.start)
    if first == second:
        return text, "nothing"
    mutated = (
        text[: first.start]
        + text[second.start : second.end]
        + text[first.end : second.start]
        + text[first.start : first.end]
        + text[second.end :]
    )
    return mutated, f"swap {unit}s {text[first.start:first.end]!r} at {first.start} and {text[second.start:second.end]!r} at {second.start}"


def _mutants(count: int):
    rng = random.Random(SEED)
    sources = _sources()
    for i in range(count):
        source = rng.choice(sources)
        text = source.read_text(encoding="utf-8")
        done = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            text, what = mutate(text, rng)
            done.append(what)
        yield i, source, text, done


def test_mutated_fixtures_never_crash_and_fixes_parse():
    for i, source, text, done in _mutants(_examples(25)):
        context = f"seed {SEED}, mutant {i} of {source.relative_to(FIXTURES)}: " + "; ".join(done)
        check_invariants(text, source, context=context)


def test_the_mutation_fuzzer_mutates():
    """The fuzzer itself: mutants differ from their source, and some no longer parse (FSL900 paths run)."""
    mutants = list(_mutants(40))
    changed = [m for m in mutants if m[2] != m[1].read_text(encoding="utf-8")]
    assert len(changed) >= 35
    broken = 0
    for _, _, text, _ in changed:
        try:
            cst.parse_module(text)
        except Exception:
            broken += 1
    assert 5 <= broken < len(changed)


def test_the_fixtures_themselves_hold_the_invariants():
    for source in _sources():
        check_invariants(source.read_text(encoding="utf-8"), source, context=str(source))
