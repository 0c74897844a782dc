"""`check` end to end on FSL005 (sqlite-same-thread): findings, --fix, --unsafe-fixes, --diff, stdin, noqa,
statistics, output formats, and what happens around files that cannot be fixed or linted."""

from __future__ import annotations

import codecs
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from conftest import run_cli, write_files

# A file database, SQLAlchemy version unknown: a finding with a safe fix.
FILE_DB = 'from sqlalchemy import create_engine\n\nengine = create_engine("sqlite:///./app.db")\n'
FILE_DB_FIXED = (
    'from sqlalchemy import create_engine\n\n'
    'engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})\n'
)
# An in-memory database in a FastAPI module: a finding whose fix is unsafe.
MEMORY_DB = (
    "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\n"
    'app = FastAPI()\nengine = create_engine("sqlite://")\n'
)
MEMORY_DB_FIXED = (
    "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\nfrom sqlalchemy.pool import StaticPool\n\n"
    'app = FastAPI()\nengine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)\n'
)
APP, FASTAPI = "app/main.py", "from fastapi import FastAPI\n\napp = FastAPI()\n"  # FSL005 needs FastAPI in the project
CLEAN = 'from sqlalchemy import create_engine\n\nengine = create_engine("postgresql://db/app")\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A FastAPI project that does not say which SQLAlchemy it uses (so file databases are reported)."""
    return write_files(tmp_path, {"pyproject.toml": '[project]\nname = "demo"\n', "app/__init__.py": "", APP: FASTAPI})


def lines(proc) -> list[str]:
    return proc.stdout.splitlines()


# -- reporting -----------------------------------------------------------------------------------------


def test_finding_with_a_safe_fix(project):
    write_files(project, {"app/database.py": FILE_DB})
    proc = run_cli("check", cwd=project)
    assert proc.returncode == 1
    out = lines(proc)
    assert out[0].startswith("app/database.py:3:10: FSL005 [*] SQLite engine without `check_same_thread=False`")
    assert out[1:] == ["Found 1 error.", "[*] 1 fixable with the --fix option."]


def test_unsafe_fix_is_counted_apart(project):
    write_files(project, {"app/database.py": FILE_DB, "app/memory.py": MEMORY_DB})
    proc = run_cli("check", cwd=project)
    assert proc.returncode == 1
    out = lines(proc)
    assert out[0].startswith("app/database.py:3:10: FSL005 [*] ")
    assert out[1].startswith("app/memory.py:5:10: FSL005 In-memory")  # no [*]: unsafe
    assert out[2:] == ["Found 2 errors.", "[*] 1 fixable with the --fix option (1 more with --unsafe-fixes)."]
    proc = run_cli("check", "--unsafe-fixes", cwd=project)
    assert lines(proc)[1].startswith("app/memory.py:5:10: FSL005 [*] ")
    assert lines(proc)[2:] == ["Found 2 errors.", "[*] 2 fixable with the --fix option."]


def test_only_unsafe_fixes(project):
    write_files(project, {"app/memory.py": MEMORY_DB})
    proc = run_cli("check", cwd=project)
    assert lines(proc)[1:] == ["Found 1 error.", "No fixes available with --fix (1 more with --unsafe-fixes)."]


def test_statistics(project):
    write_files(project, {"app/a.py": FILE_DB, "app/b.py": FILE_DB, "app/broken.py": "x = (\nimport sqlalchemy\n"})
    proc = run_cli("check", "--statistics", cwd=project)
    assert proc.returncode == 1
    assert lines(proc)[:2] == ["2\tFSL005\t[*] sqlite-same-thread", "1\tFSL900\t[ ] unparsable-file"]


def test_exit_zero_with_findings(project):
    write_files(project, {"app/database.py": FILE_DB})
    proc = run_cli("check", "--exit-zero", cwd=project)
    assert proc.returncode == 0
    assert "FSL005" in proc.stdout


# -- --fix --------------------------------------------------------------------------------------------------


