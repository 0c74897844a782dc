"""Which names inside a function hold a database session or connection, and whether it is sync or async.

A *handle* is a name through which a function talks to the database: a parameter annotated with a
Session/Connection class or filled by a dependency that yields one, or a local bound to a session-producing
expression (`SessionLocal()`, `Session(engine)`, `with engine.connect() as conn`). When a parameter's
dependency is known, what the dependency really yields wins over the annotation (`db: Session` filled by
an async dependency is an AsyncSession).

Used by the rules that need to prove a receiver before they speak: FSL007 (sync session in `async def`),
FSL009 (raw string passed to `execute()`), FSL010 (ORM object returned without a schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.rule import Rule

SYNC_CONNECTIONS = frozenset(
    {"sqlalchemy.Connection", "sqlalchemy.engine.Connection", "sqlalchemy.engine.base.Connection"}
)
ASYNC_CONNECTIONS = frozenset(
    {
        "sqlalchemy.ext.asyncio.AsyncConnection",
        "sqlalchemy.ext.asyncio.engine.AsyncConnection",
    }
)
THREADPOOL_WRAPPERS = frozenset(
    {
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "asyncio.to_thread",
        "anyio.to_thread.run_sync",
        "asyncer.asyncify",
    }
)
# Method names that hand a callable to another thread (`loop.run_in_executor`, `AsyncSession.run_sync`).
THREADPOOL_METHODS = frozenset({"run_in_executor", "run_sync"})
OPTIONAL_WRAPPERS = frozenset({"typing.Optional", "typing_extensions.Optional"})
ITERATOR_WRAPPERS = frozenset(
    {
        "typing.Generator",
        "typing.Iterator",
        "typing.Iterable",
        "typing.AsyncGenerator",
        "typing.AsyncIterator",
        "typing.AsyncIterable",
        "collections.abc.Generator",
        "collections.abc.Iterator",
        "collections.abc.Iterable",
        "collections.abc.AsyncGenerator",
        "collections.abc.AsyncIterator",
        "collections.abc.AsyncIterable",
    }
)


@dataclass(frozen=True)
class Handle:
    """A session or connection, sync or async."""

    is_async: bool
    connection: bool = False

    @property
    def label(self) -> str:
        what = "Connection" if self.connection else "Session"
        return f"Async{what}" if self.is_async else what


SYNC_SESSION = Handle(False)
ASYNC_SESSION = Handle(True)
SYNC_CONNECTION = Handle(False, True)
ASYNC_CONNECTION = Handle(True, True)


# -- dependencies -----------------------------------------------------------------------------------
def depends_target(rule: Rule, expr: cst.BaseExpression | None) -> cst.BaseExpression | None:
    """The dependency callable of a `Depends(x)` / `Security(x)` call (None for anything else)."""
    if not isinstance(expr, cst.Call) or not rule.resolves_to(expr.func, known.DEPENDS_OR_SECURITY):
        return None
    for arg in expr.args:
        if arg.keyword is None and arg.star == "":
            return arg.value
        if arg.keyword is not None and arg.keyword.value == "dependency":
            return arg.value
    return None


def annotated_parts(rule: Rule, annotation: cst.BaseExpression | None) -> tuple[cst.BaseExpression, list[cst.BaseExpression]] | None:
    """`Annotated[T, m1, m2]` -> (T, [m1, m2]); None when the expression is not an `Annotated[...]`."""
    if not isinstance(annotation, cst.Subscript) or not rule.resolves_to(annotation.value, known.ANNOTATED):
        return None
    items = [
        el.slice.value for el in annotation.slice if isinstance(el.slice, cst.Index)
    ]
    if not items:
        return None
    return items[0], items[1:]


def param_dependency(rule: Rule, param: cst.Param) -> cst.BaseExpression | str | None:
    """What fills a parameter: the `Depends(x)` target as an expression, or the qualified name of the target
    of an `Annotated` alias (`SessionDep`); None when the parameter is not a dependency."""
    target = depends_target(rule, param.default)
    if target is not None:
        return target
    annotation = param.annotation.annotation if param.annotation is not None else None
    parts = annotated_parts(rule, annotation)
    if parts is not None:
        for meta in parts[1]:
            target = depends_target(rule, meta)
            if target is not None:
                return target
        return None
    qn = rule.qualified_name(annotation) if annotation is not None else None
    if qn is not None:
        alias = _dependency_alias(rule, qn)
        if alias is not None:
            return alias
    return None


def _dependency_alias(rule: Rule, qn: str) -> str | None:
    return rule.index.dependency_alias(qn)


def param_type(rule: Rule, param: cst.Param) -> cst.BaseExpression | None:
    """The declared type of a parameter, with `Annotated[...]` unwrapped."""
    annotation = param.annotation.annotation if param.annotation is not None else None
    parts = annotated_parts(rule, annotation)
    return parts[0] if parts is not None else annotation


# -- classifying expressions --------------------------------------------------------------------------
def handle_of_type(rule: Rule, annotation: cst.BaseExpression | None) -> Handle | None:
    """The handle a type annotation names (`Session`, `AsyncSession | None`, `Optional[Connection]`)."""
    if annotation is None:
        return None
    parts = annotated_parts(rule, annotation)
    if parts is not None:
        return handle_of_type(rule, parts[0])
    if isinstance(annotation, cst.BinaryOperation) and isinstance(annotation.operator, cst.BitOr):
        left = handle_of_type(rule, annotation.left)
        return left if left is not None else handle_of_type(rule, annotation.right)
    if isinstance(annotation, cst.Subscript) and rule.resolves_to(annotation.value, OPTIONAL_WRAPPERS):
        el = annotation.slice[0].slice if annotation.slice else None
        return handle_of_type(rule, el.value) if isinstance(el, cst.Index) else None
    qn = rule.qualified_name(annotation)
    if qn is None:
        return None
    if qn in known.SESSION_CLASSES:
        return SYNC_SESSION
    if qn in known.ASYNC_SESSION_CLASSES:
        return ASYNC_SESSION
    if qn in SYNC_CONNECTIONS:
        return SYNC_CONNECTION
    if qn in ASYNC_CONNECTIONS:
        return ASYNC_CONNECTION
    return None


def yielded_type(rule: Rule, annotation: cst.BaseExpression | None) -> Handle | None:
    """The handle a dependency's return annotation promises: `Generator[Session, None, None]`, `-> Session`."""
    if isinstance(annotation, cst.Subscript) and rule.resolves_to(annotation.value, ITERATOR_WRAPPERS):
        el = annotation.slice[0].slice if annotation.slice else None
        return handle_of_type(rule, el.value) if isinstance(el, cst.Index) else None
    return handle_of_type(rule, annotation)


