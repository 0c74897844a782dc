"""Real code at scale: every `.py` file of the installed fastapi, starlette, pydantic, sqlalchemy and sqlmodel.

The packages are copied into one project (a `pyproject.toml` on top, so the index spans all of them) and
every file is checked through the command line with every rule selected, twice at once: a plain check, and
`--fix --unsafe-fixes --diff`. Neither run reports an internal error; no file that the running Python
compiles gets `FSL900`; the diff applies to the copy (with `patch` when it is installed, else in Python)
and every patched file parses. Slow (about a minute per run); the default test run includes it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import libcst as cst
import pytest

from conftest import ROOT, token_bracket_depth

PACKAGES = ("fastapi", "starlette", "pydantic", "sqlalchemy", "sqlmodel")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

pytestmark = pytest.mark.slow


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(list(spec.submodule_search_locations)[0])


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".py", ".pyi") and p.is_file())


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realcode")
    (root / "pyproject.toml").write_text('[project]\nname = "realcode"\n', encoding="utf-8")
    for name in PACKAGES:
        shutil.copytree(
            _package_folder(name),
            root / name,
            ignore=lambda folder, names: [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".so"))],
        )
    return root


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.Popen(
        [sys.executable, "-m", "fastsqla_lint", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def runs(tree):
    start = time.monotonic()
    # Every file is named: a named file is always parsed, whereas in a walked folder the prefilter skips
    # the files that hold nothing the rules could use (and would not report them if they did not parse).
    files = [p.relative_to(tree).as_posix() for p in _python_files(tree)]
    check = _cli("check", "--select", "ALL", "--no-cache", "--output-format", "json", *files, cwd=tree)
    diff = _cli("check", "--select", "ALL", "--no-cache", "--fix", "--unsafe-fixes", "--diff", *files, cwd=tree)
    outcomes = {}
    for name, run in (("check", check), ("diff", diff)):
        out, err = run.communicate(timeout=1800)
        outcomes[name] = (out.decode("utf-8"), err.decode("utf-8", "replace"))  # newlines kept as printed
    codes = {"check": check.returncode, "diff": diff.returncode}
    return outcomes, codes, time.monotonic() - start


def test_no_internal_error(runs):
    outcomes, codes, _ = runs
    for name, (_, err) in outcomes.items():
        assert codes[name] in (0, 1), f"{name}: exit {codes[name]}\n{err[-5000:]}"
        assert "internal error" not in err and "Traceback" not in err, f"{name}:\n{err[-5000:]}"


def test_no_fsl900_on_files_python_compiles(tree, runs):
    outcomes, _, seconds = runs
    diagnostics = json.loads(outcomes["check"][0])
    files = _python_files(tree)
    unparsable = {d["filename"] for d in diagnostics if d["code"] == "FSL900"}
    valid = set()
    for path in files:
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError:
            continue
        valid.add(path.relative_to(tree).as_posix())
    assert len(files) > 400
    assert not sorted(unparsable & valid), [d for d in diagnostics if d["filename"] in unparsable & valid]
    counts = Counter(d["code"] for d in diagnostics)
    print(f"\nreal code: {len(files)} files, {sum(p.stat().st_size for p in files)} bytes, "
          f"{len(diagnostics)} findings {dict(sorted(counts.items()))}, both runs in {seconds:.0f} s")


def _apply_in_python(root: Path, diff: str) -> list[str]:
    """Apply a unified diff whose context must match exactly; returns the files it changed."""
    changed = []
    lines = diff.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if not lines[i].startswith("--- "):
            i += 1
            continue
        name = lines[i][4:].rstrip("\r\n")
        i += 2  # past the `+++` line
        with open(root / name, encoding="utf-8", newline="") as f:
            old = f.read().splitlines(keepends=True)
        new: list[str] = []
        pos = 0
        while i < len(lines) and lines[i].startswith("@@"):
            first = max(int(HUNK.match(lines[i]).group(1)) - 1, 0)
            new.extend(old[pos:first])
            pos = first
            i += 1
            tag = ""
            while i < len(lines) and lines[i][:1] in (" ", "-", "+", "\\"):
                if lines[i][:1] == "\\":  # the line before has no newline; the diff added one
                    if tag == "+":
                        new[-1] = new[-1][:-1]
                    i += 1
                    continue
                tag, text = lines[i][:1], lines[i][1:]
                if tag in (" ", "-"):
                    assert old[pos].rstrip("\r\n") == text.rstrip("\r\n"), f"{name}:{pos + 1}: context differs"
                    if tag == " ":
                        new.append(old[pos])
                    pos += 1
                else:
                    new.append(text)
                i += 1
        new.extend(old[pos:])
        with open(root / name, "w", encoding="utf-8", newline="") as f:
            f.write("".join(new))
        changed.append(name)
    return changed


def test_the_diff_applies_and_the_patched_files_parse(tree, runs, tmp_path):
    outcomes, _, _ = runs
    diff = outcomes["diff"][0]
    names = re.findall(r"^\+\+\+ (.+?)\r?$", diff, flags=re.M)
    by_python = tmp_path / "python"
    shutil.copytree(tree, by_python)
    assert _apply_in_python(by_python, diff) == names
    patched_tree = by_python
    if shutil.which("patch"):
        patched_tree = tmp_path / "patch"
        shutil.copytree(tree, patched_tree)
        proc = subprocess.run(
            ["patch", "-p0", "--batch", "--forward", "--no-backup-if-mismatch"],
            cwd=patched_tree,
            input=diff.encode("utf-8"),
            capture_output=True,
        )
        assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
        assert not list(patched_tree.rglob("*.rej")) and not list(patched_tree.rglob("*.orig"))
    for name in names:
        patched = (patched_tree / name).read_bytes()
        assert patched == (by_python / name).read_bytes(), name
        assert patched != (tree / name).read_bytes(), name
        cst.parse_module(patched)
        compile(patched, name, "exec", dont_inherit=True)
    print(f"\nreal code: the diff changes {len(names)} files: {names}")


def test_the_nesting_bounds_read_real_code_as_the_tokenizer_does():
    """On every file of the packages (with the running Python's tokenizer, so 3.12's f-strings too): the
    skeleton's bracket depth is never below the tokenizer's (it is above only by the text of f-strings, or
    unknown, and then the compiler decides), and no file the cheap bounds pass is one the scan stops."""
    from fastsqla_lint.source import (
        _surely_shallow,
        _token_scan,
        bracket_depth,
        code_skeleton,
        decode,
    )

    compared = 0
    for name in PACKAGES:
        for path in _python_files(_package_folder(name)):
            text = decode(path.read_bytes()).text
            most = token_bracket_depth(text)
            if most is None:
                continue
            skeleton = code_skeleton(text)
            found = bracket_depth(skeleton) if skeleton is not None else None
            assert found is None or found >= most, path
            compared += found is not None
            if _surely_shallow(text):
                assert _token_scan(text) is None, path
    assert compared > 300  # 356 of their 470 files here; the others hold an f-string the skeleton is not sure of
