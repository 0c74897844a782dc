"""## What it does
Checks for a synchronous SQLAlchemy `Session` or `Connection` used inside an `async def` path operation or
dependency: a parameter annotated with one or filled by a dependency that yields one, or a session or
connection the function creates (`SessionLocal()`, `Session(engine)`, `engine.connect()`).

## Why is this bad?
FastAPI runs `async def` endpoints on the event loop and plain `def` endpoints in a threadpool. A sync
session does blocking network or disk I/O, so every query in an `async def` stops the whole server: no
other request is served until it returns. FastAPI's docs say to use plain `def` with libraries that do not
support `await`, "currently the case for most database libraries".

Calls handed to another thread (`await run_in_threadpool(db.execute, stmt)`, `asyncio.to_thread`,
`AsyncSession.run_sync`) or made inside a lambda or nested function are not reported. When a parameter's
dependency is known, what it really yields decides: `db: Session = Depends(get_async_db)` is an
`AsyncSession` and is left alone, as is SQLModel's `AsyncSession.exec`.

## Example
    from fastapi import Depends, FastAPI
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.db import get_db
    from app.models import Item

    app = FastAPI()

    @app.get("/items")
    async def list_items(db: Session = Depends(get_db)):
        return db.scalars(select(Item)).all()

## Use instead
    from fastapi import Depends, FastAPI
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.db import get_db
    from app.models import Item

    app = FastAPI()

    @app.get("/items")
    def list_items(db: Session = Depends(get_db)):
        return db.scalars(select(Item)).all()

## Fix safety
Safe: `async def` becomes `def` when the body has no `await`, `async for`, `async with`, `yield`, no
reference to `asyncio` or `anyio`, calls no coroutine function of the project, and the module never awaits
the function itself. FastAPI then runs it in its threadpool, which is what it does for every plain `def`.
Otherwise display-only: the first blocking call is shown handed to `run_in_threadpool`; the others need
the same treatment, or a move to `AsyncSession`.

## References
- FastAPI docs, "Concurrency and async / await" ("In a hurry?", "Path operation functions")
- SQLAlchemy docs, "Asynchronous I/O (asyncio)"
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules import _handles
from fastsqla_lint.walk import children

BLOCKING_METHODS = frozenset(
    {
        "execute",
        "exec",
        "exec_driver_sql",
        "scalars",
        "scalar",
        "query",
        "get",
        "get_one",
        "commit",
        "flush",
        "refresh",
        "merge",
        "rollback",
    }
)
COROUTINE_MODULES = ("asyncio", "anyio")


class _Watch:
    def __init__(self, handles: dict[str, _handles.Handle]) -> None:
        self.handles = handles
        self.calls: list[tuple[cst.Call, bool]] = []  # (call, needs parentheses when awaited)


class SyncSessionInAsyncRoute(Rule):
    code = "FSL007"
    name = "sync-session-in-async-route"
    message = "Sync session used in an `async def` path operation or dependency blocks the event loop"
    fix_title = "Make the function a plain `def` (FastAPI runs it in a threadpool)"
    fix_availability = FixAvailability.ALWAYS
    severity = Severity.WARNING
    needles = (b"async",)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._watching: dict[int, _Watch] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.asynchronous is None:
            return
        if not _handles.is_route(self, node) and not _handles.is_dependency(self, node):
            return
        sync = {k: h for k, h in _handles.function_handles(self, node).items() if not h.is_async}
        if sync:
            self._watching[id(node)] = _Watch(sync)

    def visit_Call(self, node: cst.Call) -> None:
        func = self.current_function
        watch = self._watching.get(id(func)) if func is not None else None
        if watch is None:
            return
        callee = node.func
        if not (
            isinstance(callee, cst.Attribute)
            and isinstance(callee.value, cst.Name)
            and callee.value.value in watch.handles
            and callee.attr.value in BLOCKING_METHODS
        ):
            return
        parents = self.context.parents
        if _handles.is_wrapped_for_thread(self, parents, func):
            return
        parent = parents[-1] if parents else None
        needs_parens = isinstance(parent, (cst.Attribute, cst.Subscript)) or (
            isinstance(parent, cst.Call) and parent.func is node
        )
        watch.calls.append((node, needs_parens))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        watch = self._watching.pop(id(node), None)
        if watch is None or not watch.calls:
            return
        call, needs_parens = watch.calls[0]
        callee = call.func
        assert isinstance(callee, cst.Attribute) and isinstance(callee.value, cst.Name)
        handle = watch.handles[callee.value.value]
        kind = "route" if _handles.is_route(self, node) else "dependency"
        more = f" ({len(watch.calls)} blocking calls)" if len(watch.calls) > 1 else ""
        message = (
            f"Sync `{handle.label}` `{callee.value.value}` used in `async def {node.name.value}` ({kind}): "
            f"each query blocks the event loop{more}"
        )
        self.report(call, message, fix=self._fix(node, call, needs_parens))

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, func: cst.FunctionDef, call: cst.Call, needs_parens: bool):
        reason = self._keeps_async(func)
        if reason is None:
            return self.fix(func, func.with_changes(asynchronous=None), applicability=Applicability.SAFE)
        callee = call.func
        assert isinstance(callee, cst.Attribute)
        awaited = cst.Await(
            cst.Call(func=cst.Name("run_in_threadpool"), args=[cst.Arg(callee), *_with_last_comma_dropped(call.args)])
        )
        if needs_parens:
            awaited = awaited.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return self.fix(
            call,
            awaited,
            applicability=Applicability.DISPLAY_ONLY,
            title=f"Hand the blocking call to `run_in_threadpool` (the function stays `async def`: {reason})",
            add_imports=[("fastapi.concurrency", "run_in_threadpool")],
        )

    def _keeps_async(self, func: cst.FunctionDef) -> str | None:
        """Why `func` must stay `async def` (None when it can become a plain `def`)."""
        for node in _handles.iter_own_nodes(func.body):
            if isinstance(node, cst.Await):
                return "it awaits"
            if isinstance(node, (cst.For, cst.With, cst.CompFor)) and node.asynchronous is not None:
                return "it uses `async for` / `async with`"
            if isinstance(node, cst.Yield):
                return "it yields"
            if isinstance(node, cst.Name):
                qn = self.qualified_name(node)
                if qn is not None and qn.split(".")[0] in COROUTINE_MODULES:
                    return f"it uses `{qn}`"
            if isinstance(node, cst.Call) and self._is_coroutine_function(node.func):
                return f"it calls the coroutine function `{cst.Module(body=[]).code_for_node(node.func)}`"
        if self._awaited_in_module(func.name.value):
            return "the module awaits it"
        return None

    def _is_coroutine_function(self, expr: cst.BaseExpression) -> bool:
        qn = self.qualified_name(expr)
        fact = self.index.function(qn) if qn is not None else None
        return fact is not None and fact.is_async and not fact.is_generator

    def _awaited_in_module(self, name: str) -> bool:
        stack: list[cst.CSTNode] = [self.context.module]
        while stack:
            node = stack.pop()
            if isinstance(node, cst.Await):
                inner = node.expression
                if isinstance(inner, cst.Call) and isinstance(inner.func, cst.Name) and inner.func.value == name:
                    return True
            stack.extend(children(node))
        return False


def _with_last_comma_dropped(args) -> list[cst.Arg]:
    out = list(args)
    if out:
        out[-1] = out[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return out