def factory_handle(rule: Rule, expr: cst.BaseExpression) -> Handle | None:
    """The session a factory *name* produces when called (`SessionLocal`, `async_session`), if indexed."""
    qn = rule.qualified_name(expr)
    fact = rule.index.session_factory(qn) if qn is not None else None
    if fact is None:
        return None
    return ASYNC_SESSION if fact.is_async else SYNC_SESSION


def _factory_call_handle(rule: Rule, call: cst.Call) -> Handle | None:
    """`sessionmaker(...)` / `async_sessionmaker(...)` / `scoped_session(sessionmaker(...))`."""
    if rule.resolves_to(call.func, known.ASYNC_SESSIONMAKERS | known.ASYNC_SCOPED_SESSIONS):
        return ASYNC_SESSION
    if rule.resolves_to(call.func, known.SESSIONMAKERS):
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "class_":
                if rule.resolves_to(arg.value, known.ASYNC_SESSION_CLASSES):
                    return ASYNC_SESSION
                if not rule.resolves_to(arg.value, known.SESSION_CLASSES):
                    return None
        return SYNC_SESSION
    if rule.resolves_to(call.func, known.SCOPED_SESSIONS):
        inner = call.args[0].value if call.args else None
        if isinstance(inner, cst.Call):
            return _factory_call_handle(rule, inner)
        return factory_handle(rule, inner) if inner is not None else None
    return None


def engine_handle(rule: Rule, expr: cst.BaseExpression) -> Handle | None:
    """The connection an engine name gives from `.connect()` / `.begin()` (sync or async), if indexed."""
    qn = rule.qualified_name(expr)
    fact = rule.index.engine(qn) if qn is not None else None
    if fact is None:
        return None
    return ASYNC_CONNECTION if fact.is_async else SYNC_CONNECTION


