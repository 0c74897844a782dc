"""Hostile input end to end: any bytes in a `.py` file, odd trees, and `--fix` on both.

Every case is one file of one FastAPI project (`app/<case>.py`) next to a file with a fixable finding
(`app/good.py`). The whole tree is checked (and fixed) in one run, as a user's tree would be: the run
completes, each hostile file gets `FSL900` or is linted, the good file is still linted and fixed, there
is no traceback and no internal error, and the exit code is the documented one.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
import pytest

from conftest import run_cli, token_bracket_depth, write_files

FILE_DB = 'from sqlalchemy import create_engine\n\nengine = create_engine("sqlite:///./app.db")\n'
FILE_DB_FIXED = (
    'from sqlalchemy import create_engine\n\n'
    'engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})\n'
)
PROJECT = {
    "pyproject.toml": '[project]\nname = "demo"\n',
    "app/__init__.py": "",
    "app/main.py": "from fastapi import FastAPI\n\napp = FastAPI()\n",
    "app/good.py": FILE_DB,
}


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: str  # "FSL900": reported as unparsable; "linted": no FSL900; "either"
    finding: bool = False  # linted and holding FILE_DB's finding (fixed by --fix, the file's form kept)
    encoding: str = "utf-8"
    bom: bool = False
    newline: str = "\n"


def _nested(opener: str, closer: str, depth: int) -> bytes:
    return f"x = {opener * depth}1{closer * depth}\n".encode()


def _five_megabytes() -> bytes:
    """A 5 MB generated module (a data table as text, as such modules are), the finding at its very end.

    Dense code of that size takes minutes to analyse (the rules' cost grows with the node count), too
    long for every test run; the size itself is what this case is about.
    """
    row = "{i:>8} | lorem ipsum dolor sit amet | consectetur adipiscing elit | {i:x}\n"
    head = "# Generated file: do not edit.\n\n\ndef lookup(key):\n    return TABLE.get(key)\n\n\n"
    rows, size, i = [], 0, 0
    while size < 5 * 1024 * 1024:
        rows.append(row.format(i=i))
        size += len(rows[-1])
        i += 1
    return (head + 'TABLE_TEXT = """\n' + "".join(rows) + '"""\n\n' + FILE_DB).encode()


CASES = [
    Case("invalid_utf8", b"x = '\xff\xfe'\n", "FSL900"),
    Case("invalid_utf8_late", FILE_DB.encode() + b"# caf\xc3\x28\n", "FSL900"),
    Case("surrogate_bytes", b"x = '\xed\xa0\x80'\n", "FSL900"),
    Case("unknown_cookie", b"# -*- coding: klingon -*-\nx = 1\n", "FSL900"),
    Case("utf16_cookie", b"# coding: utf-16\nx = 1\n", "FSL900"),
    Case(
        "latin1_cookie",
        "# -*- coding: latin-1 -*-\ncafe = 'caf\xe9 cr\xe8me'\n".encode("latin-1") + FILE_DB.encode(),
        "linted",
        finding=True,
        encoding="latin-1",
    ),
    Case(
        "cp1252_cookie",
        "# coding: cp1252\nq = '\u201cquoted\u201d \u20ac'\n".encode("cp1252") + FILE_DB.encode(),
        "linted",
        finding=True,
        encoding="cp1252",
    ),
    Case("bom", codecs.BOM_UTF8 + ("# caf\u00e9\n" + FILE_DB).encode(), "linted", finding=True, bom=True),
    Case("bom_and_cookie", codecs.BOM_UTF8 + b"# coding: utf-8\n" + FILE_DB.encode(), "linted", finding=True, bom=True),
    Case("bom_and_latin1_cookie", codecs.BOM_UTF8 + b"# coding: latin-1\nx = 1\n", "FSL900"),
    Case("crlf", FILE_DB.replace("\n", "\r\n").encode(), "linted", finding=True, newline="\r\n"),
    Case("cr_only", FILE_DB.replace("\n", "\r").encode(), "linted", finding=True, newline="\r"),
    Case("mixed_newlines", b"x = 1\r\ny = 2\nz = 3\r", "linted"),
    Case("form_feeds", ("\f\n" + FILE_DB + "\f\ndef f():\n    \f\n    return 1\n\f").encode(), "linted", finding=True),
    Case("form_feed_indent", ("class A:\n\f pass\n\n" + FILE_DB).encode(), "linted", finding=True),
    Case("tabs", ("if True:\n\tx = 1\n\tif x:\n\t\ty = 2\n" + FILE_DB).encode(), "linted", finding=True),
    Case("tabs_and_spaces", b"if True:\n\tx = 1\n        y = 2\n", "FSL900"),
    Case("nul_in_code", b"x = 1\x00\n" + FILE_DB.encode(), "FSL900"),
    Case("nul_in_string", b"x = '\x00'\n", "either"),
    Case("empty", b"", "linted"),
    Case("whitespace_only", b"   \n\t\n  \r\n\f", "linted"),
    Case("comment_without_newline", b"# just a comment", "linted"),
    Case("no_final_newline", FILE_DB.rstrip("\n").encode(), "linted", finding=True),
    Case("backslash_at_eof", b"x = 1 \\", "FSL900"),
    Case("unterminated_string", b'x = """never closed\n', "FSL900"),
    Case("unclosed_import_list", b"from sqlalchemy import (\n    create_engine,\n" + b"#" * 80 + b"\n", "FSL900"),
    Case("emoji", ("s = '\U0001f600'  # \u00e9\n" + FILE_DB).encode(), "linted", finding=True),
    Case("long_line", ("x = '" + "a" * 1_000_000 + "'\n" + FILE_DB).encode(), "linted", finding=True),
    Case("parens_2000", _nested("(", ")", 2000), "FSL900"),
    Case("lists_2000", _nested("[", "]", 2000), "FSL900"),
    Case("calls_2000", ("x = " + "f(" * 2000 + ")" * 2000 + "\n").encode(), "FSL900"),
    Case("parens_100000", _nested("(", ")", 100_000), "FSL900"),
    Case("not_2000", ("x = " + "not " * 2000 + "y\n").encode(), "either"),
    Case("not_30000", ("x = " + "not " * 30_000 + "y\n").encode(), "FSL900"),
    Case("minus_20000", ("x = " + "-" * 20_000 + "1\n").encode(), "FSL900"),
    Case("lambda_2000", ("x = " + "lambda: " * 2000 + "1\n").encode(), "either"),
    Case("attributes_2000", ("x = y" + ".a" * 2000 + "\n").encode(), "either"),
    Case("sum_2000", ("x = " + " + ".join(["1"] * 2000) + "\n").encode(), "either"),
    Case("strings_2000", ("x = (" + " ".join(["'a'"] * 2000) + ")\n").encode(), "either"),
    Case("elif_2000", ("if a:\n    pass\n" + "elif a:\n    pass\n" * 2000).encode(), "either"),
    Case("elif_30000", ("if a:\n    pass\n" + "elif a:\n    pass\n" * 30_000).encode(), "FSL900"),
    Case("indent_150", "".join(" " * i + "if x:\n" for i in range(150)).encode() + b" " * 150 + b"pass\n", "FSL900"),
    Case("five_megabytes", _five_megabytes(), "linted", finding=True),
    Case(
        "pep695_generics",
        ("def first[T](xs: list[T]) -> T:\n    return xs[0]\n\n\nclass Box[T: int, *Ts, **P]:\n    pass\n\n\n" + FILE_DB).encode(),
        "linted",
        finding=True,
    ),
    Case("type_statement", ("type Pair[T] = tuple[T, T]\ntype Url = str\n" + FILE_DB).encode(), "linted", finding=True),
    Case(
        "pep758_except",
        (
            "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n\n"
            "try:\n    pass\nexcept* OSError, KeyError:\n    pass\n" + FILE_DB
        ).encode(),
        "linted",
        finding=True,
    ),
    Case(
        "pep701_fstrings",
        ('x = f"{"nested"}"\ny = f"{f"{x!r:>{10}}"}"\nz = f"{x # comment\n}"\n' + FILE_DB).encode(),
        "linted",
        finding=True,
    ),
    Case("pep750_tstrings", ("name = 'x'\nt = t'hello {name}'\n" + FILE_DB).encode(), "linted", finding=True),
    Case("match_statement", b"match x:\n    case [1, *rest] if rest:\n        pass\n    case _:\n        pass\n", "linted"),
]
HOSTILE_PATHS = [f"app/{c.name}.py" for c in CASES]


