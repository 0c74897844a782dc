"""## What it does
Checks for a `try` around a session's `commit()` or `flush()` whose `except` handler catches the database
error (`IntegrityError`, `SQLAlchemyError`, `DBAPIError` and their family, `Exception`, or a bare
`except:`), neither rolls the session back nor re-raises, and then uses the same session again: in the
handler itself, after the `try`, or in the next iteration of a loop.

## Why is this bad?
When a flush fails, SQLAlchemy rolls back the session's transaction and refuses any further use until the
application calls `rollback()`: the next query, `add()` or `commit()` raises `PendingRollbackError: This
Session's transaction has been rolled back due to a previous exception during flush. To begin a new
transaction with this Session, first issue Session.rollback()`. The common "insert, and on a duplicate
fetch the existing row" code therefore turns every duplicate into a 500, and a loop that skips the rows
that fail loses every row after the first failure.

A handler that re-raises (any `raise`), calls `rollback()` or `close()`, or hands the session to another
function (which may roll it back) is left alone, as is a commit inside `with session.begin():` or
`begin_nested()`, whose context manager rolls back itself. A session that is not used again is left
alone too: a request-scoped session ends when the dependency closes it.

## Known problems
Only sessions held in a local name or parameter are followed (not `self.db`), and a handler is taken to
fall through unless its last statement is `return` or `raise`.

## Example
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from app.models import User

    def add_user(db: Session, email: str) -> User:
        user = User(email=email)
        db.add(user)
        try:
            db.commit()
        except IntegrityError:
            user = db.scalars(select(User).where(User.email == email)).one()
        return user

## Use instead
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from app.models import User

    def add_user(db: Session, email: str) -> User:
        user = User(email=email)
        db.add(user)
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            user = db.scalars(select(User).where(User.email == email)).one()
        return user

## Fix safety
Safe when the handler catches only SQLAlchemy's database errors and the `try` body holds nothing but
session calls (`add()`, `delete()`, `merge()`, `flush()`, `commit()`, `refresh()`): the failed flush has
already rolled the transaction back, so `rollback()` (awaited for an `AsyncSession`) inserted first in
the handler only makes the session usable again. Unsafe when the handler catches `Exception` (or
everything), or the `try` body does other work: the exception may come from elsewhere, and the rollback
then discards pending changes that a later `commit()` would have written.

## References
- SQLAlchemy FAQ, "This Session's transaction has been rolled back due to a previous exception during flush"
- SQLAlchemy error reference, "PendingRollbackError" (https://sqlalche.me/e/20/7s2a)
"""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _handles
from fastsqla_lint.rules._edits import children

DB_ERRORS = frozenset(
    f"sqlalchemy.exc.{name}"
    for name in (
        "SQLAlchemyError",
        "DBAPIError",
        "DatabaseError",
        "IntegrityError",
        "DataError",
        "OperationalError",
        "ProgrammingError",
        "InternalError",
        "NotSupportedError",
        "InterfaceError",
        "StatementError",
    )
) | frozenset({"sqlalchemy.orm.exc.FlushError"})
BROAD_ERRORS = frozenset({"builtins.Exception", "builtins.BaseException"})
WRITES = frozenset({"commit", "flush"})
RECOVERS = frozenset({"rollback", "close"})
SESSION_CALLS = frozenset({"add", "add_all", "delete", "merge", "flush", "commit", "refresh", "expunge"})
SELF_ROLLING_BACK = frozenset({"begin", "begin_nested"})


