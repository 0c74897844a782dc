"""Which names inside a function hold a database session or connection, and whether it is sync or async.

A *handle* is a name through which a function talks to the database: a parameter annotated with a
Session/Connection class or filled by a dependency that yields one, or a local bound to a session-producing
expression (`SessionLocal()`, `Session(engine)`, `with engine.connect() as conn`). When a parameter's
dependency is known, what the dependency really yields wins over the annotation (`db: Session` filled by
an async dependency is an AsyncSession).

Used by the rules that need to prove a receiver before they speak: FSL007 (sync session in `async def`),
FSL009 (raw string passed to `execute()`), FSL010 (ORM object returned without a schema); FSL006 and
FSL008 read dependencies through it. Session-producing expressions, route and dependency checks come from
`_sessions` (asked after cheap checks here), route decorators from `_schemas`.

- `depends_target`, `param_dependency`, `param_type`: what a `Depends(...)` or a parameter names.
- `handle_of_type`, `produced_handle`, `dependency_handle`, `generator_handle`: the handle an annotation,
  an expression, a dependency or a generator function gives.
- `function_handles(rule, func)`: the handles of one function, by name (shared; `LazyHandles` reads them
  only when first asked).
- `is_wrapped_for_thread`: whether a call runs off the event loop.
- `is_route`, `is_dependency`, `route_calls`, `top_level_qualname`: what a function is.
- `iter_own_nodes`: a function's own nodes, nested definitions excluded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.rule import Rule, lint_cache
from fastsqla_lint.rules import _schemas, _sessions
from fastsqla_lint.walk import children

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
    if type(expr) is not cst.Call or not rule.resolves_to(expr.func, known.DEPENDS_OR_SECURITY):
        return None
    for arg in expr.args:
        if arg.keyword is None and arg.star == "":
            return arg.value
        if arg.keyword is not None and arg.keyword.value == "dependency":
            return arg.value
    return None


def annotated_parts(
    rule: Rule, annotation: cst.BaseExpression | None
) -> tuple[cst.BaseExpression, list[cst.BaseExpression]] | None:
    """`Annotated[T, m1, m2]` -> (T, [m1, m2]); None when the expression is not an `Annotated[...]`."""
    if not isinstance(annotation, cst.Subscript) or not rule.resolves_to(annotation.value, known.ANNOTATED):
        return None
    items = [el.slice.value for el in annotation.slice if isinstance(el.slice, cst.Index)]
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
        alias = rule.index.dependency_alias(qn)
        if alias is not None:
            return alias
    return None


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


def factory_handle(rule: Rule, expr: cst.BaseExpression) -> Handle | None:
    """The session a factory or registry *name* produces when called (`SessionLocal`, `async_session`)."""
    fact = _sessions.factory_info(rule.context, rule.qualified_name(expr))
    if fact is None:
        return None
    return ASYNC_SESSION if fact.is_async else SYNC_SESSION


def engine_handle(rule: Rule, expr: cst.BaseExpression) -> Handle | None:
    """The connection an engine name gives from `.connect()` / `.begin()` (sync or async), if indexed."""
    qn = rule.qualified_name(expr)
    fact = rule.index.engine(qn) if qn is not None else None
    if fact is None:
        return None
    return ASYNC_CONNECTION if fact.is_async else SYNC_CONNECTION


def produced_handle(rule: Rule, expr: cst.BaseExpression | None) -> Handle | None:
    """The handle a session- or connection-producing expression gives: a session-producing expression
    (`SessionLocal()`, `sessionmaker(...)()`, `Session(engine)`, ...), `SessionLocal.begin()`,
    `engine.connect()` or `engine.begin()`; an `await` of one of them counts too."""
    if isinstance(expr, cst.Await):
        expr = expr.expression
    if not isinstance(expr, cst.Call):
        return None
    source = _sessions.session_source(rule.context, expr)
    if source is not None:
        return ASYNC_SESSION if source.is_async else SYNC_SESSION
    func = expr.func
    if isinstance(func, cst.Attribute) and func.attr.value in ("begin", "connect"):
        if func.attr.value == "begin":
            made = factory_handle(rule, func.value)
            if made is not None:
                return made
        return engine_handle(rule, func.value)
    return None


# -- functions --------------------------------------------------------------------------------------
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


_OWN: dict[int, tuple[cst.CSTNode, tuple[cst.CSTNode, ...]]] = lint_cache()
_HANDLES: dict[int, tuple[cst.FunctionDef, object, int, dict[str, Handle]]] = lint_cache()


def iter_own_nodes(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under `node` in source order, not descending into nested functions, lambdas or classes
    (whitespace and punctuation skipped, as the walker does). Listed once per node and shared by every
    rule that asks (nodes are immutable)."""
    return iter(own_nodes(node))


