"""Shared session knowledge for the rules (a helper module, not a rule).

What several rules need to agree on, in one place. Every function takes the rule's `RuleContext` and
reads the project index through it; nothing here writes to the index or does I/O.

Sessions
- `may_create_sessions(ctx)`: the cheap first test (can this module name a session maker at all?).
- `session_source(ctx, call)`: is this call a *session-producing expression* (a Session class, a project
  factory such as `SessionLocal()`, a `sessionmaker(...)()` chain, a scoped registry, `next(get_db())`)?
  `factory_info(ctx, qn)`, `registry_of(ctx, expr)`, `local_factories(ctx)` answer about factories.
- `analyse_function(ctx, func)`: how a function creates, yields, returns and closes its sessions (the
  FSL002 compliance check: `with`, `try`/`finally`, `.remove()`, swallowing `except`, escapes).

Functions and modules
- `module_facts(ctx)`: per-module facts computed once (apps and routers, dependency targets, `Annotated`
  aliases, direct calls, `__main__` blocks, scope-aware references to module-level names).
- `is_route`, `is_dependency`, `is_middleware`, `is_lifecycle_handler`, `is_pytest_fixture`,
  `is_test_setup`, `function_qualname`, `current_qualname`: what a function is.
- `excluded_module(ctx)` and `fastapi_gate(ctx)`: the FastAPI gate of RULES.md §2 with its exclusions
  (tests, seed and CLI scripts, workers, migrations); `in_main_block(ctx)`; `importers(ctx, qn)`.

Fixes
- `session_dependency(ctx, source, before)`: the yield dependency to use for a session source: the
  project's own (imported when needed), or a generated FSL002-compliant one (`new_dependency`) with the
  place to insert it (`insert_after`). `share_generated` makes several fixes of one lint pass share one
  generated function; rules call `start_pass` from `__init__`.
- `dependency_param`, `add_param`, `depends_call`, `session_type`, `alias_for`: a `Depends(...)`
  parameter in the style the module already uses (its alias, `Annotated[...]`, or a default).
- `remove_statement`: remove a top-level statement, keeping a section comment above it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Sequence

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability
from fastsqla_lint.literals import literal_value
from fastsqla_lint.names import dotted_name
from fastsqla_lint.rule import FixRequest, RuleContext, lint_cache
from fastsqla_lint.walk import children

NEXT = frozenset({"builtins.next"})
CLOSING = frozenset({"contextlib.closing"})
PYTEST_FIXTURES = frozenset({"pytest.fixture", "pytest_asyncio.fixture"})
TEST_SETUP_NAMES = frozenset({"setUp", "setUpClass", "asyncSetUp", "setup_method", "setup_class", "setUpModule"})
# Modules importing one of these (and not FastAPI) are command-line tools or workers, not web apps.
SCRIPT_FRAMEWORKS = ("click", "typer", "argparse", "celery", "rq", "dramatiq", "huey", "arq", "apscheduler", "fire")
SCRIPT_DIRS = frozenset({"scripts", "script", "bin", "alembic", "migrations", "seeds", "seed"})
LIFECYCLE_EVENTS = ("on_event", "add_event_handler")


# ---------------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------------
def qualname(ctx: RuleContext, expr: cst.BaseExpression | None) -> str | None:
    """The project-canonical qualified name of a dotted expression, or None."""
    return ctx.qualified_name(expr)


def local_name_for(ctx: RuleContext, targets: Iterable[str]) -> str | None:
    """An expression text naming one of `targets` with the module's existing imports (`Depends`,
    `fastapi.Depends`, `D` for `from fastapi import Depends as D`), or None when nothing is imported."""
    wanted = set(targets)
    best = None
    for local, target in ctx.names.imports.items():
        canon = ctx.index.canonical(target)
        if target in wanted or canon in wanted:
            return local
        for t in wanted:
            if t.startswith(target + ".") and best is None:
                best = local + t[len(target) :]
    return best


def _index_query(ctx: RuleContext, name: str, *args):
    """Ask the project index; None when it does not answer this query."""
    query = getattr(ctx.index, name, None)
    if query is None:
        return None
    try:
        return query(*args) if callable(query) else query
    except Exception:  # an index query must never break a rule
        return None


# ---------------------------------------------------------------------------------------------------
# Session-producing expressions
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Factory:
    """A session factory or registry: `sessionmaker(...)`, `async_sessionmaker(...)`, `scoped_session(...)`."""

    qualname: str
    is_async: bool
    is_registry: bool = False
    kind: str = "sessionmaker"


@dataclass(frozen=True)
class SessionSource:
    """A session-producing expression.

    kind: "class" (`Session(engine)`), "factory" (`SessionLocal()`), "chain" (`sessionmaker(...)()`),
    "registry" (`Scoped()`), "generator" (`next(get_db())`), or "transaction" (`SessionLocal.begin()`
    as a `with` item: it commits on success). `target` is the qualified name of the
    class, factory, registry or dependency (None for chains). `callee` is the expression being called
    (for "generator", the dependency expression inside `next(...)`).
    """

    call: cst.Call
    kind: str
    target: str | None
    is_async: bool
    callee: cst.BaseExpression

    @property
    def is_registry(self) -> bool:
        return self.kind == "registry"


def factory_info(ctx: RuleContext, qn: str | None) -> Factory | None:
    """The session factory or registry named `qn` (from the index, else from this module's assignments)."""
    if qn is None:
        return None
    found = _index_query(ctx, "session_factory", qn)
    if found is not None:
        kind = str(getattr(found, "kind", "") or "sessionmaker")
        is_async = bool(getattr(found, "is_async", False)) or kind.startswith("async")
        return Factory(qn, is_async, "scoped" in kind, kind)
    prefix = f"{ctx.module_name}." if ctx.module_name else ""
    if not qn.startswith(prefix) or "." in qn[len(prefix) :]:
        return None
    return local_factories(ctx).get(qn)


_FACTORIES: dict[int, tuple[cst.Module, dict[str, Factory]]] = lint_cache()


def local_factories(ctx: RuleContext) -> dict[str, Factory]:
    """Session factories and registries assigned at module level in this module (a cheap scan)."""
    hit = _FACTORIES.get(id(ctx.module))
    if hit is not None and hit[0] is ctx.module:
        return hit[1]
    prefix = f"{ctx.module_name}." if ctx.module_name else ""
    found: dict[str, Factory] = {}
    for stmt in _flat_top(ctx.module.body, set()):
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            for target, value in _assign_pairs(small):
                if isinstance(target, cst.Name) and isinstance(value, cst.Call):
                    callee = qualname(ctx, value.func)
                    made = _factory_from_call(ctx, value, callee) if callee else None
                    if made is not None:
                        qn = prefix + target.value
                        found[qn] = Factory(qn, made.is_async, made.is_registry, made.kind)
    _FACTORIES[id(ctx.module)] = (ctx.module, found)
    return found


def _factory_from_call(ctx: RuleContext, call: cst.Call, qn: str) -> Factory | None:
    """`sessionmaker(...)` & co. called with these arguments (qn is the callee's qualified name)."""
    if qn in known.ASYNC_SESSIONMAKERS:
        return Factory("", True, False, "async_sessionmaker")
    if qn in known.SESSIONMAKERS:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "class_":
                if ctx.names.resolves_to(arg.value, known.ASYNC_SESSION_CLASSES):
                    return Factory("", True, False, "sessionmaker")
        return Factory("", False, False, "sessionmaker")
    if qn in known.SESSION_REGISTRIES:
        return Factory("", qn in known.ASYNC_SCOPED_SESSIONS, True, "scoped_session")
    return None


SESSION_MAKERS = known.ALL_SESSION_CLASSES | known.SESSION_FACTORIES | known.SESSION_REGISTRIES
_MAY: dict[int, tuple[cst.Module, int, bool]] = lint_cache()


def may_create_sessions(ctx: RuleContext) -> bool:
    """A cheap test to run before anything else: can this module name anything that makes a session?

    True when it imports a Session class, a factory or registry function, a project session factory or a
    project generator that makes sessions, or defines a factory itself. Function-level imports count as
    the walk reaches them (the answer is recomputed when the import table grows).
    """
    imports = ctx.names.imports
    hit = _MAY.get(id(ctx.module))
    if hit is not None and hit[0] is ctx.module and hit[1] == len(imports):
        return hit[2]
    found = bool(local_factories(ctx))
    if not found:
        for target in imports.values():
            canon = ctx.index.canonical(target)
            if canon in SESSION_MAKERS or target in SESSION_MAKERS:
                found = True
            elif _index_query(ctx, "session_factory", canon) is not None:
                found = True
            elif is_session_dependency_name(ctx, canon):
                found = True
            if found:
                break
    _MAY[id(ctx.module)] = (ctx.module, len(imports), found)
    return found


_SOURCES: dict[int, tuple] = lint_cache()


def session_source(ctx: RuleContext, call: cst.Call) -> SessionSource | None:
    """Whether `call` produces a session, and from what. Computed once per call and lint (several rules
    ask about every call); again when the walk has changed the name table since."""
    generation = ctx.names.generation
    hit = _SOURCES.get(id(call))
    if hit is not None and hit[0] is call and hit[1] is ctx and hit[2] == generation:
        return hit[3]
    found = _session_source(ctx, call)
    _SOURCES[id(call)] = (call, ctx, generation, found)
    return found


def _session_source(ctx: RuleContext, call: cst.Call) -> SessionSource | None:
    func = call.func
    if isinstance(func, cst.Call):  # sessionmaker(...)()
        inner = qualname(ctx, func.func)
        if inner is not None:
            made = _factory_from_call(ctx, func, inner)
            if made is not None and not made.is_registry:
                return SessionSource(call, "chain", None, made.is_async, func)
        return None
    qn = qualname(ctx, func)
    if qn is None:
        return None
    if qn in known.ALL_SESSION_CLASSES:
        return SessionSource(call, "class", qn, qn in known.ASYNC_SESSION_CLASSES, func)
    if qn in NEXT and len(call.args) == 1 and isinstance(call.args[0].value, cst.Call):
        gen = call.args[0].value
        dep = qualname(ctx, gen.func)
        if dep is not None and not gen.args and is_session_dependency_name(ctx, dep):
            return SessionSource(call, "generator", dep, _is_async_function(ctx, dep), gen.func)
        return None
    fac = factory_info(ctx, qn)
    if fac is not None:
        return SessionSource(call, "registry" if fac.is_registry else "factory", qn, fac.is_async, func)
    return None


def is_session_dependency_name(ctx: RuleContext, qn: str) -> bool:
    """Whether `qn` names a generator that provides a session (analysed here when it is defined in this
    module; otherwise a project generator that calls a session factory or class, as the index says)."""
    if ctx.module_name and qn.startswith(ctx.module_name + "."):
        func = _local_function(ctx, qn)
        if func is not None:
            return analyse_function(ctx, func).yields_session
    fact = _index_query(ctx, "function", qn)
    if fact is None or not getattr(fact, "is_generator", False):
        return False
    for callee, _ in getattr(fact, "calls", ()):
        c = ctx.index.canonical(callee)
        if c in known.ALL_SESSION_CLASSES or _index_query(ctx, "session_factory", c) is not None:
            return True
    return False


def _is_async_function(ctx: RuleContext, qn: str) -> bool:
    func = _local_function(ctx, qn)
    if func is not None:
        return func.asynchronous is not None
    info = _index_query(ctx, "function", qn)
    return bool(getattr(info, "is_async", False))


def registry_of(ctx: RuleContext, expr: cst.BaseExpression) -> Factory | None:
    """The scoped registry an expression names (`Scoped`, `db.Scoped`), if it is one."""
    fac = factory_info(ctx, qualname(ctx, expr))
    return fac if fac is not None and fac.is_registry else None


# ---------------------------------------------------------------------------------------------------
# Per-module facts
# ---------------------------------------------------------------------------------------------------
@dataclass
class Reference:
    """One use of a module-level name: the node and the innermost function it sits in (None: module level)."""

    node: cst.Name
    function: cst.FunctionDef | None
    outer: cst.FunctionDef | None = None  # the outermost function (the one defined at module or class level)


class ModuleFacts:
    """Per-module facts, in three parts computed as they are first needed.

    The layout (cheap: module-level statements only) is computed by `module_facts`: `top_statements`,
    `main_blocks`, `apps`, `functions`, `function_names`, `instances`, `uses_fastapi`. The call facts
    (`dependencies`, `dependency_lambdas`, `aliases`, `uses_annotated_depends`, `direct_calls`) need one
    pass over the calls of the whole module, and `references` one scope-aware pass over its names: each
    runs on first access. Both read names through the import table as it was when the layout was
    computed, so the answer does not depend on which rule asks first.
    """

    def __init__(self, module: cst.Module, module_name: str) -> None:
        self.module = module
        self.module_name = module_name
        self.uses_fastapi = False
        # the module-level statements (flattened through if/try; `__main__` blocks excluded)
        self.top_statements: list[cst.BaseStatement] = []
        self.main_blocks: set[int] = set()
        self.apps: set[str] = set()
        # qualified name of each function / method defined in the module, and the reverse
        self.functions: dict[str, cst.FunctionDef] = {}
        self.function_names: dict[int, str] = {}
        # callable instances: `get_session = SessionGetter()` -> `mod.SessionGetter.__call__`
        self.instances: dict[str, str] = {}
        self.analyses: dict[int, "FunctionAnalysis"] = {}
        # fixes of the current lint pass that generate a dependency, by generated name (see `share_generated`)
        self.generated: dict[str, FixRequest] = {}
        self.generated_code: dict[str, str] = {}  # the function each of them writes
        self.locals: dict[int, frozenset[str]] = {}  # `_function_locals` of the functions asked about
        self._dependencies: set[str] = set()
        self._dependency_lambdas: set[int] = set()
        self._aliases: dict[str, str] = {}  # `SessionDep` qualname -> dependency qualname
        self._uses_annotated_depends = False
        self._direct_calls: dict[str, list[cst.Call]] = {}
        self._references: dict[str, list[Reference]] = {}
        self._collector: "_Collector | None" = None
        self._calls_done = False
        self._references_done = False

    def _calls(self) -> None:
        if not self._calls_done:
            self._calls_done = True
            if self._collector is not None:
                self._collector.scan_calls()

    @property
    def dependencies(self) -> set[str]:
        self._calls()
        return self._dependencies

    @property
    def dependency_lambdas(self) -> set[int]:
        self._calls()
        return self._dependency_lambdas

    @property
    def aliases(self) -> dict[str, str]:
        self._calls()
        return self._aliases

    @property
    def uses_annotated_depends(self) -> bool:
        self._calls()
        return self._uses_annotated_depends

    @property
    def direct_calls(self) -> dict[str, list[cst.Call]]:
        self._calls()
        return self._direct_calls

    @property
    def references(self) -> dict[str, list[Reference]]:
        if not self._references_done:
            self._references_done = True
            if self._collector is not None:
                self._collector.scan_references()
        return self._references


def _let_go(cache: dict[int, ModuleFacts]) -> None:
    for facts in cache.values():
        facts._collector = None  # the facts and their collector refer to each other


_CACHE: dict[int, ModuleFacts] = lint_cache(_let_go)


def module_facts(ctx: RuleContext) -> ModuleFacts:
    """Facts about the module being linted, computed on first use and shared by every rule."""
    facts = _CACHE.get(id(ctx.module))
    if facts is not None and facts.module is ctx.module:
        return facts
    facts = _Collector(ctx).collect()
    _let_go(_CACHE)
    _CACHE.clear()
    _CACHE[id(ctx.module)] = facts
    return facts


# the nodes `_function_locals` looks at
_BINDERS = frozenset(
    (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.Global, cst.Nonlocal, cst.Assign, cst.AnnAssign, cst.AugAssign)
    + (cst.For, cst.WithItem, cst.ExceptHandler, cst.NamedExpr, cst.Import, cst.ImportFrom)
)


def function_locals(ctx: RuleContext, func: cst.FunctionDef) -> frozenset[str]:
    """`_function_locals(func)`, computed once per function and lint."""
    cache = module_facts(ctx).locals
    found = cache.get(id(func))
    if found is None:
        found = cache[id(func)] = _function_locals(func)
    return found


def _is_main_guard(stmt: cst.CSTNode) -> bool:
    if not isinstance(stmt, cst.If) or not isinstance(stmt.test, cst.Comparison):
        return False
    test = stmt.test
    if len(test.comparisons) != 1 or not isinstance(test.comparisons[0].operator, cst.Equal):
        return False
    sides = [test.left, test.comparisons[0].comparator]
    names = [s for s in sides if isinstance(s, cst.Name) and s.value == "__name__"]
    strings = [s for s in sides if isinstance(s, cst.SimpleString) and literal_value(s) == "__main__"]
    return bool(names and strings)


def _flat_top(body: Sequence[cst.BaseStatement], main_blocks: set[int]) -> Iterator[cst.BaseStatement]:
    for stmt in body:
        if _is_main_guard(stmt):
            main_blocks.add(id(stmt))
            continue
        yield stmt
        if isinstance(stmt, cst.If):
            yield from _flat_top(stmt.body.body, main_blocks)
            orelse = stmt.orelse
            while orelse is not None:
                yield from _flat_top(orelse.body.body, main_blocks)
                orelse = orelse.orelse if isinstance(orelse, cst.If) else None
        elif isinstance(stmt, cst.Try):
            yield from _flat_top(stmt.body.body, main_blocks)
            for h in stmt.handlers:
                yield from _flat_top(h.body.body, main_blocks)
            for extra in (stmt.orelse, stmt.finalbody):
                if extra is not None:
                    yield from _flat_top(extra.body.body, main_blocks)


def _assign_pairs(small: cst.BaseSmallStatement) -> list[tuple[cst.BaseExpression, cst.BaseExpression]]:
    if isinstance(small, cst.Assign):
        return [(t.target, small.value) for t in small.targets]
    if isinstance(small, cst.AnnAssign) and small.value is not None:
        return [(small.target, small.value)]
    return []


# the nodes `_Collector._scan` looks at
_SCANNED = frozenset(
    (cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.Name, cst.Attribute, cst.Arg, cst.Import, cst.ImportFrom)
)


class _Collector:
    """Builds `ModuleFacts`: the layout at once, the call facts and the references when first asked for."""

    def __init__(self, ctx: RuleContext) -> None:
        # The walk adds function-level imports to the name table as it reaches them: the facts are read
        # through a copy of the table as it is now, whenever they are computed.
        names = copy.copy(ctx.names)
        names.imports = dict(ctx.names.imports)
        names.defined = set(ctx.names.defined)
        self.ctx = replace(ctx, names=names)
        name = ctx.module_name or ""
        self.prefix = f"{name}." if name else ""
        self.facts = ModuleFacts(ctx.module, name)
        self.outer: cst.FunctionDef | None = None
        self.facts.uses_fastapi = any(
            _is_fastapi(t) for t in ctx.names.imports.values()
        )

    def qn(self, local: str) -> str:
        return f"{self.prefix}{local}"

    def collect(self) -> ModuleFacts:
        facts = self.facts
        facts.top_statements = list(_flat_top(self.ctx.module.body, facts.main_blocks))
        # module-level assignments: factories, apps, callable instances
        for stmt in facts.top_statements:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    for target, value in _assign_pairs(small):
                        if isinstance(target, cst.Name) and isinstance(value, cst.Call):
                            self._module_assignment(target.value, value)
        self._definitions(self.ctx.module.body, [])
        facts._collector = self
        return facts

    def _module_assignment(self, name: str, value: cst.Call) -> None:
        qn = qualname(self.ctx, value.func)
        if qn is None:
            return
        if _factory_from_call(self.ctx, value, qn) is not None:
            return
        if qn in known.FASTAPI_APP or qn in known.API_ROUTER:
            self.facts.apps.add(self.qn(name))
        elif qn.startswith(self.prefix) and "." not in qn[len(self.prefix) :]:
            self.facts.instances[self.qn(name)] = f"{qn}.__call__"

    def _definitions(self, body: Sequence[cst.CSTNode], owners: list[str]) -> None:
        for stmt in body:
            if isinstance(stmt, cst.FunctionDef):
                qn = self.qn(".".join([*owners, stmt.name.value]))
                self.facts.functions.setdefault(qn, stmt)
                self.facts.function_names[id(stmt)] = qn
            elif isinstance(stmt, cst.ClassDef):
                self._definitions(stmt.body.body, [*owners, stmt.name.value])
            elif isinstance(stmt, (cst.If, cst.Try)):
                blocks = [stmt.body.body]
                if isinstance(stmt, cst.If):
                    orelse = stmt.orelse
                    while orelse is not None:
                        blocks.append(orelse.body.body)
                        orelse = orelse.orelse if isinstance(orelse, cst.If) else None
                else:
                    blocks += [h.body.body for h in stmt.handlers]
                    blocks += [x.body.body for x in (stmt.orelse, stmt.finalbody) if x is not None]
                for b in blocks:
                    self._definitions(b, owners)

    # -- the call facts: one pass over the module, in source order -----------------------------------
    def scan_calls(self) -> None:
        """`Depends(...)` targets, `Annotated` aliases, `dependency_overrides` and direct calls.

        Visits the nodes the reference scan visits, in the same order: definitions' names, parameter
        names and keyword names are skipped, a function body is "in a function", a class body names
        the owner of `Depends(self.method)`.
        """
        facts = self.facts
        FunctionDef, ClassDef, Lambda, Attribute, Call, Subscript = (
            cst.FunctionDef, cst.ClassDef, cst.Lambda, cst.Attribute, cst.Call, cst.Subscript
        )
        Name, Arg, Assign, AnnAssign, Imports = cst.Name, cst.Arg, cst.Assign, cst.AnnAssign, (cst.Import, cst.ImportFrom)
        # (node, inside a function, class owner)
        stack: list[tuple[cst.CSTNode, bool, str | None]] = [
            (stmt, False, None) for stmt in reversed(self.ctx.module.body)
        ]
        pop, push = stack.pop, stack.append
        while stack:
            node, in_func, cls = pop()
            tp = type(node)
            if tp is Name:
                continue
            if tp is FunctionDef:
                items: list[cst.CSTNode] = [d for d in node.decorators]
                items += _param_parts(node.params)
                if node.returns is not None:
                    items.append(node.returns)
                push((node.body, True, cls))
                for item in reversed(items):
                    push((item, in_func, cls))
                continue
            if tp is ClassDef:
                owner = f"{cls}.{node.name.value}" if cls else node.name.value
                push((node.body, in_func, owner))
                items = [d for d in node.decorators] + [b.value for b in (*node.bases, *node.keywords)]
                for item in reversed(items):
                    push((item, in_func, cls))
                continue
            if tp is Lambda:
                push((node.body, in_func, cls))
                for item in reversed(_param_parts(node.params)):
                    push((item, in_func, cls))
                continue
            if tp is Attribute:
                push((node.value, in_func, cls))
                continue
            if tp is Call:
                self._call(node, in_func, _Scope(cls=cls))
            elif tp is Subscript:
                self._annotated(node)
            elif (tp is Assign or tp is AnnAssign) and not in_func:
                self._alias(node)
            elif tp is Assign:
                self._override(node)
            if tp is Arg and node.keyword is not None:
                push((node.value, in_func, cls))
                continue
            if isinstance(node, Imports):
                continue
            for child in reversed(children(node)):
                push((child, in_func, cls))

    # -- the references: a recursive, scope-aware pass ------------------------------------------------
    def scan_references(self) -> None:
        for stmt in self.ctx.module.body:
            self._scan(stmt, None, frozenset())

    def _scan(self, node: cst.CSTNode, func: cst.FunctionDef | None, local: frozenset[str]) -> None:
        if type(node) not in _SCANNED:  # most nodes (concrete classes, so compared by type)
            for child in children(node):
                self._scan(child, func, local)
            return
        if isinstance(node, cst.FunctionDef):
            for dec in node.decorators:
                self._scan(dec, func, local)
            self._scan_params(node.params, func, local)
            if node.returns is not None:
                self._scan(node.returns, func, local)
            inner = function_locals(self.ctx, node)
            outer = self.outer
            if outer is None:
                self.outer = node
            self._scan(node.body, node, inner)
            self.outer = outer
            return
        if isinstance(node, cst.ClassDef):
            for dec in node.decorators:
                self._scan(dec, func, local)
            for base in (*node.bases, *node.keywords):
                self._scan(base.value, func, local)
            self._scan(node.body, func, local)
            return
        if isinstance(node, cst.Lambda):
            self._scan_params(node.params, func, local)
            names = {p.name.value for p in _all_params(node.params)}
            self._scan(node.body, func, local | names)
            return
        if isinstance(node, cst.Name):
            if node.value not in local:
                self.facts._references.setdefault(node.value, []).append(Reference(node, func, self.outer))
            return
        if isinstance(node, cst.Attribute):
            self._scan(node.value, func, local)
            return
        if isinstance(node, cst.Arg) and node.keyword is not None:
            self._scan(node.value, func, local)
            return
        if isinstance(node, (cst.Import, cst.ImportFrom)):
            return
        for child in children(node):
            self._scan(child, func, local)

    def _scan_params(self, params: cst.Parameters, func, local) -> None:
        for p in _all_params(params):
            if p.annotation is not None:
                self._scan(p.annotation.annotation, func, local)
            if p.default is not None:
                self._scan(p.default, func, local)

    def _dependency_target(self, expr: cst.BaseExpression, scope: "_Scope") -> None:
        facts = self.facts
        if isinstance(expr, cst.Lambda):
            facts._dependency_lambdas.add(id(expr))
            return
        qn = None
        if (
            isinstance(expr, cst.Attribute)
            and isinstance(expr.value, cst.Name)
            and expr.value.value in ("self", "cls")
            and scope.cls
        ):
            qn = self.qn(f"{scope.cls}.{expr.attr.value}")
        else:
            qn = qualname(self.ctx, expr)
        if qn is None:
            return
        facts._dependencies.add(qn)
        head, _, attr = qn.rpartition(".")
        if qn in facts.instances:
            facts._dependencies.add(facts.instances[qn])
        elif head in facts.instances:  # `Depends(db.session)` on a module-level instance
            facts._dependencies.add(f"{facts.instances[head].rpartition('.')[0]}.{attr}")

    def _call(self, call: cst.Call, in_func: bool, scope: "_Scope") -> None:
        ctx = self.ctx
        facts = self.facts
        qn = qualname(ctx, call.func)
        if qn in known.DEPENDS_OR_SECURITY:
            target = None
            for i, arg in enumerate(call.args):
                if (arg.keyword is None and i == 0) or (arg.keyword is not None and arg.keyword.value == "dependency"):
                    target = arg.value
            if target is not None:
                self._dependency_target(target, scope)
            return
        if qn is not None and qn.startswith(self.prefix):
            facts._direct_calls.setdefault(qn, []).append(call)

    def _annotated(self, sub: cst.Subscript) -> None:
        if self.ctx.names.resolves_to(sub.value, known.ANNOTATED):
            for el in sub.slice[1:]:
                if isinstance(el.slice, cst.Index) and isinstance(el.slice.value, cst.Call):
                    if qualname(self.ctx, el.slice.value.func) in known.DEPENDS_OR_SECURITY:
                        self.facts._uses_annotated_depends = True

    def _alias(self, node: cst.Assign | cst.AnnAssign) -> None:
        for target, value in _assign_pairs(node):
            if not isinstance(target, cst.Name) or not isinstance(value, cst.Subscript):
                continue
            dep = annotated_dependency(self.ctx, value)
            if dep is not None:
                self.facts._aliases[self.qn(target.value)] = dep

    def _override(self, node: cst.Assign) -> None:
        # app.dependency_overrides[get_db] = override_get_db
        for t in node.targets:
            target = t.target
            if (
                isinstance(target, cst.Subscript)
                and isinstance(target.value, cst.Attribute)
                and target.value.attr.value == "dependency_overrides"
            ):
                qn = qualname(self.ctx, node.value)
                if qn is not None:
                    self.facts._dependencies.add(qn)


def _param_parts(params: cst.Parameters) -> list[cst.CSTNode]:
    """Annotations and defaults of `params`, in order (what the scans visit of a parameter list)."""
    out: list[cst.CSTNode] = []
    for p in _all_params(params):
        if p.annotation is not None:
            out.append(p.annotation.annotation)
        if p.default is not None:
            out.append(p.default)
    return out


@dataclass
class _Scope:
    cls: str | None = None


def annotated_dependency(ctx: RuleContext, sub: cst.Subscript) -> str | None:
    """`Annotated[Session, Depends(get_db)]` -> the qualified name of `get_db` (else None)."""
    if not ctx.names.resolves_to(sub.value, known.ANNOTATED):
        return None
    for el in sub.slice[1:]:
        if isinstance(el.slice, cst.Index) and isinstance(el.slice.value, cst.Call):
            call = el.slice.value
            if qualname(ctx, call.func) in known.DEPENDS_OR_SECURITY and call.args:
                return qualname(ctx, call.args[0].value)
    return None


def _is_fastapi(target: str) -> bool:
    return any(target == p or target.startswith(p + ".") for p in known.FASTAPI_MODULE_PREFIXES)


def _all_params(params: cst.Parameters) -> Iterator[cst.Param]:
    yield from params.posonly_params
    yield from params.params
    if isinstance(params.star_arg, cst.Param):
        yield params.star_arg
    yield from params.kwonly_params
    if params.star_kwarg is not None:
        yield params.star_kwarg


def _function_locals(func: cst.FunctionDef) -> frozenset[str]:
    """Names local to `func`: its parameters and what its body binds, minus `global`/`nonlocal` names."""
    names = {p.name.value for p in _all_params(func.params)}
    declared: set[str] = set()

    def bind(target: cst.CSTNode) -> None:
        if isinstance(target, cst.Name):
            names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                bind(el.value)
        elif isinstance(target, cst.StarredElement):
            bind(target.value)

    def visit(node: cst.CSTNode) -> None:
        if type(node) not in _BINDERS:  # most nodes (concrete classes, so compared by type)
            for child in children(node):
                visit(child)
            return
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            names.add(node.name.value)
            return
        if isinstance(node, cst.Lambda):
            return
        if isinstance(node, (cst.Global, cst.Nonlocal)):
            declared.update(n.name.value for n in node.names)
        elif isinstance(node, cst.Assign):
            for t in node.targets:
                bind(t.target)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
            bind(node.target)
        elif isinstance(node, cst.For):
            bind(node.target)
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            bind(node.asname.name)
        elif isinstance(node, cst.ExceptHandler) and node.name is not None:
            bind(node.name.name)
        elif isinstance(node, cst.NamedExpr):
            bind(node.target)
        elif isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                if alias.asname is not None:
                    bind(alias.asname.name)
                else:
                    head = dotted_name(alias.name)
                    if head:
                        names.add(head.split(".")[0])
            return
        for child in children(node):
            visit(child)

    visit(func.body)
    return frozenset(names - declared)


# ---------------------------------------------------------------------------------------------------
# What a function is
# ---------------------------------------------------------------------------------------------------
def function_qualname(ctx: RuleContext, func: cst.FunctionDef) -> str | None:
    return module_facts(ctx).function_names.get(id(func))


def _local_function(ctx: RuleContext, qn: str) -> cst.FunctionDef | None:
    return module_facts(ctx).functions.get(qn)


def is_route(ctx: RuleContext, func: cst.FunctionDef) -> bool:
    """A path operation: `@app.get(...)`, `@router.api_route(...)`, or registered with `add_api_route`."""
    facts = module_facts(ctx)
    for dec in func.decorators:
        call = dec.decorator
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            continue
        if call.func.attr.value not in known.ROUTE_DECORATORS:
            continue
        owner = qualname(ctx, call.func.value)
        if owner is None:
            continue
        if owner in facts.apps or _index_query(ctx, "app", owner) is not None:
            return True
        if facts.uses_fastapi and owner not in local_factories(ctx):
            # an app or router imported from another module (`from .main import app`)
            return True
    qn = function_qualname(ctx, func)
    return qn is not None and bool(_index_query(ctx, "route", qn))


def is_lifecycle_handler(ctx: RuleContext, func: cst.FunctionDef) -> bool:
    """`@app.on_event("startup")`-style handlers (they run once, not per request)."""
    for dec in func.decorators:
        call = dec.decorator
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute):
            if call.func.attr.value in LIFECYCLE_EVENTS:
                return True
    return False


