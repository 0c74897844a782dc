"""## What it does
Checks for an asyncio session factory or session made without `expire_on_commit=False`:
`async_sessionmaker(...)`, `sessionmaker(..., class_=AsyncSession)` and `AsyncSession(...)`.

## Why is this bad?
By default a session expires every loaded object when it commits, so the next attribute read reloads it
from the database. Under asyncio that reload is blocking I/O started from plain attribute access, which
SQLAlchemy cannot run: the request fails with `MissingGreenlet: greenlet_spawn has not been called; can't
call await_only() here`. The classic case is a path operation that adds a row, commits, and returns
`{"id": row.id, ...}`. The SQLAlchemy asyncio docs say `expire_on_commit` "should normally be set to
False when using asyncio".

An explicit `expire_on_commit=...` (either value), a `**options` splat, or a later
`Factory.configure(expire_on_commit=...)` in the same module is taken as deliberate and left alone.

## Known problems
Lazy-loaded relationships raise the same error under asyncio after any query; they need `selectinload()`,
`lazy="raise"` or `AsyncAttrs`, which this rule does not check yet.

## Example
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    engine = create_async_engine("sqlite+aiosqlite:///./app.db")
    SessionLocal = async_sessionmaker(engine)

## Use instead
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    engine = create_async_engine("sqlite+aiosqlite:///./app.db")
    SessionLocal = async_sessionmaker(engine, expire_on_commit=False)

## Fix safety
Safe: `expire_on_commit=False` is added. The only change is that reading an attribute after `commit()`
returns the value already loaded instead of raising `MissingGreenlet`; a change made by another
transaction is no longer picked up by that read (call `await session.refresh(obj)` where that matters).
Unsafe when the project uses `AsyncAttrs` / `awaitable_attrs`, whose `await obj.awaitable_attrs.x` after a
commit did reload fresh values and now returns the loaded ones.

## References
- SQLAlchemy docs, "Asynchronous I/O (asyncio)", "Preventing Implicit IO when Using AsyncSession"
- SQLAlchemy error reference, "MissingGreenlet" (https://sqlalche.me/e/20/xd2s)
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules._edits import walk
from fastsqla_lint.rules._engines import with_keyword

ASYNC_ATTRS = frozenset({"sqlalchemy.ext.asyncio.AsyncAttrs", "sqlalchemy.ext.asyncio.session.AsyncAttrs"})
KEYWORD = "expire_on_commit"


class AsyncExpireOnCommit(Rule):
    code = "FSL011"
    name = "async-expire-on-commit"
    message = "Async session without `expire_on_commit=False`: reading an attribute after `commit()` raises `MissingGreenlet`"
    fix_title = "Add `expire_on_commit=False`"
    fix_availability = FixAvailability.ALWAYS
    severity = Severity.WARNING
    needles = (b"AsyncSession", b"async_sessionmaker", b"class_")

    def __init__(self, context) -> None:
        super().__init__(context)
        self._configured: set[str] | None = None

    def visit_Call(self, node: cst.Call) -> None:
        what = self._what(node)
        if what is None:
            return
        if any(arg.star == "**" for arg in node.args):
            return
        if any(arg.keyword is not None and arg.keyword.value == KEYWORD for arg in node.args):
            return
        if self._configured_later(node):
            return
        message = (
            f"{what} without `expire_on_commit=False`: after `commit()`, reading an attribute reloads it with "
            "blocking I/O and raises `MissingGreenlet`"
        )
        applicability = Applicability.UNSAFE if self._uses_async_attrs() else Applicability.SAFE
        new = with_keyword(node, KEYWORD, cst.Name("False"))
        self.report(node, message, fix=self.fix(node, new, applicability=applicability))

    # -- detection ----------------------------------------------------------------------------------
    def _what(self, call: cst.Call) -> str | None:
        """How the message names the call, when it makes asyncio sessions."""
        qn = self.qualified_name(call.func)
        if qn is None:
            return None
        if qn in known.ASYNC_SESSIONMAKERS:
            return "`async_sessionmaker()`"
        if qn in known.ASYNC_SESSION_CLASSES:
            return "`AsyncSession()`"
        if qn in known.SESSIONMAKERS:
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value == "class_" and self._is_async_class(arg.value):
                    return "`sessionmaker(class_=AsyncSession)`"
        return None

    def _is_async_class(self, expr: cst.BaseExpression) -> bool:
        """`AsyncSession`, or a project class deriving from it."""
        qn = self.qualified_name(expr)
        seen: set[str] = set()
        while qn is not None and qn not in seen:
            if qn in known.ASYNC_SESSION_CLASSES:
                return True
            seen.add(qn)
            fact = self.index.class_(qn)
            if fact is None:
                return False
            bases = [self.index.canonical(b) for b in fact.bases]
            if any(b in known.ASYNC_SESSION_CLASSES for b in bases):
                return True
            qn = bases[0] if len(bases) == 1 else None
        return False

    def _configured_later(self, call: cst.Call) -> bool:
        """`Factory = async_sessionmaker(...)` followed by `Factory.configure(expire_on_commit=...)`."""
        parents = self.context.parents
        owner = parents[-1] if parents else None
        if not isinstance(owner, cst.Assign) or owner.value is not call:
            return False
        if self._configured is None:
            self._configured = _configured_names(self.context.module)
        return any(isinstance(t.target, cst.Name) and t.target.value in self._configured for t in owner.targets)

    def _uses_async_attrs(self) -> bool:
        """Whether the project imports `AsyncAttrs` (the only source of `awaitable_attrs`)."""
        if any(target in ASYNC_ATTRS for target in self.names.imports.values()):
            return True
        return any(self.index.importers(name) for name in sorted(ASYNC_ATTRS))


def _configured_names(module: cst.Module) -> set[str]:
    """Names `X` with an `X.configure(expire_on_commit=...)` call anywhere in the module."""
    found: set[str] = set()
    for node in walk(module):
        if isinstance(node, cst.Call):
            func = node.func
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value == "configure"
                and isinstance(func.value, cst.Name)
                and any(a.keyword is not None and a.keyword.value == KEYWORD for a in node.args)
            ):
                found.add(func.value.value)
    return found
