"""The shared session helper (`fastsqla_lint/rules/_sessions.py`) that several rules build on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from fastsqla_lint import engine
from fastsqla_lint import project as proj
from fastsqla_lint.config import DEFAULT
from fastsqla_lint.rule import RuleContext
from fastsqla_lint.rules import _sessions as S

HEADER = """\
from fastapi import Depends, FastAPI
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

engine = create_engine("sqlite:///./app.db")
SessionLocal = sessionmaker(bind=engine)
AsyncLocal = async_sessionmaker(create_async_engine("sqlite+aiosqlite://"))
Scoped = scoped_session(SessionLocal)
app = FastAPI()
"""


def context(tmp_path: Path, text: str, module: str = "app.main", others: dict[str, str] | None = None) -> RuleContext:
    """A rule context for `text` linted as `module` of a project holding `others` too."""
    files = {module: text, **(others or {})}
    paths = []
    for name, source in files.items():
        path = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(source))
        paths.append((path, path.relative_to(tmp_path).as_posix()))
    project = proj.build_project(tmp_path, DEFAULT, paths)
    target = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
    parsed = project.files[target].parsed
    assert isinstance(parsed, engine.Parsed) and parsed.module is not None
    return RuleContext(
        path=project.files[target].display,
        module=parsed.module,
        module_name=parsed.names.module_name,
        names=parsed.names,
        index=project.index,
        config=DEFAULT,
        versions=DEFAULT.versions,
    )


def last_call(ctx: RuleContext) -> cst.Call:
    stmt = ctx.module.body[-1]
    assert isinstance(stmt, cst.SimpleStatementLine)
    value = stmt.body[0].value
    assert isinstance(value, cst.Call)
    return value


@pytest.mark.parametrize(
    ("line", "kind", "is_async"),
    [
        ("x = Session(engine)", "class", False),
        ("x = SessionLocal()", "factory", False),
        ("x = AsyncLocal()", "factory", True),
        ("x = sessionmaker(bind=engine)()", "chain", False),
        ("x = Scoped()", "registry", False),
        ("x = next(get_db())", "generator", False),
    ],
)
def test_session_producing_expressions(tmp_path: Path, line: str, kind: str, is_async: bool) -> None:
    text = HEADER + "\n\ndef get_db():\n    with SessionLocal() as s:\n        yield s\n\n\n" + line + "\n"
    ctx = context(tmp_path, text)
    source = S.session_source(ctx, last_call(ctx))
    assert source is not None
    assert (source.kind, source.is_async) == (kind, is_async)


@pytest.mark.parametrize("line", ["x = sessionmaker(bind=engine)", "x = create_engine('sqlite://')", "x = dict()"])
def test_not_sessions(tmp_path: Path, line: str) -> None:
    ctx = context(tmp_path, HEADER + line + "\n")
    assert S.session_source(ctx, last_call(ctx)) is None


def test_factory_of_another_module(tmp_path: Path) -> None:
    ctx = context(
        tmp_path,
        "from .database import SessionLocal\nx = SessionLocal()\n",
        others={"app.database": HEADER},
    )
    source = S.session_source(ctx, last_call(ctx))
    assert source is not None and source.target == "app.database.SessionLocal"
    assert S.may_create_sessions(ctx)


def test_a_module_without_session_makers(tmp_path: Path) -> None:
    ctx = context(tmp_path, "import json\nx = json.dumps({})\n")
    assert not S.may_create_sessions(ctx)


@pytest.mark.parametrize(
    ("module", "text", "reason"),
    [
        ("tests.conftest", "import pytest\n", "a test module"),
        ("app.test_items", "x = 1\n", "a test module"),
        ("scripts.seed", "from sqlalchemy import text\n", "a script"),
        ("alembic.versions.abc123", "from alembic import op\n", "a migration"),
        ("app.seed", "x = 1\nif __name__ == '__main__':\n    print(x)\n", "a script"),
        ("app.cli", "import typer\n", "a command-line tool or worker"),
        ("app.main", "from fastapi import FastAPI\nif __name__ == '__main__':\n    pass\n", None),
        ("app.crud", "from sqlalchemy import select\n", None),
    ],
)
def test_excluded_modules(tmp_path: Path, module: str, text: str, reason: str | None) -> None:
    assert S.excluded_module(context(tmp_path, text, module)) == reason


def test_fastapi_gate_follows_the_project(tmp_path: Path) -> None:
    others = {"app.main": "from fastapi import FastAPI\napp = FastAPI()\n"}
    assert S.fastapi_gate(context(tmp_path / "a", "from sqlalchemy import select\n", "app.crud", others))
    assert not S.fastapi_gate(context(tmp_path / "b", "from sqlalchemy import select\n", "app.crud"))


def test_new_dependency_closes_in_finally(tmp_path: Path) -> None:
    ctx = context(tmp_path, HEADER)
    sync = ctx.module.code_for_node(S.new_dependency(ctx, "get_db", "SessionLocal()", "db", False))
    assert sync.strip() == textwrap.dedent(
        """\
        def get_db():
            db = SessionLocal()
            try:
                yield db
            finally:
                db.close()"""
    )
    async_ = ctx.module.code_for_node(S.new_dependency(ctx, "get_db", "AsyncLocal()", "db", True))
    assert "async def get_db():" in async_ and "await db.close()" in async_


def _plan(ctx: RuleContext, line: str = "x = SessionLocal()") -> S.DependencyPlan:
    for stmt in ctx.module.body:
        if isinstance(stmt, cst.SimpleStatementLine) and ctx.module.code_for_node(stmt).strip() == line:
            source = S.session_source(ctx, stmt.body[0].value)
            assert source is not None
            plan = S.session_dependency(ctx, source)
            assert plan is not None
            return plan
    raise AssertionError(line)


def test_generates_a_dependency_when_the_project_has_none(tmp_path: Path) -> None:
    ctx = context(tmp_path, HEADER + "x = SessionLocal()\n")
    plan = _plan(ctx)
    assert plan.generated and plan.expr == "get_db"
    assert plan.anchor is not None  # after the names it uses


def test_reuses_the_dependency_of_another_module(tmp_path: Path) -> None:
    database = HEADER + "\n\ndef get_db():\n    db = SessionLocal()\n    try:\n        yield db\n    finally:\n        db.close()\n"
    ctx = context(
        tmp_path,
        "from .database import SessionLocal\nx = SessionLocal()\n",
        others={"app.database": database},
    )
    plan = _plan(ctx)
    assert not plan.generated
    assert plan.qualname == "app.database.get_db"
    assert plan.add_imports == (("app.database", "get_db"),)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", "db: Session = Depends(get_db)"),
        ("from typing import Annotated\nUser = Annotated[str, Depends(lambda: 'me')]\n",
         "db: Annotated[Session, Depends(get_db)]"),
    ],
)
def test_dependency_parameter_follows_the_module_style(tmp_path: Path, extra: str, expected: str) -> None:
    ctx = context(tmp_path, HEADER + extra + "x = SessionLocal()\n")
    param = S.dependency_param(ctx, "db", _plan(ctx))
    assert ctx.module.code_for_node(param.param).rstrip(", ") == expected


def test_dependency_parameter_uses_the_modules_alias(tmp_path: Path) -> None:
    text = HEADER + (
        "from typing import Annotated\n\n\n"
        "def get_db():\n    with SessionLocal() as s:\n        yield s\n\n\n"
        "SessionDep = Annotated[Session, Depends(get_db)]\n"
        "x = SessionLocal()\n"
    )
    ctx = context(tmp_path, text)
    param = S.dependency_param(ctx, "db", _plan(ctx))
    assert ctx.module.code_for_node(param.param).rstrip(", ") == "db: SessionDep"
    assert not param.has_default