def is_dependency(ctx: RuleContext, func: cst.FunctionDef, qn: str | None = None) -> bool:
    """Reached from `Depends`/`Security`, `dependencies=[...]`, an `Annotated` alias or `dependency_overrides`
    (anywhere in the project: the index answers when it knows this module, else this module's facts)."""
    if qn is None:
        qn = function_qualname(ctx, func)
    if qn is None:
        return False
    if _index_query(ctx, "is_dependency", qn):
        return True
    return qn in module_facts(ctx).dependencies


def current_qualname(ctx: RuleContext, func: cst.FunctionDef) -> str | None:
    """The qualified name of `func` while the walk visits it (`module.Class.method`, `module.outer.inner`)."""
    if not ctx.module_name:
        return None
    names = [p.name.value for p in ctx.parents if isinstance(p, (cst.FunctionDef, cst.ClassDef))]
    return ".".join([ctx.module_name, *names, func.name.value])


def is_middleware(func: cst.FunctionDef) -> bool:
    """`@app.middleware("http")`: runs around every request."""
    for dec in func.decorators:
        call = dec.decorator
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "middleware":
            return True
    return False


def registry_cleaned(ctx: RuleContext, registry: str) -> bool:
    """Whether a dependency or middleware of this module calls `<registry>.remove()` in a `finally`."""
    for func in module_facts(ctx).functions.values():
        if registry in analyse_function(ctx, func).finally_closed:
            if is_middleware(func) or is_dependency(ctx, func):
                return True
    return False


