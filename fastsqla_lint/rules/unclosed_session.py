"""## What it does
Checks session dependencies (functions reached from `Depends`/`Security`, `Annotated` aliases,
`dependencies=[...]` or `dependency_overrides`) that do not guarantee their session is closed:
one that `return`s the session (nothing ever closes it), a generator whose `close()` is not in a
`finally` (or that never closes), an `except` around the `yield` that swallows the endpoint's
exception, an un-awaited `AsyncSession.close()`, and `Depends(lambda: SessionLocal())`. In helper
mode (a warning) it also checks plain functions of a FastAPI project that open a session, keep it to
themselves and do not close it in `finally` or `with`.

## Why is this bad?
When the endpoint raises (or the client disconnects), FastAPI throws the exception into the
dependency at its `yield`: code after the `yield` that is not in `finally` never runs, so the
connection stays checked out until garbage collection. A few failing requests exhaust the pool and
every later request waits and fails with `TimeoutError: QueuePool limit of size 5 overflow 10
reached`. A returned session is never closed at all. Since FastAPI 0.110 an `except` that does not
re-raise hides the error and FastAPI answers with an internal error instead.

## Known problems
A session the dependency stores on an object (`request.state.db = db`) is taken to be closed by its
owner (a middleware) and is not reported. Test modules, pytest fixtures, test set-up methods,
scripts, and factory helpers whose result the caller closes with `with` are not checked. A
return-style dependency imported by another module gets an unsafe fix: the index records imports,
not calls, so the importer may call it directly.

## Example
    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker

    SessionLocal = sessionmaker(bind=create_engine("sqlite:///./app.db"))
    app = FastAPI()


    def get_db():
        db = SessionLocal()
        yield db
        db.close()


    @app.get("/")
    def index(db: Session = Depends(get_db)):
        return {}

## Use instead
    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker

    SessionLocal = sessionmaker(bind=create_engine("sqlite:///./app.db"))
    app = FastAPI()


    def get_db():
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()


    @app.get("/")
    def index(db: Session = Depends(get_db)):
        return {}

## Fix safety
Wrapping the code after the session is created in `try`/`finally` (with `await session.close()` for
an `AsyncSession`) is safe: only the failure path changes, and now it closes. Adding the missing
`await` to a `close()` is safe. A return-style dependency becomes a generator: safe when nothing
calls it directly, unsafe otherwise (a direct caller would get a generator). Adding `raise` to an
`except` that swallows the error is unsafe: the error now reaches FastAPI's exception handlers.
`Depends(lambda: ...)` becomes `Depends(get_db)`: safe with a generated dependency, unsafe when an
existing one is reused (it may commit). In helper mode, moving an existing `close()` into `finally`
is safe; adding a `close()` that was missing is unsafe (objects returned from the helper are then
detached). No fix when the session is created inside a nested block or the code after it cannot
move into a `try` block.

## References
- FastAPI docs, "Dependencies with yield"
- https://github.com/fastapi/fastapi/pull/89
- https://github.com/fastapi/full-stack-fastapi-template/issues/459
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _sessions as S
from fastsqla_lint.walk import children

ITERATORS = frozenset({"collections.abc.Iterator", "typing.Iterator"})
ASYNC_ITERATORS = frozenset({"collections.abc.AsyncIterator", "typing.AsyncIterator"})


class UnclosedSession(Rule):
    code = "FSL002"
    name = "unclosed-session"
    message = "Session dependency does not close its session when the request fails"
    fix_title = "Close the session in `finally`"
    fix_availability = FixAvailability.SOMETIMES

    def __init__(self, context) -> None:
        super().__init__(context)
        self._creating: set[int] = set()
        S.start_pass(context)

    def visit_Call(self, node: cst.Call) -> None:
        """Remember the functions that create a session; only those are analysed, when the walk leaves them."""
        ctx = self.context
        if ctx.functions and S.may_create_sessions(ctx) and S.session_source(ctx, node) is not None:
            self._creating.add(id(ctx.functions[-1]))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        ctx = self.context
        if id(node) not in self._creating:
            return
        if S.is_test_setup(ctx, node) or S.excluded_module(ctx) == "a test module":
            return
        info = S.analyse_function(ctx, node)
        if not info.bindings and not info.yields and not info.returns:
            return
        if S.is_dependency(ctx, node, S.current_qualname(ctx, node)):
            self._dependency(node, info)
        else:
            self._helper(node, info)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        """(vi) `Depends(lambda: SessionLocal())`."""
        ctx = self.context
        if not isinstance(node.body, cst.Call) or list(S._all_params(node.params)):
            return
        if not S.may_create_sessions(ctx):
            return
        source = S.session_source(ctx, node.body)
        if source is None or source.is_registry:
            return
        if id(node) not in S.module_facts(ctx).dependency_lambdas or S.excluded_module(ctx) == "a test module":
            return
        message = "`Depends(lambda: ...)` creates a session that nothing closes"
        plan = S.session_dependency(ctx, source, before=_top_statement(ctx, node))
        fix = None
        if plan is not None and not (plan.generated and plan.anchor is None):
            level = Applicability.SAFE if plan.generated else Applicability.UNSAFE
            fix = self.fix(node, cst.parse_expression(plan.expr), applicability=level, add_imports=plan.add_imports)
            fix.title = f"Use `{plan.expr}`, a dependency that closes its session"
            if plan.generated:
                fix.also(plan.anchor, S.insert_after(ctx, plan.anchor, plan.new_function))
            fix = S.share_generated(ctx, plan, fix)
        self.report(node, message, fix=fix)

    # -- dependencies ---------------------------------------------------------------------------
    def _dependency(self, func: cst.FunctionDef, info: S.FunctionAnalysis) -> None:
        if not info.is_generator:
            for ret, name, src in info.returns:
                if name is not None and (
                    name in info.finally_closed or info.bindings[name].managed or name in info.stored
                ):
                    continue  # closed here, or handed to whoever closes `request.state.db`
                self._return_style(func, info, ret, name, src)
                return
            return
        unmanaged = [u for u in info.unmanaged_yields() if u[1] is None or u[1] not in info.stored]
        if unmanaged:
            y, name, src = unmanaged[0]
            closes = [c for c in info.closes if name is not None and c.name in _close_keys(info, name)]
            if closes:
                message = "Session dependency closes its session outside `finally`: the close is skipped when the endpoint raises"
                if info.is_async and _async_session(info, name, src) and not all(c.awaited for c in closes):
                    message += ", and `close()` is never awaited"
            else:
                message = "Session dependency never closes its session"
            self.report(func.name, message, fix=self._wrap_fix(func, info, name, src, y, Applicability.SAFE))
        for close in info.closes:
            if close.in_finally and not close.awaited and info.is_async:
                binding = info.bindings.get(close.name)
                if binding is not None and binding.source.is_async and not binding.source.is_registry:
                    self.report(
                        close.call,
                        "`AsyncSession.close()` is not awaited: the coroutine is created and the session never closes",
                        fix=self.fix(close.call, cst.Await(expression=close.call), applicability=Applicability.SAFE,
                                     title="Await `close()`"),
                    )
        if info.swallowing and self.versions.at_least("fastapi", "0.110") is not False:
            for handler in info.swallowing:
                self.report(
                    handler,
                    "`except` around a dependency's `yield` swallows the endpoint's exception "
                    "(FastAPI then fails with an internal error); re-raise it",
                    fix=_reraise_fix(self, handler),
                )

    def _return_style(
        self,
        func: cst.FunctionDef,
        info: S.FunctionAnalysis,
        ret: cst.Return,
        name: str | None,
        src: S.SessionSource | None,
    ) -> None:
        ctx = self.context
        message = "Session dependency returns its session: nothing ever closes it"
        fix = None
        body = _body(func)
        if body is not None and len(info.returns) == 1 and _only_return(func, ret) and body[-1] is not None:
            last = body[-1]
            if isinstance(last, cst.SimpleStatementLine) and len(last.body) == 1 and last.body[0] is ret:
                fix = self._generator_fix(func, info, ret, name, src)
        if fix is not None:
            callers = _direct_callers(ctx, func)
            if callers:
                fix.applicability = Applicability.UNSAFE
                message += f" (the fix is unsafe: {callers})"
        self.report(func.name, message, fix=fix)

    def _generator_fix(
        self,
        func: cst.FunctionDef,
        info: S.FunctionAnalysis,
        ret: cst.Return,
        name: str | None,
        src: S.SessionSource | None,
    ) -> FixRequest | None:
        ctx = self.context
        body = list(_body(func) or [])
        config = ctx.module.config_for_parsing
        if name is None:
            assert src is not None
            var = _free_var(func)
            bind = cst.parse_statement(f"{var} = {ctx.module.code_for_node(src.call)}", config=config)
            start = len(body) - 1
            before, after = body[:start], []
            source = src
        else:
            binding = info.bindings[name]
            k = _top_index_of(body, binding.statement)
            if k is None:
                return None
            var, bind, source = name, body[k], binding.source
            before, after = body[:k], body[k + 1 : -1]
        yield_line = cst.SimpleStatementLine([cst.Expr(cst.Yield(value=cst.Name(var)))])
        try_stmt = _try_finally(ctx, [*after, yield_line], [_close_line(ctx, var, source)], func)
        if try_stmt is None:
            return None
        new_body = [*before, bind, try_stmt]
        new_func = func.with_changes(body=func.body.with_changes(body=new_body))
        imports: list[tuple] = []
        if func.returns is not None:
            iterators = ASYNC_ITERATORS if info.is_async else ITERATORS
            it_name = S.local_name_for(ctx, iterators)
            if it_name is None:
                it_name = "AsyncIterator" if info.is_async else "Iterator"
                imports.append(("collections.abc", it_name))
            ann = cst.parse_expression(f"{it_name}[{ctx.module.code_for_node(func.returns.annotation)}]", config=config)
            new_func = new_func.with_changes(returns=func.returns.with_changes(annotation=ann))
        return self.fix(
            func,
            new_func,
            applicability=Applicability.SAFE,
            title="Turn the dependency into a generator that closes the session in `finally`",
            add_imports=imports,
        )

    def _wrap_fix(
        self,
        func: cst.FunctionDef,
        info: S.FunctionAnalysis,
        name: str | None,
        src: S.SessionSource | None,
        yield_node: cst.Yield | None,
        level: Applicability,
    ) -> FixRequest | None:
        """Move everything after the session's creation into `try`, and its close into `finally`."""
        ctx = self.context
        body = _body(func)
        if body is None:
            return None
        config = ctx.module.config_for_parsing
        if name is None:
            # `yield SessionLocal()`: name the session first
            k = next((i for i, s in enumerate(body) if _is_yield_line(s, yield_node)), None)
            if k is None or src is None:
                return None
            var = _free_var(func)
            bind = cst.parse_statement(f"{var} = {ctx.module.code_for_node(src.call)}", config=config)
            bind = bind.with_changes(leading_lines=body[k].leading_lines)
            rest = [body[k].with_changes(body=[cst.Expr(cst.Yield(value=cst.Name(var)))], leading_lines=()),
                    *body[k + 1 :]]
            source = src
        else:
            binding = info.bindings[name]
            k = _top_index_of(body, binding.statement)
            if k is None:
                return None
            var, bind, source, rest = name, body[k], binding.source, list(body[k + 1 :])
        keys = _close_keys(info, var)
        c = next((i for i, s in enumerate(rest) if _is_close_line(s, keys)), None)
        if c is None:
            try_body, final, tail = rest, [_close_line(ctx, var, source)], []
        else:
            # what ran after the close still runs after it, now after the `try` statement
            try_body, final, tail = rest[:c], [rest[c]], list(rest[c + 1 :])
        if source.is_async and not source.is_registry:
            final = [_awaited_close(s, keys) for s in final]
        if any(_yields(s) for s in tail):
            return None
        try_stmt = _try_finally(ctx, try_body, final, func)
        if try_stmt is None:
            return None
        new_body = [*body[:k], bind, try_stmt, *tail]
        new_func = func.with_changes(body=func.body.with_changes(body=new_body))
        if c is None and level is Applicability.SAFE and not info.is_generator:
            level = Applicability.UNSAFE
        return self.fix(func, new_func, applicability=level)

    # -- helper mode ----------------------------------------------------------------------------
    def _helper(self, func: cst.FunctionDef, info: S.FunctionAnalysis) -> None:
        ctx = self.context
        if info.is_generator or not info.bindings:
            return
        if not S.fastapi_gate(ctx) or S.in_main_block(ctx) or "<stored>" in info.escapes:
            return
        for name, binding in info.bindings.items():
            if binding.managed or binding.source.is_registry or binding.source.kind == "generator":
                continue
            if name in info.escapes or name in info.with_names or name in info.finally_closed:
                continue
            closes = [c for c in info.closes if c.name == name]
            level = Applicability.SAFE if any(c.statement is not None for c in closes) else Applicability.UNSAFE
            if closes:
                message = "Session opened here is closed outside `finally`: an exception skips the close"
            else:
                message = "Session opened here is never closed"
            fix = self._wrap_fix(func, info, name, None, None, level)
            if fix is not None and level is Applicability.UNSAFE:
                fix.title = "Close the session in `finally` (objects returned by the function are then detached)"
            self.report(binding.source.call, message, fix=fix, severity=Severity.WARNING)
            return


