"""## What it does
Checks for SQLite engines that FastAPI will use from several threads without the settings that allow it:
`check_same_thread=False` for file databases (before SQLAlchemy 2.0), and, for in-memory databases,
`poolclass=StaticPool` together with `check_same_thread=False`.

## Why is this bad?
FastAPI runs `def` endpoints and dependencies in a thread pool, and one request can use more than one
thread (a dependency and the endpoint body run in different threads). SQLite's driver refuses a
connection used in a thread other than the one that created it:
`sqlite3.ProgrammingError: SQLite objects created in a thread can only be used in that same thread`.

- File databases: SQLAlchemy 2.0 turns the check off itself; before 2.0 (or when the project's version is
  unknown) the engine needs `connect_args={"check_same_thread": False}`. Reported as an error when the
  project targets SQLAlchemy < 2.0, as a warning when the version is unknown, not at all from 2.0 on.
- In-memory databases (`sqlite://`, `:memory:`, `mode=memory`), in a project that uses FastAPI: SQLAlchemy
  gives each thread its own connection, and each connection its own empty database, so a request thread
  fails with `no such table` after the tables were created in another one. One connection shared through
  `StaticPool` (with the thread check off) is the documented setup for tests with `TestClient`. Reported as
  an error in every SQLAlchemy version.

An explicit `check_same_thread=True` is deliberate and never reported. Engines built from `creator=` or
`pool=`, calls with `**kwargs`, URLs that cannot be resolved (environment variables, settings objects,
function parameters) and async engines (`create_async_engine`, `sqlite+aiosqlite`) are not reported.

## Known problems
The URL is resolved from a string or f-string literal, a module-level constant of the same module, a
constant imported from another module of the project, `URL.create("sqlite", ...)`, or the SQLite default
of `os.getenv(...)` / `os.environ.get(...)`. An in-memory default of an environment lookup is not
reported. A shared-cache in-memory URI (`cache=shared`) is treated like a file database. The FastAPI gate is
project-wide: some module of the project imports `fastapi` or `starlette`. Linted alone, without a
project, only the module's own imports count, and a file database is reported even when it has none.

## Example
    from fastapi import FastAPI
    from sqlalchemy import create_engine

    SQLALCHEMY_DATABASE_URL = "sqlite:///./sql_app.db"
    engine = create_engine(SQLALCHEMY_DATABASE_URL)
    app = FastAPI()

## Use instead
    from fastapi import FastAPI
    from sqlalchemy import create_engine

    SQLALCHEMY_DATABASE_URL = "sqlite:///./sql_app.db"
    engine = create_engine(SQLALCHEMY_DATABASE_URL, connect_args={"check_same_thread": False})
    app = FastAPI()

## Fix safety
- File database: safe. The fix adds `connect_args={"check_same_thread": False}`, or adds the key to an
  existing `connect_args` dict literal, `dict(...)` call, or dict bound to a module-level name of the same
  module. It only removes the crash.
- In-memory database: unsafe. The fix also sets `poolclass=StaticPool` (imported from `sqlalchemy.pool`, or
  from `sqlmodel` when the file already uses it), so every thread now shares one connection and one
  database; that is what a test with `TestClient` needs, but it serialises all access to that connection.
- SQLite default of an environment lookup: unsafe. The fix adds
  `connect_args={"check_same_thread": False} if URL.startswith("sqlite") else {}`, which leaves other
  databases alone; offered only when the URL is a name and the call has no `connect_args` yet.

## References
- SQLAlchemy docs, "Threading/Pooling Behavior" (dialects/sqlite.html#threading-pooling-behavior)
- FastAPI docs, "SQL (Relational) Databases" (the `check_same_thread` note)
- SQLModel docs, "Test Applications with FastAPI and SQLModel" (`StaticPool`)
- Python docs, `sqlite3.connect(check_same_thread=...)`
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules._engines import EngineCall, EngineCalls, ThreadFlag, with_dict_keyword, with_keyword

FLAG_DICT = '{"check_same_thread": False}'

MEMORY_MESSAGES = {
    (True, True): "In-memory SQLite engine without `poolclass=StaticPool` and `check_same_thread=False`: "
    "each request thread gets its own empty database",
    (True, False): "In-memory SQLite engine without `poolclass=StaticPool`: each request thread gets its own "
    "empty database",
    (False, True): "In-memory SQLite engine on `StaticPool` without `check_same_thread=False`: other threads "
    "cannot use its one connection",
}
FILE_MESSAGE = (
    "SQLite engine without `check_same_thread=False`: {when}, a connection used from another thread raises "
    "`ProgrammingError`"
)
ENV_MESSAGE = (
    "SQLite default database URL without `check_same_thread=False`: {when}, a connection used from another "
    "thread raises `ProgrammingError`"
)


class SqliteSameThread(Rule):
    code = "FSL005"
    name = "sqlite-same-thread"
    message = "SQLite engine without `check_same_thread=False` (and `StaticPool` for an in-memory database)"
    fix_title = 'Add `connect_args={"check_same_thread": False}`'
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.ERROR
    needles = (b"create_engine",)

    def __init__(self, context) -> None:
        super().__init__(context)
        self.engines = EngineCalls(self)

    def visit_Call(self, node: cst.Call) -> None:
        engine = self.engines.engine_call(node)
        if engine is None or engine.url is None or not engine.url.is_sync_sqlite:
            return
        if "creator" in engine.keywords or "pool" in engine.keywords:
            return
        flag = self.engines.thread_flag(engine)
        if flag.state == "unknown" or (flag.state == "set" and flag.value is True):
            return
        if engine.url.kind == "memory":
            self._check_memory(engine, flag)
        elif engine.url.kind in ("file", "shared-memory"):
            self._check_file(engine, flag)

    # -- the two cases --------------------------------------------------------------------------
    def _check_memory(self, engine: EngineCall, flag: ThreadFlag) -> None:
        if engine.url is None or engine.url.source == "env-default" or self._uses_fastapi() is not True:
            return
        pool = self.engines.pool_class(engine)
        if pool == "unknown":
            return
        needs_pool = pool != "static"
        needs_flag = flag.state != "set"
        if not (needs_pool or needs_flag):
            return
        new_call, extra = self._add_flag(engine, flag) if needs_flag else (engine.call, None)
        imports = []
        if needs_pool:
            local, to_import = self.engines.static_pool_name()
            new_call = with_keyword(new_call, "poolclass", cst.Name(local))
            imports = [to_import] if to_import else []
        if needs_flag:
            title = self._flag_title(flag) + (" and `poolclass=StaticPool`" if needs_pool else "")
        else:
            title = "Set `poolclass=StaticPool`"
        fix = self._fix(engine, new_call, extra, Applicability.UNSAFE, title, imports)
        self.report(engine.call, MEMORY_MESSAGES[(needs_pool, needs_flag)], fix=fix)

    def _check_file(self, engine: EngineCall, flag: ThreadFlag) -> None:
        assert engine.url is not None
        modern = self.versions.at_least("sqlalchemy", "2.0")
        if modern is True or flag.state == "set" or self._uses_fastapi() is False:
            return
        severity = Severity.ERROR if modern is False else Severity.WARNING
        when = "on SQLAlchemy < 2.0" if modern is False else "before SQLAlchemy 2.0"
        if engine.url.source == "env-default":
            fix = None
            if flag.state == "absent" and isinstance(engine.url_arg, (cst.Name, cst.Attribute)):
                url_code = self.context.module.code_for_node(engine.url_arg)
                value = self._expression(f'{FLAG_DICT} if {url_code}.startswith("sqlite") else {{}}')
                new_call = with_keyword(engine.call, "connect_args", value)
                title = f"Add `connect_args={FLAG_DICT}` when `{url_code}` is SQLite"
                fix = self._fix(engine, new_call, None, Applicability.UNSAFE, title, [])
            self.report(engine.call, ENV_MESSAGE.format(when=when), fix=fix, severity=severity)
            return
        new_call, extra = self._add_flag(engine, flag)
        fix = self._fix(engine, new_call, extra, Applicability.SAFE, self._flag_title(flag), [])
        self.report(engine.call, FILE_MESSAGE.format(when=when), fix=fix, severity=severity)

    # -- helpers --------------------------------------------------------------------------------
    def _uses_fastapi(self) -> bool | None:
        """True / False / None (unknown): does the project use FastAPI?

        This module importing `fastapi`/`starlette` settles it; otherwise the index's answer, or, from an
        index that does not give one, whether any module of the project imports them. No index: unknown.
        """
        prefixes = known.FASTAPI_MODULE_PREFIXES
        if any(self.names.imports_module(p) for p in prefixes):
            return True
        flag = getattr(self.index, "uses_fastapi", None)
        if callable(flag):
            flag = flag()
        modules = getattr(self.index, "modules", None)
        if not modules:
            return None
        if flag is not None:
            return bool(flag)
        return any(
            qn == p or qn.startswith(p + ".") for m in modules.values() for qn in m.imports.values() for p in prefixes
        )

    def _expression(self, code: str) -> cst.BaseExpression:
        return cst.parse_expression(code, config=self.context.module.config_for_parsing)

    def _add_flag(self, engine: EngineCall, flag: ThreadFlag) -> tuple[cst.Call, tuple[cst.CSTNode, cst.CSTNode] | None]:
        """The call with the flag added, and the replacement of a module-level dict when the flag goes there."""
        false = cst.Name("False")
        if flag.state == "missing" and flag.target is not None:
            merged = with_dict_keyword(flag.target, "check_same_thread", false)
            if flag.bound_to is not None:
                return engine.call, (flag.target, merged)
            return with_keyword(engine.call, "connect_args", merged), None
        return with_keyword(engine.call, "connect_args", self._expression(FLAG_DICT)), None

    @staticmethod
    def _flag_title(flag: ThreadFlag) -> str:
        if flag.state == "missing":
            where = f"`{flag.bound_to}`" if flag.bound_to else "`connect_args`"
            return f'Add `"check_same_thread": False` to {where}'
        return f"Add `connect_args={FLAG_DICT}`"

    def _fix(
        self,
        engine: EngineCall,
        new_call: cst.Call,
        extra: tuple[cst.CSTNode, cst.CSTNode] | None,
        applicability: Applicability,
        title: str,
        imports: list,
    ) -> FixRequest:
        if new_call is not engine.call:
            fix = self.fix(engine.call, new_call, applicability=applicability, title=title, add_imports=imports)
            return fix.also(*extra) if extra else fix
        assert extra is not None
        return self.fix(*extra, applicability=applicability, title=title, add_imports=imports)