def produced_handle(rule: Rule, expr: cst.BaseExpression | None) -> Handle | None:
    """The handle a session- or connection-producing expression gives.

    `SessionLocal()`, `SessionLocal.begin()`, `sessionmaker(...)()`, `Session(engine)`, `AsyncSession(engine)`,
    `engine.connect()`, `engine.begin()`; an `await` of one of them counts too.
    """
    if isinstance(expr, cst.Await):
        expr = expr.expression
    if not isinstance(expr, cst.Call):
        return None
    func = expr.func
    if isinstance(func, cst.Call):  # sessionmaker(bind=engine)()
        return _factory_call_handle(rule, func)
    if rule.resolves_to(func, known.SESSION_CLASSES):
        return SYNC_SESSION
    if rule.resolves_to(func, known.ASYNC_SESSION_CLASSES):
        return ASYNC_SESSION
    if isinstance(func, cst.Attribute) and func.attr.value in ("begin", "connect"):
        if func.attr.value == "begin":
            made = factory_handle(rule, func.value)
            if made is not None:
                return made
        return engine_handle(rule, func.value)
    return factory_handle(rule, func)


# -- functions --------------------------------------------------------------------------------------
def local_function(rule: Rule, qn: str) -> cst.FunctionDef | None:
    """The module-level `def` of the checked file that `qn` names (for rules that read its body)."""
    module_name = rule.context.module_name
    if module_name and qn.startswith(module_name + "."):
        name = qn[len(module_name) + 1 :]
    elif not module_name:
        name = qn
    else:
        return None
    for stmt in rule.context.module.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
            return stmt
    return None


def dependency_handle(rule: Rule, target: cst.BaseExpression | str) -> Handle | None:
    """What a dependency gives: a factory called by FastAPI (`Depends(SessionLocal)`), or the session or
    connection a generator dependency makes and yields (from the calls the index recorded in its body)."""
    if isinstance(target, str):
        qn: str | None = target
    else:
        made = factory_handle(rule, target)
        if made is not None:
            return made
        qn = rule.qualified_name(target)
    if qn is None:
        return None
    return generator_handle(rule, qn)


def generator_handle(rule: Rule, qn: str) -> Handle | None:
    """The handle a generator function makes from a session factory, a session class or an engine (None
    when it makes none, or several kinds)."""
    index = rule.index
    fact = index.function(qn)
    if fact is None or not fact.is_generator:
        return None
    found: set[Handle] = set()
    for callee, _bind in fact.calls:
        callee = index.canonical(callee)
        head, _, attr = callee.rpartition(".")
        factory = index.session_factory(callee) or (index.session_factory(head) if attr == "begin" else None)
        engine = index.engine(head) if attr in ("connect", "begin") else None
        if factory is not None:
            found.add(ASYNC_SESSION if factory.is_async else SYNC_SESSION)
        elif callee in known.SESSION_CLASSES:
            found.add(SYNC_SESSION)
        elif callee in known.ASYNC_SESSION_CLASSES:
            found.add(ASYNC_SESSION)
        elif engine is not None:
            found.add(ASYNC_CONNECTION if engine.is_async else SYNC_CONNECTION)
    return found.pop() if len(found) == 1 else None


