"""The project index over small multi-module sample projects in tests/fixtures/index/<case>/."""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path

import pytest

from fastsqla_lint import engine
from fastsqla_lint.config import DEFAULT
from fastsqla_lint.facts import FUNCTION, MAIN, MODULE, TYPE_CHECKING
from fastsqla_lint.index import ModuleSummary, ProjectIndex
from fastsqla_lint.literals import literal_value
from fastsqla_lint.project import build_project, find_root

FIXTURES = Path(__file__).resolve().parent / "fixtures"

CASES = FIXTURES / "index"


@lru_cache(maxsize=None)
def project(case: str):
    root = find_root(CASES / case / "pyproject.toml")
    files = [(p, str(p.relative_to(root))) for p in sorted(root.rglob("*.py"))]
    return build_project(root, DEFAULT, files)


def index(case: str) -> ProjectIndex:
    return project(case).index


def summary(text: str, name: str = "m", is_package: bool = False) -> ModuleSummary:
    parsed = engine.parse(text, f"{name}.py", name, is_package)
    out = engine.summary_of(parsed)
    assert out is not None
    return out


def imports(ix: ProjectIndex, module: str) -> list[tuple[int, str, str]]:
    return [(f.line, f.modules[0], f.scope) for f in ix.module(module).import_statements]


# ------------------------------------------------------------------------------------------------
# tutorial: the FastAPI "SQL databases" tutorial layout


def test_tutorial_modules_and_imports():
    ix = index("tutorial")
    assert set(ix.modules) == {
        "sql_app",
        "sql_app.crud",
        "sql_app.database",
        "sql_app.main",
        "sql_app.models",
        "sql_app.schemas",
    }
    assert ix.module("sql_app").is_package
    # the module docstring holds code-like lines ("import os"); the real imports start at line 7
    assert imports(ix, "sql_app.main") == [
        (7, "fastapi", MODULE),
        (8, "sqlalchemy.orm", MODULE),
        (10, "sql_app", MODULE),
        (11, "sql_app.database", MODULE),
    ]
    # `from . import crud, models, schemas` runs the submodules
    assert ix.module("sql_app.main").import_statements[2].modules == (
        "sql_app",
        "sql_app.crud",
        "sql_app.models",
        "sql_app.schemas",
    )


def test_tutorial_database_objects():
    ix = index("tutorial")
    eng = ix.engine("sql_app.database.engine")
    assert (eng.url, eng.url_kind, eng.is_async, eng.line) == ("sqlite:///./sql_app.db", "constant", False, 7)
    assert eng.drivername == "sqlite"
    assert eng.literals["connect_args"] == {"check_same_thread": False}
    # re-exported through `from .database import engine` in main
    assert ix.engine("sql_app.main.engine") == eng
    factory = ix.session_factory("sql_app.main.SessionLocal")
    assert factory.qualname == "sql_app.database.SessionLocal"
    assert (factory.kind, factory.is_async, factory.bind) == ("sessionmaker", False, "sql_app.database.engine")
    assert factory.literals == {"autocommit": False, "autoflush": False}
    base = ix.declarative_base("sql_app.database.Base")
    assert (base.kind, base.line) == ("declarative_base", 12)
    # `models.Base` is the database module's Base, imported into models
    assert ix.declarative_base("sql_app.models.Base") == base


def test_tutorial_mapped_classes_legacy_columns():
    ix = index("tutorial")
    user = ix.mapped_class("sql_app.models.User")
    assert (user.kind, user.base, user.tablename, user.line) == ("declarative", "sql_app.database.Base", "users", 7)
    cols = {c.name: (c.python_type, c.nullable, c.primary_key, c.relationship) for c in user.columns}
    assert cols == {
        "id": ("int", False, True, False),
        "email": ("str", True, False, False),
        "hashed_password": ("str", False, False, False),
        "is_active": ("bool", True, False, False),
        "items": (None, True, False, True),
    }
    item = ix.mapped_class("sql_app.models.Item")
    assert item.column("owner_id").foreign_key == "users.id"
    assert [m.qualname for m in ix.models_on("sql_app.database.Base")] == [
        "sql_app.models.User",
        "sql_app.models.Item",
    ]
    assert ix.registering_modules("sql_app.database.Base") == {"sql_app.models"}
    # Pydantic classes named like the models are not mapped classes
    assert ix.mapped_class("sql_app.schemas.User") is None