# ---------------------------------------------------------------------------------------------------
def _body(func: cst.FunctionDef) -> list[cst.BaseStatement] | None:
    return list(func.body.body) if isinstance(func.body, cst.IndentedBlock) else None


def _top_index_of(body: list[cst.BaseStatement], stmt: cst.CSTNode) -> int | None:
    for i, s in enumerate(body):
        if isinstance(s, cst.SimpleStatementLine) and len(s.body) == 1 and s.body[0] is stmt:
            return i
    return None


def _is_yield_line(stmt: cst.BaseStatement, node: cst.Yield | None) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and stmt.body[0].value is node
    )


def _close_keys(info: S.FunctionAnalysis, name: str | None) -> set[str]:
    keys = {name} if name else set()
    binding = info.bindings.get(name) if name else None
    if binding is not None and binding.source.is_registry and binding.source.target:
        keys.add(binding.source.target)
    return keys


def _is_close_line(stmt: cst.BaseStatement, keys: set[str]) -> bool:
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    small = stmt.body[0]
    if not isinstance(small, cst.Expr):
        return False
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    if not isinstance(value, cst.Call) or value.args or not isinstance(value.func, cst.Attribute):
        return False
    target = value.func.value
    attr = value.func.attr.value
    if attr == "close" and isinstance(target, cst.Name) and target.value in keys:
        return True
    return attr == "remove" and any(k and "." in k for k in keys)


