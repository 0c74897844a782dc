"""The linter lints itself clean: `fastsqla_lint/` and `tests/*.py` with every rule selected (the fixtures,
excluded by the project's own `extend-exclude`, are sample code full of findings on purpose)."""

from __future__ import annotations

import json

from conftest import FIXTURES, ROOT, run_cli


def test_the_project_lints_itself_clean():
    proc = run_cli("check", "--select", "ALL", "--output-format", "json", "fastsqla_lint", "tests", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == []
    assert proc.stderr == ""


def test_the_same_run_would_see_a_finding():
    """The control: the same command, given one fixture explicitly, reports it (and only it)."""
    fixture = (FIXTURES / "FSL005" / "before.py").relative_to(ROOT).as_posix()
    proc = run_cli("check", "--select", "ALL", "--output-format", "json", "fastsqla_lint", "tests", fixture, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert {d["filename"] for d in json.loads(proc.stdout)} == {fixture}
