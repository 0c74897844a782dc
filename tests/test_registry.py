"""Meta-tests over the rule registry: identity, documentation, fixtures and what the walker can dispatch."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from fastsqla_lint.diagnostics import FixAvailability
from fastsqla_lint.registry import all_rules
from fastsqla_lint.rule import Rule, kebab
from fastsqla_lint.walk import SKIPPED_TYPES
from test_rules import FIXTURES, config_for, lint_in_project

RULES = all_rules()
SECTIONS = (
    "What it does",
    "Why is this bad?",
    "Known problems",
    "Example",
    "Use instead",
    "Options",
    "Fix safety",
    "References",
)
OPTIONAL_SECTIONS = frozenset({"Known problems", "Options"})


def is_meta(rule: type[Rule]) -> bool:
    return rule.code.startswith("FSL9")


def by_rule(rules=RULES):
    return pytest.mark.parametrize("rule", rules, ids=[r.code for r in rules])


def sections(rule: type[Rule]) -> dict[str, str]:
    """The rule's documentation split at its `## ` headings, in order."""
    out: dict[str, str] = {}
    current = None
    for line in rule.documentation().splitlines():
        m = re.match(r"^## (.+?)\s*$", line)
        if m:
            current = m.group(1)
            assert current not in out, f"{rule.code}: section {current!r} appears twice"
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def code_block(text: str) -> str:
    """The code of a section: a fenced block if there is one, else its indented lines."""
    fenced = re.search(r"```[a-z]*\n(.*?)```", text, re.DOTALL)
    if fenced:
        return textwrap.dedent(fenced.group(1))
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("    ")), None)
    if start is None:
        return ""
    block = []
    for line in lines[start:]:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip("\n") + "\n"


def test_there_are_rules() -> None:
    assert any(not is_meta(r) for r in RULES)


def test_codes_are_unique() -> None:
    codes = [r.code for r in RULES]
    assert len(codes) == len(set(codes))
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))


@by_rule()
def test_identity(rule: type[Rule]) -> None:
    assert re.fullmatch(r"FSL\d{3}", rule.code), rule.code
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", rule.name), rule.name
    assert rule.name == kebab(rule.__name__), "the rule's name comes from its class name"
    assert rule.message, "a rule has a message"


@by_rule()
def test_documentation_sections(rule: type[Rule]) -> None:
    found = list(sections(rule))
    unknown = [s for s in found if s not in SECTIONS]
    assert unknown == [], f"unknown sections {unknown}; known: {SECTIONS}"
    assert found == [s for s in SECTIONS if s in found], f"sections out of order: {found}"
    missing = [s for s in SECTIONS if s not in OPTIONAL_SECTIONS and s not in found]
    assert missing == [], f"missing sections {missing}"
    for title, body in sections(rule).items():
        assert body.strip(), f"section {title!r} is empty"


@by_rule([r for r in RULES if not is_meta(r)])
def test_fix_safety_names_a_level(rule: type[Rule]) -> None:
    text = sections(rule)["Fix safety"]
    assert re.search(r"\b(safe|unsafe|display-only)\b", text, re.IGNORECASE), text


@by_rule()
def test_example_triggers_and_use_instead_does_not(rule: type[Rule], tmp_path: Path) -> None:
    docs = sections(rule)
    example, use_instead = code_block(docs["Example"]), code_block(docs["Use instead"])
    assert example.strip() and use_instead.strip(), "Example and Use instead hold indented or fenced code"
    config = config_for(rule.code)
    bad = lint_in_project(example, config, tmp_path / "example")
    assert not bad.internal_errors, bad.internal_errors
    assert rule.code in {d.code for d in bad.diagnostics}, "the Example does not trigger the rule"
    good = lint_in_project(use_instead, config, tmp_path / "use_instead")
    assert not good.internal_errors, good.internal_errors
    assert [d.code for d in good.diagnostics] == [], "the Use-instead block triggers a diagnostic"


@by_rule([r for r in RULES if not is_meta(r)])
def test_fixture_folder(rule: type[Rule]) -> None:
    folder = FIXTURES / rule.code
    for name in ("before.py", "after.py", "expected.txt"):
        assert (folder / name).is_file(), f"{folder / name} is missing"


@by_rule([r for r in RULES if re.fullmatch(r"FSL[01]\d\d", r.code)])
def test_fix_available(rule: type[Rule]) -> None:
    assert rule.fix_availability is not FixAvailability.NONE, "every FSL0xx/FSL1xx rule offers a fix"
    assert rule.fix_title, "a rule with fixes has a fix title"


def _own_visitors(rule: type[Rule]) -> set[str]:
    names: set[str] = set()
    for klass in rule.__mro__:
        if klass is Rule or klass.__module__.startswith("libcst"):
            break
        names.update(a for a in vars(klass) if a.startswith(("visit_", "leave_")))
    return names


@by_rule()
def test_visitors_are_dispatched_by_the_walker(rule: type[Rule]) -> None:
    skipped = {t.__name__ for t in SKIPPED_TYPES}
    for attr in sorted(_own_visitors(rule)):
        node_type = attr.split("_", 1)[1]
        assert "_" not in node_type, f"{attr}: the walker does not dispatch attribute visitors"
        cls = getattr(cst, node_type, None)
        assert isinstance(cls, type) and issubclass(cls, cst.CSTNode), f"{attr}: no LibCST node type {node_type}"
        assert not issubclass(cls, SKIPPED_TYPES) and node_type not in skipped, f"{attr}: the walker skips {node_type}"