def is_pytest_fixture(ctx: RuleContext, func: cst.FunctionDef) -> bool:
    for dec in func.decorators:
        expr = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
        if qualname(ctx, expr) in PYTEST_FIXTURES:
            return True
    return False


def is_test_setup(ctx: RuleContext, func: cst.FunctionDef) -> bool:
    """unittest/pytest set-up hooks (`setUpClass`, `setup_method`, ...) and pytest fixtures."""
    return func.name.value in TEST_SETUP_NAMES or is_pytest_fixture(ctx, func)


# ---------------------------------------------------------------------------------------------------
# The FastAPI gate
# ---------------------------------------------------------------------------------------------------
def excluded_module(ctx: RuleContext) -> str | None:
    """Why the module is not application code (a test, a script, a CLI, a worker, a migration), or None."""
    path = ctx.path.replace("\\", "/")
    parts = path.split("/")
    stems = [parts[-1].rpartition(".")[0] or parts[-1]]
    folders = list(parts[:-1])
    if ctx.module_name:
        dotted = ctx.module_name.split(".")
        stems.append(dotted[-1])
        folders += dotted[:-1] if not ctx.names.is_package else dotted
    if any(s == "conftest" or s.startswith("test_") or s.endswith("_test") for s in stems) or any(
        f in ("tests", "test") for f in folders
    ):
        return "a test module"
    if "versions" in folders and ("alembic" in folders or "migrations" in folders):
        return "a migration"
    if any(f in SCRIPT_DIRS for f in folders) and not _module_imports_fastapi(ctx):
        return "a script"
    if _module_imports_fastapi(ctx):
        return None
    facts = module_facts(ctx)
    if facts.main_blocks:
        return "a script"
    for target in ctx.names.imports.values():
        if target.split(".")[0] in SCRIPT_FRAMEWORKS:
            return "a command-line tool or worker"
    return None


