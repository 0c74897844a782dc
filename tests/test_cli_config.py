"""`[tool.fastsqla-lint]` through the command line: settings, overrides, errors, nearest config wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, write_files

FILE_DB = 'from sqlalchemy import create_engine\n\nengine = create_engine("sqlite:///./app.db")\n'
FILE_DB_FIXED = (
    'from sqlalchemy import create_engine\n\n'
    'engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})\n'
)

APP, FASTAPI = "app/main.py", "from fastapi import FastAPI\n\napp = FastAPI()\n"  # FSL005 needs FastAPI in the project


def make(tmp_path: Path, settings: str, files: dict | None = None) -> Path:
    pyproject = '[project]\nname = "demo"\n\n[tool.fastsqla-lint]\n' + settings
    return write_files(tmp_path, {"pyproject.toml": pyproject, "app/__init__.py": "", APP: FASTAPI, **(files or {})})


def test_ignore_from_config(tmp_path):
    root = make(tmp_path, 'ignore = ["FSL005"]\n', {"app/db.py": FILE_DB})
    assert run_cli("check", cwd=root).returncode == 0
    # --select on the command line starts afresh: the configured ignore no longer applies
    assert run_cli("check", "--select", "FSL0", cwd=root).returncode == 1
    assert run_cli("check", "--select", "FSL0", "--ignore", "FSL005", cwd=root).returncode == 0
    # --extend-select brings back a rule that the configuration ignores
    assert run_cli("check", "--extend-select", "FSL005", cwd=root).returncode == 1


def test_select_from_config_and_extend_select_on_the_command_line(tmp_path):
    root = make(tmp_path, 'select = ["FSL9"]\n', {"app/db.py": FILE_DB})
    assert run_cli("check", cwd=root).returncode == 0
    assert run_cli("check", "--extend-select", "FSL005", cwd=root).returncode == 1
    assert run_cli("check", "--select", "FSL005", cwd=root).returncode == 1


def test_per_file_ignores(tmp_path):
    root = make(tmp_path, '[tool.fastsqla-lint.per-file-ignores]\n"app/legacy/*.py" = ["FSL005"]\n')
    write_files(root, {"app/legacy/db.py": FILE_DB, "app/db.py": FILE_DB})
    proc = run_cli("check", cwd=root)
    assert proc.returncode == 1
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if "FSL005" in line] == ["app/db.py"]


def test_extend_exclude(tmp_path):
    root = make(tmp_path, 'extend-exclude = ["app/generated", "*_old.py"]\n')
    write_files(root, {"app/generated/db.py": FILE_DB, "app/db_old.py": FILE_DB, "app/db.py": FILE_DB})
    proc = run_cli("check", cwd=root)
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if "FSL005" in line] == ["app/db.py"]
    # given explicitly, an excluded file is checked unless --force-exclude
    assert run_cli("check", "app/db_old.py", cwd=root).returncode == 1
    assert run_cli("check", "--force-exclude", "app/db_old.py", "app/generated", cwd=root).returncode == 0


def test_exclude_replaces_the_default_list(tmp_path):
    root = make(tmp_path, 'exclude = ["vendor"]\n', {"build/db.py": FILE_DB, "vendor/db.py": FILE_DB})
    proc = run_cli("check", cwd=root)
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if "FSL005" in line] == ["build/db.py"]


def test_fix_from_config_and_no_fix(tmp_path):
    root = make(tmp_path, "fix = true\n", {"app/db.py": FILE_DB})
    assert run_cli("check", "--no-fix", cwd=root).returncode == 1
    assert (root / "app/db.py").read_text() == FILE_DB
    proc = run_cli("check", cwd=root)
    assert proc.returncode == 0 and "Fixed 1 error (0 remaining)." in proc.stdout
    assert (root / "app/db.py").read_text() == FILE_DB_FIXED


def test_unsafe_fixes_from_config(tmp_path):
    memory = "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\napp = FastAPI()\ne = create_engine('sqlite://')\n"
    root = make(tmp_path, "unsafe-fixes = true\n", {"app/db.py": memory})
    assert "[*] 1 fixable with the --fix option." in run_cli("check", cwd=root).stdout
    assert "(1 more with --unsafe-fixes)" in run_cli("check", "--no-unsafe-fixes", cwd=root).stdout


def test_output_format_from_config(tmp_path):
    root = make(tmp_path, 'output-format = "json"\n', {"app/db.py": FILE_DB})
    proc = run_cli("check", cwd=root)
    assert json.loads(proc.stdout)[0]["code"] == "FSL005"
    proc = run_cli("check", "--output-format", "concise", cwd=root)
    assert proc.stdout.startswith("app/db.py:3:10: FSL005")


def test_target_versions(tmp_path):
    root = make(tmp_path, 'target-versions = { sqlalchemy = "2.0" }\n', {"app/db.py": FILE_DB})
    assert run_cli("check", cwd=root).returncode == 0  # SQLAlchemy 2.0 sets the flag itself


def test_versions_inferred_from_the_project(tmp_path):
    root = write_files(
        tmp_path,
        {"pyproject.toml": '[project]\nname = "demo"\ndependencies = ["sqlalchemy>=2.0"]\n', "app/db.py": FILE_DB, APP: FASTAPI},
    )
    assert run_cli("check", cwd=root).returncode == 0
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\ndependencies = ["sqlalchemy<2"]\n')
    assert run_cli("check", cwd=root).returncode == 1


def test_explicit_config_file(tmp_path):
    root = make(tmp_path, "", {"app/db.py": FILE_DB})
    other = write_files(tmp_path / "elsewhere", {"strict.toml": 'ignore = ["FSL005"]\n'}) / "strict.toml"
    assert run_cli("check", cwd=root).returncode == 1
    assert run_cli("check", "--config", str(other), cwd=root).returncode == 0


def test_missing_config_file(tmp_path):
    root = make(tmp_path, "", {"app/db.py": FILE_DB})
    proc = run_cli("check", "--config", "nope.toml", cwd=root)
    assert proc.returncode == 2
    assert "nope.toml" in proc.stderr


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ('selec = ["FSL005"]\n', ["pyproject.toml", "selec", "select"]),
        ("fix = 3\n", ["pyproject.toml", "fix"]),
        ('select = ["FSL777"]\n', ["pyproject.toml", "FSL777"]),
        ('output-format = "xml"\n', ["pyproject.toml", "xml"]),
        ("select = [\n", ["pyproject.toml", "TOML"]),
    ],
)
def test_config_errors_exit_2(tmp_path, settings, expected):
    root = make(tmp_path, settings, {"app/db.py": FILE_DB})
    proc = run_cli("check", cwd=root)
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    for word in expected:
        assert word in proc.stderr
    assert proc.stdout == ""


def test_error_in_a_nested_project_config(tmp_path):
    root = make(tmp_path, "", {"app/db.py": FILE_DB})
    write_files(root, {"sub/pyproject.toml": "[tool.fastsqla-lint]\nbogus = 1\n", "sub/x.py": "x = 1\n"})
    proc = run_cli("check", cwd=root)
    assert proc.returncode == 2
    assert "bogus" in proc.stderr and "sub" in proc.stderr


def test_nearest_config_wins(tmp_path):
    root = make(tmp_path, "", {"app/db.py": FILE_DB})
    write_files(
        root,
        {
            "service/pyproject.toml": '[project]\nname = "service"\n\n[tool.fastsqla-lint]\nignore = ["FSL005"]\n',
            "service/db.py": FILE_DB,
            "service/main.py": FASTAPI,
        },
    )
    proc = run_cli("check", cwd=root)
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if "FSL005" in line] == ["app/db.py"]
    assert run_cli("check", "service", cwd=root).returncode == 0


def test_debug_config_shows_the_resolved_settings(tmp_path):
    root = make(tmp_path, 'ignore = ["FSL005"]\ntarget-versions = { sqlalchemy = "1.4" }\n')
    proc = run_cli("debug-config", "app", cwd=root)
    assert proc.returncode == 0
    assert 'ignore = ["FSL005"]' in proc.stdout
    assert "sqlalchemy" in proc.stdout and "1.4" in proc.stdout


def test_debug_config_error(tmp_path):
    root = make(tmp_path, "nope = 1\n")
    proc = run_cli("debug-config", ".", cwd=root)
    assert proc.returncode == 2 and "nope" in proc.stderr