def test_tutorial_pydantic_and_schemas():
    ix = index("tutorial")
    item = ix.pydantic_model("sql_app.schemas.Item")
    assert item.field_names == ("title", "description", "id", "owner_id")  # inherited first
    assert item.from_attributes is True  # class Config: orm_mode = True
    assert ix.pydantic_model("sql_app.schemas.UserCreate").from_attributes is None
    # schemas.User has `items` (a relationship) and UserCreate has `password` (not a column): only UserOut fits
    assert [s.qualname for s in ix.schemas_for("sql_app.models.User")] == ["sql_app.schemas.UserOut"]
    # schemas.Item: same name, in a `schemas` module, all fields are columns
    assert [s.qualname for s in ix.schemas_for("sql_app.models.Item")] == ["sql_app.schemas.Item"]
    assert ix.schemas_for("sql_app.schemas.Item") == ()  # not an ORM class


def test_tutorial_routes_and_dependencies():
    ix = index("tutorial")
    routes = {r.function: r for r in ix.routes()}
    assert set(routes) == {"sql_app.main.create_user", "sql_app.main.read_user", "sql_app.main.read_items"}
    create = routes["sql_app.main.create_user"]
    assert (create.method, create.path, create.owner, create.line) == ("post", "/users/", "sql_app.main.app", 27)
    assert (create.has_response_model, create.response_model) == (True, "schemas.User")
    assert create.response_model_names == ("sql_app.schemas.User",)
    read = ix.route("sql_app.main.read_user")
    assert (read.has_response_model, read.status_code) == (False, 200)
    none = ix.route("sql_app.main.read_items")
    assert (none.has_response_model, none.response_model) == (True, "None")
    fn = ix.function("sql_app.main.read_user")
    assert (fn.is_async, fn.is_generator, fn.returns, fn.line) == (False, False, "models.User", 33)
    assert fn.decorators == ("sql_app.main.app.get",)
    db = fn.param("db")
    assert (db.annotation, db.default, db.depends.target, db.depends.where) == (
        "Session",
        "Depends(get_db)",
        "sql_app.main.get_db",
        "default",
    )
    assert ix.function("sql_app.main.read_items").is_async
    get_db = ix.function("sql_app.main.get_db")
    assert get_db.is_generator and not get_db.is_async
    assert ix.is_dependency("sql_app.main.get_db")
    assert not ix.is_dependency("sql_app.crud.get_user")
    assert ix.session_dependency_for("sql_app.database.SessionLocal") == "sql_app.main.get_db"
    assert ix.dependencies_of("sql_app.main.create_user") == (("db", "sql_app.main.get_db"),)
    assert ix.route("sql_app.main.get_db") is None


def test_tutorial_fastapi_gate():
    ix = index("tutorial")
    assert ix.uses_fastapi
    assert ix.module_uses_fastapi("sql_app.main")
    assert not ix.module_uses_fastapi("sql_app.models")
    assert not ix.module_uses_fastapi("sql_app.nope")


def test_tutorial_import_graph():
    ix = index("tutorial")
    # line 13 (create_all): the imports at lines 10 and 11 ran (models, and the database module)
    assert ix.modules_run_before("sql_app.main", 13) == {
        "sql_app",
        "sql_app.crud",
        "sql_app.models",
        "sql_app.schemas",
        "sql_app.database",
    }
    assert ix.modules_run_before("sql_app.main", 9) == {"sql_app"}
    assert ix.import_closure("sql_app.models") == {"sql_app", "sql_app.models", "sql_app.database"}
    assert ix.dynamic_imports("sql_app.main") == ()


# ------------------------------------------------------------------------------------------------
# srclayout: src/ layout, packages with __init__ re-exports, 2.0-style models, deps module


def test_src_layout_module_names():
    ix = index("srclayout")
    assert "shop.db.session" in ix.modules
    assert "tests.test_api" in ix.modules  # outside src/, under the root
    assert ix.module("shop.db").is_package
    assert ix.module("shop.db").path == "src/shop/db/__init__.py"
    assert "tests" in ix.namespace_packages()


def test_src_layout_reexports():
    ix = index("srclayout")
    assert ix.canonical("shop.db.SessionLocal") == "shop.db.session.SessionLocal"
    assert ix.canonical("shop.db.engine") == "shop.db.session.engine"  # `engine as engine`
    assert ix.canonical("shop.models.User") == "shop.models.user.User"
    assert ix.canonical("shop.models.Item") == "shop.models.item.Item"  # through `from .item import *`
    assert ix.canonical("shop.models.item_tags") == "shop.models.item.item_tags"
    assert ix.canonical("shop.api.routes.users.User.email") == "shop.models.user.User.email"
    assert ix.canonical("shop.models.Missing") == "shop.models.Missing"
    assert ix.constant("shop.db.session.DATABASE_URL").startswith("postgresql+psycopg://")


