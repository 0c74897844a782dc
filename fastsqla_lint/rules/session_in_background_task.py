"""## What it does
Checks for a request-scoped session (a path operation or dependency parameter filled by a dependency that
yields a session), or an ORM object loaded from one, handed to work that outlives the request's own code:
an argument of `BackgroundTasks.add_task()`, `BackgroundTask(...)`, `asyncio.create_task()` /
`ensure_future()` or `loop.run_in_executor()`, directly, through `functools.partial`, or captured by a
lambda or a nested function passed there.

## Why is this bad?
FastAPI closes a yield dependency when the request ends, and its release notes for 0.106 say that "using
resources from dependencies with `yield` in background tasks is no longer supported": pass the IDs and
open a new session inside the task. What the task gets depends on the version and the dependency's scope:

- FastAPI 0.106 to 0.117, or `Depends(..., scope="function")`: the session is already closed when the task
  runs, and objects loaded from it are detached (`DetachedInstanceError` on expired or lazy attributes).
- Before 0.106 and from 0.118 on (default scope): the task runs while the dependency still holds the
  session open and uncommitted, so the task's queries and commits join the request's transaction, a long
  task keeps its connection checked out, and the dependency's commit runs only after the task.

A task started with `asyncio.create_task()` or `run_in_executor()` without awaiting it runs concurrently
with the rest of the request: two tasks on one session at once (`IllegalStateChangeError`), then a
closed session.

## Example
    from fastapi import BackgroundTasks, Depends, FastAPI
    from sqlalchemy.orm import Session

    from app.db import get_db
    from app.models import User

    app = FastAPI()

    def send_welcome(db: Session, user: User) -> None:
        user.welcomed = True
        db.commit()

    @app.post("/users/{user_id}/welcome")
    def welcome(user_id: int, tasks: BackgroundTasks, db: Session = Depends(get_db)):
        user = db.get(User, user_id)
        tasks.add_task(send_welcome, db, user)
        return {"queued": True}

## Use instead
    from fastapi import BackgroundTasks, Depends, FastAPI
    from sqlalchemy.orm import Session

    from app.db import SessionLocal, get_db
    from app.models import User

    app = FastAPI()

    def send_welcome(user_id: int) -> None:
        with SessionLocal() as db:
            user = db.get(User, user_id)
            user.welcomed = True
            db.commit()

    @app.post("/users/{user_id}/welcome")
    def welcome(user_id: int, tasks: BackgroundTasks, db: Session = Depends(get_db)):
        user = db.get(User, user_id)
        tasks.add_task(send_welcome, user.id)
        return {"queued": True}

## Fix safety
Display-only: the fix shows the code to write and is never applied. The session argument is dropped and
an ORM object is passed by primary key; the task function (when it is a plain function of the same
module) opens its own session with the factory the dependency uses (`with SessionLocal() as db:`, or
`async with` for an async task) and loads the object again with `db.get(Model, pk)`. For a nested
function, its body opens the session. Whether the task should see the request's uncommitted changes,
and whether reloading the object is wanted, are decisions the code's author has to make. No edits are
shown when the factory, the model or its primary key is unknown.

## References
- FastAPI release notes 0.106.0 ("Dependencies with yield ... background tasks"), 0.118.0 and 0.121.0
- FastAPI docs, "Background Tasks" and "Dependencies with yield" ("Early exit and scope")
- SQLAlchemy docs, "Session Basics" ("Is the Session thread-safe?")
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.literals import literal_value
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _handles, _sessions
from fastsqla_lint.rules._edits import children, walk

BACKGROUND_TASK = frozenset({"starlette.background.BackgroundTask", "fastapi.background.BackgroundTask"})
CREATE_TASK = frozenset({"asyncio.create_task", "asyncio.ensure_future", "asyncio.tasks.create_task"})
PARTIAL = frozenset({"functools.partial"})


@dataclass
class Tainted:
    """A name in the path operation that holds the request's session, or an ORM object loaded from it."""

    name: str
    session: str | None  # the session parameter it comes from (itself for a session; None: a dependency's)
    model: str | None = None  # qualified name of the ORM class, for an object