@pytest.fixture(scope="module")
def hostile_tree(tmp_path_factory) -> Path:
    root = write_files(tmp_path_factory.mktemp("hostile"), PROJECT)
    write_files(root, {f"app/{c.name}.py": c.data for c in CASES})
    # The app imports every module, as an app does: a module that neither imports a library the rules
    # know nor is imported by one is not parsed at all (the prefilter), so it could not be reported.
    imports = "".join(f"from app import {c.name}  # noqa: F401\n" for c in CASES)
    write_files(root, {"app/main.py": imports + PROJECT["app/main.py"]})
    return root


def _by_file(proc) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for d in json.loads(proc.stdout):
        found.setdefault(d["filename"], []).append(d)
    return found


@pytest.fixture(scope="module")
def checked(hostile_tree):
    # The hostile files are named as well as the tree: a named file is always parsed, whereas the
    # prefilter may skip (and so never syntax-check) a file that holds nothing the rules could use.
    proc = run_cli("check", "--output-format", "json", ".", *HOSTILE_PATHS, cwd=hostile_tree)
    return proc, _by_file(proc) if proc.stdout.startswith("[") else {}


@pytest.fixture(scope="module")
def fixed(hostile_tree, tmp_path_factory):
    tree = tmp_path_factory.mktemp("hostile_fix") / "tree"
    shutil.copytree(hostile_tree, tree, symlinks=True)
    proc = run_cli("check", "--fix", "--output-format", "json", ".", *HOSTILE_PATHS, cwd=tree)
    return proc, tree


def test_the_run_completes_without_internal_errors(checked):
    proc, _ = checked
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