def test_src_layout_models_mixins_abstract():
    ix = index("srclayout")
    assert ix.mapped_class("shop.db.base.Model") is None  # __abstract__
    assert ix.mapped_class("shop.db.base.TimestampMixin") is None
    assert ix.mapped_class("shop.db.base.Base") is None
    user = ix.mapped_class("shop.models.User")
    assert user.qualname == "shop.models.user.User"
    assert user.base == "shop.db.base.Base"
    cols = {c.name: c for c in user.columns}
    assert set(cols) == {"id", "created_at", "email", "full_name", "hashed_password", "nickname", "items"}
    assert (cols["id"].primary_key, cols["id"].nullable, cols["id"].owner) == (True, False, "shop.db.base.Model")
    assert (cols["created_at"].python_type, cols["created_at"].type_names) == ("datetime", ("datetime.datetime",))
    assert (cols["full_name"].python_type, cols["full_name"].nullable) == ("str", True)  # Mapped[Optional[str]]
    assert cols["nickname"].nullable is False  # Mapped[str | None] with nullable=False
    assert cols["email"].nullable is False
    assert cols["items"].relationship and cols["items"].type_names == ("shop.models.item.Item",)
    price = ix.mapped_class("shop.models.item.Item").column("price")
    assert (price.python_type, price.nullable, price.type_names) == ("Decimal", True, ("decimal.Decimal",))
    # an abstract intermediate class and a mapped class share the base's metadata
    assert ix.declarative_base("shop.db.base.Model").qualname == "shop.db.base.Base"
    assert ix.declarative_base("shop.models.Item").qualname == "shop.db.base.Base"
    assert ix.declarative_base("shop.db.base.TimestampMixin") is None


def test_src_layout_table_registrations():
    ix = index("srclayout")
    tables = ix.tables_on("shop.db.Base")
    assert [(t.name, t.module, t.line) for t in tables] == [("item_tags", "shop.models.item", 20)]
    assert ix.registrations("shop.db.Base") == (
        ("shop.models.item", 11, "shop.models.item.Item"),
        ("shop.models.item", 20, "item_tags"),
        ("shop.models.user", 12, "shop.models.user.User"),
    )
    assert ix.registering_modules("shop.db.base.Base") == {"shop.models.item", "shop.models.user"}


def test_src_layout_schemas_preference():
    ix = index("srclayout")
    # UserOut has `password` (not a column): left out; Read before Public before Response
    assert [s.qualname.rsplit(".", 1)[1] for s in ix.schemas_for("shop.models.User")] == [
        "UserRead",
        "UserPublic",
        "UserResponse",
    ]
    assert ix.pydantic_model("shop.schemas.UserRead").from_attributes is True
    assert ix.pydantic_model("shop.schemas.UserResponse").field_names == ("id", "email")


def test_src_layout_database():
    ix = index("srclayout")
    eng = ix.engine("shop.db.engine")
    assert (eng.url_kind, eng.drivername, eng.call) == ("constant", "postgresql+psycopg", "sqlalchemy.create_engine")
    scoped = ix.session_factory("shop.db.session.ScopedSession")
    assert (scoped.kind, scoped.is_registry, scoped.wraps) == ("scoped_session", True, "shop.db.session.SessionLocal")
    assert scoped.bind == "shop.db.session.engine"
    assert ix.session_factory("shop.db.SessionLocal").literals == {"expire_on_commit": False}
    # both get_db and Database.session open SessionLocal sessions; the plain function wins
    assert ix.session_dependency_for("shop.db.SessionLocal") == "shop.api.deps.get_db"


def test_src_layout_dependencies():
    ix = index("srclayout")
    assert ix.dependency_alias("shop.api.routes.users.SessionDep") == "shop.api.deps.get_db"
    assert ix.alias("shop.api.deps.SessionDep").type_source == "Session"
    assert ix.dependencies_of("shop.api.routes.users.read_user") == (("db", "shop.api.deps.get_db"),)
    assert ix.dependencies_of("shop.api.routes.users.list_users") == (("db", "shop.api.deps.get_db"),)
    # a bound method of a module-level instance, and a callable instance in dependencies=[...]
    assert ix.dependencies_of("shop.api.routes.users.create_user") == (("db", "shop.api.deps.database.session"),)
    assert ix.is_dependency("shop.api.deps.Database.session")
    assert ix.is_dependency("shop.api.deps.admin_only")
    assert ix.is_dependency("shop.api.deps.RoleChecker.__call__")
    # dependency_overrides[get_db] = override_get_db, in a test module
    assert ix.is_dependency("tests.test_api.override_get_db")
    overrides = [d for d in ix.dependency_refs() if d.where == "override"]
    assert [(d.target, d.line) for d in overrides] == [("tests.test_api.override_get_db", 11)]
    assert not ix.is_dependency("shop.api.deps.RoleChecker")