@dataclass
class Request:
    """What the enclosing path operation or dependency holds."""

    func: cst.FunctionDef
    sessions: dict[str, tuple[str | None, bool]] = field(default_factory=dict)  # param -> (dependency, closed)
    tainted: dict[str, Tainted] = field(default_factory=dict)
    background: set[str] = field(default_factory=set)  # BackgroundTasks parameters / locals


@dataclass
class Handoff:
    """Work handed over: how (`add_task` / `create_task` / ...), the callable, and its arguments."""

    how: str
    after_response: bool
    callable: cst.BaseExpression
    args: list[cst.Arg]
    call: cst.Call  # the call whose arguments are `args` (to rewrite)
    first: int  # index of the first task argument in `call.args`


class SessionInBackgroundTask(Rule):
    code = "FSL013"
    name = "session-in-background-task"
    message = "Request-scoped session (or an object loaded from it) handed to a background task"
    fix_title = "Pass the primary key and open a new session inside the task"
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.WARNING
    needles = (b"add_task", b"BackgroundTask", b"create_task", b"ensure_future", b"run_in_executor")

    def __init__(self, context) -> None:
        super().__init__(context)
        self._requests: dict[int, Request | None] = {}

    def visit_Call(self, node: cst.Call) -> None:
        request = self._request()
        if request is None or not request.tainted:
            return
        handoff = self._handoff(node, request)
        if handoff is None:
            return
        for arg, names in self._passed(handoff, request):
            for name in names:
                tainted = request.tainted[name]
                message, severity = self._message(tainted, handoff, request)
                self.report(arg, message, severity=severity, fix=self._fix(handoff, request, arg))
                break

    # -- what the function holds --------------------------------------------------------------------
    def _request(self) -> Request | None:
        functions = self.context.functions
        if not functions:
            return None
        func = functions[-1]
        if id(func) not in self._requests:
            self._requests[id(func)] = self._analyse(func)
        return self._requests[id(func)]

    def _analyse(self, func: cst.FunctionDef) -> Request | None:
        ctx = self.context
        if not (_sessions.is_route(ctx, func) or _sessions.is_dependency(ctx, func)):
            return None
        request = Request(func)
        params = func.params
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            name = p.name.value
            if self.resolves_to(_handles.param_type(self, p), known.BACKGROUND_TASKS):
                request.background.add(name)
                continue
            target = _handles.param_dependency(self, p)
            if target is None:
                continue
            handle = _handles.dependency_handle(self, target) or _handles.handle_of_type(self, _handles.param_type(self, p))
            if handle is not None:
                dep = target if isinstance(target, str) else self.qualified_name(target)
                request.sessions[name] = (dep, self._scope_closes(p))
                request.tainted[name] = Tainted(name, name)
            else:
                model = self._model_of(_handles.param_type(self, p))
                dep = target if isinstance(target, str) else self.qualified_name(target)
                if model is not None and dep is not None and self._loads_with_session(dep):
                    request.tainted[name] = Tainted(name, None, model)
        if not request.sessions and not request.tainted:
            return request
        added: set[str] = set()
        # node classes compared by type (they are concrete; `isinstance` against them is slow when it fails)
        for node in _handles.iter_own_nodes(func.body):
            if type(node) is cst.Call and isinstance(node.func, cst.Attribute) and node.func.attr.value == "add":
                base = node.func.value
                if isinstance(base, cst.Name) and base.value in request.sessions and node.args:
                    arg = node.args[0].value
                    if isinstance(arg, cst.Name):
                        added.add(arg.value)
        for node in _handles.iter_own_nodes(func.body):
            tp = type(node)
            if tp is cst.Assign and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                self._taint(request, node.targets[0].target.value, node.value, added)
            elif tp is cst.For and isinstance(node.target, cst.Name):
                self._taint(request, node.target.value, node.iter, added)
            elif tp is cst.Assign and isinstance(node.value, cst.Call):
                if self.resolves_to(node.value.func, known.BACKGROUND_TASKS):
                    request.background |= {t.target.value for t in node.targets if isinstance(t.target, cst.Name)}
        return request

    def _taint(self, request: Request, name: str, value: cst.BaseExpression, added: set[str]) -> None:
        if isinstance(value, cst.Await):
            value = value.expression
        root = _root(value)
        model = next((m for m in (self._model_of(n) for n in walk(value)) if m is not None), None)
        if root in request.sessions and isinstance(value, cst.Call) and model is not None:
            request.tainted[name] = Tainted(name, root, model)
        elif isinstance(value, cst.Call) and name in added:
            made = self._model_of(value.func)
            if made is not None:
                session = next(iter(request.sessions))
                request.tainted[name] = Tainted(name, session, made)
        elif isinstance(value, cst.Call) and self.resolves_to(value.func, known.BACKGROUND_TASKS):
            request.background.add(name)

    def _model_of(self, expr: cst.CSTNode | None) -> str | None:
        if not isinstance(expr, (cst.Name, cst.Attribute)):
            return None
        qn = self.qualified_name(expr)
        return qn if qn is not None and self.index.mapped_class(qn) is not None else None

    def _loads_with_session(self, dependency: str) -> bool:
        """The dependency takes a session itself (so the object it returns belongs to that session)."""
        fact = self.index.function(dependency)
        if fact is None:
            return False
        for p in fact.params:
            if p.depends is not None and p.depends.target is not None:
                if _handles.generator_handle(self, self.index.canonical(p.depends.target)) is not None:
                    return True
            if p.annotation_qn and self.index.canonical(p.annotation_qn) in known.ALL_SESSION_CLASSES:
                return True
            alias = self.index.dependency_alias(p.annotation_qn) if p.annotation_qn else None
            if alias is not None and _handles.generator_handle(self, alias) is not None:
                return True
        return False

    def _scope_closes(self, param: cst.Param) -> bool:
        """`Depends(..., scope="function")` (inline, in `Annotated[...]`, or through an alias)."""
        candidates: list[cst.BaseExpression] = []
        if param.default is not None:
            candidates.append(param.default)
        annotation = param.annotation.annotation if param.annotation is not None else None
        parts = _handles.annotated_parts(self, annotation)
        if parts is not None:
            candidates += parts[1]
        for c in candidates:
            if isinstance(c, cst.Call) and self.resolves_to(c.func, known.DEPENDS_OR_SECURITY):
                for arg in c.args:
                    if arg.keyword is not None and arg.keyword.value == "scope":
                        return literal_value(arg.value) == "function"
        qn = self.qualified_name(annotation) if parts is None and annotation is not None else None
        alias = self.index.alias(qn) if qn is not None else None
        return alias is not None and alias.depends.scope == "function"

    # -- the hand-over ------------------------------------------------------------------------------
    def _handoff(self, call: cst.Call, request: Request) -> Handoff | None:
        func = call.func
        if self._awaited(call):
            return None
        if isinstance(func, cst.Attribute) and func.attr.value == "add_task":
            if isinstance(func.value, cst.Name) and func.value.value in request.background and call.args:
                return Handoff("add_task", True, call.args[0].value, list(call.args[1:]), call, 1)
            return None
        if self.resolves_to(func, BACKGROUND_TASK) and call.args:
            return Handoff("BackgroundTask", True, call.args[0].value, list(call.args[1:]), call, 1)
        if (self.resolves_to(func, CREATE_TASK) or (isinstance(func, cst.Attribute) and func.attr.value == "create_task")) and call.args:
            coro = call.args[0].value
            how = func.attr.value if isinstance(func, cst.Attribute) else "create_task"
            if isinstance(coro, cst.Call):
                return Handoff(how, False, coro.func, list(coro.args), coro, 0)
            return None
        if isinstance(func, cst.Attribute) and func.attr.value == "run_in_executor" and len(call.args) >= 2:
            return Handoff("run_in_executor", False, call.args[1].value, list(call.args[2:]), call, 2)
        return None

    def _awaited(self, call: cst.Call) -> bool:
        parents = self.context.parents
        return bool(parents) and isinstance(parents[-1], cst.Await) and parents[-1].expression is call

    def _passed(self, handoff: Handoff, request: Request) -> list[tuple[cst.CSTNode, list[str]]]:
        """The arguments (or callable) that carry tainted names, with those names."""
        out: list[tuple[cst.CSTNode, list[str]]] = []
        callable_ = handoff.callable
        args = list(handoff.args)
        if isinstance(callable_, cst.Call) and self.resolves_to(callable_.func, PARTIAL):
            args = list(callable_.args[1:]) + args
        for arg in args:
            if isinstance(arg.value, cst.Name) and arg.value.value in request.tainted:
                out.append((arg.value, [arg.value.value]))
        captured = self._captured(callable_, request)
        if captured:
            out.append((callable_, captured))
        return out

    def _captured(self, callable_: cst.BaseExpression, request: Request) -> list[str]:
        """Tainted names a lambda or a nested function passed as the task reads from the enclosing scope."""
        target: cst.CSTNode | None = None
        if isinstance(callable_, cst.Lambda):
            target = callable_
        elif isinstance(callable_, cst.Name):
            target = _nested(request.func, callable_.value)
        if target is None:
            return []
        bound = _bound_in(target)
        return [n for n in _read_names(target) if n in request.tainted and n not in bound]

    # -- message ------------------------------------------------------------------------------------
    def _message(self, tainted: Tainted, handoff: Handoff, request: Request) -> tuple[str, Severity]:
        session = tainted.session
        if tainted.model is None:
            what = f"The request's session `{tainted.name}`"
        elif session is None:
            what = f"`{tainted.name}`, loaded by a dependency with the request's session,"
        else:
            what = f"`{tainted.name}`, loaded from the request's session `{session}`,"
        scoped = request.sessions.get(session, (None, False))[1] if session is not None else False
        if not handoff.after_response:
            text = (
                f"{what} is handed to `{handoff.how}()` without waiting for it: the task runs alongside the rest "
                "of the request, which may use the same session at the same time, and outlives it"
            )
            return text, Severity.WARNING
        closed = "detached (expired or lazy attributes raise `DetachedInstanceError`)" if tainted.model else "closed"
        between = self.versions.within("fastapi", "0.106", "0.118")
        if scoped or between is True:
            why = "its dependency has `scope=\"function\"`" if scoped else "FastAPI 0.106-0.117 closes yield dependencies first"
            return f"{what} is passed to a background task, which runs after the response: {why}, so it is {closed} by then", Severity.ERROR
        rest = (
            "it still belongs to the request's open session, shared with the dependency's cleanup"
            if tainted.model
            else "the task joins the request's uncommitted transaction"
        )
        if between is False:
            text = (
                f"{what} is passed to a background task: the task runs while the dependency still holds the session "
                "open and uncommitted, and FastAPI does not support this since 0.106"
            )
        else:
            text = (
                f"{what} is passed to a background task: on FastAPI 0.106-0.117, or with `scope=\"function\"`, it is "
                f"{closed} when the task runs; otherwise {rest}"
            )
        return text, Severity.WARNING

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, handoff: Handoff, request: Request, reported: cst.CSTNode) -> FixRequest | None:
        sessions = {t.session for t in request.tainted.values()}
        factory = self._factory_expr(request, sessions)
        if factory is None:
            return None
        factory_code, imports, is_async = factory
        if reported is handoff.callable:
            nested = _nested(request.func, handoff.callable.value) if isinstance(handoff.callable, cst.Name) else None
            if nested is None or (nested.asynchronous is not None) != is_async:
                return None
            return self._closure_fix(handoff, request, factory_code, imports)
        task = self._task_function(handoff.callable)
        if task is None or (task.asynchronous is not None) != is_async or (is_async and handoff.how == "run_in_executor"):
            return None
        return self._task_fix(handoff, request, task, factory_code, imports)

    def _factory_expr(self, request: Request, sessions: set[str | None]) -> tuple[str, list[tuple], bool] | None:
        """How this module names the session factory the request's session dependency uses."""
        deps = {request.sessions[s][0] for s in sessions if s in request.sessions}
        if len(deps) != 1:
            return None
        dep = deps.pop()
        fact = self.index.function(dep) if dep else None
        if fact is None:
            return None
        factories = set()
        for callee, _ in fact.calls:
            c = self.index.canonical(callee)
            head, _, attr = c.rpartition(".")
            if self.index.session_factory(c) is not None:
                factories.add(c)
            elif attr == "begin" and self.index.session_factory(head) is not None:
                factories.add(head)
        if len(factories) != 1:
            return None
        qn = factories.pop()
        named = self._name_for(qn)
        if named is None:
            return None
        fact = self.index.session_factory(qn)
        return named[0], named[1], bool(fact is not None and fact.is_async)

    def _name_for(self, qn: str) -> tuple[str, list[tuple]] | None:
        local = _sessions.local_name_for(self.context, [qn])
        if local is not None:
            return local, []
        module, _, obj = qn.rpartition(".")
        if module == self.context.module_name and obj in self.names.defined:
            return obj, []
        if obj in self.names.defined or obj in self.names.imports or not module:
            return None
        return obj, [(module, obj)]

    def _task_function(self, callable_: cst.BaseExpression) -> cst.FunctionDef | None:
        if not isinstance(callable_, cst.Name):
            return None
        for stmt in self.context.module.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == callable_.value:
                params = stmt.params
                if params.posonly_params or params.kwonly_params or isinstance(params.star_arg, cst.Param) or params.star_kwarg:
                    return None
                return stmt
        return None

    def _task_fix(self, handoff: Handoff, request: Request, task: cst.FunctionDef, factory: str, imports: list) -> FixRequest | None:
        params = list(task.params.params)
        by_name = {p.name.value: i for i, p in enumerate(params)}
        session_param: str | None = None
        reloads: list[tuple[str, str, str]] = []  # (param, model local name, pk param)
        new_args: list[cst.Arg] = []
        drop: set[int] = set()
        renames: dict[int, cst.Param] = {}
        for position, arg in enumerate(handoff.args):
            if arg.star:
                return None
            index = by_name.get(arg.keyword.value) if arg.keyword is not None else position
            if index is None or index >= len(params):
                return None
            param = params[index]
            name = arg.value.value if isinstance(arg.value, cst.Name) else None
            tainted = request.tainted.get(name) if name else None
            if tainted is None:
                new_args.append(arg)
                continue
            if tainted.model is None:
                session_param = param.name.value
                drop.add(index)
                continue
            model = self.index.mapped_class(tainted.model)
            pk = [c for c in model.columns if c.primary_key] if model is not None else []
            model_name = self._name_for(tainted.model)
            if len(pk) != 1 or model_name is None:
                return None
            imports = imports + model_name[1]
            key = f"{param.name.value}_{pk[0].name}"
            value = cst.Attribute(value=cst.Name(name), attr=cst.Name(pk[0].name))  # type: ignore[arg-type]
            keyword = cst.Name(key) if arg.keyword is not None else None
            new_args.append(arg.with_changes(value=value, keyword=keyword))
            annotation = cst.Annotation(cst.Name(pk[0].python_type)) if pk[0].python_type in ("int", "str") else None
            renames[index] = param.with_changes(name=cst.Name(key), annotation=annotation)
            reloads.append((param.name.value, model_name[0], key))
        session_name = session_param or _free_local(task, ("db", "session"))
        if session_name is None:
            return None
        new_params = [renames.get(i, p) for i, p in enumerate(params) if i not in drop]
        if new_params:
            new_params[-1] = new_params[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        is_async = task.asynchronous is not None
        aw = "await " if is_async else ""
        lines = [f"{obj} = {aw}{session_name}.get({model}, {key})" for obj, model, key in reloads]
        body = task.body
        if not isinstance(body, cst.IndentedBlock):
            return None
        config = self.context.module.config_for_parsing
        opener = cst.parse_statement(
            f"{'async ' if is_async else ''}with {factory}() as {session_name}:\n    pass\n", config=config
        )
        assert isinstance(opener, cst.With)
        inner = [cst.parse_statement(line + "\n", config=config) for line in lines]
        wrapped = opener.with_changes(body=opener.body.with_changes(body=[*inner, *body.body]))
        new_task = task.with_changes(
            params=task.params.with_changes(params=new_params), body=body.with_changes(body=[wrapped])
        )
        call = handoff.call
        kept = list(call.args[: handoff.first]) + new_args
        if kept:
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        new_call = call.with_changes(args=kept)
        opens = f"open a session in `{task.name.value}` with `{factory}()`"
        if reloads:
            keys = ", ".join(f"`{obj}`'s primary key" for obj, _, _ in reloads)
            title = f"Pass {keys} and {opens}"
        else:
            title = f"Stop passing the session: {opens}"
        fix = self.fix(call, new_call, applicability=Applicability.DISPLAY_ONLY, title=title, add_imports=imports)
        return fix.also(task, new_task)

    def _closure_fix(self, handoff: Handoff, request: Request, factory: str, imports: list) -> FixRequest | None:
        """A nested function reading the session: it opens its own instead."""
        callable_ = handoff.callable
        nested = _nested(request.func, callable_.value) if isinstance(callable_, cst.Name) else None
        if nested is None or not isinstance(nested.body, cst.IndentedBlock):
            return None
        captured = [n for n in self._captured(callable_, request) if request.tainted[n].model is None]
        if len(captured) != 1 or any(request.tainted[n].model for n in self._captured(callable_, request)):
            return None
        name = captured[0]
        config = self.context.module.config_for_parsing
        is_async = nested.asynchronous is not None
        opener = cst.parse_statement(
            f"{'async ' if is_async else ''}with {factory}() as {name}:\n    pass\n", config=config
        )
        assert isinstance(opener, cst.With)
        wrapped = opener.with_changes(body=opener.body.with_changes(body=list(nested.body.body)))
        new = nested.with_changes(body=nested.body.with_changes(body=[wrapped]))
        title = f"Open a session inside `{nested.name.value}` with `{factory}()`"
        return self.fix(nested, new, applicability=Applicability.DISPLAY_ONLY, title=title, add_imports=imports)


def _root(expr: cst.BaseExpression) -> str | None:
    """The name a chain of calls, attributes and subscripts starts from (`db` of `db.scalars(...).first()`)."""
    node: cst.CSTNode = expr
    while True:
        if isinstance(node, cst.Await):
            node = node.expression
        elif isinstance(node, cst.Call):
            node = node.func
        elif isinstance(node, (cst.Attribute, cst.Subscript)):
            node = node.value
        elif isinstance(node, cst.Name):
            return node.value
        else:
            return None


def _nested(func: cst.FunctionDef, name: str) -> cst.FunctionDef | None:
    body = func.body.body if isinstance(func.body, cst.IndentedBlock) else ()
    for stmt in body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == name:
            return stmt
    return None


def _bound_in(node: cst.CSTNode) -> set[str]:
    """Parameters of a lambda / function and the names its body assigns."""
    out: set[str] = set()
    params = node.params if isinstance(node, (cst.Lambda, cst.FunctionDef)) else None
    if params is not None:
        out |= {p.name.value for p in walk(params) if isinstance(p, cst.Param)}
    for n in walk(node.body if isinstance(node, (cst.Lambda, cst.FunctionDef)) else node):
        if isinstance(n, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For)):
            out |= {x.value for x in walk(n.target) if isinstance(x, cst.Name)}
        elif isinstance(n, cst.AsName) and isinstance(n.name, cst.Name):
            out.add(n.name.value)
    return out


def _read_names(node: cst.CSTNode) -> list[str]:
    body = node.body if isinstance(node, (cst.Lambda, cst.FunctionDef)) else node
    seen: list[str] = []
    stack = [body]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Name):
            if n.value not in seen:
                seen.append(n.value)
        elif isinstance(n, cst.Attribute):
            stack.append(n.value)
        elif isinstance(n, cst.Arg):
            stack.append(n.value)
        else:
            stack.extend(reversed(children(n)))
    return seen


def _free_local(func: cst.FunctionDef, candidates: tuple[str, ...]) -> str | None:
    used = {n.value for n in walk(func) if isinstance(n, cst.Name)}
    return next((c for c in candidates if c not in used), None)