def _module_imports_fastapi(ctx: RuleContext) -> bool:
    return any(_is_fastapi(t) for t in ctx.names.imports.values())


def fastapi_gate(ctx: RuleContext) -> bool:
    """RULES.md §2: the module imports fastapi/starlette, or the project does and the module is app code."""
    if excluded_module(ctx) is not None:
        return False
    if _module_imports_fastapi(ctx):
        return True
    if ctx.module_name and _index_query(ctx, "module_uses_fastapi", ctx.module_name):
        return True
    return bool(_index_query(ctx, "uses_fastapi"))


def in_main_block(ctx: RuleContext) -> bool:
    """Whether the node being visited sits in an `if __name__ == "__main__":` block."""
    blocks = module_facts(ctx).main_blocks
    return any(id(p) in blocks for p in ctx.parents)


def importers(ctx: RuleContext, qn: str) -> list[str]:
    """Project modules that import `qn` by name (`from app.db import session`)."""
    return [name for name in _index_query(ctx, "importers", qn) or () if name != ctx.module_name]


# ---------------------------------------------------------------------------------------------------
# How a function handles its sessions (the FSL002 compliance check)
# ---------------------------------------------------------------------------------------------------
@dataclass
class Binding:
    """A session bound to a local name in a function: `s = SessionLocal()` or `with X() as s`."""

    name: str
    source: SessionSource
    statement: cst.CSTNode  # the statement that binds it
    managed: bool = False  # bound by `with` / `async with` / `closing()` / `enter_context()`