def test_src_layout_routes_apps_includes():
    ix = index("srclayout")
    router = ix.app("shop.api.routes.users.router")
    assert (router.kind, router.prefix, router.dependencies) == ("router", "/users", ("shop.api.deps.admin_only",))
    app = ix.app("shop.main.app")
    assert (app.kind, app.lifespan, app.line) == ("app", "shop.main.lifespan", 22)
    [inc] = ix.includes()
    assert (inc.owner, inc.router, inc.prefix, inc.line) == (
        "shop.main.app",
        "shop.api.routes.users.router",
        "/api",
        23,
    )
    create = ix.route("shop.api.routes.users.create_user")
    assert (create.status_code, create.responses_models, create.has_response_model) == (
        201,
        ("shop.schemas.ErrorOut",),
        False,
    )
    listed = ix.route("shop.api.routes.users.list_users")
    assert (listed.via, listed.methods, listed.response_model) == ("add_api_route", ("get",), "list[UserRead]")
    assert "shop.schemas.UserRead" in listed.response_model_names
    assert ix.function("shop.main.lifespan").decorators == ("contextlib.asynccontextmanager",)
    assert ix.function("shop.main.lifespan").is_async_generator


def test_src_layout_import_scopes():
    ix = index("srclayout")
    assert (9, "shop.models.item", TYPE_CHECKING) in imports(ix, "shop.models.user")
    main = ix.module("shop.main").import_statements
    local = [f for f in main if f.scope == FUNCTION]
    assert [(f.line, f.modules, f.function) for f in local] == [(12, ("shop.db.base", "shop.db.base.Base"), "lifespan")]
    assert ix.dynamic_imports("shop.main") == ((19, "importlib.import_module"),)
    assert ix.module("shop.models").star_imports == ("shop.models.item",)
    # docstring of shop/models/__init__.py holds an import-looking line
    assert imports(ix, "shop.models") == [(5, "shop.models.user", MODULE), (6, "shop.models.item", MODULE)]


def test_src_layout_import_graph_packages():
    ix = index("srclayout")
    # importing shop.models.user runs shop/__init__, shop/db/__init__ (via shop.db.base) and what they import
    assert ix.import_closure("shop.models.user") == {
        "shop",
        "shop.models",
        "shop.models.user",
        "shop.models.item",  # shop/models/__init__ runs as the parent package
        "shop.db",
        "shop.db.base",
        "shop.db.session",
        "shop.core",
        "shop.core.config",
    }
    # shop/db/__init__ imports .base (line 1) then .session (line 2): when session runs, base has run,
    # the package itself has not finished
    assert ix.modules_run_before("shop.db.session", 4) == {"shop", "shop.db.base"}
    assert ix.modules_run_before("shop.db.session", 5) == {
        "shop",
        "shop.db.base",
        "shop.core",
        "shop.core.config",
    }
    assert ix.modules_run_before("shop.db.base", 100) == {"shop"}
    # inside lifespan: the module's closure plus the function's own import
    inside = ix.modules_run_before("shop.main", 14, function="shop.main.lifespan")
    assert {"shop.models.user", "shop.api.routes.users", "shop.db.base"} <= inside
    assert "shop.main" not in inside


# ------------------------------------------------------------------------------------------------
# circular: create_all at the bottom of database.py while models.py imports database


def test_circular_create_all():
    ix = index("circular")
    assert ix.registering_modules("app.database.Base") == {"app.models"}
    # module level, line 17: models never ran (models imports database, not the other way round)
    assert ix.modules_run_before("app.database", 17) == {"app"}
    # inside init_db, after its local `import app.models`
    assert ix.modules_run_before("app.database", 14, function="init_db") == {"app", "app.models"}
    assert ix.modules_run_before("app.database", 12, function="init_db") == {"app"}
    assert "app.database" in ix.import_closure("app.models")
    assert ix.import_closure("app.main") == {"app", "app.main", "app.models", "app.database"}


def test_circular_script_main_guard():
    ix = index("circular")
    assert imports(ix, "scripts.init_db") == [(1, "app.database", MODULE), (6, "app.models", MAIN)]
    assert ix.modules_run_before("scripts.init_db", 3) == {"app", "app.database"}
    assert ix.modules_run_before("scripts.init_db", 8) == {"app", "app.database", "app.models"}
    # a script block never runs on import
    assert "app.models" not in ix.import_closure("scripts.init_db")


def test_circular_module_level_session():
    ix = index("circular")
    inst = ix.session_instance("app.database.db")
    assert (inst.source, inst.via, inst.line) == ("app.database.SessionLocal", "factory", 8)
    assert not ix.uses_fastapi is False
    assert ix.module_uses_fastapi("app.main") and not ix.module_uses_fastapi("app.database")


