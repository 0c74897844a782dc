"""Rule fixture tests, generated from the registry: one test per rule and `before*.py` file.

A rule's fixtures live in `tests/fixtures/<CODE>/`. For each `before.py` / `before_<N>.py`:

- the file is linted with only that rule selected, and the `full` rendering must equal `expected.txt` /
  `expected_<N>.txt` (message, excerpt, fix title, diff, applicability);
- the rule's fixes are applied (unsafe ones included, display-only ones not) and the result must equal
  `after.py` / `after_<N>.py`;
- the fixed text is linted again: no diagnostic of the rule with an applicable fix is left, and fixing it
  once more changes nothing;
- the trap list: every line marked `# error:` has a diagnostic starting on it, no line marked `# ok:` has
  one, and every diagnostic starts on a line marked `# error:`.

Options: a first line `# OPTIONS: {...}` holds a JSON object with any of these keys:

- `"target-versions"`: `{"sqlalchemy": "1.4", "fastapi": "0.95"}`, the versions the linted project targets,
  read like `[tool.fastsqla-lint] target-versions` ("1.4" means the 1.4 series, ">=2.0,<3" a range);
- `"options"`: the rule's options, read like `[tool.fastsqla-lint.rules.<CODE>]`;
- `"module"`: the dotted module name the file is linted as (default: the file's stem).

Projects: every fixture is linted as one module of a small project, so the project index knows it. When the
rule's folder has a `project/` subfolder, its files are the other modules of that project (a URL constant in
`project/app/config.py` imported by `before_5.py`, whose OPTIONS say `"module": "app.database"`).

`pytest --update-fixtures` rewrites `expected*.txt` and `after*.py` from the current output (the trap-list
and re-lint checks still run); review the `git diff` by eye before committing, as with snapshot tests.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from fastsqla_lint import engine
from fastsqla_lint import project as proj
from fastsqla_lint.config import Config, _target_range, parse_table
from fastsqla_lint.diagnostics import Applicability, Diagnostic
from fastsqla_lint.output import RenderContext, render
from fastsqla_lint.registry import all_rules
from fastsqla_lint.rule import Rule
from fastsqla_lint.versions import Versions

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPTIONS_LINE = re.compile(r"^#\s*OPTIONS:\s*(\{.*\})\s*$")
ERROR_MARK = re.compile(r"#\s*error:", re.IGNORECASE)
OK_MARK = re.compile(r"#\s*ok:", re.IGNORECASE)
OPTION_KEYS = frozenset({"target-versions", "options", "module"})


# -- helpers (also used by test_registry.py) -----------------------------------------------------
def read(path: Path) -> str:
    """A fixture file's text, newlines kept as they are."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def fixture_options(text: str) -> dict:
    """The `# OPTIONS: {...}` object of a fixture's first line ({} when there is none)."""
    first = text.splitlines()[0] if text else ""
    m = OPTIONS_LINE.match(first)
    if not m:
        return {}
    opts = json.loads(m.group(1))
    unknown = set(opts) - OPTION_KEYS
    if unknown:
        raise ValueError(f"unknown OPTIONS keys {sorted(unknown)}; valid: {sorted(OPTION_KEYS)}")
    return opts


def config_for(code: str, opts: dict | None = None) -> Config:
    """A Config selecting only `code`, with the fixture's target versions and rule options.

    The OPTIONS go through the same reader as a `[tool.fastsqla-lint]` table, so they are validated alike.
    """
    opts = opts or {}
    table: dict = {"select": [code]}
    if "target-versions" in opts:
        table["target-versions"] = opts["target-versions"]
    if opts.get("options"):
        table["rules"] = {code: opts["options"]}
    config = parse_table(table, where="fixture OPTIONS")
    ranges = {package: _target_range(package, version) for package, version in config.target_versions}
    return replace(config, versions=Versions().with_ranges(ranges))


@dataclass
class Linted:
    """One source text linted as a module of a throw-away project."""

    text: str
    display: str
    config: Config
    project: proj.Project
    path: Path
    module_name: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)

    def lint(self, text: str) -> engine.FileResult:
        return engine.lint_text(
            text, self.display, self.config, self.project.index, module_name=self.module_name, is_package=False
        )

    def fix(self, text: str) -> engine.FixOutcome:
        return engine.fix_text(
            text,
            self.display,
            self.config,
            self.project.index,
            Applicability.UNSAFE,
            module_name=self.module_name,
            is_package=False,
        )

    def render(self) -> str:
        return render("full", self.diagnostics, RenderContext(sources={self.display: self.text}))