def iter_own_nodes(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under `node` in source order, not descending into nested functions, lambdas or classes."""
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        yield child
        if isinstance(child, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            continue
        stack.extend(reversed(child.children))


def function_handles(rule: Rule, func: cst.FunctionDef, follow_dependencies: bool = True) -> dict[str, Handle]:
    """Names bound to a session or connection in `func`: parameters, then locals (a later binding wins)."""
    out: dict[str, Handle] = {}
    params = func.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        handle = None
        if follow_dependencies:
            target = param_dependency(rule, param)
            if target is not None:
                handle = dependency_handle(rule, target)
        if handle is None:
            handle = handle_of_type(rule, param_type(rule, param))
        if handle is not None:
            out[param.name.value] = handle
    for node in iter_own_nodes(func.body):
        if isinstance(node, cst.WithItem) and node.asname is not None:
            target = node.asname.name
            made = produced_handle(rule, node.item)
            if made is None and isinstance(node.item, cst.Name):
                made = out.get(node.item.value)
        elif isinstance(node, cst.Assign) and len(node.targets) == 1:
            target = node.targets[0].target
            made = produced_handle(rule, node.value)
        elif isinstance(node, cst.AnnAssign) and node.value is not None:
            target = node.target
            made = produced_handle(rule, node.value) or handle_of_type(rule, node.annotation.annotation)
        else:
            continue
        if not isinstance(target, cst.Name):
            continue
        if made is None and isinstance(node, cst.Assign) and isinstance(node.value, cst.Name):
            made = out.get(node.value.value)
        if made is not None:
            out[target.value] = made
        else:
            out.pop(target.value, None)  # rebound to something that is not a session
    return out


def is_wrapped_for_thread(rule: Rule, parents: list[cst.CSTNode], stop: cst.CSTNode) -> bool:
    """Whether a node (whose ancestors, innermost last, are `parents`) runs off the event loop: inside a
    lambda or nested function, or an argument of `run_in_threadpool` / `asyncio.to_thread` / `run_sync`."""
    for node in reversed(parents):
        if node is stop:
            return False
        if isinstance(node, (cst.Lambda, cst.FunctionDef)):
            return True
        if isinstance(node, cst.Call):
            if rule.resolves_to(node.func, THREADPOOL_WRAPPERS):
                return True
            if isinstance(node.func, cst.Attribute) and node.func.attr.value in THREADPOOL_METHODS:
                return True
    return False


# -- path operations and dependencies -----------------------------------------------------------------
def function_qualname(rule: Rule, func: cst.FunctionDef) -> str | None:
    """The qualified name of a module-level function of the current file."""
    if func not in rule.context.module.body:
        return None
    module_name = rule.context.module_name
    return f"{module_name}.{func.name.value}" if module_name else func.name.value


def route_calls(rule: Rule, func: cst.FunctionDef) -> list[cst.Call]:
    """The decorator calls that make `func` a path operation (`@app.get(...)`, `@router.post(...)`)."""
    from fastsqla_lint.rules import _schemas

    return _schemas.route_decorator_calls(func, rule.qualified_name, rule.index, function_qualname(rule, func))


def is_route(rule: Rule, func: cst.FunctionDef) -> bool:
    """Whether `func` serves a path operation (by decorator or `add_api_route`)."""
    qn = function_qualname(rule, func)
    return bool(route_calls(rule, func)) or (qn is not None and rule.index.route(qn) is not None)


def is_dependency(rule: Rule, func: cst.FunctionDef) -> bool:
    """Whether FastAPI calls `func` as a dependency (`Depends(func)`, an `Annotated` alias, ...)."""
    qn = function_qualname(rule, func)
    return qn is not None and rule.index.is_dependency(qn)


# -- the yield dependency wrapping a session factory ----------------------------------------------------
def factory_dependency(rule: Rule, factory_qn: str) -> str | None:
    """The qualified name of the yield dependency that makes its session with the factory `factory_qn`.

    The index is built before fixes run, so a dependency that an earlier fix pass generated in the checked
    file is looked for in the file itself first.
    """
    for stmt in rule.context.module.body:
        if isinstance(stmt, cst.FunctionDef) and _wraps_factory(rule, stmt, factory_qn):
            return function_qualname(rule, stmt)
    return rule.index.session_dependency_for(factory_qn)


def _wraps_factory(rule: Rule, func: cst.FunctionDef, factory_qn: str) -> bool:
    """Whether `func` yields a session made by calling the factory (`with F() as db: yield db`, ...)."""
    made: set[str] = set()
    yielded: list[cst.BaseExpression] = []
    for node in iter_own_nodes(func.body):
        if isinstance(node, cst.WithItem) and isinstance(node.asname, cst.AsName):
            if _calls_factory(rule, node.item, factory_qn) and isinstance(node.asname.name, cst.Name):
                made.add(node.asname.name.value)
        elif isinstance(node, cst.Assign) and len(node.targets) == 1:
            target = node.targets[0].target
            if isinstance(target, cst.Name) and _calls_factory(rule, node.value, factory_qn):
                made.add(target.value)
        elif isinstance(node, cst.Yield) and node.value is not None and not isinstance(node.value, cst.From):
            yielded.append(node.value)
    return any((isinstance(v, cst.Name) and v.value in made) or _calls_factory(rule, v, factory_qn) for v in yielded)


def _calls_factory(rule: Rule, expr: cst.BaseExpression, factory_qn: str) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    func = expr.func
    if isinstance(func, cst.Attribute) and func.attr.value == "begin":
        func = func.value
    return rule.qualified_name(func) == factory_qn


def generated_dependency(name: str, factory: str, is_async: bool, registry: bool = False) -> str:
    """The source of a yield dependency closing the session it makes, for a factory named `factory`
    (for a `scoped_session` registry, `registry.remove()` in `finally`)."""
    if registry:
        close = f"await {factory}.remove()" if is_async else f"{factory}.remove()"
        head = "async def" if is_async else "def"
        return f"{head} {name}():\n    db = {factory}()\n    try:\n        yield db\n    finally:\n        {close}\n"
    if is_async:
        return f"async def {name}():\n    async with {factory}() as db:\n        yield db\n"
    return f"def {name}():\n    with {factory}() as db:\n        yield db\n"
