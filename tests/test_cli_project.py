"""A run over a project: the index covers the whole project even when only some files are given."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli, write_files
from fastsqla_lint.config import Config
from fastsqla_lint.discovery import Excluder, Target
from fastsqla_lint.project import ConfigTree, Planner

SETTINGS = 'DATABASE_URL = "sqlite:///./app.db"\n'
DATABASE = (
    "from sqlalchemy import create_engine\n\nfrom app.settings import DATABASE_URL\n\n"
    "engine = create_engine(DATABASE_URL)\n"
)

FASTAPI = "from fastapi import FastAPI\n\napp = FastAPI()\n"  # FSL005 needs FastAPI in the project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_files(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "demo"\n',
            "app/__init__.py": "",
            "app/settings.py": SETTINGS,
            "app/database.py": DATABASE,
            "app/main.py": FASTAPI,
        },
    )


def test_one_file_is_linted_with_the_whole_project(project):
    """As pre-commit does: only the changed file is passed, its URL lives in another module."""
    proc = run_cli("check", "app/database.py", cwd=project)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0].startswith("app/database.py:5:10: FSL005")


def test_without_the_other_module_the_url_is_unknown(project):
    """The control case: with settings.py gone, nothing says the URL is SQLite, so nothing is reported."""
    (project / "app/settings.py").unlink()
    proc = run_cli("check", "app/database.py", cwd=project)
    assert proc.returncode == 0, proc.stdout


def test_excluded_modules_are_not_in_the_index(project):
    (project / ".gitignore").write_text("app/settings.py\n")
    assert run_cli("check", "app/database.py", cwd=project).returncode == 0


def test_only_requested_files_are_reported(project):
    write_files(project, {"app/other.py": 'from sqlalchemy import create_engine\ne = create_engine("sqlite:///x.db")\n'})
    proc = run_cli("check", "app/database.py", cwd=project)
    assert "app/other.py" not in proc.stdout
    assert "app/database.py" in proc.stdout


def test_fix_one_file_of_the_project(project):
    proc = run_cli("check", "--fix", "app/database.py", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'connect_args={"check_same_thread": False}' in (project / "app/database.py").read_text()
    assert (project / "app/settings.py").read_text() == SETTINGS


def test_an_example_with_its_own_declarations_is_its_own_project(tmp_path):
    """A folder with its own requirements under a parent's settings: its own index, its own versions."""
    root = write_files(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "tool"\ndependencies = ["sqlalchemy>=2.0"]\n\n[tool.fastsqla-lint]\n',
            "examples/app/requirements.txt": "sqlalchemy==1.4.52\nfastapi==0.95.0\n",
            "examples/app/settings.py": SETTINGS,
            "examples/app/main.py": FASTAPI,
            "examples/app/database.py": DATABASE.replace("from app.settings", "from settings"),
            "tool/db.py": 'from sqlalchemy import create_engine\ne = create_engine("sqlite:///x.db")\n',
            "tool/main.py": FASTAPI,
        },
    )
    proc = run_cli("check", cwd=root)
    reported = [line.split(":")[0] for line in proc.stdout.splitlines() if "FSL005" in line]
    # the example targets SQLAlchemy 1.4 and resolves `settings` from its own root; the tool targets 2.0
    assert reported == ["examples/app/database.py"]


# -- the planner, directly ------------------------------------------------------------------------------


def test_files_are_grouped_by_project(tmp_path):
    root = write_files(
        tmp_path,
        {
            "pyproject.toml": "[tool.fastsqla-lint]\n",
            "a.py": "",
            "pkg/b.py": "",
            "sub/pyproject.toml": "[tool.fastsqla-lint]\n",
            "sub/c.py": "",
        },
    )
    tree = ConfigTree()
    planner = Planner(tree)
    targets = [Target(str(root / p), p) for p in ("a.py", "sub/c.py", "pkg/b.py")]
    groups = planner.groups(targets)
    assert [(g.root, [t.display for t in g.targets]) for g in groups] == [
        (root, ["a.py", "pkg/b.py"]),
        (root / "sub", ["sub/c.py"]),
    ]
    files = planner.project_files(groups[0], Excluder(tree.for_folder))
    assert [Path(p).relative_to(root).as_posix() for p, _ in files] == ["a.py", "pkg/b.py"]  # not sub/c.py
    files = planner.project_files(groups[1], Excluder(tree.for_folder))
    assert [Path(p).relative_to(root).as_posix() for p, _ in files] == ["sub/c.py"]