def test_other_files_are_still_linted(checked):
    _, found = checked
    assert [d["code"] for d in found.get("app/good.py", [])] == ["FSL005"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_file_gets_fsl900_or_is_linted(checked, case):
    proc, found = checked
    codes = [d["code"] for d in found.get(f"app/{case.name}.py", [])]
    if case.expect == "FSL900":
        assert codes == ["FSL900"], codes
    elif case.expect == "linted":
        assert "FSL900" not in codes, found[f"app/{case.name}.py"]
    else:
        assert codes in (["FSL900"], []) or "FSL900" not in codes
    if case.finding:
        assert codes == ["FSL005"], codes


def test_fix_run_completes(fixed):
    proc, tree = fixed
    assert proc.returncode == 1, proc.stderr  # the FSL900 files are left
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert (tree / "app/good.py").read_text() == FILE_DB_FIXED
    assert not [p for p in tree.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fix_keeps_the_form_of_each_file(fixed, case):
    """A fixed file keeps its encoding, BOM and newlines; every other file comes back byte for byte."""
    _, tree = fixed
    after = (tree / f"app/{case.name}.py").read_bytes()
    if not case.finding:
        assert after == case.data
        return
    body = after[3:] if case.bom else after
    assert after.startswith(codecs.BOM_UTF8) == case.bom
    text = body.decode(case.encoding)
    before = (case.data[3:] if case.bom else case.data).decode(case.encoding)
    old_line = 'engine = create_engine("sqlite:///./app.db")'
    new_line = 'engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})'
    assert text == before.replace(old_line, new_line)
    cst.parse_module(after)  # the written bytes parse (LibCST reads the cookie and BOM itself)



@pytest.mark.parametrize("fmt", ["full", "concise", "sarif", "github"])
def test_every_output_format_renders_the_hostile_tree(hostile_tree, checked, fmt):
    """Excerpts of files with CR-only newlines, form feeds, tabs, a 1 MB line, emoji... in every format."""
    proc = run_cli("check", "--output-format", fmt, ".", cwd=hostile_tree)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    _, found = checked
    for name in found:  # every file with a finding is named in the output
        assert name in proc.stdout, name


STDIN_CASES = [c for c in CASES if c.name in {
    "invalid_utf8", "unknown_cookie", "nul_in_code", "parens_100000", "latin1_cookie", "cp1252_cookie", "bom",
    "crlf", "cr_only", "empty", "five_megabytes",
}]


@pytest.mark.parametrize("case", STDIN_CASES, ids=lambda c: c.name)
def test_stdin_fix_echoes_the_bytes_or_fixes_them_in_their_form(project, case):
    proc = run_cli("check", "--fix", "--stdin-filename", f"app/{case.name}.py", "-", cwd=project, input=case.data)
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr, proc.stderr
    if not case.finding:
        assert proc.returncode == (1 if case.expect == "FSL900" else 0), proc.stderr
        assert proc.stdout == case.data
        return
    assert proc.returncode == 0, proc.stderr
    body = proc.stdout[3:] if case.bom else proc.stdout
    assert proc.stdout.startswith(codecs.BOM_UTF8) == case.bom
    before = (case.data[3:] if case.bom else case.data).decode(case.encoding)
    assert body.decode(case.encoding) == before.replace(
        'create_engine("sqlite:///./app.db")',
        'create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})',
    )

# -- odd trees --------------------------------------------------------------------------------------

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="needs POSIX symlinks")


def _concise(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if ": FSL" in line]


@pytest.fixture
def project(tmp_path) -> Path:
    return write_files(tmp_path, PROJECT)


@needs_symlinks
def test_symlink_loops_dangling_links_and_a_folder_named_like_a_module(project):
    write_files(project, {"app/x.py/inner.py": FILE_DB})
    app = project / "app"
    (app / "loop").symlink_to("..")  # a folder loop: not followed
    (app / "self.py").symlink_to("self.py")
    (app / "a.py").symlink_to("b.py")
    (app / "b.py").symlink_to("a.py")
    (app / "dangling.py").symlink_to("missing.py")
    proc = run_cli("check", "--output-format", "concise", ".", cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert [line.split(":")[0] for line in _concise(proc)] == ["app/good.py", "app/x.py/inner.py"]
    # named explicitly, the links that lead nowhere are reported, not skipped
    proc = run_cli("check", "--output-format", "concise", "app/self.py", "app/a.py", "app/dangling.py", "app/x.py", cwd=project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    out = _concise(proc)
    assert [line.split(":")[0] for line in out] == ["app/a.py", "app/dangling.py", "app/self.py", "app/x.py/inner.py"]
    assert all(": FSL900 The file cannot be read" in line for line in out[:3])


@needs_symlinks
def test_a_file_reached_through_a_symlink_is_fixed_once(project):
    (project / "app" / "linked.py").symlink_to("good.py")
    proc = run_cli("check", "--fix", "--output-format", "concise", ".", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr
    assert (project / "app" / "linked.py").is_symlink()
    assert (project / "app" / "good.py").read_text() == FILE_DB_FIXED


@needs_symlinks
def test_fix_never_writes_through_a_symlinked_folder_out_of_the_project(project, tmp_path_factory):
    outside = write_files(tmp_path_factory.mktemp("elsewhere"), {"lib/db.py": FILE_DB})
    (project / "app" / "vendored").symlink_to(outside / "lib")
    proc = run_cli("check", "--fix", "--output-format", "concise", "app/vendored/db.py", cwd=project)
    assert proc.returncode == 1
    assert "app/vendored/db.py: not fixed" in proc.stderr and "symlink" in proc.stderr
    assert (outside / "lib/db.py").read_text() == FILE_DB
    assert not list((outside / "lib").glob(".*.tmp"))


# -- races and fix safety -----------------------------------------------------------------------------


def _invoke(args: list[str]):
    """The command in this process (so a test can break one piece of it); returns click's Result."""
    from click.testing import CliRunner

    from fastsqla_lint.cli import cli

    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1 mixes stderr into stdout unless told not to
    except TypeError:  # click 8.2 and later keep them apart, and have no such argument
        runner = CliRunner()
    return runner.invoke(cli, args, catch_exceptions=False)


def test_a_file_that_disappears_after_discovery(project, monkeypatch):
    from fastsqla_lint import discovery

    write_files(project, {"app/gone.py": FILE_DB})
    found = discovery.discover

    def discover_then_delete(*args, **kwargs):
        targets = found(*args, **kwargs)
        (project / "app/gone.py").unlink()
        return targets

    monkeypatch.setattr(discovery, "discover", discover_then_delete)
    monkeypatch.chdir(project)
    result = _invoke(["check", "--fix", "--output-format", "concise", "."])
    assert result.exit_code == 1, result.output
    out = [line for line in result.stdout.splitlines() if ": FSL" in line]
    assert out == ["app/gone.py:1:1: FSL900 The file cannot be read: No such file or directory"]
    assert (project / "app/good.py").read_text() == FILE_DB_FIXED
    assert not (project / "app/gone.py").exists()


def test_a_file_that_disappears_before_it_is_written(project, monkeypatch):
    from fastsqla_lint import writer

    write = writer.write_fixed

    def delete_then_write(path, *args, **kwargs):
        path.unlink()
        return write(path, *args, **kwargs)

    monkeypatch.setattr(writer, "write_fixed", delete_then_write)
    monkeypatch.chdir(project)
    result = _invoke(["check", "--fix", "--output-format", "concise", "."])
    assert result.exit_code == 1
    assert "app/good.py: not fixed: it cannot be read back" in result.stderr
    assert not (project / "app/good.py").exists()  # not brought back to life
    assert not list((project / "app").glob(".*.tmp"))


def test_fixes_that_would_not_parse_are_never_written(project, monkeypatch):
    from fastsqla_lint import engine

    apply = engine.apply_fixes
    monkeypatch.setattr(engine, "apply_fixes", lambda text, fixes: (apply(text, fixes)[0] + "def (:\n", len(fixes)))
    monkeypatch.chdir(project)
    result = _invoke(["check", "--fix", "--output-format", "concise", "."])
    assert result.exit_code == 1
    assert "app/good.py: the fixes would not parse" in result.stderr
    assert (project / "app/good.py").read_text() == FILE_DB


def test_the_writer_refuses_text_that_does_not_parse_whatever_the_engine_says(project, monkeypatch):
    from fastsqla_lint import engine

    fix_text = engine.fix_text

    def broken(*args, **kwargs):
        outcome = fix_text(*args, **kwargs)
        outcome.text += "def (:\n"
        return outcome

    monkeypatch.setattr(engine, "fix_text", broken)
    monkeypatch.chdir(project)
    result = _invoke(["check", "--fix", "--output-format", "concise", "."])
    assert result.exit_code == 1
    assert "app/good.py: not fixed: the fixed text would not parse" in result.stderr
    assert (project / "app/good.py").read_text() == FILE_DB


MEMORY_DB = (
    "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\n"
    'app = FastAPI()\nengine = create_engine("sqlite://")\n'
)


def test_two_fix_runs_at_once_leave_every_file_old_or_new(tmp_path):
    """Two `--fix` runs race over the same 40 files, twice: each file ends fully fixed or untouched."""
    import subprocess
    import sys

    files = {f"app/db_{i:02}.py": (FILE_DB if i % 2 else MEMORY_DB) + f"# {i}\n" for i in range(40)}
    files["app/big.py"] = FILE_DB + 'TEXT = """\n' + "".join(f"line {i}\n" for i in range(300_000)) + '"""\n'  # a long write
    expected_tree = write_files(tmp_path / "expected", {**PROJECT, **files})
    proc = run_cli("check", "--fix", "--unsafe-fixes", ".", cwd=expected_tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    for round_ in range(2):
        tree = write_files(tmp_path / f"race{round_}", {**PROJECT, **files})
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "fastsqla_lint", "check", "--fix", "--unsafe-fixes", "."],
                cwd=tree,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        for run in runs:
            _, err = run.communicate(timeout=300)
            assert run.returncode in (0, 1) and b"Traceback" not in err, err
        for rel, old in files.items():
            now = (tree / rel).read_bytes()
            assert now in (old.encode(), (expected_tree / rel).read_bytes()), rel
        assert not [p for p in tree.rglob("*.tmp")]
        # whatever the interleaving, one more run finishes the job
        assert run_cli("check", "--fix", "--unsafe-fixes", ".", cwd=tree).returncode == 0


def test_mode_bits_are_kept(project):
    path = project / "app/good.py"
    for mode in (0o755, 0o600, 0o751):
        path.write_text(FILE_DB)
        path.chmod(mode)
        proc = run_cli("check", "--fix", ".", cwd=project)
        assert proc.returncode == 0, proc.stderr
        assert path.read_text() == FILE_DB_FIXED
        assert (path.stat().st_mode & 0o7777) == mode


# -- configuration errors --------------------------------------------------------------------------------

CONFIG_ERRORS = [
    ("invalid_toml", "[tool.fastsqla-lint]\nselect = [\n", ["TOML"]),
    ("invalid_toml_value", "[tool.fastsqla-lint]\nfix = yes\n", ["TOML"]),
    ("unknown_key", '[tool.fastsqla-lint]\nselct = ["FSL005"]\n', ["selct"]),
    ("unknown_nested_key", "[tool.fastsqla-lint.lint]\nx = 1\n", ["lint"]),
    ("wrong_type_bool", '[tool.fastsqla-lint]\nfix = "yes"\n', ["fix"]),
    ("wrong_type_list", "[tool.fastsqla-lint]\nselect = 5\n", ["select"]),
    ("wrong_type_list_item", "[tool.fastsqla-lint]\nignore = [5]\n", ["ignore"]),
    ("wrong_type_table", '[tool.fastsqla-lint]\nper-file-ignores = ["x"]\n', ["per-file-ignores"]),
    ("wrong_type_exclude", "[tool.fastsqla-lint]\nextend-exclude = 3\n", ["extend-exclude"]),
    ("wrong_type_versions", "[tool.fastsqla-lint]\ntarget-versions = 2\n", ["target-versions"]),
    ("bad_version", '[tool.fastsqla-lint]\ntarget-versions = { sqlalchemy = "two" }\n', ["target-versions", "two"]),
    ("tool_table_not_a_table", '[tool]\nfastsqla-lint = "on"\n', ["fastsqla-lint"]),
    ("unknown_code_select", '[tool.fastsqla-lint]\nselect = ["FSL777"]\n', ["FSL777", "select"]),
    ("unknown_code_ignore", '[tool.fastsqla-lint]\nignore = ["XYZ1"]\n', ["XYZ1", "ignore"]),
    ("unknown_code_per_file", '[tool.fastsqla-lint.per-file-ignores]\n"app/*" = ["FSL999"]\n', ["FSL999", "per-file-ignores"]),
    ("unknown_code_rules", "[tool.fastsqla-lint.rules.FSL999]\nx = 1\n", ["FSL999"]),
    ("unknown_rule_option", "[tool.fastsqla-lint.rules.FSL005]\nno-such-option = 1\n", ["no-such-option"]),
    ("output_format", '[tool.fastsqla-lint]\noutput-format = "xml"\n', ["output-format", "xml"]),
]


@pytest.mark.parametrize(("name", "table", "words"), CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
def test_config_errors_exit_2_naming_the_file_and_the_key(tmp_path, name, table, words):
    root = write_files(tmp_path, {**PROJECT, "pyproject.toml": '[project]\nname = "demo"\n\n' + table})
    proc = run_cli("check", ".", cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pyproject.toml" in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "content", [b"\xff\xfe[tool]\n", b"[tool.fastsqla-lint]\nselect = ['\xff']\n"], ids=["binary", "invalid_utf8"]
)
def test_config_file_that_is_not_text(tmp_path, content):
    root = write_files(tmp_path, {**PROJECT, "pyproject.toml": content})
    proc = run_cli("check", ".", cwd=root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "pyproject.toml" in proc.stderr


def test_config_file_that_is_a_folder(tmp_path):
    root = write_files(tmp_path, {k: v for k, v in PROJECT.items() if k != "pyproject.toml"})
    write_files(root, {"pyproject.toml/x": "", "setup.py": ""})
    proc = run_cli("check", ".", cwd=root)
    assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 2:
        assert "pyproject.toml" in proc.stderr


# -- an exception inside one rule --------------------------------------------------------------------------


def _rules():
    from fastsqla_lint.registry import all_rules

    return [r for r in all_rules() if r.code != "FSL900"]


def _visitors(rule) -> list[str]:
    import libcst

    return [
        name
        for name in dir(rule)
        if name.startswith(("visit_", "leave_"))
        and name.count("_") == 1
        and getattr(rule, name) is not getattr(libcst.BatchableCSTVisitor, name, None)
    ]


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.code)
def test_an_exception_in_one_rule_is_contained(rule, monkeypatch):
    """Every visitor of one rule raises: the error names the file and the rule; the other rules report as before."""
    from fastsqla_lint import engine
    from fastsqla_lint.config import parse_table

    source = (Path(__file__).parent / "fixtures" / rule.code / "before.py").read_text(encoding="utf-8")
    config = parse_table({"select": ["ALL"]}, where="test")
    before = engine.lint_text(source, "app/module.py", config)
    assert not before.internal_errors

    def broken(self, node):
        raise RuntimeError("simulated rule bug")

    for name in _visitors(rule):
        monkeypatch.setattr(rule, name, broken)
    after = engine.lint_text(source, "app/module.py", config)
    assert len(after.internal_errors) == 1, after.internal_errors
    assert "app/module.py" in after.internal_errors[0] and rule.code in after.internal_errors[0]
    assert "simulated rule bug" in after.internal_errors[0]
    assert [d for d in after.diagnostics if d.code != rule.code] == [d for d in before.diagnostics if d.code != rule.code]
    assert not [d for d in after.diagnostics if d.code == rule.code]


def test_an_exception_in_one_rule_on_one_file_through_the_cli(project, monkeypatch):
    from fastsqla_lint.rules import sqlite_same_thread

    write_files(project, {"app/other.py": FILE_DB})
    original = sqlite_same_thread.SqliteSameThread.visit_Call

    def visit_call(self, node):
        if self.context.path.endswith("good.py"):
            raise ValueError("simulated rule bug")
        return original(self, node)

    monkeypatch.setattr(sqlite_same_thread.SqliteSameThread, "visit_Call", visit_call)
    monkeypatch.chdir(project)
    result = _invoke(["check", "--fix", "--output-format", "concise", "."])
    assert result.exit_code == 2
    assert "app/good.py" in result.stderr and "FSL005" in result.stderr and "simulated rule bug" in result.stderr
    assert "Traceback" not in result.stderr
    assert (project / "app/other.py").read_text() == FILE_DB_FIXED
    assert (project / "app/good.py").read_text() == FILE_DB


def test_an_exception_while_indexing_one_file_is_contained(project, monkeypatch):
    from fastsqla_lint import engine

    write_files(project, {"app/other.py": FILE_DB})
    summarize = engine.summarize

    def broken(module, names, path, text=None):
        if path.endswith("good.py"):
            raise KeyError("simulated index bug")
        return summarize(module, names, path, text)

    monkeypatch.setattr(engine, "summarize", broken)
    monkeypatch.chdir(project)
    result = _invoke(["check", "--output-format", "concise", "."])
    assert result.exit_code == 2
    assert "app/good.py" in result.stderr and "simulated index bug" in result.stderr
    assert "Traceback" not in result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines() if ": FSL" in line] == ["app/good.py", "app/other.py"]


def test_an_exception_while_building_a_fix_is_contained(project, monkeypatch):
    from fastsqla_lint import engine

    def broken(*args, **kwargs):
        raise RuntimeError("simulated fix bug")

    monkeypatch.setattr(engine, "materialize", broken)
    monkeypatch.chdir(project)
    result = _invoke(["check", "--fix", "--output-format", "concise", "."])
    assert result.exit_code == 2
    assert "app/good.py" in result.stderr and "FSL005" in result.stderr and "simulated fix bug" in result.stderr
    assert "app/good.py:3:10: FSL005" in result.stdout
    assert (project / "app/good.py").read_text() == FILE_DB


def test_the_nesting_bound_reads_unbalanced_brackets():
    """Found by the mutation fuzzer: a closing bracket on a later logical line than its opener."""
    from fastsqla_lint.source import nesting_problem

    assert nesting_problem("db = SessionLocal())\ndef c(\n):\n") is None


@needs_symlinks
def test_odd_file_names_in_every_format(project):
    """Names that are no module names, hold spaces or a newline, or are not UTF-8 (POSIX allows any bytes)."""
    names = ["x.y.py", "1abc.py", "class.py", "\u00e9moji.py", "has space.py", "-dash.py", "new\nline.py"]
    for name in names:
        (project / "app" / name).write_text(FILE_DB, encoding="utf-8")
    undecodable = os.fsencode(str(project / "app")) + b"/caf\xe9.py"
    with open(undecodable, "wb") as f:
        f.write(FILE_DB.encode())
    for fmt in ("concise", "full", "json", "sarif", "github"):
        proc = run_cli("check", "--output-format", fmt, ".", cwd=project, input=b"")  # bytes: names as they are
        assert proc.returncode == 1, f"{fmt}: {proc.stderr}"
        assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr, f"{fmt}: {proc.stderr}"
        assert proc.stdout.count(b"FSL005") >= len(names) + 2, fmt
    proc = run_cli("check", "--fix", ".", cwd=project, input=b"")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in names:
        assert (project / "app" / name).read_text(encoding="utf-8") == FILE_DB_FIXED
    with open(undecodable, "rb") as f:
        assert f.read() == FILE_DB_FIXED.encode()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_path_that_is_not_a_regular_file(project):
    """A named pipe is skipped by discovery; named explicitly, it is reported rather than read (forever)."""
    import subprocess
    import sys

    os.mkfifo(project / "app" / "pipe.py")
    proc = run_cli("check", "--output-format", "concise", ".", cwd=project)
    assert proc.returncode == 1 and [line.split(":")[0] for line in _concise(proc)] == ["app/good.py"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    args = [sys.executable, "-m", "fastsqla_lint", "check", "--output-format", "concise", "app/pipe.py", "app/good.py"]
    proc = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    out = _concise(proc)
    assert out[0].startswith("app/good.py:3:10: FSL005")
    assert out[1] == "app/pipe.py:1:1: FSL900 The file cannot be read: it is not a regular file"


def test_a_folder_where_no_temporary_file_can_be_made(project, monkeypatch):
    """A read-only folder (simulated: the tests may run as root) leaves the file as it was, with a warning."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    write_files(project, {"lib/other.py": FILE_DB})
    make = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: refuse() if k.get("dir") == project / "app" else make(*a, **k))
    monkeypatch.chdir(project)
    result = _invoke(["check", "--fix", "--output-format", "concise", "."])
    assert result.exit_code == 1, result.output
    assert "app/good.py: not fixed: it cannot be written: Permission denied" in result.stderr
    assert (project / "app/good.py").read_text() == FILE_DB
    assert (project / "lib/other.py").read_text() == FILE_DB_FIXED


def test_an_interrupted_write_leaves_no_temporary_file(project, monkeypatch):
    from fastsqla_lint import writer
    from fastsqla_lint.source import decode

    def interrupted(*args):
        raise KeyboardInterrupt

    path = project / "app/good.py"
    monkeypatch.setattr(writer.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        writer.write_fixed(path, decode(FILE_DB.encode()), FILE_DB_FIXED, FILE_DB.encode(), root=project)
    assert path.read_text() == FILE_DB
    assert sorted(p.name for p in (project / "app").iterdir()) == ["__init__.py", "good.py", "main.py"]


def test_the_nesting_bound_skips_only_what_its_scan_would_pass():
    """The cheap bound in front of the token scan never hides a problem the scan finds."""
    from fastsqla_lint.source import MAX_BRACKET_DEPTH, MAX_NESTING, _surely_shallow, _token_scan, nesting_problem

    deep = [
        "x = " + "(" * (MAX_BRACKET_DEPTH + 1) + "1" + ")" * (MAX_BRACKET_DEPTH + 1) + "\n",
        "x = " + " + ".join(["a"] * (MAX_NESTING + 1)) + "\n",
        "x = " + "not " * (MAX_NESTING + 1) + "a\n",
        "if a:\n    pass\n" + "elif a:\n    pass\n" * (MAX_NESTING + 1),
        "x = " + '"a" ' * (MAX_NESTING + 2) + "\n",
    ]
    for text in deep:
        assert _token_scan(text) is not None and not _surely_shallow(text)
        assert nesting_problem(text) == _token_scan(text)
    # more openers than the bracket limit, none nested deeply: the bound passes what compiles, the scan
    # decides the rest (a syntax error, an invalid escape that only warns)
    many = "".join(f"x{i} = f(a[{i}], {{}})\n" for i in range(MAX_BRACKET_DEPTH))
    assert _surely_shallow(many) and _token_scan(many) is None
    assert _surely_shallow('s = "\\d"\n' + many)
    assert not _surely_shallow(many + "def (:\n") and nesting_problem(many + "def (:\n") is None
    in_string = "x = '" + "(" * (MAX_BRACKET_DEPTH + 1) + "'\n"
    assert _surely_shallow(in_string) and _token_scan(in_string) is None
    # Python 3.12+'s `tokenize` stops at the bracket limit itself: the scan reports that, with its line
    import tokenize

    def refusing(readline):
        yield from ()
        raise tokenize.TokenError("too many nested parentheses", (3, 7))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokenize, "generate_tokens", refusing)
        assert _token_scan("x = 1\n") == ("too many nested parentheses", 3)
    fixtures = Path(__file__).parent / "fixtures"
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(fixtures.rglob("*.py"))]
    assert len(texts) > 50
    skipped = 0
    for text in texts:
        assert nesting_problem(text) == _token_scan(text)
        skipped += _surely_shallow(text)
    assert skipped  # the bound does spare the scan on ordinary files


def test_the_cheap_bounds_read_strings_comments_and_statements_as_the_tokenizer_does():
    """The skeleton's bracket depth and per-statement count are bounds on what the token scan counts:
    brackets in strings and comments do not nest, brackets in an f-string's code do, and a statement
    ends where its brackets close."""
    from fastsqla_lint.source import (
        MAX_BRACKET_DEPTH,
        MAX_NESTING,
        _surely_shallow,
        _token_scan,
        bracket_depth,
        code_skeleton,
    )

    deep = "(" * (MAX_BRACKET_DEPTH + 1) + "1" + ")" * (MAX_BRACKET_DEPTH + 1)
    filler = "".join(f"x{i} = f(a[{i}], {{}})\n" for i in range(MAX_BRACKET_DEPTH))  # openers past the limit
    hidden = [  # deep brackets that are not code: the bound passes them without compiling
        f"s = '{deep}'\n",
        f's = """{deep}\n"""\n',
        f"# {deep}\n",
        f"s = r'\\'{deep}'\n",
        f"s = b'\\\\' # '{deep}\n",
        f"s = '{deep}' \\\n    '{deep}'\n",
    ]
    for text in hidden:
        assert bracket_depth(code_skeleton(filler + text)) == 2, text
        assert _surely_shallow(filler + text) and _token_scan(filler + text) is None
    shown = [f"x = {deep}\n", f"x = f'{{{deep}}}'\n", f"x = '(' + {deep} # )\n"]
    for text in shown:
        assert bracket_depth(code_skeleton(filler + text)) > MAX_BRACKET_DEPTH, text
        assert not _surely_shallow(filler + text)
    # strings the skeleton is not sure of: the compiler decides (3.12+ reuses quotes inside f-strings)
    for text in ["x = f'{d[\"k\"]}'\n", "x = f'{{' + y\n", "x = 'open\n", "x = f'{a'\n"]:
        assert code_skeleton(text) is None, text
    # operators: many in the file, few in each statement (a long bracketed one counts as one)
    many = "x = a + b\n" * (MAX_NESTING // 2)
    assert _surely_shallow(many) and _token_scan(many) is None
    joined = "x = (\n" + "a +\n" * (MAX_NESTING + 1) + "a)\n"
    continued = "x = 1" + " + \\\n a" * (MAX_NESTING + 1) + "\n"
    strings = "x = (\n" + "'s'\n" * (MAX_NESTING + 2) + ")\n"
    for text in (joined, continued, strings):
        assert not _surely_shallow(many + text) and _token_scan(many + text) is not None


_CHARS = list("ab ()[]{}#'\"") + ["\\\\", "\\'", '\\"', "\\n"]


def _string_literal(parts: tuple[str, str, list[str]]) -> str:
    prefix, quote, chars = parts
    body = "".join(c for c in chars if quote[0] not in c)
    return prefix + quote + body + quote


def _nested(inner):
    from hypothesis import strategies as st

    def field(e: str) -> str:
        return "f'<{" + "".join(c for c in e if c not in "'\"#\\") + "}>'"

    return st.one_of(
        inner.map(lambda e: f"({e})"),
        st.tuples(inner, inner).map(lambda p: f"[{p[0]}, {p[1]}]"),
        inner.map(lambda e: "{" + e + "}"),
        st.tuples(inner, inner).map(lambda p: f"{p[0]} + {p[1]}"),
        inner.map(field),
        inner.map(lambda e: f"(\n    {e}  # ( [ '\n)"),
    )


def _expressions():
    from hypothesis import strategies as st

    literal = st.tuples(
        st.sampled_from(["", "r", "b", "u", "rb"]),
        st.sampled_from(["'", '"', "'''", '"""']),
        st.lists(st.sampled_from(_CHARS), max_size=8),
    ).map(_string_literal)
    return st.recursive(st.one_of(st.sampled_from(["a", "1", "b.c"]), literal), _nested, max_leaves=12)


def test_the_cheap_bracket_depth_bounds_the_tokenizers():
    """On generated statements mixing brackets, strings of every kind (holding brackets, the other quote,
    `#`, escapes), f-strings and comments: the skeleton's depth is the tokenizer's (or above it, by the
    brackets an f-string's text holds), and a text the bounds pass is one the scan passes."""
    from hypothesis import given, settings

    from fastsqla_lint.source import (
        _surely_shallow,
        _token_scan,
        bracket_depth,
        code_skeleton,
    )

    checked = []

    @settings(max_examples=400, deadline=None, derandomize=True)
    @given(_expressions())
    def check(expr: str) -> None:
        text = "x = " + expr + "\n"
        most = token_bracket_depth(text)
        if most is None:
            return
        skeleton = code_skeleton(text)
        if skeleton is not None:
            found = bracket_depth(skeleton)
            if "f'" in text:  # its text's brackets count too (and may not match: then the compiler decides)
                assert found is None or found >= most, (text, skeleton)
            else:
                assert found == most, (text, skeleton)
                checked.append(most)
        if _surely_shallow(text * 60):
            assert _token_scan(text * 60) is None

    check()
    assert len(checked) > 100 and max(checked) >= 3  # the bound was compared, on nested code


def test_a_form_feed_in_the_first_indentation_leaves_the_fixes_working():
    """LibCST keeps the form feed that starts a module's first indented line in `default_indent`, then
    refuses it in `config_for_parsing` (which fixes parse their snippets against), and new nested blocks
    would repeat it (a form feed resets the column: code that does not parse). The parse makes such a
    module's indents explicit (`engine._indents_made_explicit`): every fixture's fixes then apply as
    they do without the form feed, and what they write is valid Python."""
    from fastsqla_lint import engine
    from fastsqla_lint.diagnostics import Applicability

    prefix = "class A:\n\f pass\n\n"
    with pytest.raises(ValueError):
        cst.parse_module(prefix).config_for_parsing
    parsed = engine.parse(prefix, "app/main.py", "app.main")
    assert parsed.module.code == prefix and parsed.module.config_for_parsing

    def fixed(text: str) -> engine.FixOutcome:
        outcome = engine.fix_text(text, "app/main.py", threshold=Applicability.UNSAFE, module_name="app.main")
        assert not outcome.result.internal_errors and not outcome.warnings
        compile(outcome.text, "fixed", "exec")
        return outcome

    befores = sorted((Path(__file__).parent / "fixtures").glob("FSL*/before.py"))
    assert len(befores) > 15
    applied = 0
    for before in befores:
        text = before.read_text(encoding="utf-8")
        outcome = fixed(prefix + text)
        assert outcome.fixed == fixed(text).fixed, before
        assert prefix in outcome.text  # imports a fix adds may come before it
        applied += outcome.fixed
    assert applied > 50


def test_a_form_feed_in_the_first_indentation_of_a_deeply_nested_module():
    """Making the indents explicit walks the tree recursively: a module deeper than that walk can go is
    linted as parsed, never stopped."""
    from fastsqla_lint import engine

    text = "class A:\n\f pass\n\nx = " + " + ".join(["a"] * 3000) + "\n" + FILE_DB
    parsed = engine.parse(text, "app/main.py", "app.main")  # LibCST's own code generation goes no deeper
    assert parsed.module is not None and parsed.error is None
    assert parsed.module.default_indent == "\f "  # kept as parsed
    engine.lint_parsed(parsed)  # whatever it reports, it returns


def test_invalid_escapes_in_checked_code_print_no_warning(tmp_path):
    """The linter evaluates string literals of the checked code (URLs, SQL, `__main__`, `scope=`). An
    invalid escape in one (`"\\d+"`, a Windows path) makes Python warn when it compiles the literal: a
    SyntaxWarning printed on stderr from Python 3.12, a DeprecationWarning before (printed here too, with
    every warning shown). It is the checked code's business, never the linter's output."""
    project = write_files(tmp_path / "p", {
        "pyproject.toml": '[project]\nname = "p"\n',
        "app/db.py": (
            "from typing import Annotated\n"
            "from fastapi import Depends, FastAPI\n"
            "from sqlalchemy import create_engine, text\n"
            "from sqlalchemy.orm import Session\n"
            'URL = "sqlite:///C:\\data\\app.db"\n'
            "engine = create_engine(URL)\n"
            "app = FastAPI()\n"
            "def get_db():\n"
            "    db = Session(engine)\n"
            "    yield db\n"
            '@app.get("/items/{name}")\n'
            'def items(name: str, db: Annotated[Session, Depends(get_db, scope="\\d")]):\n'
            '    return db.execute(text(f"select * from t where name ~ \'\\d+\' and n = {name}")).all()\n'
            'if __name__ == "\\d":\n'
            "    print(items)\n"
        ),
    })
    quiet = run_cli("check", "--no-cache", "--output-format", "concise", cwd=project)
    loud = run_cli("check", "--no-cache", "--output-format", "concise", cwd=project, env={"PYTHONWARNINGS": "always"})
    assert quiet.returncode == 1 and "FSL014" in quiet.stdout  # the f-string's literal text was read
    assert "escape" not in loud.stderr and (loud.returncode, loud.stdout) == (quiet.returncode, quiet.stdout)