def _awaited_close(stmt: cst.BaseStatement, keys: set[str]) -> cst.BaseStatement:
    if _is_close_line(stmt, keys):
        small = stmt.body[0]
        if not isinstance(small.value, cst.Await):
            return stmt.with_changes(body=[small.with_changes(value=cst.Await(expression=small.value))])
    return stmt


def _close_line(ctx, var: str, source: S.SessionSource) -> cst.BaseStatement:
    if source.is_registry:
        code = f"{ctx.module.code_for_node(source.callee)}.remove()"
    else:
        code = f"{'await ' if source.is_async else ''}{var}.close()"
    return cst.parse_statement(code, config=ctx.module.config_for_parsing)


def _try_finally(ctx, body: list, final: list, func: cst.FunctionDef) -> cst.Try | None:
    """`try: body finally: final`, or None when that would change what the code does."""
    if not body or any(_jumps(s) for s in final):
        return None
    first = body[0]
    leading = first.leading_lines
    body = [first.with_changes(leading_lines=[line for line in leading if line.comment is not None]), *body[1:]]
    final = [final[0].with_changes(leading_lines=[line for line in final[0].leading_lines if line.comment]), *final[1:]]
    if len(body) == 1 and isinstance(body[0], cst.Try) and body[0].finalbody is None:
        # `try: yield db except ...: raise` followed by the close: give that `try` the `finally`
        return body[0].with_changes(
            finalbody=cst.Finally(body=cst.IndentedBlock(body=final)),
            leading_lines=[line for line in leading if line.comment is None] + list(body[0].leading_lines),
        )
    return cst.Try(
        body=cst.IndentedBlock(body=body),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=final)),
        leading_lines=[line for line in leading if line.comment is None],
    )