@dataclass
class Close:
    call: cst.Call
    name: str  # the session name (or the registry's dotted name for `.remove()`)
    awaited: bool
    in_finally: bool
    statement: cst.CSTNode | None  # the top-level statement of the function body holding it, if it is one


@dataclass
class FunctionAnalysis:
    func: cst.FunctionDef
    is_async: bool
    is_generator: bool
    bindings: dict[str, Binding] = field(default_factory=dict)
    closes: list[Close] = field(default_factory=list)
    # yields of a session: (yield node, name or None, source when the SPE is yielded directly, managed?)
    yields: list[tuple[cst.Yield, str | None, SessionSource | None, bool]] = field(default_factory=list)
    yield_from: bool = False
    returns: list[tuple[cst.Return, str | None, SessionSource | None]] = field(default_factory=list)
    # except handlers of a `try` around a session yield that neither re-raise nor raise anew
    swallowing: list[cst.ExceptHandler] = field(default_factory=list)
    escapes: set[str] = field(default_factory=set)  # names stored on objects, returned, yielded, ...
    stored: set[str] = field(default_factory=set)  # names stored on an object (`request.state.db = db`)
    with_names: set[str] = field(default_factory=set)  # names later used as `with s:` / `closing(s)`
    finally_closed: set[str] = field(default_factory=set)

    @property
    def yields_session(self) -> bool:
        return bool(self.yields) or self.yield_from

    def unmanaged_yields(self) -> list[tuple[cst.Yield, str | None, SessionSource | None]]:
        """Session yields that no `with` and no `finally` close guarantees to close."""
        out = []
        for y, name, src, managed in self.yields:
            if managed:
                continue
            out.append((y, name, src))
        return out


def analyse_function(ctx: RuleContext, func: cst.FunctionDef) -> FunctionAnalysis:
    """How `func` creates, yields, returns and closes sessions (cached per function)."""
    facts = module_facts(ctx)
    cached = facts.analyses.get(id(func))
    if cached is not None and cached.func is func:
        return cached
    result = _Analyser(ctx, func).run()
    facts.analyses[id(func)] = result
    return result


# the nodes `_Analyser._visit` looks at (besides the definitions it stops at)
_FLOW = frozenset((cst.With, cst.Try, cst.Await, cst.Assign, cst.AnnAssign, cst.Yield, cst.Return, cst.Call, cst.Raise))


