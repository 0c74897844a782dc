"""Which files `check` looks at: default exclusions, .gitignore, exclude globs, explicit paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import run_cli, write_files
from fastsqla_lint.config import Config
from fastsqla_lint.discovery import Excluder, discover

# An unparsable file is reported whatever the rule selection (when it imports a library the rules know,
# so that the prefilter parses it), so it shows which files were checked.
BROKEN = "x = (\nimport sqlalchemy\n"


def checked(proc) -> list[str]:
    """The paths reported by a concise run, in order."""
    return [line.split(":", 1)[0] for line in proc.stdout.splitlines() if ": FSL900 " in line]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_files(tmp_path, {"pyproject.toml": '[project]\nname = "demo"\n'})


def test_default_exclusions(project):
    write_files(
        project,
        {
            "app/main.py": BROKEN,
            "app/types.pyi": BROKEN,
            "app/notes.txt": BROKEN,
            "venv/lib/x.py": BROKEN,
            ".venv/x.py": BROKEN,
            "build/x.py": BROKEN,
            "dist/x.py": BROKEN,
            "node_modules/x.py": BROKEN,
            "__pycache__/x.py": BROKEN,
            ".tox/x.py": BROKEN,
            ".nox/x.py": BROKEN,
            "lib/site-packages/x.py": BROKEN,
            ".git/hooks/x.py": BROKEN,
            "myenv/pyvenv.cfg": "home = /usr\n",
            "myenv/lib/x.py": BROKEN,
        },
    )
    proc = run_cli("check", cwd=project)
    assert checked(proc) == ["app/main.py", "app/types.pyi"]


def test_gitignore_nested_and_negated(project):
    write_files(
        project,
        {
            ".gitignore": "generated/\n*_pb2.py\n",
            "generated/x.py": BROKEN,
            "api_pb2.py": BROKEN,
            "pkg/.gitignore": "local_*.py\n!local_keep.py\n",
            "pkg/local_a.py": BROKEN,
            "pkg/local_keep.py": BROKEN,
            "pkg/mod.py": BROKEN,
            "other/local_b.py": BROKEN,
        },
    )
    proc = run_cli("check", cwd=project)
    assert checked(proc) == ["other/local_b.py", "pkg/local_keep.py", "pkg/mod.py"]


def test_git_info_exclude(project):
    write_files(project, {".git/info/exclude": "scratch.py\n", "scratch.py": BROKEN, "real.py": BROKEN})
    assert checked(run_cli("check", cwd=project)) == ["real.py"]


def test_gitignore_of_the_repository_applies_to_a_subfolder(project):
    write_files(project, {".gitignore": "pkg/gen/\n", "pkg/gen/x.py": BROKEN, "pkg/y.py": BROKEN})
    assert checked(run_cli("check", "pkg", cwd=project)) == ["pkg/y.py"]


def test_explicit_paths_are_checked_even_if_excluded(project):
    write_files(project, {".gitignore": "gen/\n", "gen/a.py": BROKEN, "build/b.py": BROKEN, "c.py": BROKEN})
    proc = run_cli("check", "gen/a.py", "build", "c.py", cwd=project)
    assert checked(proc) == ["build/b.py", "c.py", "gen/a.py"]


def test_inside_an_excluded_folder_given_explicitly_the_other_patterns_still_apply(project):
    # only the patterns that match the given folder itself are set aside, in every folder below it
    write_files(project, {
        ".gitignore": "gen/\n*_pb2.py\ngen/deep/skip/\n",
        "gen/a.py": BROKEN, "gen/deep/b.py": BROKEN, "gen/deep/c_pb2.py": BROKEN, "gen/deep/skip/d.py": BROKEN,
        "gen/e_pb2.py": BROKEN, "f.py": BROKEN, "g_pb2.py": BROKEN,
    })
    proc = run_cli("check", "gen", ".", cwd=project)
    assert checked(proc) == ["f.py", "gen/a.py", "gen/deep/b.py"]


def test_force_exclude(project):
    write_files(project, {".gitignore": "gen/\n", "gen/a.py": BROKEN, "build/b.py": BROKEN, "c.py": BROKEN})
    proc = run_cli("check", "--force-exclude", "gen/a.py", "build", "build/b.py", "c.py", cwd=project)
    assert checked(proc) == ["c.py"]


def test_a_file_given_twice_is_checked_once(project):
    write_files(project, {"a.py": BROKEN})
    proc = run_cli("check", "a.py", ".", "./a.py", cwd=project)
    assert checked(proc) == ["a.py"]


def test_paths_outside_the_working_folder_are_absolute(tmp_path):
    proj = write_files(tmp_path / "proj", {"pyproject.toml": "", "a.py": BROKEN})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("check", str(proj), cwd=elsewhere)
    assert checked(proc) == [str(proj / "a.py")]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinked_folders_are_not_followed(project, tmp_path_factory):
    outside = write_files(tmp_path_factory.mktemp("outside"), {"x.py": BROKEN})
    write_files(project, {"a.py": BROKEN})
    (project / "linked").symlink_to(outside, target_is_directory=True)
    (project / "loop").symlink_to(project, target_is_directory=True)
    assert checked(run_cli("check", cwd=project)) == ["a.py"]


# -- exclude / extend-exclude globs, at the level of the excluder ------------------------------------


def _files(root: Path, config: Config, paths=(".",), force=False) -> list[str]:
    excluder = Excluder(lambda folder: config)
    targets = discover([root / p for p in paths], excluder, force_exclude=force, stop_for=lambda p: root)
    return sorted(Path(t.path).relative_to(root).as_posix() for t in targets)


def test_extend_exclude_globs_are_anchored_at_the_config_root(tmp_path):
    write_files(
        tmp_path,
        {
            "tests/fixtures/a.py": "",
            "src/tests/fixtures/b.py": "",
            "migrations/c.py": "",
            "app/migrations/d.py": "",
            "app/e_generated.py": "",
            "app/f.py": "",
        },
    )
    config = Config(root=tmp_path, extend_exclude=("tests/fixtures", "migrations", "*_generated.py"))
    assert _files(tmp_path, config) == ["app/f.py", "src/tests/fixtures/b.py"]


def test_exclude_replaces_the_defaults(tmp_path):
    write_files(tmp_path, {"build/a.py": "", "vendor/b.py": "", "c.py": ""})
    assert _files(tmp_path, Config(root=tmp_path, exclude=("vendor",))) == ["build/a.py", "c.py"]


def test_explicit_folder_inside_an_excluded_one(tmp_path):
    write_files(tmp_path, {"tests/fixtures/FSL005/before.py": "", "tests/test_x.py": ""})
    config = Config(root=tmp_path, extend_exclude=("tests/fixtures",))
    assert _files(tmp_path, config, ["tests/fixtures/FSL005"]) == ["tests/fixtures/FSL005/before.py"]
    assert _files(tmp_path, config, ["tests/fixtures/FSL005"], force=True) == []
    assert _files(tmp_path, config, ["tests"]) == ["tests/test_x.py"]


def test_folder_names_above_the_project_root_do_not_exclude(tmp_path):
    root = write_files(tmp_path / "build" / "proj", {"a.py": ""})
    assert _files(root, Config(root=root), ["a.py"], force=True) == ["a.py"]