class MissingRollback(Rule):
    code = "FSL015"
    name = "missing-rollback"
    message = "Database error caught without `rollback()`, and the session is used again: it raises `PendingRollbackError`"
    fix_title = "Roll the session back first in the handler"
    fix_availability = FixAvailability.ALWAYS
    severity = Severity.WARNING
    needles = (b"commit", b"flush")

    def __init__(self, context) -> None:
        super().__init__(context)
        self._handles: dict[int, dict[str, _handles.Handle]] = {}

    def visit_Try(self, node: cst.Try) -> None:
        func = self.current_function
        if func is None or not node.handlers:
            return
        handles = self._handles.get(id(func))
        if handles is None:
            handles = self._handles[id(func)] = _handles.function_handles(self, func)
        writes = _writes(node.body, {n for n, h in handles.items() if not h.connection})
        if not writes:
            return
        for name, (awaited, method) in writes.items():
            for handler in node.handlers:
                caught = self._caught(handler)
                if caught is None or _recovers(handler, name):
                    continue
                where = self._used_again(node, handler, name)
                if where is None:
                    continue
                is_async = awaited or handles[name].is_async
                what = _describe(handler)
                message = (
                    f"{what} catches a failed `{name}.{method}()` without `{name}.rollback()`, and `{name}` "
                    f"is used again {where}: that use raises `PendingRollbackError`"
                )
                safe = caught == "db" and _only_session_calls(node.body, name)
                fix = self._fix(handler, name, is_async, Applicability.SAFE if safe else Applicability.UNSAFE)
                self.report(handler.type if handler.type is not None else handler, message, fix=fix)

    # -- detection ----------------------------------------------------------------------------------
    def _caught(self, handler: cst.ExceptHandler) -> str | None:
        """"db" when the handler catches only database errors, "broad" for `Exception` / bare, else None."""
        if handler.type is None:
            return "broad"
        types = (
            [el.value for el in handler.type.elements]
            if isinstance(handler.type, cst.Tuple)
            else [handler.type]
        )
        names = [self.qualified_name(t) for t in types]
        if any(n in BROAD_ERRORS for n in names):
            return "broad"
        if any(n in DB_ERRORS for n in names):
            return "db"
        return None

    def _used_again(self, node: cst.Try, handler: cst.ExceptHandler, name: str) -> str | None:
        """Where the session is used after the failure: "in the handler", "after the `try`", or None."""
        if _uses(handler.body, name):
            return "in the handler"
        ending = _ending(handler.body)
        if ending in ("return", "raise"):
            return None
        later: list[cst.CSTNode] = []
        if node.finalbody is not None:
            later.append(node.finalbody)
        # `break` / `continue` leave the rest of the innermost loop's body; `continue` runs it again
        leaving_loop = ending in ("break", "continue")
        child: cst.CSTNode = node
        for parent in reversed(self.context.parents):
            if isinstance(parent, cst.FunctionDef):
                break
            if isinstance(parent, cst.IndentedBlock):
                body = list(parent.body)
                if child in body and not leaving_loop:
                    later.extend(body[body.index(child) + 1 :])
            elif isinstance(parent, (cst.For, cst.While)) and child is parent.body:
                if ending != "break" or not leaving_loop:
                    later.append(parent.body)
                leaving_loop = False
            elif isinstance(parent, cst.Try) and child is not parent.finalbody and parent.finalbody is not None:
                later.append(parent.finalbody)
            child = parent
        if any(_uses(n, name) for n in later):
            return "after the `try`"
        return None

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, handler: cst.ExceptHandler, name: str, is_async: bool, applicability: Applicability) -> FixRequest:
        config = self.context.module.config_for_parsing
        rollback = cst.parse_statement(f"{'await ' if is_async else ''}{name}.rollback()\n", config=config)
        body = handler.body
        if isinstance(body, cst.IndentedBlock):
            new_body = body.with_changes(body=[rollback, *body.body])
        else:
            assert isinstance(body, cst.SimpleStatementSuite)
            kept = cst.SimpleStatementLine(body=body.body, trailing_whitespace=body.trailing_whitespace)
            new_body = cst.IndentedBlock(body=[rollback, kept])
        title = f"Insert `{'await ' if is_async else ''}{name}.rollback()` first in the handler"
        return self.fix(handler.body, new_body, applicability=applicability, title=title)


def _own_nodes(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    yield node
    yield from _handles.iter_own_nodes(node)


def _method_call(node: cst.CSTNode, name: str) -> str | None:
    """`name.method(...)` -> "method"."""
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and isinstance(node.func.value, cst.Name)
        and node.func.value.value == name
    ):
        return node.func.attr.value
    return None


def _writes(body: cst.BaseSuite, names: set[str]) -> dict[str, tuple[bool, str]]:
    """The sessions whose `commit()`/`flush()` the body calls outside `with s.begin()` blocks: whether one of
    those calls is awaited, and the method of the last one."""
    found: dict[str, tuple[bool, str]] = {}

    def visit(node: cst.CSTNode, awaited: bool = False) -> None:
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            return
        if isinstance(node, cst.With) and any(
            _method_call(item.item, n) in SELF_ROLLING_BACK for item in node.items for n in names
        ):
            return
        if isinstance(node, cst.Call):
            for n in names:
                method = _method_call(node, n)
                if method in WRITES:
                    found[n] = (found.get(n, (False, ""))[0] or awaited, method)
        for child in children(node):
            visit(child, isinstance(node, cst.Await))

    visit(body)
    return found


def _recovers(handler: cst.ExceptHandler, name: str) -> bool:
    """The handler re-raises, rolls back or closes the session, or passes it to another function."""
    for node in _own_nodes(handler.body):
        if isinstance(node, cst.Raise):
            return True
        if _method_call(node, name) in RECOVERS:
            return True
        if isinstance(node, cst.Arg) and isinstance(node.value, cst.Name) and node.value.value == name:
            return True
    return False


def _uses(node: cst.CSTNode, name: str) -> bool:
    """A reference to the session other than `rollback()` / `close()` on it."""
    skip: set[int] = set()
    for n in _own_nodes(node):
        if _method_call(n, name) in RECOVERS:
            assert isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute)
            skip.add(id(n.func.value))
        elif isinstance(n, cst.Name) and n.value == name and id(n) not in skip:
            return True
    return False


def _ending(body: cst.BaseSuite) -> str | None:
    """How the block ends: "return", "raise", "break", "continue", or None (it falls through)."""
    stmts = body.body if isinstance(body, cst.IndentedBlock) else [body]
    if not stmts:
        return None
    last = stmts[-1]
    if isinstance(last, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) and last.body:
        kinds = {cst.Return: "return", cst.Raise: "raise", cst.Break: "break", cst.Continue: "continue"}
        return kinds.get(type(last.body[-1]))
    return None


def _only_session_calls(body: cst.BaseSuite, name: str) -> bool:
    """Every statement of the body is `[await] name.add/commit/flush/...(...)`."""
    stmts = body.body if isinstance(body, cst.IndentedBlock) else [body]
    for stmt in stmts:
        if not isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return False
        for small in stmt.body:
            if not isinstance(small, cst.Expr):
                return False
            value = small.value.expression if isinstance(small.value, cst.Await) else small.value
            if _method_call(value, name) not in SESSION_CALLS:
                return False
    return True


def _describe(handler: cst.ExceptHandler) -> str:
    if handler.type is None:
        return "A bare `except:`"
    code = cst.Module(body=[]).code_for_node(handler.type)
    return f"`except {code}`"
