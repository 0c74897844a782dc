"""## What it does
Checks for a dependency with `yield` that calls `commit()` after the `yield`, on FastAPI versions where that
code runs after the response has been sent (before 0.106, from 0.118 on, or an unknown version).

## Why is this bad?
With the default `scope="request"`, FastAPI runs the exit code of a yield dependency after the response
is sent. The client gets its 200 or 204 before the data is committed: its next read can miss the row it
just wrote, and a commit that fails (a constraint, a lost connection) can no longer turn into an error
response, so the write is lost silently. FastAPI 0.106 moved the exit code before the response, 0.118
moved it back, and 0.121 added `Depends(..., scope="function")` to run it before the response again.

A `@contextmanager` helper or a pytest fixture that commits after `yield` is not a FastAPI dependency and
is left alone.

## Example
    from typing import Annotated

    from fastapi import Depends
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine("sqlite:///./app.db")
    SessionLocal = sessionmaker(bind=engine)

    def get_db():
        with SessionLocal() as db:
            yield db
            db.commit()

    SessionDep = Annotated[Session, Depends(get_db)]

## Use instead
    from typing import Annotated

    from fastapi import Depends
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine("sqlite:///./app.db")
    SessionLocal = sessionmaker(bind=engine)

    def get_db():
        with SessionLocal() as db:
            yield db

    SessionDep = Annotated[Session, Depends(get_db)]

    # and commit in the path operation (`db.commit()`) before returning,
    # or, on FastAPI >= 0.121: Annotated[Session, Depends(get_db, scope="function")]

## Fix safety
Unsafe, and only for FastAPI 0.121 or later: `scope="function"` is added to every `Depends(get_db)` of the
module, which is the `Annotated` alias alone when the routes use one. The dependency then closes before
the response is sent, so a streaming response or a background task can no longer use the session. The
fix is display-only when a path operation of the module returns a `StreamingResponse` /
`EventSourceResponse` or hands the session to `add_task`, when another yield dependency depends on it
(FastAPI refuses a request-scoped dependency that depends on a function-scoped one), when another module
imports the dependency itself (its `Depends()` would keep the old scope), or when the FastAPI version is
unknown. Before 0.121 there is no fix: commit in the path operation instead.

## References
- FastAPI docs, "Dependencies with yield", "Early exit and scope"
- FastAPI release notes 0.106.0, 0.118.0 and 0.121.0
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _handles, _schemas
from fastsqla_lint.walk import children

CONTEXT_MANAGERS = frozenset(
    {
        "contextlib.contextmanager",
        "contextlib.asynccontextmanager",
        "pytest.fixture",
        "pytest_asyncio.fixture",
    }
)
STREAMING = ("StreamingResponse", "EventSourceResponse")


class CommitAfterResponse(Rule):
    code = "FSL008"
    name = "commit-after-response"
    message = "Yield dependency commits after `yield`: FastAPI runs it after the response is sent"
    fix_title = "Commit in the path operation, or end the dependency before the response with `scope=\"function\"`"
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.WARNING
    needles = (b"commit",)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._generators: set[int] = set()

    def visit_Yield(self, node: cst.Yield) -> None:
        func = self.current_function
        if func is not None:
            self._generators.add(id(func))

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        if id(node) not in self._generators:
            return
        if self.versions.within("fastapi", "0.106", "0.118") is True:
            return
        if any(self.resolves_to(_decorator_callee(d.decorator), CONTEXT_MANAGERS) for d in node.decorators):
            return
        if not _handles.is_dependency(self, node):
            return
        receivers = set(_handles.function_handles(self, node)) | _yielded_names(node)
        commits = [c for c in _commits_after_yield(node.body.body) if _receiver(c) in receivers]
        if not commits:
            return
        message = (
            f"`{node.name.value}` commits after `yield`: FastAPI runs this after the response is sent, so the "
            "client may not see the write and a failed commit is never reported"
        )
        if self.versions.at_least("fastapi", "0.121") is False:
            message += "; commit in the path operation instead (`Depends(scope=...)` needs FastAPI 0.121)"
        self.report(commits[0], message, fix=self._fix(node))

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, dependency: cst.FunctionDef) -> FixRequest | None:
        has_scope = self.versions.at_least("fastapi", "0.121")
        if has_scope is False:
            return None
        qn = _handles.top_level_qualname(self, dependency)
        if qn is None:
            return None
        sites = [
            c for c in self._depends_calls() if self._target_qn(c) == qn and _schemas.keyword_arg(c, "scope") is None
        ]
        if not sites:
            return None
        applicability = Applicability.UNSAFE
        if has_scope is None or self._blocked(qn) or self._imported_elsewhere(qn):
            applicability = Applicability.DISPLAY_ONLY
        scope = cst.SimpleString('"function"')
        title = (
            f"Add `scope=\"function\"` to `Depends({dependency.name.value})`: its exit then runs before the response"
        )
        fix = self.fix(applicability=applicability, title=title)
        for call in sites:
            fix.also(call, _schemas.with_keyword(call, "scope", scope))
        return fix

    def _depends_calls(self) -> list[cst.Call]:
        found = self.__dict__.get("_depends")
        if found is None:
            found = []
            stack: list[cst.CSTNode] = [self.context.module]
            while stack:
                node = stack.pop()
                if isinstance(node, cst.Call) and _handles.depends_target(self, node) is not None:
                    found.append(node)
                stack.extend(reversed(children(node)))
            self.__dict__["_depends"] = found
        return found

    def _target_qn(self, call: cst.Call) -> str | None:
        target = _handles.depends_target(self, call)
        return self.qualified_name(target) if target is not None else None

    def _blocked(self, qn: str) -> bool:
        """Whether a user of the dependency in this module needs the session after the response (streaming,
        background tasks) or is a yield dependency itself (request scope cannot depend on function scope)."""
        for stmt in self.context.module.body:
            if not isinstance(stmt, cst.FunctionDef):
                continue
            users = [p.name.value for p in _all_params(stmt) if self._depends_on(p, qn)]
            if not users:
                continue
            own = list(_handles.iter_own_nodes(stmt.body))
            if any(isinstance(n, cst.Yield) for n in own):
                return True
            for n in own:
                if isinstance(n, (cst.Name, cst.Attribute)):
                    name = self.qualified_name(n) or ""
                    if name.rsplit(".", 1)[-1] in STREAMING:
                        return True
                if (
                    isinstance(n, cst.Call)
                    and isinstance(n.func, cst.Attribute)
                    and n.func.attr.value == "add_task"
                    and any(isinstance(a.value, cst.Name) and a.value.value in users for a in n.args)
                ):
                    return True
        return False

    def _depends_on(self, param: cst.Param, qn: str) -> bool:
        target = _handles.param_dependency(self, param)
        if target is None:
            return False
        if isinstance(target, str):
            return target == qn
        return self.qualified_name(target) == qn

    def _imported_elsewhere(self, qn: str) -> bool:
        """Whether another (non-test) module imports the dependency function itself."""
        here = self.context.module_name
        for name in self.index.importers(qn):
            module = self.index.module(name)
            if module is None or module.name == here or _is_test_module(module.name, module.path):
                continue
            if any(self.index.canonical(target) == qn for target in module.imports.values()):
                return True
        return False


def _decorator_callee(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.func if isinstance(expr, cst.Call) else expr


def _all_params(func: cst.FunctionDef) -> list[cst.Param]:
    params = func.params
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def _is_test_module(name: str, path: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    in_tests = "/tests/" in path.replace("\\", "/")
    return last.startswith("test_") or last.endswith("_test") or last == "conftest" or in_tests


def _yielded_names(func: cst.FunctionDef) -> set[str]:
    return {
        n.value.value
        for n in _handles.iter_own_nodes(func.body)
        if isinstance(n, cst.Yield) and isinstance(n.value, cst.Name)
    }


def _receiver(call: cst.Call) -> str | None:
    func = call.func
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        return func.value.value
    return None


def _commit_calls(node: cst.CSTNode) -> list[cst.Call]:
    out = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and current is not node:
            continue
        if (
            isinstance(current, cst.Call)
            and isinstance(current.func, cst.Attribute)
            and current.func.attr.value == "commit"
        ):
            out.append(current)
        stack.extend(reversed(children(current)))
    return out


def _has_yield(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Yield) or any(isinstance(n, cst.Yield) for n in _handles.iter_own_nodes(node))


def _commits_after_yield(statements) -> list[cst.Call]:
    """The `commit()` calls that run after the first `yield` of a statement list, in source order."""
    found, _ = _scan(list(statements))
    return found


def _scan(statements: list[cst.CSTNode]) -> tuple[list[cst.Call], bool]:
    """(commits after the yield, whether the yield was reached) for a statement list."""
    out: list[cst.Call] = []
    seen = False
    for stmt in statements:
        if seen:
            out.extend(_commit_calls(stmt))
            continue
        if not _has_yield(stmt):
            continue
        seen = True
        if isinstance(stmt, cst.SimpleStatementLine):
            smalls = list(stmt.body)
            at = next(i for i, s in enumerate(smalls) if _has_yield(s))
            for small in smalls[at + 1 :]:
                out.extend(_commit_calls(small))
        elif isinstance(stmt, cst.Try):
            inner, reached = _scan(list(stmt.body.body))
            out.extend(inner)
            if reached and stmt.orelse is not None:
                out.extend(_commit_calls(stmt.orelse))
            elif not reached:
                for handler in stmt.handlers:
                    inner, _ = _scan(list(handler.body.body))
                    out.extend(inner)
                if stmt.orelse is not None:
                    inner, _ = _scan(list(stmt.orelse.body.body))
                    out.extend(inner)
            if stmt.finalbody is not None:
                if _has_yield(stmt.finalbody):
                    inner, _ = _scan(list(stmt.finalbody.body.body))
                    out.extend(inner)
                else:
                    out.extend(_commit_calls(stmt.finalbody))
        elif isinstance(stmt, (cst.With, cst.For, cst.While)):
            inner, _ = _scan(list(stmt.body.body))
            out.extend(inner)
        elif isinstance(stmt, cst.If):
            branch: cst.CSTNode | None = stmt
            while isinstance(branch, (cst.If, cst.Else)):
                inner, _ = _scan(list(branch.body.body))
                out.extend(inner)
                branch = branch.orelse if isinstance(branch, cst.If) else None
    return out, seen
