"""Shared test helpers: paths, files on disk, and running the command as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Fixture folders hold linted sample code (some of it named test_*.py), never tests to collect.
collect_ignore = ["fixtures"]


def run_cli(*args: str, cwd: Path | None = None, input: str | bytes | None = None, env: dict | None = None):
    """Run `python -m fastsqla_lint ARGS` in a subprocess; returns CompletedProcess (text mode unless bytes input)."""
    full_env = dict(os.environ)
    full_env.pop("FORCE_COLOR", None)
    full_env.pop("NO_COLOR", None)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    text = not isinstance(input, bytes)
    return subprocess.run(
        [sys.executable, "-m", "fastsqla_lint", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=text,
        env=full_env,
        timeout=300,
    )


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create `files` (relative path -> text or bytes) under `root`; returns `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return root


@pytest.fixture
def cli():
    return run_cli


def pytest_addoption(parser):
    parser.addoption(
        "--update-fixtures",
        action="store_true",
        default=False,
        help="rewrite the rule fixtures' expected*.txt and after*.py from the current output",
    )
