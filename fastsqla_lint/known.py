"""Qualified names of the library APIs the rules recognise, with their re-exports (one alias table)."""

from __future__ import annotations

SESSION_CLASSES = frozenset(
    {
        "sqlalchemy.orm.Session",
        "sqlalchemy.orm.session.Session",
        "sqlmodel.Session",
        "sqlmodel.orm.session.Session",
    }
)
ASYNC_SESSION_CLASSES = frozenset(
    {
        "sqlalchemy.ext.asyncio.AsyncSession",
        "sqlalchemy.ext.asyncio.session.AsyncSession",
        "sqlmodel.ext.asyncio.session.AsyncSession",
        "sqlmodel.ext.asyncio.AsyncSession",
    }
)
ALL_SESSION_CLASSES = SESSION_CLASSES | ASYNC_SESSION_CLASSES

SESSIONMAKERS = frozenset({"sqlalchemy.orm.sessionmaker", "sqlalchemy.orm.session.sessionmaker"})
ASYNC_SESSIONMAKERS = frozenset(
    {"sqlalchemy.ext.asyncio.async_sessionmaker", "sqlalchemy.ext.asyncio.session.async_sessionmaker"}
)
SCOPED_SESSIONS = frozenset({"sqlalchemy.orm.scoped_session", "sqlalchemy.orm.scoping.scoped_session"})
ASYNC_SCOPED_SESSIONS = frozenset(
    {"sqlalchemy.ext.asyncio.async_scoped_session", "sqlalchemy.ext.asyncio.scoping.async_scoped_session"}
)
SESSION_FACTORIES = SESSIONMAKERS | ASYNC_SESSIONMAKERS
SESSION_REGISTRIES = SCOPED_SESSIONS | ASYNC_SCOPED_SESSIONS

SYNC_ENGINES = frozenset(
    {
        "sqlalchemy.create_engine",
        "sqlalchemy.engine.create_engine",
        "sqlalchemy.engine.create.create_engine",
        "sqlmodel.create_engine",
        "sqlalchemy.engine_from_config",
        "sqlalchemy.engine.engine_from_config",
    }
)
ASYNC_ENGINES = frozenset(
    {
        "sqlalchemy.ext.asyncio.create_async_engine",
        "sqlalchemy.ext.asyncio.engine.create_async_engine",
        "sqlalchemy.ext.asyncio.async_engine_from_config",
    }
)
ENGINES = SYNC_ENGINES | ASYNC_ENGINES

URL_CREATE = frozenset({"sqlalchemy.URL.create", "sqlalchemy.engine.URL.create", "sqlalchemy.engine.url.URL.create"})

DECLARATIVE_BASE_CLASSES = frozenset(
    {
        "sqlalchemy.orm.DeclarativeBase",
        "sqlalchemy.orm.DeclarativeBaseNoMeta",
        "sqlalchemy.orm.decl_api.DeclarativeBase",
        "sqlalchemy.orm.decl_api.DeclarativeBaseNoMeta",
    }
)
DECLARATIVE_BASE_FUNCTIONS = frozenset(
    {
        "sqlalchemy.orm.declarative_base",
        "sqlalchemy.orm.decl_api.declarative_base",
        "sqlalchemy.ext.declarative.declarative_base",
    }
)
REGISTRY = frozenset({"sqlalchemy.orm.registry", "sqlalchemy.orm.decl_api.registry"})
AS_DECLARATIVE = frozenset({"sqlalchemy.orm.as_declarative", "sqlalchemy.ext.declarative.as_declarative"})
MAPPED_AS_DATACLASS = frozenset({"sqlalchemy.orm.MappedAsDataclass", "sqlalchemy.orm.decl_api.MappedAsDataclass"})
AUTOMAP_BASE = frozenset({"sqlalchemy.ext.automap.automap_base"})
SQLMODEL = frozenset({"sqlmodel.SQLModel", "sqlmodel.main.SQLModel"})
PYDANTIC_BASE_MODEL = frozenset({"pydantic.BaseModel", "pydantic.main.BaseModel"})

MAPPED = frozenset({"sqlalchemy.orm.Mapped"})
MAPPED_COLUMN = frozenset({"sqlalchemy.orm.mapped_column"})
COLUMN = frozenset({"sqlalchemy.Column", "sqlalchemy.schema.Column", "sqlmodel.Column"})
RELATIONSHIP = frozenset({"sqlalchemy.orm.relationship", "sqlalchemy.orm.relation", "sqlmodel.Relationship"})
SQLMODEL_FIELD = frozenset({"sqlmodel.Field"})
TABLE = frozenset({"sqlalchemy.Table", "sqlalchemy.schema.Table"})

SQL_TEXT = frozenset({"sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text", "sqlmodel.text"})
SELECT = frozenset({"sqlalchemy.select", "sqlalchemy.sql.select", "sqlalchemy.future.select", "sqlmodel.select"})
STATIC_POOL = frozenset(
    {"sqlalchemy.pool.StaticPool", "sqlalchemy.StaticPool", "sqlmodel.StaticPool", "sqlmodel.pool.StaticPool"}
)

FASTAPI_APP = frozenset({"fastapi.FastAPI", "fastapi.applications.FastAPI"})
API_ROUTER = frozenset({"fastapi.APIRouter", "fastapi.routing.APIRouter"})
DEPENDS = frozenset({"fastapi.Depends", "fastapi.params.Depends", "fastapi.param_functions.Depends"})
SECURITY = frozenset({"fastapi.Security", "fastapi.params.Security", "fastapi.param_functions.Security"})
DEPENDS_OR_SECURITY = DEPENDS | SECURITY
BACKGROUND_TASKS = frozenset({"fastapi.BackgroundTasks", "starlette.background.BackgroundTasks"})
TEST_CLIENT = frozenset({"fastapi.testclient.TestClient", "starlette.testclient.TestClient"})
RESPONSE_CLASSES_PREFIXES = ("fastapi.responses.", "starlette.responses.")
RESPONSE_CLASSES = frozenset({"fastapi.Response", "starlette.responses.Response"})
ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "options", "head", "trace")
ROUTE_DECORATORS = HTTP_METHODS + ("api_route",)

FASTAPI_MODULE_PREFIXES = ("fastapi", "starlette")
