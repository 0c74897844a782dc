"""## What it does
Checks for `autocommit=True` given to `sessionmaker()`, `async_sessionmaker()` or a session class. Off by
default: select `FSL103` (or `FSL1`) to enable it.

## Why is this bad?
SQLAlchemy 2.0 removed the session's autocommit mode: the call raises
`ArgumentError: autocommit=True is no longer supported`, at import time when the factory is created at
module level, so the application does not start after the upgrade. On 1.4 the mode is deprecated
(`RemovedIn20Warning`). The pattern comes from old Flask-era code, where each statement ran in its own
transaction.

## Example
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine("postgresql://app@db/app")
    SessionLocal = sessionmaker(autocommit=True, bind=engine)

## Use instead
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine("postgresql://app@db/app")
    SessionLocal = sessionmaker(bind=engine)

    # and group each unit of work in a transaction:
    # with SessionLocal.begin() as session: ...

## Fix safety
Display-only: removing the argument lets the factory be created on SQLAlchemy 2.0, but the code then runs
in one transaction until it calls `commit()`, so every place that relied on a statement committing by
itself has to commit (or use `with session.begin():` blocks). Only the author can place those commits.

## References
- SQLAlchemy 2.0 migration guide, "Library-level (but not driver level) 'Autocommit' removed from both Core
  and ORM"
- SQLAlchemy docs, "Managing Transactions" (`Session.begin()`)
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.literals import literal_value
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules._arguments import keyword, without_arg

SESSION_MAKERS = known.SESSION_FACTORIES | known.ALL_SESSION_CLASSES


class AutocommitSession(Rule):
    code = "FSL103"
    name = "autocommit-session"
    message = "`autocommit=True` session: SQLAlchemy 2.0 raises `ArgumentError`"
    fix_title = "Remove `autocommit=True` and commit explicitly (`with session.begin():`)"
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.ERROR
    default_enabled = False
    needles = (b"autocommit",)

    def visit_Call(self, node: cst.Call) -> None:
        if not self.resolves_to(node.func, SESSION_MAKERS):
            return
        arg = keyword(node, "autocommit")
        if arg is None or literal_value(arg.value) is not True:
            return
        modern = self.versions.at_least("sqlalchemy", "2.0")
        if modern:
            message = "`autocommit=True` is no longer supported: SQLAlchemy 2.0 raises `ArgumentError` here"
            severity = Severity.ERROR
        else:
            when = "is deprecated in SQLAlchemy 1.4" if modern is False else "raises `ArgumentError` on SQLAlchemy 2.0"
            message = f"`autocommit=True` {when}: the autocommit mode was removed in 2.0"
            severity = Severity.WARNING
        new = without_arg(node, arg)
        fix = self.fix(node, new, applicability=Applicability.DISPLAY_ONLY) if new is not None else None
        self.report(arg, message, severity=severity, fix=fix)