class _Analyser:
    """One pass over a function body. `path` holds the enclosing blocks inside the function, outermost
    first: ("with", names it manages), ("try" | "else" | "finally", the Try), ("except", the handler)."""

    def __init__(self, ctx: RuleContext, func: cst.FunctionDef) -> None:
        self.ctx = ctx
        self.func = func
        self.out = FunctionAnalysis(func, func.asynchronous is not None, False)
        body = func.body.body if isinstance(func.body, cst.IndentedBlock) else ()
        self.top = {id(s) for s in body}
        self.awaited: set[int] = set()
        self.raising: set[int] = set()  # handlers that contain a `raise`
        self.finally_closes: dict[int, set[str]] = {}  # Try -> names closed (or registries removed) in finally
        self.pending: list[tuple[int, list[cst.Try]]] = []  # yield index -> the trys whose body holds it

    def run(self) -> FunctionAnalysis:
        self._visit(self.func.body, [], None)
        out = self.out
        for i, trys in self.pending:
            y, name, src, managed = out.yields[i]
            keys = self._close_keys(name, src)
            if not managed and any(keys & self.finally_closes.get(id(t), set()) for t in trys):
                out.yields[i] = (y, name, src, True)
            for t in trys:
                for h in t.handlers:
                    if id(h) not in self.raising and h not in out.swallowing:
                        out.swallowing.append(h)
        return out

    def _close_keys(self, name: str | None, src: SessionSource | None) -> set[str]:
        """What closing this session looks like: its name, and its registry's name for `.remove()`."""
        keys = set()
        if name is not None:
            keys.add(name)
            binding = self.out.bindings.get(name)
            if binding is not None:
                src = binding.source
        if src is not None and src.is_registry and src.target:
            keys.add(src.target)
        return keys

    def _visit(self, node: cst.CSTNode, path: list, top: cst.CSTNode | None) -> None:
        tp = type(node)  # the node classes below are concrete, so compared by type
        if tp is cst.FunctionDef or tp is cst.ClassDef or tp is cst.Lambda:
            return
        if top is None and id(node) in self.top:
            top = node
        if tp not in _FLOW:
            for child in children(node):
                self._visit(child, path, top)
            return
        if isinstance(node, cst.With):
            managed: set[str] = set()
            for item in node.items:
                name = self._with_item(item, node)
                if name is not None:
                    managed.add(name)
                self._visit(item.item, path, top)
            self._visit(node.body, [*path, ("with", managed)], top)
            return
        if isinstance(node, cst.Try):
            self._visit(node.body, [*path, ("try", node)], top)
            for h in node.handlers:
                self._visit(h.body, [*path, ("except", h)], top)
            if node.orelse is not None:
                self._visit(node.orelse, [*path, ("else", node)], top)
            if node.finalbody is not None:
                self._visit(node.finalbody, [*path, ("finally", node)], top)
            return
        if isinstance(node, cst.Await):
            self.awaited.add(id(node.expression))
        elif isinstance(node, (cst.Assign, cst.AnnAssign)):
            self._assignment(node)
        elif isinstance(node, cst.Yield):
            self._yield(node, path)
        elif isinstance(node, cst.Return):
            self._return(node)
        elif isinstance(node, cst.Call):
            self._call(node, path, top)
        elif isinstance(node, cst.Raise):
            for kind, holder in path:
                if kind == "except":
                    self.raising.add(id(holder))
        for child in children(node):
            self._visit(child, path, top)

    def _assignment(self, node: cst.Assign | cst.AnnAssign) -> None:
        for target, value in _assign_pairs(node):
            if isinstance(value, cst.Await):
                value = value.expression
            if isinstance(target, cst.Name) and isinstance(value, cst.Call):
                src = session_source(self.ctx, value)
                managed = False
                if src is None:
                    src = self._entered(value)
                    managed = src is not None
                if src is not None:
                    self.out.bindings[target.value] = Binding(target.value, src, node, managed)
            elif isinstance(target, (cst.Attribute, cst.Subscript)):
                self.out.escapes.update(names_read(value))
                if isinstance(value, cst.Name):
                    self.out.stored.add(value.value)
                if isinstance(value, cst.Call) and session_source(self.ctx, value) is not None:
                    self.out.escapes.add("<stored>")

    def _entered(self, call: cst.Call) -> SessionSource | None:
        """`stack.enter_context(SessionLocal())` and `closing(SessionLocal())`."""
        inner = None
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in ("enter_context", "enter_async_context"):
            inner = call.args[0].value if call.args else None
        elif qualname(self.ctx, call.func) in CLOSING and call.args:
            inner = call.args[0].value
        return session_source(self.ctx, inner) if isinstance(inner, cst.Call) else None

    def _with_item(self, item: cst.WithItem, node: cst.With) -> str | None:
        """The session name a with-item manages, if any (`with SessionLocal() as s`, `with s:`)."""
        expr = item.item
        asname = item.asname.name if item.asname is not None else None
        name = asname.value if isinstance(asname, cst.Name) else None
        if isinstance(expr, cst.Name):
            self.out.with_names.add(expr.value)
            return expr.value
        if not isinstance(expr, cst.Call):
            return None
        src = session_source(self.ctx, expr) or self._entered(expr)
        if src is None and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "begin":
            fac = factory_info(self.ctx, qualname(self.ctx, expr.func.value))
            if fac is not None:
                src = SessionSource(expr, "transaction", fac.qualname, fac.is_async, expr.func.value)
        if (
            src is None
            and isinstance(expr.func, cst.Attribute)
            and expr.func.attr.value == "begin"
            and isinstance(expr.func.value, cst.Name)
            and expr.func.value.value in self.out.bindings
        ):
            # `with db.begin():` ends the transaction on the way out, which returns the connection
            return expr.func.value.value
        if src is None and qualname(self.ctx, expr.func) in CLOSING and expr.args:
            arg = expr.args[0].value
            if isinstance(arg, cst.Name):
                self.out.with_names.add(arg.value)
                return arg.value
        if src is not None and name is not None:
            self.out.bindings[name] = Binding(name, src, node, managed=True)
            return name
        return None

    def _session_of(self, expr: cst.BaseExpression | None) -> tuple[str | None, SessionSource | None]:
        if isinstance(expr, cst.Name) and expr.value in self.out.bindings:
            return expr.value, None
        if isinstance(expr, cst.Call):
            return None, session_source(self.ctx, expr)
        return None, None

    def _yield(self, node: cst.Yield, path: list) -> None:
        out = self.out
        out.is_generator = True
        if isinstance(node.value, cst.From):
            out.yield_from = True
            return
        name, src = self._session_of(node.value)
        if name is None and src is None:
            return
        binding = out.bindings.get(name) if name is not None else None
        managed = (binding is not None and binding.managed) or any(
            kind == "with" and name in holder for kind, holder in path
        )
        out.yields.append((node, name, src, managed))
        self.pending.append((len(out.yields) - 1, [h for kind, h in path if kind == "try"]))
        if name is not None:
            out.escapes.add(name)

    def _return(self, node: cst.Return) -> None:
        name, src = self._session_of(node.value)
        if name is not None or src is not None:
            self.out.returns.append((node, name, src))
            if name is not None:
                self.out.escapes.add(name)
        elif node.value is not None:
            self.out.escapes.update(names_read(node.value))

    def _call(self, call: cst.Call, path: list, top: cst.CSTNode | None) -> None:
        func = call.func
        if not isinstance(func, cst.Attribute) or call.args:
            return
        attr = func.attr.value
        key = None
        if attr == "close" and isinstance(func.value, cst.Name) and func.value.value in self.out.bindings:
            key = func.value.value
        elif attr == "remove":
            reg = registry_of(self.ctx, func.value)
            if reg is not None:
                key = reg.qualname
        if key is None:
            return
        finals = [holder for kind, holder in path if kind == "finally"]
        stmt = top if top is not None and _is_call_statement(top, call) else None
        self.out.closes.append(Close(call, key, id(call) in self.awaited, bool(finals), stmt))
        for t in finals:
            self.finally_closes.setdefault(id(t), set()).add(key)
        if finals:
            self.out.finally_closed.add(key)


def _is_call_statement(stmt: cst.CSTNode, call: cst.Call) -> bool:
    """`stmt` is a line holding only `call` (or `await call`)."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    small = stmt.body[0]
    if not isinstance(small, cst.Expr):
        return False
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    return value is call


def names_read(expr: cst.CSTNode) -> set[str]:
    """Names an expression (or statement) reads: attribute names and argument keywords excluded."""
    out: set[str] = set()
    stack: list[cst.CSTNode] = [expr]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            out.add(n.value)
        elif isinstance(n, cst.Attribute):
            stack.append(n.value)
        elif isinstance(n, cst.Arg):
            stack.append(n.value)
        else:
            stack.extend(children(n))
    return out


# ---------------------------------------------------------------------------------------------------
# The session dependency to use, and generating one
# ---------------------------------------------------------------------------------------------------
GENERATED_NAMES = ("get_db", "get_session", "get_db_session")


@dataclass
class DependencyPlan:
    """The yield dependency that provides sessions from one source, as this module can name it.

    `expr` is the text naming it here (`get_db`, `deps.get_db`). When `new_function` is set, the dependency
    does not exist yet: insert that function after `anchor` (a top-level statement of the module; None
    means "the caller places it"). `add_imports` are the imports the module then needs.
    """

    expr: str
    qualname: str | None
    is_async: bool
    add_imports: tuple[tuple, ...] = ()
    new_function: cst.FunctionDef | None = None
    anchor: cst.BaseStatement | None = None

    @property
    def generated(self) -> bool:
        return self.new_function is not None


def find_session_dependency(ctx: RuleContext, source: SessionSource) -> str | None:
    """The qualified name of the project's FSL002-compliant yield dependency for this session source."""
    if source.kind == "generator":
        return source.target
    if source.target is None:
        return None
    local = _local_session_dependency(ctx, source)
    if local is not None:
        return local
    found = _index_query(ctx, "session_dependency_for", source.target)
    if isinstance(found, str) and not found.startswith(f"{ctx.module_name}."):
        return found
    return None