def _jumps(stmt: cst.CSTNode) -> bool:
    """`return`, `yield`, `break` or `continue` (outside nested definitions): not for a `finally` block."""
    stack = [stmt]
    while stack:
        n = stack.pop()
        if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(n, (cst.Return, cst.Yield, cst.Break, cst.Continue)):
            return True
        stack.extend(children(n))
    return False


def _yields(stmt: cst.CSTNode) -> bool:
    stack = [stmt]
    while stack:
        n = stack.pop()
        if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(n, cst.Yield):
            return True
        stack.extend(children(n))
    return False


def _only_return(func: cst.FunctionDef, ret: cst.Return) -> bool:
    stack: list[cst.CSTNode] = [func.body]
    while stack:
        n = stack.pop()
        if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(n, cst.Return) and n is not ret:
            return False
        stack.extend(children(n))
    return True


def _free_var(func: cst.FunctionDef) -> str:
    used = S.names_read(func)
    return next(v for v in ("db", "session", "db_session", "sa_session") if v not in used)


def _async_session(info: S.FunctionAnalysis, name: str | None, src: S.SessionSource | None) -> bool:
    binding = info.bindings.get(name) if name else None
    source = binding.source if binding is not None else src
    return source is not None and source.is_async and not source.is_registry


def _reraise_fix(rule: Rule, handler: cst.ExceptHandler) -> FixRequest | None:
    body = handler.body
    if isinstance(body, cst.IndentedBlock):
        stmts = list(body.body)
        if stmts and S.names_read(stmts[-1]) == set() and _is_pass(stmts[-1]):
            stmts = stmts[:-1]
        if stmts and _jumps(stmts[-1]):
            return None
        new = handler.with_changes(body=body.with_changes(body=[*stmts, cst.SimpleStatementLine([cst.Raise()])]))
    else:
        new = handler.with_changes(body=body.with_changes(body=[*body.body, cst.Raise()]))
    return rule.fix(handler, new, applicability=Applicability.UNSAFE, title="Re-raise the exception")