def test_fix_writes_the_file(project):
    path = write_files(project, {"app/database.py": FILE_DB}) / "app/database.py"
    proc = run_cli("check", "--fix", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines(proc) == ["Fixed 1 error (0 remaining)."]
    assert path.read_text() == FILE_DB_FIXED
    again = run_cli("check", cwd=project)
    assert again.returncode == 0 and lines(again) == ["All checks passed!"]


def test_fix_leaves_unsafe_fixes_alone(project):
    write_files(project, {"app/database.py": FILE_DB, "app/memory.py": MEMORY_DB})
    proc = run_cli("check", "--fix", cwd=project)
    assert proc.returncode == 1
    out = lines(proc)
    assert out[0].startswith("app/memory.py:5:10: FSL005 In-memory")
    assert out[1:] == ["Fixed 1 error (1 remaining).", "No fixes available with --fix (1 more with --unsafe-fixes)."]
    assert (project / "app/memory.py").read_text() == MEMORY_DB
    assert (project / "app/database.py").read_text() == FILE_DB_FIXED


def test_unsafe_fixes(project):
    write_files(project, {"app/database.py": FILE_DB, "app/memory.py": MEMORY_DB})
    proc = run_cli("check", "--fix", "--unsafe-fixes", cwd=project)
    assert proc.returncode == 0, proc.stdout
    assert lines(proc) == ["Fixed 2 errors (0 remaining)."]
    assert (project / "app/memory.py").read_text() == MEMORY_DB_FIXED


def test_fix_keeps_crlf_newlines(project):
    data = FILE_DB.replace("\n", "\r\n").encode()
    path = write_files(project, {"app/database.py": data}) / "app/database.py"
    assert run_cli("check", "--fix", cwd=project).returncode == 0
    assert path.read_bytes() == FILE_DB_FIXED.replace("\n", "\r\n").encode()


def test_fix_keeps_the_bom(project):
    data = codecs.BOM_UTF8 + ("# café\n" + FILE_DB).encode()
    path = write_files(project, {"app/database.py": data}) / "app/database.py"
    assert run_cli("check", "--fix", cwd=project).returncode == 0
    assert path.read_bytes() == codecs.BOM_UTF8 + ("# café\n" + FILE_DB_FIXED).encode()


def test_fix_keeps_a_latin1_encoding(project):
    head = "# -*- coding: latin-1 -*-\n# caf\u00e9\n"
    path = write_files(project, {"app/database.py": (head + FILE_DB).encode("latin-1")}) / "app/database.py"
    proc = run_cli("check", "--fix", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert path.read_bytes() == (head + FILE_DB_FIXED).encode("latin-1")


@pytest.mark.skipif(os.name == "nt", reason="POSIX mode bits")
def test_fix_keeps_mode_bits(project):
    path = write_files(project, {"app/database.py": FILE_DB}) / "app/database.py"
    path.chmod(0o750)
    assert run_cli("check", "--fix", cwd=project).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert path.read_text() == FILE_DB_FIXED


def test_fix_does_not_touch_clean_files(project):
    path = write_files(project, {"app/clean.py": CLEAN, "app/database.py": FILE_DB}) / "app/clean.py"
    before = path.stat()
    assert run_cli("check", "--fix", cwd=project).returncode == 0
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_fix_with_a_syntax_error_among_good_files(project):
    write_files(project, {"app/a.py": FILE_DB, "app/broken.py": "x = (\nimport sqlalchemy\n", "app/c.py": FILE_DB})
    proc = run_cli("check", "--fix", cwd=project)
    assert proc.returncode == 1
    out = lines(proc)
    assert out[0].startswith("app/broken.py:") and "FSL900" in out[0]
    assert out[1:] == ["Fixed 2 errors (1 remaining)."]
    assert (project / "app/a.py").read_text() == FILE_DB_FIXED
    assert (project / "app/c.py").read_text() == FILE_DB_FIXED
    assert (project / "app/broken.py").read_text() == "x = (\nimport sqlalchemy\n"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_fix_does_not_write_through_a_symlink_out_of_the_project(project, tmp_path_factory):
    outside = write_files(tmp_path_factory.mktemp("outside"), {"database.py": FILE_DB}) / "database.py"
    (project / "app" / "linked.py").symlink_to(outside)
    proc = run_cli("check", "--fix", cwd=project)
    assert proc.returncode == 1
    assert "app/linked.py: not fixed" in proc.stderr and "symlink" in proc.stderr
    assert outside.read_text() == FILE_DB
    assert lines(proc)[0].startswith("app/linked.py:3:10: FSL005 [*]")


def test_show_fixes(project):
    write_files(project, {"app/a.py": FILE_DB, "app/b.py": FILE_DB})
    proc = run_cli("check", "--fix", "--show-fixes", cwd=project)
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == ["Fixed 2 errors:", "- app/a.py: 1 fix", "- app/b.py: 1 fix"]


# -- --diff ----------------------------------------------------------------------------------------------


def test_diff_prints_and_writes_nothing(project):
    path = write_files(project, {"app/database.py": FILE_DB, "app/memory.py": MEMORY_DB}) / "app/database.py"
    proc = run_cli("check", "--diff", cwd=project)
    assert proc.returncode == 1
    assert proc.stdout == (
        "--- app/database.py\n+++ app/database.py\n@@ -1,3 +1,3 @@\n from sqlalchemy import create_engine\n \n"
        '-engine = create_engine("sqlite:///./app.db")\n'
        '+engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})\n'
    )
    assert proc.stderr == "Would fix 1 error.\n"
    assert path.read_text() == FILE_DB
    unsafe = run_cli("check", "--diff", "--unsafe-fixes", cwd=project)
    assert "+from sqlalchemy.pool import StaticPool\n" in unsafe.stdout
    assert unsafe.stderr == "Would fix 2 errors.\n"
    assert (project / "app/memory.py").read_text() == MEMORY_DB


def test_diff_with_nothing_to_fix_exits_0(project):
    write_files(project, {"app/clean.py": CLEAN, "app/memory.py": MEMORY_DB})
    proc = run_cli("check", "--diff", cwd=project)
    assert proc.returncode == 0
    assert proc.stdout == ""


def test_diff_wins_over_fix(project):
    path = write_files(project, {"app/database.py": FILE_DB}) / "app/database.py"
    proc = run_cli("check", "--fix", "--diff", cwd=project)
    assert proc.returncode == 1 and "+engine" in proc.stdout
    assert path.read_text() == FILE_DB


# -- stdin ---------------------------------------------------------------------------------------------


def test_stdin_check(project):
    proc = run_cli("check", "--stdin-filename", "app/database.py", "-", cwd=project, input=FILE_DB)
    assert proc.returncode == 1
    assert lines(proc)[0].startswith("app/database.py:3:10: FSL005 [*]")


def test_stdin_fix_prints_the_fixed_source(project):
    proc = run_cli("check", "--fix", "--stdin-filename", "app/database.py", "-", cwd=project, input=FILE_DB)
    assert proc.returncode == 0
    assert proc.stdout == FILE_DB_FIXED
    assert "Fixed 1 error (0 remaining)." in proc.stderr
    assert not (project / "app/database.py").exists()


def test_stdin_fix_keeps_bytes_form(project):
    data = FILE_DB.replace("\n", "\r\n").encode()
    proc = run_cli("check", "--fix", "--stdin-filename", "app/database.py", "-", cwd=project, input=data)
    assert proc.returncode == 0
    assert proc.stdout == FILE_DB_FIXED.replace("\n", "\r\n").encode()


def test_stdin_fix_reports_what_is_left_on_stderr(project):
    proc = run_cli("check", "--fix", "--stdin-filename", "app/memory.py", "-", cwd=project, input=MEMORY_DB)
    assert proc.returncode == 1
    assert proc.stdout == MEMORY_DB
    assert "app/memory.py:5:10: FSL005" in proc.stderr


def test_stdin_diff(project):
    proc = run_cli("check", "--diff", "--stdin-filename", "app/database.py", "-", cwd=project, input=FILE_DB)
    assert proc.returncode == 1
    assert proc.stdout.startswith("--- app/database.py\n+++ app/database.py\n")


def test_stdin_is_linted_with_the_project_index(project):
    # The URL lives in another module of the project, which the index reads from disk.
    write_files(project, {"app/settings.py": 'DATABASE_URL = "sqlite:///./app.db"\n'})
    source = "from sqlalchemy import create_engine\nfrom app.settings import DATABASE_URL\n\nengine = create_engine(DATABASE_URL)\n"
    proc = run_cli("check", "--stdin-filename", "app/database.py", "-", cwd=project, input=source)
    assert proc.returncode == 1
    assert lines(proc)[0].startswith("app/database.py:4:10: FSL005")


# -- suppressions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        FILE_DB.replace('app.db")\n', 'app.db")  # noqa: FSL005\n'),
        FILE_DB.replace('app.db")\n', 'app.db")  # noqa: FSL001, FSL005\n'),
        FILE_DB.replace('app.db")\n', 'app.db")  # noqa\n'),
        "# fastsqla-lint: noqa: FSL005\n" + FILE_DB,
        "# fastsqla-lint: noqa\n" + FILE_DB,
    ],
)
def test_noqa(project, source):
    path = write_files(project, {"app/database.py": source}) / "app/database.py"
    proc = run_cli("check", "--fix", cwd=project)
    assert proc.returncode == 0 and lines(proc) == ["All checks passed!"]
    assert path.read_text() == source