# the nodes that bind names (concrete classes, so compared by type: `isinstance` is slow when it fails)
BINDING_TYPES = frozenset(
    (cst.Assign, cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.AsName, cst.For, cst.CompFor)
)


def iter_own_bindings(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The nodes of `iter_own_nodes(node)` that bind names (`BINDING_TYPES`), in source order."""
    return (n for n in own_nodes(node) if type(n) in BINDING_TYPES)


def own_nodes(node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """`iter_own_nodes(node)` as a tuple, computed once per node."""
    hit = _OWN.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    out: list[cst.CSTNode] = []
    stack = children(node)[::-1]
    skip = (cst.FunctionDef, cst.Lambda, cst.ClassDef)  # concrete classes: compared by type, not isinstance
    while stack:
        child = stack.pop()
        out.append(child)
        if type(child) in skip:
            continue
        stack.extend(children(child)[::-1])
    found = _OWN[id(node)] = (node, tuple(out))
    return found[1]


def function_handles(rule: Rule, func: cst.FunctionDef) -> dict[str, Handle]:
    """Names bound to a session or connection in `func`: parameters, then locals (a later binding wins).
    Computed once per function and lint and shared by the rules that ask (do not modify the result); again
    when the walk has added imports to the name table since."""
    ctx, imports = rule.context, len(rule.context.names.imports)
    hit = _HANDLES.get(id(func))
    if hit is not None and hit[0] is func and hit[1] is ctx and hit[2] == imports:
        return hit[3]
    out = _function_handles(rule, func)
    _HANDLES[id(func)] = (func, ctx, imports, out)
    return out


class LazyHandles(Mapping):
    """`function_handles(rule, func)`, computed when first read (for a rule that may not need them)."""

    def __init__(self, rule: Rule, func: cst.FunctionDef) -> None:
        self._rule = rule
        self._func = func
        self._found: dict[str, Handle] | None = None

    def _get(self) -> dict[str, Handle]:
        if self._found is None:
            self._found = function_handles(self._rule, self._func)
        return self._found

    def __getitem__(self, name: str) -> Handle:
        return self._get()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._get()

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


_HANDLE_BINDERS = frozenset((cst.WithItem, cst.Assign, cst.AnnAssign))  # what can bind a session handle


def _function_handles(rule: Rule, func: cst.FunctionDef) -> dict[str, Handle]:
    out: dict[str, Handle] = {}
    params = func.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        handle = None
        target = param_dependency(rule, param)
        if target is not None:
            handle = dependency_handle(rule, target)
        if handle is None:
            handle = handle_of_type(rule, param_type(rule, param))
        if handle is not None:
            out[param.name.value] = handle
    for node in own_nodes(func.body):
        if type(node) not in _HANDLE_BINDERS:  # most nodes; concrete classes, so compared by type
            continue
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


# -- what a function is (cheap checks first, then the shared helpers) ----------------------------------
def route_calls(rule: Rule, func: cst.FunctionDef) -> list[cst.Call]:
    """The decorator calls that make `func` a path operation (`@app.get(...)`, `@router.post(...)`)."""
    qn = _sessions.function_qualname(rule.context, func)
    return _schemas.route_decorator_calls(func, rule.qualified_name, rule.index, qn)


def top_level_qualname(rule: Rule, func: cst.FunctionDef) -> str | None:
    """`module.name` for a function defined at the top of the checked module (None for methods and
    nested functions)."""
    if func not in rule.context.module.body:
        return None
    module_name = rule.context.module_name
    return f"{module_name}.{func.name.value}" if module_name else func.name.value


def is_route(rule: Rule, func: cst.FunctionDef) -> bool:
    """A path operation. Only functions with a route-shaped decorator, or that the index lists as
    endpoints (`add_api_route`), are looked at closely."""
    shaped = any(
        isinstance(d.decorator, cst.Call)
        and isinstance(d.decorator.func, cst.Attribute)
        and d.decorator.func.attr.value in known.ROUTE_DECORATORS
        for d in func.decorators
    )
    if not shaped:
        qn = top_level_qualname(rule, func)
        if qn is None or rule.index.route(qn) is None:
            return False
    return _sessions.is_route(rule.context, func)


def is_dependency(rule: Rule, func: cst.FunctionDef) -> bool:
    """A dependency, as the index knows it; the checked file's own facts are read only when the index
    does not know the module (a file linted on its own)."""
    qn = top_level_qualname(rule, func)
    if qn is not None and rule.index.is_dependency(qn):
        return True
    if rule.context.module_name and rule.index.module(rule.context.module_name) is not None:
        return False
    return _sessions.is_dependency(rule.context, func)
