"""## What it does
Checks for `create_engine()`, `create_async_engine()`, `sessionmaker()`, `async_sessionmaker()` and
`metadata.create_all()` executed inside a path operation or a dependency, or in a module-level function
that only path operations and dependencies call.

## Why is this bad?
An engine owns a connection pool and is meant to be created "once per particular database URL, held
globally for the lifetime of a single application process" (SQLAlchemy docs). Built per request, every
request opens new connections and leaves the old pool behind until garbage collection, which ends in
`too many connections` / `max clients reached` errors under load, and an in-memory SQLite database is a
new empty one every time. A session factory built per request repeats its configuration each time, and
`create_all()` in a dependency runs the schema checks on every request.

Functions that run once are left alone: `@lru_cache` / `@cache` getters (the usual `get_engine()`), the
lifespan and startup handlers, lazy singletons that store the engine in a global or an attribute, and
tests and scripts.

## Example
    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    DATABASE_URL = "postgresql://app@db/app"
    app = FastAPI()

    def get_db():
        engine = create_engine(DATABASE_URL)
        with Session(engine) as db:
            yield db

    @app.get("/items")
    def list_items(db: Session = Depends(get_db)): ...

## Use instead
    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    DATABASE_URL = "postgresql://app@db/app"
    app = FastAPI()

    engine = create_engine(DATABASE_URL)


    def get_db():
        with Session(engine) as db:
            yield db

    @app.get("/items")
    def list_items(db: Session = Depends(get_db)): ...

## Fix safety
Unsafe: the call moves to module level, right before the function, when its arguments are module-level
names or literals (so it now runs once, at import time, and a configuration read at import must be
ready by then). Otherwise the call goes into an `@lru_cache` function taking the arguments that change
(`get_engine(settings.database_url)`), built once per distinct argument; `create_all()` always takes
that form, so its DDL still runs at the first request rather than at import. Display-only when an
argument that changes is a dict, list or other unhashable value (or `*args` / `**kwargs`), which
`lru_cache` cannot key on. No fix for `run_sync(metadata.create_all)` in an async function: move it to
the lifespan.

## References
- SQLAlchemy docs, "Engine Configuration" and "Working with Engines and Connections" (engine lifetime)
- FastAPI docs, "Settings and Environment Variables" (`@lru_cache` getters), "Lifespan Events"
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.literals import UNKNOWN, literal_value
from fastsqla_lint.names import BUILTINS
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _sessions
from fastsqla_lint.rules._edits import comment_lines, insert_before, replace_in, walk

CACHES = frozenset(
    {
        "functools.lru_cache",
        "functools.cache",
        "async_lru.alru_cache",
        "cachetools.cached",
        "cachetools.func.lru_cache",
        "cachetools.func.ttl_cache",
    }
)
UNHASHABLE = (cst.Dict, cst.List, cst.Set, cst.DictComp, cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.Lambda)
NOT_CONSTANT = (cst.Call, cst.Await, cst.Lambda, cst.Yield, cst.NamedExpr, cst.DictComp, cst.ListComp,
                cst.SetComp, cst.GeneratorExp)


@dataclass(frozen=True)
class Made:
    """What a call builds: kind "engine" | "factory" | "ddl", and how the message names the call."""

    kind: str
    label: str


class EnginePerRequest(Rule):
    code = "FSL012"
    name = "engine-per-request"
    message = "Engine, session factory or `create_all()` built on every request"
    fix_title = "Build it once: move it to module level, or into an `@lru_cache` function"
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.WARNING
    needles = (b"create_engine", b"create_async_engine", b"engine_from_config", b"sessionmaker", b"create_all")

    def __init__(self, context) -> None:
        super().__init__(context)
        self._request_time: dict[int, str | None] = {}
        # module-level names this lint run's fixes create: any subset of them can be applied together
        self._claimed: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        made = self._made(node)
        if made is None or not self.context.functions:
            return
        where = self._where()
        if where is None or self._stored(node):
            return
        message = f"{made.label} runs on every request, {where}: " + {
            "engine": "each call builds a new engine and connection pool",
            "factory": "configure the session factory once and reuse it",
            "ddl": "the schema DDL is checked against the database each time",
        }[made.kind]
        self.report(node, message, fix=self._fix(node, made))

    # -- detection ----------------------------------------------------------------------------------
    def _made(self, call: cst.Call) -> Made | None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "create_all" and _is_metadata(func.value):
            return Made("ddl", "`metadata.create_all()`")
        if isinstance(func, cst.Attribute) and func.attr.value == "run_sync" and call.args:
            ref = call.args[0].value
            if isinstance(ref, cst.Attribute) and ref.attr.value == "create_all" and _is_metadata(ref.value):
                return Made("ddl", "`run_sync(metadata.create_all)`")
        qn = self.qualified_name(func)
        if qn in known.ENGINES:
            return Made("engine", f"`{qn.rsplit('.', 1)[1]}()`")
        if qn in known.SESSION_FACTORIES:
            return Made("factory", f"`{qn.rsplit('.', 1)[1]}()`")
        return None

    def _where(self) -> str | None:
        """How the message names the request-time function the call runs in (None: not one)."""
        ctx = self.context
        if _sessions.excluded_module(ctx) is not None or _sessions.in_main_block(ctx):
            return None
        functions = ctx.functions
        if any(self._cached(f) for f in functions):
            return None
        for func in reversed(functions):
            where = self._request_time_of(func, set())
            if where is not None:
                return where
        return None

    def _request_time_of(self, func: cst.FunctionDef, seen: set[int]) -> str | None:
        """"in path operation `f`" / "in dependency `f`" / "in `f` (called only from ...)" or None."""
        key = id(func)
        if key in self._request_time:
            return self._request_time[key]
        if key in seen:
            return None
        seen.add(key)
        ctx = self.context
        name = func.name.value
        where = None
        if self._cached(func) or _sessions.is_lifecycle_handler(ctx, func) or _sessions.is_test_setup(ctx, func):
            where = None
        elif _sessions.is_route(ctx, func):
            where = f"in path operation `{name}`"
        elif _sessions.is_dependency(ctx, func):
            where = f"in dependency `{name}`"
        elif func in ctx.module.body and self._only_called_at_request_time(func, seen):
            where = f"in `{name}`, which only path operations and dependencies call"
        self._request_time[key] = where
        return where

    def _only_called_at_request_time(self, func: cst.FunctionDef, seen: set[int]) -> bool:
        facts = _sessions.module_facts(self.context)
        qn = _sessions.function_qualname(self.context, func)
        if qn is None or _sessions.importers(self.context, qn):
            return False
        refs = facts.references.get(func.name.value, [])
        if not refs:
            return False
        for ref in refs:
            callers = [f for f in (ref.function, ref.outer) if f is not None]
            if not callers or not any(self._request_time_of(f, seen) is not None for f in callers):
                return False
        return True

    def _cached(self, func: cst.FunctionDef) -> bool:
        for dec in func.decorators:
            expr = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
            if self.resolves_to(expr, CACHES):
                return True
        return False

    def _stored(self, call: cst.Call) -> bool:
        """The result goes to a global, an attribute or a container: a lazy singleton or a cache."""
        parents = self.context.parents
        owner = parents[-1] if parents else None
        if isinstance(owner, cst.Assign) and owner.value is call:
            func = self.current_function
            declared = _declared_global(func) if func is not None else set()
            for t in owner.targets:
                if not isinstance(t.target, cst.Name) or t.target.value in declared:
                    return True
        return False

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, call: cst.Call, made: Made) -> FixRequest | None:
        top = self._top_statement()
        if top is None:
            return None
        if made.kind == "ddl":
            if call.func is not None and isinstance(call.func, cst.Attribute) and call.func.attr.value == "run_sync":
                return None
            return self._cache_fix(call, made, top)
        if self._waits_for_another(call):
            return None
        reused = self._reuse(call, top)
        if reused is not None:
            return reused
        if self._constant_args(call, top):
            hoisted = self._hoist(call, made, top)
            if hoisted is not None:
                return hoisted
        return self._cache_fix(call, made, top)

    def _waits_for_another(self, call: cst.Call) -> bool:
        """An argument names a local made by another reported call of the function (`sessionmaker(bind=
        engine)` after `engine = create_engine(URL)`): that one is fixed first, this one on the next pass."""
        func = self.current_function
        if func is None or not isinstance(func.body, cst.IndentedBlock):
            return False
        made: set[str] = set()
        for node in walk(func.body):
            if isinstance(node, cst.Assign) and isinstance(node.value, cst.Call) and node.value is not call:
                if self._made(node.value) is not None:
                    made |= {t.target.value for t in node.targets if isinstance(t.target, cst.Name)}
        if any(
            isinstance(n, cst.Call) and self._made(n) is not None for arg in call.args for n in walk(arg.value)
        ):
            return True
        return any(_sessions.names_read(arg.value) & made for arg in call.args)

    def _reuse(self, call: cst.Call, top: cst.BaseStatement) -> FixRequest | None:
        """Use the module-level `name = <the same call>` the module already has."""
        module = self.context.module
        code = module.code_for_node(call)
        found = [
            t.target.value
            for stmt in module.body
            if isinstance(stmt, cst.SimpleStatementLine)
            for small in stmt.body
            if isinstance(small, cst.Assign) and module.code_for_node(small.value) == code
            for t in small.targets
            if isinstance(t.target, cst.Name)
        ]
        if len(found) != 1 or found[0] in self._locals() - self._own_target(call):
            return None
        name = found[0]
        func = self.current_function
        assert func is not None
        statement = self._own_assignment(call, func)
        title = f"Use the module-level `{name}`"
        if statement is not None and name in self._own_target(call):
            body = func.body
            assert isinstance(body, cst.IndentedBlock)
            if len(body.body) < 2:
                return None
            new_body = _without(body, statement)
            if new_body is None:
                return None
            return self.fix(body, new_body, applicability=Applicability.UNSAFE, title=title)
        if name in self._locals():
            return None
        return self.fix(call, cst.Name(name), applicability=Applicability.UNSAFE, title=title)

    def _own_target(self, call: cst.Call) -> set[str]:
        """The local name the call is assigned to (`x = call(...)`), if any."""
        parents = self.context.parents
        owner = parents[-1] if parents else None
        if isinstance(owner, cst.Assign) and owner.value is call:
            return {t.target.value for t in owner.targets if isinstance(t.target, cst.Name)}
        return set()

    def _top_statement(self) -> cst.BaseStatement | None:
        body = self.context.module.body
        for node in self.context.parents:
            if node in body:
                return node  # type: ignore[return-value]
        return None

    def _locals(self) -> set[str]:
        """Names local to the enclosing functions (parameters and assignments)."""
        out: set[str] = set()
        for func in self.context.functions:
            out |= _sessions.function_locals(self.context, func)
        return out

    def _constant_args(self, call: cst.Call, top: cst.BaseStatement) -> bool:
        """Every argument is a literal or built from module-level names bound before `top`."""
        bound = _bound_before(self.context.module, top)
        local = self._locals()
        for arg in call.args:
            if arg.star:
                return False
            if not self._module_level(arg.value, bound, local):
                return False
        return True

    def _module_level(self, expr: cst.BaseExpression, bound: set[str], local: set[str]) -> bool:
        if literal_value(expr) is not UNKNOWN:
            return True
        for node in walk(expr):
            if isinstance(node, NOT_CONSTANT):
                return False
        for name in _sessions.names_read(expr):
            if name in local or (name not in bound and name not in BUILTINS):
                return False
        return True

    def _hoist(self, call: cst.Call, made: Made, top: cst.BaseStatement) -> FixRequest | None:
        """Move `x = call(...)` out of the function to module level, or name the call there."""
        ctx = self.context
        func = self.current_function
        assert func is not None
        taken = self._taken()
        statement = self._own_assignment(call, func)
        config = ctx.module.config_for_parsing
        if statement is not None:
            target = statement.body[0].targets[0].target  # type: ignore[attr-defined]
            assert isinstance(target, cst.Name)
            if target.value not in taken and isinstance(func.body, cst.IndentedBlock) and len(func.body.body) > 1:
                self._claimed.add(target.value)
                new_body = func.body.with_changes(body=[s for s in func.body.body if s is not statement])
                updated = replace_in(top, {id(func.body): (func.body, new_body)})
                moved = statement.with_changes(leading_lines=())
                fix = self.fix(
                    top,
                    insert_before(top, moved, updated, carried=comment_lines(statement)),
                    applicability=Applicability.UNSAFE,
                    title=f"Create `{target.value}` once, at module level",
                )
                return fix
        own = func.name.value
        name = _free(
            ("engine", "db_engine", f"{own}_engine")
            if made.kind == "engine"
            else ("SessionLocal", "AsyncSessionLocal", f"{own}_session_factory"),
            taken | self._locals(),
        )
        if name is None:
            return None
        self._claimed.add(name)
        new = cst.parse_statement(f"{name} = {ctx.module.code_for_node(call)}\n", config=config)
        updated = replace_in(top, {id(call): (call, cst.Name(name))})
        return self.fix(
            top,
            insert_before(top, new, updated),
            applicability=Applicability.UNSAFE,
            title=f"Create it once, at module level, as `{name}`",
        )

    def _taken(self) -> set[str]:
        """Module-level names in use, and the ones other fixes of this run create."""
        ctx = self.context
        return (
            set(ctx.names.defined) | set(ctx.names.imports) | set(_sessions.module_facts(ctx).references) | self._claimed
        )

    def _own_assignment(self, call: cst.Call, func: cst.FunctionDef) -> cst.SimpleStatementLine | None:
        """`x = call(...)` as a statement of the function body itself, `x` bound nowhere else in it."""
        if not isinstance(func.body, cst.IndentedBlock):
            return None
        for stmt in func.body.body:
            if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
                continue
            small = stmt.body[0]
            if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
                target = small.targets[0].target
                if not isinstance(target, cst.Name):
                    return None
                count = sum(
                    1
                    for n in walk(func)
                    if isinstance(n, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.AsName, cst.For))
                    and any(isinstance(x, cst.Name) and x.value == target.value
                            for x in walk(n.name if isinstance(n, cst.AsName) else n.target))
                )
                params = {p.name.value for p in walk(func.params) if isinstance(p, cst.Param)}
                return stmt if count == 1 and target.value not in params else None
        return None

    def _cache_fix(self, call: cst.Call, made: Made, top: cst.BaseStatement) -> FixRequest | None:
        """Wrap the call in an `@lru_cache` function taking the arguments that are not module-level."""
        ctx = self.context
        config = ctx.module.config_for_parsing
        bound = _bound_before(ctx.module, top, everything=True)
        local = self._locals()
        taken = self._taken() | local
        own = self.current_function.name.value if self.current_function is not None else "request"
        getter = _free(
            {"engine": ("get_engine", f"{own}_engine"), "factory": ("get_session_factory", f"{own}_session_factory"),
             "ddl": ("create_tables", f"{own}_create_tables")}[made.kind],
            taken,
        )
        if getter is None:
            return None
        self._claimed.add(getter)
        cache = _sessions.local_name_for(ctx, ["functools.lru_cache"])
        imports = [] if cache is not None else [("functools", "lru_cache")]
        if cache is None:
            if "lru_cache" in taken:
                return None
            cache = "lru_cache"
        applicability = Applicability.UNSAFE
        params: list[str] = []
        values: list[cst.BaseExpression] = []
        new_args = []
        receiver = call.func.value if made.kind == "ddl" else None  # type: ignore[union-attr]
        if receiver is not None and not self._module_level(receiver, bound, local):
            return None
        for i, arg in enumerate(call.args):
            if arg.star:
                applicability = Applicability.DISPLAY_ONLY
            if arg.star or self._module_level(arg.value, bound, local):
                new_args.append(arg)
                continue
            if isinstance(arg.value, UNHASHABLE):
                applicability = Applicability.DISPLAY_ONLY
            hint = arg.keyword.value if arg.keyword is not None else _hint(arg.value, i, made.kind)
            param = _free((hint, f"{hint}_{i}"), set(params))
            assert param is not None
            params.append(param)
            values.append(arg.value)
            new_args.append(arg.with_changes(value=cst.Name(param)))
        inner = call.with_changes(args=new_args)
        body = ctx.module.code_for_node(inner)
        statement = body if made.kind == "ddl" else f"return {body}"
        code = f"@{cache}\ndef {getter}({', '.join(params)}):\n    {statement}\n"
        try:
            new_func = cst.parse_statement(code, config=config)
        except cst.ParserSyntaxError:
            return None
        replacement = cst.Call(func=cst.Name(getter), args=_args(values))
        updated = replace_in(top, {id(call): (call, replacement)})
        title = f"Build it once per distinct argument in an `@{cache}` function `{getter}()`"
        if applicability is Applicability.DISPLAY_ONLY:
            title += " (its arguments must be hashable)"
        return self.fix(top, insert_before(top, new_func, updated), applicability=applicability, title=title,
                        add_imports=imports)


def _without(body: cst.IndentedBlock, statement: cst.SimpleStatementLine) -> cst.IndentedBlock | None:
    """The block without `statement`; its comments go to the statement that follows it."""
    stmts = list(body.body)
    i = stmts.index(statement)
    comments = comment_lines(statement)
    trailing = statement.trailing_whitespace.comment
    if trailing is not None:
        comments.append(cst.EmptyLine(comment=trailing))
    if i + 1 >= len(stmts):
        return None if comments else body.with_changes(body=stmts[:i])
    nxt = stmts[i + 1]
    stmts[i + 1] = nxt.with_changes(leading_lines=[*statement.leading_lines[: len(statement.leading_lines) - len(comment_lines(statement))], *comments, *nxt.leading_lines])
    del stmts[i]
    return body.with_changes(body=stmts)


def _is_metadata(expr: cst.BaseExpression) -> bool:
    """`X.metadata` (`Base.metadata`, `SQLModel.metadata`, `models.Base.metadata`)."""
    return isinstance(expr, cst.Attribute) and expr.attr.value == "metadata"


def _declared_global(func: cst.FunctionDef) -> set[str]:
    return {n.name.value for node in walk(func.body) if isinstance(node, (cst.Global, cst.Nonlocal)) for n in node.names}


def _bound_before(module: cst.Module, top: cst.BaseStatement, everything: bool = False) -> set[str]:
    """Names bound at module level before `top` (every module-level name with `everything`)."""
    out: set[str] = set()
    for stmt in module.body:
        if stmt is top and not everything:
            break
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            out.add(stmt.name.value)
            continue
        for node in walk(stmt):
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not stmt:
                continue
            if isinstance(node, cst.ImportAlias):
                if node.asname is not None and isinstance(node.asname.name, cst.Name):
                    out.add(node.asname.name.value)
                else:
                    dotted = module.code_for_node(node.name)
                    out.add(dotted.split(".")[0])
            elif isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For)):
                out |= {n.value for n in walk(node.target) if isinstance(n, cst.Name)}
            elif isinstance(node, cst.AsName) and isinstance(node.name, cst.Name):
                out.add(node.name.value)
    return out


def _free(candidates, taken: set[str]) -> str | None:
    """The first candidate not taken, then the last one numbered (`x_engine_2`, ...)."""
    candidates = list(candidates)
    for c in (*candidates, *(f"{candidates[-1]}_{n}" for n in range(2, 10))):
        if c not in taken:
            return c
    return None


def _hint(expr: cst.BaseExpression, i: int, kind: str) -> str:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if i == 0:
        return "url" if kind == "engine" else "bind"
    return f"arg{i}"


def _args(values: list[cst.BaseExpression]) -> list[cst.Arg]:
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [cst.Arg(v, comma=comma if i < len(values) - 1 else cst.MaybeSentinel.DEFAULT) for i, v in enumerate(values)]