def test_noqa_for_another_code_does_not_suppress(project):
    write_files(project, {"app/database.py": FILE_DB.replace('app.db")\n', 'app.db")  # noqa: FSL001\n')})
    assert run_cli("check", cwd=project).returncode == 1


# -- selection ----------------------------------------------------------------------------------------------


def test_select_and_ignore(project):
    write_files(project, {"app/database.py": FILE_DB})
    assert run_cli("check", "--ignore", "FSL005", cwd=project).returncode == 0
    assert run_cli("check", "--ignore", "FSL0", cwd=project).returncode == 0
    assert run_cli("check", "--select", "FSL900", cwd=project).returncode == 0
    assert run_cli("check", "--select", "FSL900", "--extend-select", "FSL005", cwd=project).returncode == 1
    assert run_cli("check", "--select", "FSL0,FSL9", cwd=project).returncode == 1
    # a more specific select beats a broader ignore
    assert run_cli("check", "--select", "FSL005", "--ignore", "FSL0", cwd=project).returncode == 1


# -- output formats ----------------------------------------------------------------------------------------


def test_json_output(project):
    write_files(project, {"app/database.py": FILE_DB})
    proc = run_cli("check", "--output-format", "json", cwd=project)
    assert proc.returncode == 1
    (item,) = json.loads(proc.stdout)
    assert item["code"] == "FSL005"
    assert item["filename"] == "app/database.py"
    assert item["location"] == {"row": 3, "column": 10}
    assert item["fix"]["applicability"] == "safe"
    assert item["noqa_row"] == 3
    assert "Found" not in proc.stdout  # no summary line in machine formats