# ------------------------------------------------------------------------------------------------
# sqlmodel_async: SQLModel, async engines and sessions, registry / dataclass / as_declarative bases


def test_sqlmodel_tables_and_schemas():
    ix = index("sqlmodel_async")
    hero = ix.mapped_class("heroes.models.Hero")
    assert (hero.kind, hero.base, hero.tablename) == ("sqlmodel", "sqlmodel.SQLModel", "hero")
    cols = {c.name: (c.python_type, c.nullable, c.primary_key, c.relationship) for c in hero.columns}
    assert cols == {
        "name": ("str", False, False, False),
        "secret_name": ("str", False, False, False),
        "age": ("int", True, False, False),
        "id": ("int", False, True, False),
        "team_id": ("int", True, False, False),
        "team": ("Team", True, False, True),
    }
    assert hero.column("team_id").foreign_key == "team.id"
    assert ix.mapped_class("heroes.models.HeroBase") is None  # no table=True
    assert ix.pydantic_model("heroes.models.HeroBase").sqlmodel
    assert ix.pydantic_model("heroes.models.Hero") is None
    assert [s.qualname for s in ix.schemas_for("heroes.models.Hero")] == ["heroes.models.HeroPublic"]
    assert {m.qualname for m in ix.models_on("sqlmodel.SQLModel")} == {"heroes.models.Hero", "heroes.models.Team"}
    assert ix.declarative_base("heroes.models.HeroBase").kind == "sqlmodel"


def test_sqlalchemy_base_kinds():
    ix = index("sqlmodel_async")
    kinds = {b.qualname.rsplit(".", 1)[1]: (b.kind, b.dataclass) for b in ix.declarative_bases()}
    assert kinds == {
        "mapper_registry": ("registry", False),
        "RegBase": ("generate_base", False),
        "DataBase": ("class", True),
        "OldBase": ("as_declarative", False),
    }
    assert ix.mapped_class("heroes.legacy.Tag").base == "heroes.legacy.mapper_registry"
    assert ix.mapped_class("heroes.legacy.Tag").column("label").nullable is False
    assert ix.mapped_class("heroes.legacy.Point").kind == "dataclass"
    assert ix.mapped_class("heroes.legacy.Thing").base == "heroes.legacy.OldBase"
    # a registry and the base generated from it share one metadata
    assert {m.qualname for m in ix.models_on("heroes.legacy.RegBase")} == {"heroes.legacy.Tag", "heroes.legacy.Audit"}
    # automap bases reflect tables: not a registry of models
    assert ix.declarative_base("heroes.legacy.Reflected") is None
    assert ix.mapped_class("heroes.legacy.Auto") is None


def test_async_engines_and_factories():
    ix = index("sqlmodel_async")
    a = ix.engine("heroes.db.async_engine")
    assert (a.is_async, a.url_kind, a.prefix, a.drivername) == (
        True,
        "template",
        "sqlite+aiosqlite:///",
        "sqlite+aiosqlite",
    )
    s = ix.engine("heroes.db.sync_engine")
    assert (s.is_async, s.url, s.url_kind, s.call) == (False, "sqlite", "drivername", "sqlmodel.create_engine")
    f = ix.session_factory("heroes.db.AsyncSessionLocal")
    assert (f.kind, f.is_async, f.class_, f.bind) == (
        "sessionmaker",
        True,
        "sqlalchemy.ext.asyncio.AsyncSession",
        "heroes.db.async_engine",
    )
    assert f.literals == {"expire_on_commit": False}
    shared = ix.session_instance("heroes.db.shared")
    assert (shared.via, shared.source) == ("chain", "sqlalchemy.orm.sessionmaker")
    assert ix.session_dependency_for("heroes.db.AsyncSessionLocal") == "heroes.db.get_async_session"
    assert ix.session_dependency_for("heroes.db.sync_engine") == "heroes.db.get_session"
    assert ix.function("heroes.db.get_async_session").is_async_generator


