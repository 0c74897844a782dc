"""Runtime proof of the fixes: real apps fail before `check --fix --unsafe-fixes` and work after it.

Each folder `tests/fixtures/apps/<case>/` is a small multi-module FastAPI app plus a `scenario.py` that
imports it, sends real requests through `fastapi.testclient.TestClient` against real SQLite, and exits 0
when everything behaves (non-zero otherwise). An optional `case.toml` says more:

    codes = ["FSL005"]           # reported by `check` before the fix
    failure = ["no such table"]  # the failing run prints one of these (the real failure, not another crash)

For every case, on a copy in a temporary folder: the scenario fails; `check` reports the codes; `check
--fix --unsafe-fixes .` changes the code; the scenario passes; a second `--fix` changes nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

APPS = Path(__file__).resolve().parent / "fixtures" / "apps"
CASES = sorted(p for p in APPS.iterdir() if (p / "scenario.py").is_file()) if APPS.is_dir() else []


def scenario(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scenario.py"], cwd=folder, capture_output=True, text=True, timeout=300
    )


def python_sources(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_there_are_cases() -> None:
    assert CASES, f"no app cases under {APPS}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fix_makes_the_app_work(case: Path, tmp_path: Path) -> None:
    spec = tomllib.loads((case / "case.toml").read_text()) if (case / "case.toml").is_file() else {}
    app = tmp_path / case.name
    shutil.copytree(case, app, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    original = python_sources(app)

    broken = scenario(app)
    assert broken.returncode != 0, "the scenario passes before the fix:\n" + describe(broken)
    if spec.get("failure"):
        output = broken.stdout + broken.stderr
        assert any(text in output for text in spec["failure"]), "not the expected failure:\n" + describe(broken)

    report = run_cli("check", ".", cwd=app)
    assert report.returncode == 1, describe(report)
    for code in spec.get("codes", []):
        assert code in report.stdout, f"{code} not reported before the fix:\n" + describe(report)

    fixed = run_cli("check", "--fix", "--unsafe-fixes", ".", cwd=app)
    assert fixed.returncode in (0, 1), describe(fixed)
    assert "Traceback" not in fixed.stderr, describe(fixed)
    after_fix = python_sources(app)
    assert after_fix != original, "--fix changed nothing"

    working = scenario(app)
    assert working.returncode == 0, "the scenario still fails after the fix:\n" + describe(working)

    again = run_cli("check", "--fix", "--unsafe-fixes", ".", cwd=app)
    assert again.returncode in (0, 1), describe(again)
    assert python_sources(app) == after_fix, "a second --fix changed the code"