def lint_in_project(
    text: str,
    config: Config,
    workdir: Path,
    display: str = "example.py",
    module_name: str = "example",
    project_dir: Path | None = None,
) -> Linted:
    """Lint `text` as module `module_name` of a project made of `project_dir`'s files (if any) and it."""
    root = workdir / "project"
    if project_dir is not None:
        shutil.copytree(project_dir, root)
    else:
        root.mkdir(parents=True)
    target = root.joinpath(*module_name.split(".")).with_suffix(".py")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text.encode("utf-8"))
    files = [(p, display if p == target else p.relative_to(root).as_posix()) for p in sorted(root.rglob("*.py"))]
    project = proj.build_project(root, config, files)
    result = proj.lint_file(project, target)
    return Linted(text, display, config, project, target, module_name, result.diagnostics, result.internal_errors)


# -- the generated tests ---------------------------------------------------------------------------
def _cases() -> list:
    cases = []
    for rule in all_rules():
        folder = FIXTURES / rule.code
        for before in sorted(folder.glob("before*.py")):
            cases.append(pytest.param(rule, before, id=f"{rule.code}/{before.name}"))
    return cases


def _sibling(before: Path, kind: str, suffix: str) -> Path:
    return before.with_name(kind + before.stem[len("before") :] + suffix)


def _marked_lines(text: str, mark: re.Pattern) -> set[int]:
    return {i for i, line in enumerate(text.splitlines(), start=1) if mark.search(line)}


@pytest.mark.parametrize(("rule", "before"), _cases())
def test_fixture(rule: type[Rule], before: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    update = request.config.getoption("--update-fixtures")
    text = read(before)
    opts = fixture_options(text)
    folder = before.parent
    project_dir = folder / "project" if (folder / "project").is_dir() else None
    linted = lint_in_project(
        text,
        config_for(rule.code, opts),
        tmp_path,
        display=before.name,
        module_name=opts.get("module", before.stem),
        project_dir=project_dir,
    )
    assert not linted.internal_errors, "\n".join(linted.internal_errors)
    assert all(d.code == rule.code for d in linted.diagnostics), [d.code for d in linted.diagnostics]

    # the trap list
    found = {d.start.line for d in linted.diagnostics}
    errors, oks = _marked_lines(text, ERROR_MARK), _marked_lines(text, OK_MARK)
    assert sorted(errors - found) == [], "lines marked `# error:` without a diagnostic"
    assert sorted(oks & found) == [], "lines marked `# ok:` with a diagnostic"
    assert sorted(found - errors) == [], "diagnostics on lines not marked `# error:`"

    expected_path = _sibling(before, "expected", ".txt")
    rendered = linted.render()
    fixed = linted.fix(text)
    assert not fixed.warnings, fixed.warnings
    after_path = _sibling(before, "after", ".py")
    if update:
        write(expected_path, rendered)
        write(after_path, fixed.text)
    assert expected_path.exists(), f"{expected_path.name} is missing (run pytest --update-fixtures and review it)"
    assert rendered == read(expected_path)
    assert after_path.exists(), f"{after_path.name} is missing (run pytest --update-fixtures and review it)"
    assert fixed.text == read(after_path)

    # the fixed text: parses, nothing fixable left, and a second fix is a no-op
    again = linted.lint(fixed.text)
    assert not again.internal_errors, "\n".join(again.internal_errors)
    assert [d for d in again.diagnostics if d.code == engine.SYNTAX_CODE] == []
    left = [d for d in again.diagnostics if d.fix is not None and d.fix.applies_at(Applicability.UNSAFE)]
    assert left == [], "fixable diagnostics left after fixing"
    assert linted.fix(fixed.text).text == fixed.text, "fixing twice changes the text"


def test_every_fixture_file_has_a_before() -> None:
    """Stray `expected*.txt` / `after*.py` files (a renamed before file) are caught."""
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir() and re.fullmatch(r"FSL\d{3}", p.name)):
        befores = {p.stem[len("before") :] for p in folder.glob("before*.py")}
        for other in list(folder.glob("expected*.txt")) + list(folder.glob("after*.py")):
            kind = "expected" if other.name.startswith("expected") else "after"
            assert other.stem[len(kind) :] in befores, f"{other} has no matching before file"