def test_async_api_routes_and_aliases():
    ix = index("sqlmodel_async")
    # the alias names its dependency through a module alias: `database.get_async_session`
    assert ix.dependency_alias("heroes.api.SessionDep") == "heroes.db.get_async_session"
    read = ix.route("heroes.api.read_hero")
    assert (read.method, read.methods, read.response_model_names) == (
        "api_route",
        ("get", "head"),
        ("heroes.models.HeroPublic",),
    )
    delete = ix.route("heroes.api.delete_hero")
    assert [d.target for d in delete.dependencies] == ["heroes.api.current_user"]
    assert ix.dependencies_of("heroes.api.delete_hero") == (("session", "heroes.db.get_session"),)
    assert ix.dependencies_of("heroes.api.read_hero") == (
        ("session", "heroes.db.get_async_session"),
        ("user", "heroes.api.current_user"),
    )
    # a route on an app created inside a factory function
    ping = ix.route("heroes.api.build.ping")
    assert (ping.owner, ping.path) == (None, "/ping")
    assert ix.function("heroes.api.build.ping").nested
    [inc] = ix.includes()
    assert (inc.owner, inc.router, inc.function) == (None, "heroes.api.router", "heroes.api.build")
    security = ix.function("heroes.api.current_user").param("token").depends
    assert (security.security, security.form, security.target) == (True, "lambda", None)


# ------------------------------------------------------------------------------------------------
# single modules: line finding, scopes, edge cases


def test_lines_and_scopes_in_one_module():
    text = '''"""Doc.

import nothing
"""
import os; import sys
SQL = """
from fake import x
"""
try:
    import ujson as json
except ImportError:
    import json
if TYPE_CHECKING:
    from a import b
from typing import TYPE_CHECKING


def f():
    import a.b.c as c

    return c
'''
    s = summary(text)
    got = [(f.line, f.modules, f.scope, f.conditional, f.function) for f in s.import_statements]
    assert got == [
        (5, ("os",), MODULE, False, None),
        (5, ("sys",), MODULE, False, None),
        (10, ("ujson",), MODULE, True, None),
        (12, ("json",), MODULE, True, None),
        (14, ("a", "a.b"), TYPE_CHECKING, False, None),  # the bare name counts even before its import
        (15, ("typing", "typing.TYPE_CHECKING"), MODULE, False, None),
        (19, ("a.b.c",), FUNCTION, False, "f"),
    ]
    assert s.functions["f"].line == 18


def test_type_checking_by_qualified_name():
    s = summary("import typing\nif typing.TYPE_CHECKING:\n    import models\n")
    assert [(f.line, f.scope) for f in s.import_statements] == [(1, MODULE), (3, TYPE_CHECKING)]
    ix = ProjectIndex([s, summary("", name="models")])
    assert ix.import_closure("m") == {"m"}  # TYPE_CHECKING imports never run
    assert ix.modules_run_before("m", 10) == set()


def test_relative_imports_in_package():
    s = summary("from . import a\nfrom ..b import c\nfrom .d import *\n", name="pkg.sub", is_package=True)
    assert [f.modules for f in s.import_statements] == [
        ("pkg.sub", "pkg.sub.a"),
        ("pkg.b", "pkg.b.c"),
        ("pkg.sub.d",),
    ]
    assert s.star_imports == ("pkg.sub.d",)


def test_dynamic_imports_flagged():
    s = summary(
        "import importlib, pkgutil\n"
        "for m in pkgutil.walk_packages(['x']):\n"
        "    importlib.import_module(m.name)\n"
        "mod = __import__('x')\n"
    )
    assert s.dynamic_imports == (
        (2, "pkgutil.walk_packages"),
        (3, "importlib.import_module"),
        (4, "builtins.__import__"),
    )


def test_generators_and_nested_functions():
    s = summary(
        "def outer():\n"
        "    def inner():\n"
        "        yield 1\n"
        "    return inner\n"
        "async def agen():\n"
        "    x = yield\n"
        "def deleg():\n"
        "    yield from outer()\n"
        "class K:\n"
        "    def meth(self, a: int = 1, *args, key, **kw) -> str:\n"
        "        return ''\n"
    )
    fns = s.functions
    assert not fns["outer"].is_generator
    assert fns["outer.inner"].is_generator and fns["outer.inner"].nested
    assert fns["agen"].is_async_generator
    assert fns["deleg"].is_generator
    meth = fns["K.meth"]
    assert meth.class_name == "m.K" and meth.qualname == "m.K.meth"
    assert [(p.name, p.kind, p.annotation, p.default) for p in meth.params] == [
        ("self", "regular", None, None),
        ("a", "regular", "int", "1"),
        ("args", "star", None, None),
        ("key", "kwonly", None, None),
        ("kw", "starstar", None, None),
    ]
    assert meth.returns == "str"
    assert s.classes["K"].methods == ("meth",)


