"""Output formats, each compared with a hand-reviewed rendering in tests/snapshots/.

The diagnostics are built by hand against tests/snapshots/sample_app.txt and sample_broken.txt. To rewrite
the renderings after a deliberate change: `UPDATE_SNAPSHOTS=1 pytest tests/test_output.py`, then review the
`git diff` of tests/snapshots/ line by line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fastsqla_lint.diagnostics import (
    Applicability,
    Diagnostic,
    Fix,
    LineIndex,
    Position,
    Severity,
    make_edit,
)
from fastsqla_lint.output import FORMAT_NAMES, FORMATS, RenderContext, RuleMeta, render
from fastsqla_lint.output import github as github_format
from fastsqla_lint.output.sarif import uri

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
APP = (SNAPSHOTS / "sample_app.txt").read_text(encoding="utf-8")
BROKEN = (SNAPSHOTS / "sample_broken.txt").read_text(encoding="utf-8")
APP_PATH = "app/db.py"
BROKEN_PATH = "legacy/odd, name.py"
URL = "https://github.com/fastsqla-lint/fastsqla-lint/blob/main/docs/rules/{}.md"


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8", newline="")
    assert path.exists(), f"no snapshot {name}: run with UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"rendering differs from tests/snapshots/{name}"


def col(text: str, line: int, needle: str) -> int:
    """The 0-based column of `needle` on a 1-based line."""
    return text.splitlines()[line - 1].index(needle)


def fix(text: str, applicability: Applicability, title: str, *changes) -> Fix:
    """A Fix from `((line, col), (line, col), content)` changes against `text`."""
    index = LineIndex(text)
    edits = tuple(
        make_edit(index, index.offset(Position(*a)), index.offset(Position(*b)), content) for a, b, content in changes
    )
    return Fix(applicability, title, edits)


def diag(path, code, name, message, start, end, severity=Severity.ERROR, fix=None, fix_title=None, url=True):
    text = APP if path == APP_PATH else BROKEN
    index = LineIndex(text)
    s, e = Position(*start), Position(*end)
    return Diagnostic(
        path=path,
        code=code,
        name=name,
        message=message,
        severity=severity,
        start=s,
        end=e,
        start_offset=index.offset(s),
        end_offset=index.offset(e),
        fix=fix,
        fix_title=fix.title if fix else fix_title,
        url=URL.format(code) if url else None,
        noqa_row=s.line if url else None,
    )


CONNECT_ARGS = 'connect_args={"check_same_thread": False}'


def sample() -> list[Diagnostic]:
    line12 = APP.splitlines()[11]
    return [
        # a safe fix inside one line
        diag(
            APP_PATH, "FSL005", "sqlite-same-thread", "SQLite engine used across threads without `check_same_thread=False`",
            (6, 9), (6, 36),
            fix=fix(APP, Applicability.SAFE, f"Pass `{CONNECT_ARGS}`", ((6, 35), (6, 35), f", {CONNECT_ARGS}")),
        ),
        # a range over several lines, an unsafe fix with two edits far apart
        diag(
            APP_PATH, "FSL005", "sqlite-same-thread", "In-memory SQLite engine without `StaticPool`",
            (7, 9), (10, 1),
            fix=fix(
                APP, Applicability.UNSAFE, "Add `connect_args` and `poolclass=StaticPool`",
                ((3, 0), (3, 0), "from sqlalchemy.pool import StaticPool\n"),
                ((10, 0), (10, 0), f"    {CONNECT_ARGS},\n    poolclass=StaticPool,\n"),
            ),
        ),
        # an info diagnostic with neither fix nor fix title
        diag(APP_PATH, "FSL102", "engine-at-import", "Session factory bound at import time", (11, 15), (11, 40),
             severity=Severity.INFO),
        # wide characters before the range; a fix title without a fix
        diag(
            APP_PATH, "FSL005", "sqlite-same-thread", "SQLite engine used across threads without `check_same_thread=False`",
            (12, col(APP, 12, "create_engine")), (12, len(line12)), fix_title=f"Pass `{CONNECT_ARGS}`",
        ),
        # a tab-indented line, a warning, a display-only fix, and `%`, `:`, `,` in the message
        diag(
            APP_PATH, "FSL003", "session-not-closed", "Session never closed: 100% of requests leak one, at least",
            (16, 6), (16, 20), severity=Severity.WARNING,
            fix=fix(APP, Applicability.DISPLAY_ONLY, "Open the session in a `with` block",
                    ((16, 1), (17, 10), "with SessionLocal() as db:\n\t\treturn db")),
        ),
        # an empty range at a syntax error, in a path with a space and a comma, no URL
        diag(BROKEN_PATH, "FSL900", "unparsable-file", "SyntaxError: invalid syntax", (1, 6), (1, 6), url=False),
    ]


def context(**kwargs) -> RenderContext:
    rules = {"FSL005": RuleMeta("FSL005", "sqlite-same-thread", "SQLite connection shared across threads",
                                URL.format("FSL005"))}
    return RenderContext(sources={APP_PATH: APP, BROKEN_PATH: BROKEN}, rules=rules, **kwargs)


# -- snapshots -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, ext", [("concise", "txt"), ("full", "txt"), ("json", "json"), ("sarif", "json"),
                                      ("github", "txt")])
def test_snapshot(fmt, ext):
    assert_snapshot(f"{fmt}.{ext}", render(fmt, sample(), context()))


def test_snapshot_full_with_unsafe_threshold_and_colour():
    text = render("full", sample(), context(threshold=Applicability.UNSAFE, color=True))
    assert_snapshot("full_color.txt", text)
    assert "\x1b[" in text
    # without the escape codes it is the plain rendering, apart from the `[*]` of the unsafe fix
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    expected = render("full", sample(), context(threshold=Applicability.UNSAFE))
    assert plain == expected


def test_every_format_is_registered():
    assert set(FORMAT_NAMES) == {"full", "concise", "json", "sarif", "github"}
    assert set(FORMATS) == set(FORMAT_NAMES)


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_no_diagnostics(fmt):
    text = render(fmt, [], RenderContext(rules={}))
    if fmt == "json":
        assert json.loads(text) == []
    elif fmt == "sarif":
        assert json.loads(text)["runs"][0]["results"] == []
    else:
        assert text == ""


# -- concise / full --------------------------------------------------------------------------------------


def test_fix_marker_follows_the_threshold():
    d = sample()
    safe = render("concise", d, context()).splitlines()
    unsafe = render("concise", d, context(threshold=Applicability.UNSAFE)).splitlines()
    assert [("[*]" in x) for x in safe] == [True, False, False, False, False, False]
    assert [("[*]" in x) for x in unsafe] == [True, True, False, False, False, False]  # never display-only


def test_full_without_source_text_still_gives_line_and_help():
    d = sample()[0]
    text = render("full", [d], RenderContext())
    assert text.splitlines() == [
        "app/db.py:6:10: FSL005 [*] SQLite engine used across threads without `check_same_thread=False`",
        f"  = help: Pass `{CONNECT_ARGS}`",
        "",  # a blank line closes each block
    ]


def test_full_caret_aligns_under_wide_characters():
    d = sample()[3]
    lines = render("full", [d], context()).splitlines()
    src = next(x for x in lines if "データベース" in x)
    carets = lines[lines.index(src) + 1]
    # six wide characters take twelve columns: the carets start under `create_engine`
    assert carets.index("^") == src.index("create_engine") + 6
    assert carets.endswith("^ FSL005")


def test_full_on_a_real_engine_diagnostic():
    from fastsqla_lint import engine

    (d,) = engine.lint_text(BROKEN, "broken.py").diagnostics
    lines = render("full", [d], RenderContext(sources={"broken.py": BROKEN})).splitlines()
    assert lines[0] == f"broken.py:{d.start.line}:{d.start.column + 1}: FSL900 {d.message}"
    src = BROKEN.splitlines()[d.start.line - 1]
    at = lines.index(f"{d.start.line} | {src}".rstrip())
    assert lines[at + 1] == "  | " + " " * d.start.column + "^ FSL900"


# -- json -----------------------------------------------------------------------------------------------


def test_json_shape_and_one_based_positions():
    items = json.loads(render("json", sample(), context()))
    assert len(items) == 6
    for item in items:
        assert set(item) == {"code", "message", "filename", "location", "end_location", "fix", "noqa_row", "url"}
    first = items[0]
    assert first["location"] == {"row": 6, "column": 10}
    assert first["end_location"] == {"row": 6, "column": 37}
    assert first["fix"]["applicability"] == "safe"
    assert first["fix"]["edits"] == [
        {"content": f", {CONNECT_ARGS}", "location": {"row": 6, "column": 36}, "end_location": {"row": 6, "column": 36}}
    ]
    assert [i["fix"]["applicability"] if i["fix"] else None for i in items] == [
        "safe", "unsafe", None, None, "display-only", None
    ]
    assert items[5]["url"] is None and items[5]["noqa_row"] is None


# -- sarif ----------------------------------------------------------------------------------------------


def test_sarif_required_structure():
    log = json.loads(render("sarif", sample(), context()))
    assert log["version"] == "2.1.0"
    assert "$schema" in log
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "fastsqla-lint"
    assert driver["version"] and driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["FSL003", "FSL005", "FSL102", "FSL900"]
    fsl005 = rules[1]
    assert fsl005["shortDescription"]["text"] == "SQLite connection shared across threads"  # from ctx.rules
    assert fsl005["helpUri"] == URL.format("FSL005")
    assert fsl005["defaultConfiguration"]["level"] == "error"
    assert rules[0]["defaultConfiguration"]["level"] == "warning"
    assert rules[2]["defaultConfiguration"]["level"] == "note"
    assert "helpUri" not in rules[3]
    results = run["results"]
    assert len(results) == 6
    for result in results:
        assert {"ruleId", "level", "message", "locations"} <= set(result)
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        assert (region["endLine"], region["endColumn"]) >= (region["startLine"], region["startColumn"])
    first = results[0]
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app/db.py"
    assert first["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 6, "startColumn": 10, "endLine": 6, "endColumn": 37
    }
    (change,) = first["fixes"][0]["artifactChanges"]
    assert change["replacements"] == [
        {
            "deletedRegion": {"startLine": 6, "startColumn": 36, "endLine": 6, "endColumn": 36},
            "insertedContent": {"text": f", {CONNECT_ARGS}"},
        }
    ]
    assert results[5]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "legacy/odd%2C%20name.py"
    assert "fixes" not in results[2]


def test_sarif_validates_against_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SNAPSHOTS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    log = json.loads(render("sarif", sample(), context()))
    jsonschema.Draft4Validator(schema).validate(log)
    # and the check can fail: a result without a message is rejected
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(log)


def test_sarif_rules_from_the_registry_by_default():
    from fastsqla_lint import engine

    result = engine.lint_text(BROKEN, "broken.py")
    log = json.loads(render("sarif", result.diagnostics, RenderContext()))
    (rule,) = log["runs"][0]["tool"]["driver"]["rules"]
    assert rule["id"] == "FSL900"
    assert rule["shortDescription"]["text"] == "The file cannot be decoded or parsed"


@pytest.mark.parametrize(
    "path, expected",
    [("app/db.py", "app/db.py"), ("app\\db.py", "app/db.py"), ("a b.py", "a%20b.py"), ("/srv/app/x.py", "file:///srv/app/x.py")],
)
def test_sarif_uri(path, expected):
    assert uri(path) == expected


# -- github ---------------------------------------------------------------------------------------------


def test_github_escaping():
    assert github_format.escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert github_format.escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    d = sample()[4]
    multi = Diagnostic(**{**d.__dict__, "message": "first line\nsecond: line"})
    line = github_format.line(multi)
    assert line.startswith("::warning file=app/db.py,line=16,col=7,endLine=16,endColumn=21,")
    assert line.endswith("::first line%0Asecond: line")
    assert "\n" not in line


def test_github_severities():
    commands = [line.split(" ", 1)[0] for line in render("github", sample(), context()).splitlines()]
    assert commands == ["::error", "::error", "::notice", "::error", "::warning", "::error"]