def _is_pass(stmt: cst.BaseStatement) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, cst.Pass) for s in stmt.body)


def _direct_callers(ctx, func: cst.FunctionDef) -> str:
    """Why the return-style fix may break a caller: functions of this module that call the dependency
    directly (not through `Depends`), and other modules that import it (the index records imports, not
    calls, so an importer may call it). Empty when there is none."""
    qn = S.function_qualname(ctx, func)
    if qn is None:
        return ""
    facts = S.module_facts(ctx)
    callers = []
    for call in facts.direct_calls.get(qn, []):
        owner = _owner_name(ctx, call)
        callers.append(f"`{owner}`" if owner else "module-level code")
    callers = list(dict.fromkeys(callers))
    reasons = []
    if callers:
        reasons.append(f"{', '.join(callers)} {'calls' if len(callers) == 1 else 'call'} it directly")
    importers = [f"`{m}`" for m in S.importers(ctx, qn)]
    if importers:
        verb = "imports" if len(importers) == 1 else "import"
        reasons.append(f"{', '.join(importers)} {verb} it and may call it directly")
    return "; ".join(reasons)


def _owner_name(ctx, call: cst.Call) -> str | None:
    for name, func in S.module_facts(ctx).functions.items():
        if S._contains(func, call):
            return func.name.value
    return None


def _top_statement(ctx, node: cst.CSTNode) -> cst.CSTNode | None:
    i = S._top_index(ctx, node)
    return ctx.module.body[i] if i is not None else None