def test_depends_forms():
    s = summary(
        "from typing import Annotated\n"
        "from fastapi import Depends as D, Security\n"
        "from deps import get_db\n"
        "class Repo: ...\n"
        "def a(x=D(get_db())): ...\n"
        "def b(x: Annotated[Repo, D()]): ...\n"
        "def c(x=Security(auth, scopes=['me'])): ...\n"
        "def d(x=D(get_db, use_cache=False, scope='function')): ...\n"
    )
    fns = s.functions
    assert (fns["a"].params[0].depends.form, fns["a"].params[0].depends.target) == ("call", "deps.get_db")
    assert (fns["b"].params[0].depends.form, fns["b"].params[0].depends.target) == ("class", "m.Repo")
    assert fns["c"].params[0].depends.security
    dep = fns["d"].params[0].depends
    assert (dep.use_cache, dep.scope, dep.where, dep.line) == (False, "function", "default", 8)


def test_overrides_update_and_include_in_functions():
    s = summary(
        "from fastapi import FastAPI\n"
        "from deps import get_db\n"
        "def setup(app: FastAPI):\n"
        "    app.dependency_overrides.update({get_db: lambda: None})\n"
        "    app.include_router(r, prefix='/x')\n"
    )
    keys = [(d.where, d.target, d.form) for d in s.depends]
    assert keys == [("override_key", "deps.get_db", "name"), ("override", None, "lambda")]
    [inc] = s.includes
    assert (inc.prefix, inc.function, inc.line) == ("/x", "m.setup", 5)


def test_flask_style_get_is_not_a_route():
    ix = ProjectIndex([summary("from flask import Flask\napp = Flask(__name__)\n@app.get('/')\ndef home(): ...\n")])
    assert ix.routes() == ()
    assert not ix.uses_fastapi


# ------------------------------------------------------------------------------------------------
# canonical names


def test_canonical_cycle_and_aliases():
    a = summary("from b import x\nimport c.d as cd\nalias = cd.thing\n", name="a")
    b = summary("from a import x\n", name="b")
    c = summary("", name="c", is_package=True)
    d = summary("thing = 1\n", name="c.d")
    ix = ProjectIndex([a, b, c, d])
    assert ix.canonical("a.x") in ("a.x", "b.x")  # a cycle stops
    assert ix.canonical("a.cd.thing") == "c.d.thing"
    assert ix.canonical("a.alias") == "c.d.thing"
    assert ix.constant("a.alias") == 1
    assert ix.constant("a.nothing") is literal_value.UNKNOWN


def test_star_import_chain():
    pkg = summary("from .one import *\n", name="p", is_package=True)
    one = summary("from .two import *\n", name="p.one")
    two = summary("class Model: ...\n", name="p.two")
    ix = ProjectIndex([pkg, one, two])
    assert ix.canonical("p.Model") == "p.two.Model"
    assert ix.class_("p.Model").qualname == "p.two.Model"


# ------------------------------------------------------------------------------------------------
# plain data: summaries and the index survive pickling


@pytest.mark.parametrize("case", ["tutorial", "srclayout", "circular", "sqlmodel_async"])
def test_summaries_round_trip_through_pickle(case):
    proj = project(case)
    summaries = [f.summary for f in proj.files.values() if f.summary is not None]
    assert summaries
    for s in summaries:
        assert pickle.loads(pickle.dumps(s)) == s
    again = ProjectIndex([pickle.loads(pickle.dumps(s)) for s in summaries], root=proj.root, src_roots=proj.roots)
    ix = proj.index
    assert again.mapped_classes() == ix.mapped_classes()
    assert again.routes() == ix.routes()
    assert again.dependencies() == ix.dependencies()
    copy = pickle.loads(pickle.dumps(ix))
    assert copy.engines() == ix.engines() and copy.session_factories() == ix.session_factories()
    assert copy.import_closure(next(iter(ix.modules))) == ix.import_closure(next(iter(ix.modules)))


def test_inline_registry_generate_base():
    s = summary(
        "from sqlalchemy import Column, Integer\n"
        "from sqlalchemy.orm import registry\n"
        "Base = registry().generate_base()\n"
        "class Row(Base):\n"
        "    __tablename__ = 'rows'\n"
        "    id = Column(Integer, primary_key=True)\n",
        name="db",
    )
    ix = ProjectIndex([s])
    assert ix.declarative_base("db.Base").kind == "generate_base"
    assert [m.qualname for m in ix.models_on("db.Base")] == ["db.Row"]


def test_metadata_object_shared_by_base_and_tables():
    db = summary(
        "from sqlalchemy import MetaData, Table, Column, Integer\n"
        "from sqlalchemy.orm import declarative_base\n"
        "metadata = MetaData()\n"
        "Base = declarative_base(metadata=metadata)\n"
        "events = Table('events', metadata, Column('id', Integer))\n",
        name="db",
    )
    ix = ProjectIndex([db])
    assert ix.declarative_base("db.Base").metadata == "db.metadata"
    assert ix.declarative_base("db.metadata").qualname == "db.Base"  # `metadata.create_all(...)`
    assert [t.name for t in ix.tables_on("db.Base")] == ["events"]
    assert ix.registering_modules("db.metadata") == {"db"}


