"""## What it does
Checks for session and engine arguments left over from SQLAlchemy 1.x that no longer do anything:
`autocommit=False` given to `sessionmaker()`, `async_sessionmaker()` or a session class, and `future=True`
given to those or to `create_engine()` / `create_async_engine()`. Off by default: select `FSL102` (or
`FSL1`) to enable it.

## Why is this bad?
`autocommit=False` has always been the default, and SQLAlchemy 2.0 removed autocommit mode altogether;
`future=True` selected the 2.0 behaviour on 1.4, which 2.0 always has. Copied from the 1.x FastAPI
tutorial into new code, they suggest that something else is possible and hide the arguments that matter.
`future=True` is reported only when the project targets SQLAlchemy 2.0 or later (on 1.4 it does
something), or when the version is unknown.

## Example
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine("sqlite:///./app.db", future=True)
    SessionLocal = sessionmaker(autocommit=False, autoflush=False, bind=engine)

## Use instead
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine("sqlite:///./app.db")
    SessionLocal = sessionmaker(autoflush=False, bind=engine)

## Fix safety
Safe: the argument is removed and the call behaves the same. Removing `future=True` is unsafe when the
SQLAlchemy version is unknown, since on 1.4 it switches the engine or session back to the 1.x behaviour.
Not offered when a comment sits next to the argument.

## References
- SQLAlchemy 2.0 migration guide, "Library-level (but not driver level) 'Autocommit' removed from both Core
  and ORM", and "The 1.4 -> 2.0 Migration Path" (`future=True`)
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.literals import literal_value
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules._arguments import without_arg

SESSION_MAKERS = known.SESSION_FACTORIES | known.ALL_SESSION_CLASSES


class RedundantLegacyArgument(Rule):
    code = "FSL102"
    name = "redundant-legacy-argument"
    message = "Argument left over from SQLAlchemy 1.x that does nothing"
    fix_title = "Remove the argument"
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.INFO
    default_enabled = False
    needles = (b"autocommit", b"future")

    def visit_Call(self, node: cst.Call) -> None:
        qn = self.qualified_name(node.func)
        if qn is None:
            return
        is_session = qn in SESSION_MAKERS
        if not is_session and qn not in known.ENGINES:
            return
        callee = qn.rsplit(".", 1)[1]
        for arg in node.args:
            if arg.keyword is None:
                continue
            value = literal_value(arg.value)
            if is_session and arg.keyword.value == "autocommit" and value is False:
                message = f"`autocommit=False` given to `{callee}()` is the default and does nothing"
                applicability = Applicability.SAFE
            elif arg.keyword.value == "future" and value is True:
                modern = self.versions.at_least("sqlalchemy", "2.0")
                if modern is False:
                    continue
                message = f"`future=True` given to `{callee}()` does nothing on SQLAlchemy 2.0, where it is the only mode"
                applicability = Applicability.SAFE if modern else Applicability.UNSAFE
            else:
                continue
            new = without_arg(node, arg)
            fix = None
            if new is not None:
                fix = self.fix(node, new, applicability=applicability, title=f"Remove `{arg.keyword.value}=`")
            self.report(arg, message, fix=fix)