def test_sarif_output(project):
    write_files(project, {"app/database.py": FILE_DB})
    proc = run_cli("check", "--output-format", "sarif", cwd=project)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["version"] == "2.1.0"
    (result,) = data["runs"][0]["results"]
    assert result["ruleId"] == "FSL005"


def test_github_output(project):
    write_files(project, {"app/database.py": FILE_DB})
    proc = run_cli("check", "--output-format", "github", cwd=project)
    assert proc.returncode == 1
    assert proc.stdout.startswith("::warning file=app/database.py,line=3,col=10,")
    assert "title=FSL005" in proc.stdout


def test_full_output(project):
    write_files(project, {"app/database.py": FILE_DB})
    proc = run_cli("check", "--output-format", "full", cwd=project)
    assert proc.returncode == 1
    assert '3 | engine = create_engine("sqlite:///./app.db")' in proc.stdout
    assert "^^^" in proc.stdout
    assert 'help: Add `connect_args={"check_same_thread": False}`' in proc.stdout
    assert proc.stdout.rstrip().endswith("[*] 1 fixable with the --fix option.")


# -- internal errors ---------------------------------------------------------------------------------------


def test_internal_error_in_a_rule(project):
    """A rule that crashes on one file is reported with the file and the rule; the others are still linted."""
    write_files(project, {"app/a_crash.py": FILE_DB, "app/b_fine.py": FILE_DB})
    code = (
        "from fastsqla_lint.rules import sqlite_same_thread as m\n"
        "original = m.SqliteSameThread.visit_Call\n"
        "def visit_Call(self, node):\n"
        "    if self.context.path.endswith('a_crash.py'):\n"
        "        raise ValueError('simulated rule bug')\n"
        "    return original(self, node)\n"
        "m.SqliteSameThread.visit_Call = visit_Call\n"
        "from fastsqla_lint.cli import main\n"
        "main(['check', '.'])\n"
    )
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "app/a_crash.py" in proc.stderr and "FSL005" in proc.stderr and "simulated rule bug" in proc.stderr
    assert proc.stdout.startswith("app/b_fine.py:3:10: FSL005")
    assert "a_crash.py:3" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_internal_error_with_stdin_fix_gives_the_source_back(project):
    code = (
        "from fastsqla_lint import project\n"
        "def boom(*a, **k): raise ValueError('simulated bug')\n"
        "project.fix_file = boom\n"
        "from fastsqla_lint.cli import main\n"
        "main(['check', '--fix', '--stdin-filename', 'app/database.py', '-'])\n"
    )
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env=env, input=FILE_DB
    )
    assert proc.returncode == 2
    assert proc.stdout == FILE_DB
    assert "app/database.py: internal error" in proc.stderr and "Traceback" not in proc.stderr