# ------------------------------------------------------------------------------------------------
# line numbers checked against Python's own parser on real code


def _ast_lines(text: str):
    import ast

    tree = ast.parse(text)
    imports = sorted(n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
    defs = {n.lineno for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    classes = {n.lineno for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    return imports, defs, classes


def _library_files():
    import fastapi

    root = Path(fastapi.__file__).parent
    names = ("encoders.py", "utils.py", "dependencies/utils.py", "security/oauth2.py", "__init__.py")
    return [(root / n, root.parent) for n in names if (root / n).exists()]


def test_lines_agree_with_ast_on_fixtures_and_fastapi_sources():
    files = [(p, CASES / p.relative_to(CASES).parts[0]) for p in sorted(CASES.rglob("*.py"))]
    files += _library_files()
    checked = 0
    for path, base in files:
        text = path.read_text(encoding="utf-8")
        parts = list(path.relative_to(base).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        s = summary(text, name=name, is_package=is_package)
        imports, defs, classes = _ast_lines(text)
        assert sorted(f.line for f in s.import_statements) == imports, path
        assert {f.line for f in s.functions.values()} <= defs, path
        assert {c.line for c in s.classes.values()} <= classes, path
        checked += len(imports) + len(s.functions) + len(s.classes)
    assert checked > 300


def test_a_failure_in_fact_collection_leaves_the_file_unknown(monkeypatch):
    from fastsqla_lint import index as index_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(index_module, "collect", broken)
    s = summary("import os\nx = 1\n")
    assert s.facts_error == "RuntimeError: boom"
    assert s.constants == {"x": 1} and s.import_statements == ()
    assert ProjectIndex([s]).routes() == ()


def test_engine_urls_as_fsl005_reads_them():
    from fastsqla_lint.rules._engines import INTERPOLATED, parse_url

    s = summary(
        "import os\n"
        "from sqlalchemy import create_engine\n"
        "a = create_engine('sqlite:///' + os.environ['DB'])\n"
        "b = create_engine(os.getenv('DATABASE_URL', 'sqlite:///./app.db'))\n"
        "c = create_engine('postgresql://{}/db'.format(host))\n"
        "d = create_engine(settings.url)\n"
        "e = create_engine(url='sqlite://')\n"
    )
    ix = ProjectIndex([s])
    got = {e.qualname: (e.url, e.url_kind) for e in ix.engines()}
    assert got == {
        "m.a": ("sqlite:///" + INTERPOLATED, "template"),
        "m.b": ("sqlite:///./app.db", "env-default"),
        "m.c": ("postgresql://" + INTERPOLATED + "/db", "template"),
        "m.d": (None, None),
        "m.e": ("sqlite://", "literal"),
    }
    assert parse_url(ix.engine("m.a").url).kind == "file"
    assert ix.engine("m.c").drivername == "postgresql"
    assert ix.engine("m.d").drivername is None


@pytest.mark.parametrize(
    "annotation",
    [
        "int",
        "sa.orm.Session",
        "Optional[str]",
        "dict[str, list[int]]",
        "Dict[str,int]",
        "int | None",
        "Annotated[Session, Depends(get_db)]",
        "tuple[int, ...]",
        "list[ 'Item' ]",
        "Union[\n    int,\n    str,\n]",
        "(int)",
        "Callable[[int], str]",
        "x . y",
    ],
)
def test_annotation_source_is_exact(annotation):
    s = summary(f"def f(a: {annotation} = None): ...\n")
    assert s.functions["f"].params[0].annotation == annotation


def test_routes_on_an_imported_router_make_a_fastapi_module():
    api = summary("from fastapi import APIRouter\nrouter = APIRouter()\n", name="api")
    views = summary(
        "from api import router\n"
        "from deps import SessionDep\n"
        "@router.get('/x')\n"
        "def x(db: SessionDep, q=Depends(other)): ...\n",
        name="views",
    )
    deps = summary(
        "from typing import Annotated\nfrom fastapi import Depends\n"
        "def get_db():\n    yield 1\n"
        "SessionDep = Annotated[object, Depends(get_db)]\n",
        name="deps",
    )
    ix = ProjectIndex([api, views, deps])
    assert not views.imports_fastapi
    assert [r.owner for r in ix.routes()] == ["api.router"]
    assert ix.module_uses_fastapi("views")
    assert ix.module_uses_fastapi("deps")
    params = ix.function("views.x").params
    assert [p.default_is_depends for p in params] == [False, False]  # `Depends` is not imported in views
    assert ix.dependencies_of("views.x") == (("db", "deps.get_db"),)
