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

from conftest import run_cli, write_files

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
        ("try:\n    pass\nexcept ValueError, TypeError:\n    pass\nexcept* OSError:\n    pass\n" + FILE_DB).encode(),
        "either",
        finding=False,
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