def test_a_lone_script_is_not_a_project(tmp_path, monkeypatch):
    # The search for a package's parent folder stops at the home folder: here the test's parent folder, whose
    # other tests' folders (packages, some of them) are not this script's concern.
    monkeypatch.setenv("HOME", str(tmp_path.parent))
    write_files(tmp_path, {"script.py": "", "other.py": ""})
    tree = ConfigTree()
    root, walkable = tree.project_root(tmp_path / "script.py")
    assert not walkable
    (group,) = Planner(tree).groups([Target(str(tmp_path / "script.py"), "script.py")])
    assert [Path(p).name for p, _ in Planner(tree).project_files(group, Excluder(lambda f: Config()))] == ["script.py"]


def test_a_project_root_that_is_a_package(tmp_path):
    """An app folder with its own pyproject.toml and an __init__.py: its modules are `myapp.*`."""
    root = write_files(
        tmp_path / "myapp",
        {
            "pyproject.toml": '[project]\nname = "myapp"\n',
            "__init__.py": "",
            "settings.py": SETTINGS,
            "database.py": DATABASE.replace("from app.settings", "from myapp.settings"),
            "main.py": FASTAPI,
        },
    )
    proc = run_cli("check", "database.py", cwd=root)
    assert proc.returncode == 1
    assert proc.stdout.startswith("database.py:5:10: FSL005")


def test_a_service_without_project_markers_is_one_project(tmp_path):
    """No pyproject/.git anywhere: the folder holding the top-level package is the project root, so a
    dependency in `app/database.py` is known from `Depends(get_db)` in `app/routers/items.py`, and a
    script next to the package resolves `from app.database import ...`."""
    svc = tmp_path / "services" / "billing"
    (svc / "app" / "routers").mkdir(parents=True)
    (svc / "scripts").mkdir()
    (svc / "app" / "__init__.py").write_text("")
    (svc / "app" / "routers" / "__init__.py").write_text("")
    (svc / "app" / "database.py").write_text(
        "from sqlalchemy import create_engine\n"
        "from sqlalchemy.orm import DeclarativeBase, sessionmaker\n\n"
        "engine = create_engine('postgresql://db/app')\n"
        "SessionLocal = sessionmaker(bind=engine)\n\n\n"
        "class Base(DeclarativeBase):\n    pass\n\n\n"
        "def get_db():\n    db = SessionLocal()\n    yield db\n    db.close()\n"
    )
    (svc / "app" / "models.py").write_text(
        "from sqlalchemy.orm import Mapped, mapped_column\n\nfrom .database import Base\n\n\n"
        "class Item(Base):\n    __tablename__ = 'items'\n    id: Mapped[int] = mapped_column(primary_key=True)\n"
    )
    (svc / "app" / "routers" / "items.py").write_text(
        "from fastapi import APIRouter, Depends\n\nfrom ..database import get_db\n\n"
        "router = APIRouter()\n\n\n@router.get('/items')\ndef items(db=Depends(get_db)):\n    return []\n"
    )
    (svc / "scripts" / "init_db.py").write_text(
        "from app.database import Base, engine\n\nBase.metadata.create_all(bind=engine)\n"
    )
    result = run_cli("check", "--output-format", "concise", "services", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("services/billing/app/database.py:12:") and " FSL002 " in line for line in lines), lines
    assert any(line.startswith("services/billing/scripts/init_db.py:3:") and " FSL004 " in line for line in lines), lines