def _local_session_dependency(ctx: RuleContext, source: SessionSource) -> str | None:
    """A module-level generator of this module that yields a session from the same source and closes it
    (FSL002-compliant), preferring one used as a dependency."""
    best = None
    best_is_dependency = False
    for qn, func in module_facts(ctx).functions.items():
        if qn.count(".") != (ctx.module_name or "").count(".") + (1 if ctx.module_name else 0):
            continue  # methods are not reused
        info = analyse_function(ctx, func)
        if not info.is_generator or info.swallowing or info.unmanaged_yields() or not info.yields:
            continue
        targets = set()
        for _, name, src, _ in info.yields:
            b = info.bindings.get(name) if name else None
            s = b.source if b is not None else src
            if s is not None:
                targets.add(s.target if s.kind != "transaction" else None)
        if targets == {source.target}:
            dep = is_dependency(ctx, func)
            if best is None or (dep and not best_is_dependency):
                best, best_is_dependency = qn, dep
    return best


def session_dependency(
    ctx: RuleContext, source: SessionSource, before: cst.CSTNode | None = None
) -> DependencyPlan | None:
    """How this module gets a compliant yield dependency for `source`: reuse the project's own (imported
    if needed), else generate one. `before` is the first top-level statement that will name it (the
    dependency must be defined before a default or an alias evaluates it). None when neither works."""
    existing = find_session_dependency(ctx, source)
    if existing is not None:
        plan = _reuse(ctx, existing, source, before)
        if plan is not None:
            return plan
        if source.kind == "generator":
            return None
    return _generate(ctx, source, before)


def _top_index(ctx: RuleContext, node: cst.CSTNode | None) -> int | None:
    """The index in `module.body` of the top-level statement holding `node` (by identity)."""
    if node is None:
        return None
    for i, stmt in enumerate(ctx.module.body):
        if stmt is node or _contains(stmt, node):
            return i
    return None


def _contains(tree: cst.CSTNode, node: cst.CSTNode) -> bool:
    stack = [tree]
    while stack:
        n = stack.pop()
        if n is node:
            return True
        stack.extend(children(n))
    return False


def _reuse(ctx: RuleContext, qn: str, source: SessionSource, before: cst.CSTNode | None) -> DependencyPlan | None:
    facts = module_facts(ctx)
    is_async = source.is_async
    local = facts.functions.get(qn)
    if local is not None:
        if ctx.module_name and qn != f"{ctx.module_name}.{local.name.value}":
            return None
        i, j = _top_index(ctx, local), _top_index(ctx, before)
        if i is not None and j is not None and i >= j:
            return None
        return DependencyPlan(local.name.value, qn, is_async)
    name = local_name_for(ctx, [qn])
    if name is not None:
        return DependencyPlan(name, qn, is_async)
    module, _, obj = qn.rpartition(".")
    if not module or ctx.index.module(module) is None or module == ctx.module_name:
        return None
    if obj in ctx.names.defined or obj in ctx.names.imports or obj in facts.references:
        return None
    return DependencyPlan(obj, qn, is_async, add_imports=((module, obj),))


def free_name(ctx: RuleContext, candidates: Sequence[str]) -> str | None:
    """The first candidate not already bound or used in the module."""
    facts = module_facts(ctx)
    for c in candidates:
        if c not in ctx.names.defined and c not in ctx.names.imports and c not in facts.references:
            return c
    return None


def _generate(ctx: RuleContext, source: SessionSource, before: cst.CSTNode | None) -> DependencyPlan | None:
    if source.kind not in ("class", "factory"):
        return None
    name = free_name(ctx, GENERATED_NAMES)
    if name is None:
        return None
    call_code = ctx.module.code_for_node(source.call)
    used = names_read(source.call)
    var = next(v for v in ("db", "session", "db_session") if v not in used)
    func = new_dependency(ctx, name, call_code, var, source.is_async)
    anchor = _anchor(ctx, used, before)
    if anchor is False:
        return None
    qn = f"{ctx.module_name}.{name}" if ctx.module_name else name
    return DependencyPlan(name, qn, source.is_async, new_function=func, anchor=anchor or None)


def start_pass(ctx: RuleContext) -> None:
    """Forget the generated-dependency fixes of an earlier lint of this same tree (call from a rule's
    `__init__`: every rule is created before the walk starts)."""
    hit = _CACHE.get(id(ctx.module))
    if hit is not None and hit.module is ctx.module:
        hit.generated.clear()
        hit.generated_code.clear()


def share_generated(ctx: RuleContext, plan: DependencyPlan, fix: FixRequest) -> FixRequest | None:
    """One generated dependency per module and lint pass.

    The first fix that generates `plan`'s function carries it. A later fix (of any rule) that needs the
    same function is merged into that first fix, so the two apply together and the function is written
    once; both diagnostics then offer the same fix. Returns the fix to report, or None when the two touch
    the same code (the later one is offered again once the first is applied). Display-only fixes are
    never merged (they are never applied).
    """
    if not plan.generated or fix.applicability is Applicability.DISPLAY_ONLY:
        return fix
    facts = module_facts(ctx)
    first = facts.generated.get(plan.expr)
    code = ctx.module.code_for_node(plan.new_function) if plan.new_function is not None else ""
    if first is None or first is fix:
        facts.generated[plan.expr] = fix
        facts.generated_code[plan.expr] = code
        return fix
    if facts.generated_code.get(plan.expr) != code:
        return None  # another function under the same name (another factory): offered in a later pass
    anchor = id(plan.anchor)
    mine = [node for key, (node, _) in fix.replacements.items() if key != anchor]
    theirs = [node for key, (node, _) in first.replacements.items() if key != anchor]
    if any(_contains(a, b) or _contains(b, a) for a in mine for b in theirs):
        return None
    for key, value in fix.replacements.items():
        first.replacements.setdefault(key, value)
    first.add_imports = tuple(dict.fromkeys(first.add_imports + fix.add_imports))
    first.remove_imports = tuple(dict.fromkeys(first.remove_imports + fix.remove_imports))
    first.applicability = min(first.applicability, fix.applicability)
    return first


def new_dependency(ctx: RuleContext, name: str, call_code: str, var: str, is_async: bool) -> cst.FunctionDef:
    """A yield dependency that closes its session in `finally` (the FSL002-compliant form)."""
    a, aw = ("async ", "await ") if is_async else ("", "")
    code = (
        f"{a}def {name}():\n"
        f"    {var} = {call_code}\n"
        f"    try:\n"
        f"        yield {var}\n"
        f"    finally:\n"
        f"        {aw}{var}.close()\n"
    )
    func = cst.parse_statement(code, config=ctx.module.config_for_parsing)
    assert isinstance(func, cst.FunctionDef)
    return with_blank_lines(func)


def with_blank_lines(stmt: cst.BaseStatement, before: int = 2) -> cst.BaseStatement:
    """`stmt` preceded by `before` blank lines (its own comments kept)."""
    lines = list(stmt.leading_lines)
    blanks = 0
    for line in lines:
        if line.comment is None:
            blanks += 1
        else:
            break
    extra = [cst.EmptyLine(indent=False)] * max(0, before - blanks)
    return stmt.with_changes(leading_lines=[*extra, *lines])


def _anchor(ctx: RuleContext, used: set[str], before: cst.CSTNode | None):
    """The top-level statement after which a generated dependency goes: after the imports and after the
    definitions of the module-level names it uses. False when that is not before `before`."""
    body = ctx.module.body
    last = -1
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and any(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
        ):
            last = max(last, i)
        elif _binds_any(stmt, used):
            last = max(last, i)
    limit = _top_index(ctx, before)
    if limit is not None and last >= limit:
        return False
    return body[last] if last >= 0 else None


