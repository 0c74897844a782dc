"""The pre-commit hooks for real: a project repository whose .pre-commit-config.yaml points at a git copy of
this checkout; pre-commit builds the hook's environment with pip and runs `fastsqla-lint check [--fix]`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from fastsqla_lint import fix_source

pytestmark = pytest.mark.precommit

GIT_ENV = {
    "GIT_AUTHOR_NAME": "fastsqla-lint tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "fastsqla-lint tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(*args: str, cwd: Path, env: dict) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def precommit_env(tmp_path_factory) -> dict:
    """One PRE_COMMIT_HOME for the session, so the hook environment is built once."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = dict(os.environ)
    env.update(GIT_ENV)
    env["PRE_COMMIT_HOME"] = str(tmp_path_factory.mktemp("pre-commit-home"))
    env["HOME"] = str(tmp_path_factory.mktemp("home"))  # no user git config leaks in
    env.pop("PRE_COMMIT", None)
    return env


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory, precommit_env) -> tuple[Path, str]:
    """A git repository holding this checkout's files (committed or not), as pre-commit would clone it."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            dest = repo / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    _git("init", "-q", cwd=repo, env=precommit_env)
    _git("add", "-A", cwd=repo, env=precommit_env)
    _git("commit", "-q", "-m", "hook source", cwd=repo, env=precommit_env)
    return repo, _git("rev-parse", "HEAD", cwd=repo, env=precommit_env).strip()


def make_project(path: Path, hook_repo: tuple[Path, str], hooks: list[str], files: dict[str, str], env: dict) -> Path:
    repo, rev = hook_repo
    path.mkdir(parents=True, exist_ok=True)
    hook_lines = "".join(f"      - id: {h}\n" for h in hooks)
    (path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo.as_posix()}\n    rev: {rev}\n    hooks:\n{hook_lines}", encoding="utf-8"
    )
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _git("init", "-q", cwd=path, env=env)
    _git("add", "-A", cwd=path, env=env)
    _git("commit", "-q", "-m", "project", cwd=path, env=env)
    return path


def pre_commit(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


APP_HEADER = "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\napp = FastAPI()\n"
FILE_DBS = APP_HEADER + 'URL = "sqlite:///./app.db"\nengine = create_engine(URL)\nother = create_engine("sqlite:///./b.db")\n'


def test_check_hook_fails_on_a_bad_file_and_names_the_code(tmp_path, hook_repo, precommit_env):
    files = {"bad.py": FILE_DBS, "good.py": "print('hello')\n", "broken.py": "def broken(:\n    pass\n"}
    project = make_project(tmp_path / "project", hook_repo, ["fastsqla-lint"], files, precommit_env)
    run = pre_commit("run", "--all-files", cwd=project, env=precommit_env)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "bad.py:6:" in run.stdout and "bad.py:7:" in run.stdout
    assert "FSL005" in run.stdout
    assert "broken.py" in run.stdout and "FSL900" in run.stdout
    assert "good.py" not in run.stdout
    assert (project / "bad.py").read_text(encoding="utf-8") == FILE_DBS  # the check hook never writes


def test_fix_hook_rewrites_then_the_next_run_passes(tmp_path, hook_repo, precommit_env):
    project = make_project(
        tmp_path / "project", hook_repo, ["fastsqla-lint-fix", "fastsqla-lint"], {"bad.py": FILE_DBS}, precommit_env
    )
    first = pre_commit("run", "--all-files", cwd=project, env=precommit_env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    fixed = (project / "bad.py").read_text(encoding="utf-8")
    assert fixed == fix_source(FILE_DBS, "bad.py").text
    assert fixed.count('connect_args={"check_same_thread": False}') == 2

    second = pre_commit("run", "--all-files", cwd=project, env=precommit_env)
    assert second.returncode == 0, second.stdout + second.stderr


def test_only_the_changed_file_is_passed_but_the_index_covers_the_project(tmp_path, hook_repo, precommit_env):
    """pre-commit passes app/database.py alone; its URL constant lives in app/config.py."""
    files = {
        "app/__init__.py": "",
        "app/config.py": 'DATABASE_URL = "sqlite:///./app.db"\n',
        "app/database.py": "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\n"
        "from app.config import DATABASE_URL\n\nengine = create_engine(DATABASE_URL)\n",
        "app/other.py": 'from sqlalchemy import create_engine\nimport fastapi\nx = create_engine("sqlite://")\n',
    }
    project = make_project(tmp_path / "project", hook_repo, ["fastsqla-lint"], files, precommit_env)
    run = pre_commit("run", "fastsqla-lint", "--files", "app/database.py", cwd=project, env=precommit_env)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "app/database.py:6:" in run.stdout and "FSL005" in run.stdout
    assert "app/other.py" not in run.stdout  # not passed, so not reported