def _binds_any(stmt: cst.BaseStatement, names: set[str]) -> bool:
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return stmt.name.value in names
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            for target, _ in _assign_pairs(small):
                if names_read(target) & names:
                    return True
        return False
    if isinstance(stmt, (cst.If, cst.Try)):
        return any(_binds_any(s, names) for s in _flat_top([stmt], set()) if s is not stmt)
    return False


def remove_statement(ctx: RuleContext, fix: FixRequest, stmt: cst.BaseStatement) -> None:
    """Add to `fix` the removal of the top-level statement `stmt` (call it after the fix's other
    replacements are in place). Comment lines right above the statement go with it; comments separated
    from it by a blank line (a section header) move to the next statement."""
    lines = list(stmt.leading_lines)
    cut = max((i + 1 for i, line in enumerate(lines) if line.comment is None), default=0)
    kept = lines[:cut]
    while kept and kept[-1].comment is None:
        kept.pop()
    fix.also(stmt, cst.RemovalSentinel.REMOVE)
    if not any(line.comment is not None for line in kept):
        return
    body = list(ctx.module.body)
    i = next((k for k, s in enumerate(body) if s is stmt), None)
    if i is None or i + 1 >= len(body):
        return
    nxt = body[i + 1]
    current = fix.replacements.get(id(nxt), (nxt, nxt))[1]
    if isinstance(current, cst.FlattenSentinel):
        first, *rest = list(current.nodes)
        current = cst.FlattenSentinel([first.with_changes(leading_lines=[*kept, *first.leading_lines]), *rest])
    elif isinstance(current, cst.BaseStatement):
        current = current.with_changes(leading_lines=[*kept, *current.leading_lines])
    else:
        return
    fix.also(nxt, current)


def insert_after(ctx: RuleContext, anchor: cst.BaseStatement, new: cst.BaseStatement) -> cst.FlattenSentinel:
    """Replacement for the top-level statement `anchor` that keeps it and adds `new` after it, with two
    blank lines around a new function or class."""
    body = list(ctx.module.body)
    nxt = None
    for i, stmt in enumerate(body):
        if stmt is anchor and i + 1 < len(body):
            nxt = body[i + 1]
    if isinstance(new, (cst.FunctionDef, cst.ClassDef)) and isinstance(new.body, cst.IndentedBlock):
        blanks = 0
        if nxt is not None:
            for line in nxt.leading_lines:
                if line.comment is not None:
                    break
                blanks += 1
        footer = [cst.EmptyLine(indent=False)] * (max(0, 2 - blanks) if nxt is not None else 0)
        new = new.with_changes(body=new.body.with_changes(footer=[*new.body.footer, *footer]))
    return cst.FlattenSentinel([anchor, new])


# ---------------------------------------------------------------------------------------------------
# A `Depends(...)` parameter in the module's style
# ---------------------------------------------------------------------------------------------------
@dataclass
class ParamPlan:
    param: cst.Param
    has_default: bool
    add_imports: tuple[tuple, ...]
    type_imports: tuple[tuple, ...] = ()  # the part of `add_imports` that the annotation needs


def session_type(ctx: RuleContext, is_async: bool) -> tuple[str | None, tuple[tuple, ...]]:
    """The annotation text for a session parameter, and the import it needs."""
    classes = known.ASYNC_SESSION_CLASSES if is_async else known.SESSION_CLASSES
    local = local_name_for(ctx, classes)
    if local is not None:
        return local, ()
    name = "AsyncSession" if is_async else "Session"
    if name in ctx.names.defined or name in ctx.names.imports:
        return None, ()
    module = "sqlalchemy.ext.asyncio" if is_async else "sqlalchemy.orm"
    return name, ((module, name),)


def _named(ctx: RuleContext, targets: frozenset[str], module: str, name: str) -> tuple[str, tuple[tuple, ...]]:
    local = local_name_for(ctx, targets)
    if local is not None:
        return local, ()
    return name, ((module, name),)


def alias_for(ctx: RuleContext, dependency: str | None) -> str | None:
    """A module-level `X = Annotated[T, Depends(dependency)]` alias this module defines or imports."""
    if dependency is None:
        return None
    facts = module_facts(ctx)
    prefix = f"{ctx.module_name}." if ctx.module_name else ""
    for alias, dep in facts.aliases.items():
        if dep == dependency and alias.startswith(prefix):
            return alias[len(prefix) :]
    for local, target in ctx.names.imports.items():
        canon = ctx.index.canonical(target)
        if _index_query(ctx, "dependency_alias", canon) == dependency:
            return local
    return None


def dependency_param(
    ctx: RuleContext, name: str, plan: DependencyPlan, allow_no_default: bool = True
) -> ParamPlan:
    """`name: Session = Depends(get_db)`, or `name: SessionDep` / `name: Annotated[Session, Depends(get_db)]`
    when the module uses `Annotated` (and a parameter without a default fits: `allow_no_default`)."""
    facts = module_facts(ctx)
    imports: list[tuple] = list(plan.add_imports)
    depends, more = _named(ctx, known.DEPENDS, "fastapi", "Depends")
    alias = alias_for(ctx, plan.qualname) if not plan.generated else None
    config = ctx.module.config_for_parsing
    if allow_no_default and alias is not None:
        return ParamPlan(_param(f"{name}: {alias}", config), False, tuple(imports))
    type_text, type_imports = session_type(ctx, plan.is_async)
    imports += more
    if allow_no_default and facts.uses_annotated_depends and type_text is not None:
        annotated, ann_imports = _named(ctx, known.ANNOTATED, "typing", "Annotated")
        code = f"{name}: {annotated}[{type_text}, {depends}({plan.expr})]"
        return ParamPlan(_param(code, config), False, tuple(imports + list(type_imports) + list(ann_imports)))
    if type_text is not None:
        code = f"{name}: {type_text} = {depends}({plan.expr})"
        return ParamPlan(_param(code, config), True, tuple(imports + list(type_imports)), type_imports)
    return ParamPlan(_param(f"{name}={depends}({plan.expr})", config), True, tuple(imports))


def depends_call(ctx: RuleContext, plan: DependencyPlan) -> tuple[cst.Call, tuple[tuple, ...]]:
    """`Depends(get_db)` with the module's name for `Depends`."""
    depends, more = _named(ctx, known.DEPENDS, "fastapi", "Depends")
    call = cst.parse_expression(f"{depends}({plan.expr})", config=ctx.module.config_for_parsing)
    assert isinstance(call, cst.Call)
    return call, tuple(plan.add_imports) + more


def _param(code: str, config) -> cst.Param:
    func = cst.parse_statement(f"def f({code}): pass", config=config)
    assert isinstance(func, cst.FunctionDef)
    return func.params.params[0]


def add_param(params: cst.Parameters, new: ParamPlan) -> cst.Parameters:
    """`params` with `new` added where it is valid: a defaulted one last among the positional parameters
    (keyword-only after `*`), one without a default before the first defaulted one (or keyword-only)."""
    if params.star_arg is not cst.MaybeSentinel.DEFAULT and params.star_arg is not None:
        kw = list(params.kwonly_params)
        return params.with_changes(kwonly_params=_append(kw, new.param, len(kw)))
    items = list(params.params)
    if params.star_kwarg is not None:
        pass
    pos = len(items)
    if not new.has_default:
        for i, p in enumerate(items):
            if p.default is not None:
                pos = i
                break
        if pos == len(items) and params.posonly_params and any(p.default for p in params.posonly_params):
            return params.with_changes(kwonly_params=[*params.kwonly_params, new.param], star_arg=cst.ParamStar())
    return params.with_changes(params=_append(items, new.param, pos))


def _append(items: list[cst.Param], param: cst.Param, pos: int) -> list[cst.Param]:
    """Insert `param` at `pos`, keeping a multi-line layout (the last item's comma moves to the new one)."""
    if pos == len(items) and items and isinstance(items[-1].comma, cst.Comma):
        last = items[-1]
        sep = items[-2].comma if len(items) > 1 and isinstance(items[-2].comma, cst.Comma) else last.comma
        items[-1] = last.with_changes(comma=sep)
        items.append(param.with_changes(comma=last.comma))
        return items
    if pos < len(items) and isinstance(items[pos].comma, cst.Comma):
        param = param.with_changes(comma=items[pos].comma)
    items.insert(pos, param)
    return items
