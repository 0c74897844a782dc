"""## What it does
Checks for a SQLAlchemy `Session` (or `AsyncSession`) that is created once and then shared by every
request: at module level, in a class body, as a parameter default (lambdas included), stored on
`app.state` or in a `global` at startup, or a thread-local `scoped_session` registry used from
`async def` path operations (or from sync ones with no `.remove()` after the request).

## Why is this bad?
A session is not safe to share between threads or asyncio tasks. FastAPI runs sync endpoints in a
thread pool and async ones as concurrent tasks, so a shared session mixes the transactions of
concurrent requests (`IllegalStateChangeError`, "This session is provisioning a new connection;
concurrent operations are not permitted"), lets one request see another's uncommitted rows, and
after one failed flush every later request fails with `PendingRollbackError` until the process is
restarted. A default argument is evaluated once, when the `def` runs, so `db: Session = SessionLocal()`
is shared exactly like a global.

## Known problems
Only sessions that some function uses (or another module imports) are reported at module level: a
session used by module-level statements alone (a seed script) runs once. Modules that are tests,
scripts (`if __name__ == "__main__":` without FastAPI, `scripts/`), migrations, command-line tools
or workers (click, typer, argparse, celery, ...) are skipped, and so are modules outside a FastAPI
project. A `scoped_session` used by a sync path operation is reported only when the registry is
defined in the same module (a `.remove()` in another module's middleware cannot be seen there).

## Example
    from fastapi import FastAPI
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import sessionmaker

    engine = create_engine("sqlite:///./app.db")
    SessionLocal = sessionmaker(bind=engine)
    app = FastAPI()
    db = SessionLocal()


    @app.get("/items")
    def list_items():
        return db.execute(text("SELECT id FROM item")).all()

## Use instead
    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine("sqlite:///./app.db")
    SessionLocal = sessionmaker(bind=engine)
    app = FastAPI()


    def get_db():
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()


    @app.get("/items")
    def list_items(db: Session = Depends(get_db)):
        return db.execute(text("SELECT id FROM item")).all()

## Fix safety
Unsafe: the fix changes call signatures. For a module-level session whose users are all path
operations or dependencies of the same module, and for a parameter default of a path operation or
dependency, it reuses the project's yield dependency for the same factory (or generates an
FSL002-compliant `get_db` next to the imports when there is none) and gives each user a `Depends(...)`
parameter in the module's style (its `Annotated` alias, `Annotated[...]`, or a default); the
module-level session is removed. Direct Python callers of those functions must now pass the session.
When a plain function, a module-level statement or another module also uses the session, the fix is
display-only and the message says why. Class bodies, `app.state`, globals set at startup and scoped
registries get no fix: the right lifetime depends on how the object is used.

## References
- SQLAlchemy, "Is the Session thread-safe? Is AsyncSession safe to share in concurrent tasks?"
- FastAPI docs, "SQL (Relational) Databases" and "Dependencies with yield"
- https://github.com/fastapi/fastapi/issues/726
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint.diagnostics import Applicability, FixAvailability
from fastsqla_lint.names import dotted_name
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _sessions as S
from fastsqla_lint.walk import children


class SharedSession(Rule):
    code = "FSL001"
    name = "shared-session"
    message = "Session created once and shared by every request"
    fix_title = "Use a per-request session from a yield dependency"
    fix_availability = FixAvailability.SOMETIMES

    def __init__(self, context) -> None:
        super().__init__(context)
        self._registry_reported: set[int] = set()
        S.start_pass(context)

    # -- session-producing expressions evaluated once -------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        if not S.may_create_sessions(self.context):
            return
        source = S.session_source(self.context, node)
        if source is None:
            self._registry_use(node.func)
            return
        if source.is_registry:
            self._registry_use(node.func)
            return
        parents = self.context.parents
        child: cst.CSTNode = node
        for i in range(len(parents) - 1, -1, -1):
            p = parents[i]
            if isinstance(p, cst.Param) and child is p.default:
                if not S.in_main_block(self.context) and S.fastapi_gate(self.context):
                    self._default(source, p, parents[:i])
                return
            if isinstance(p, (cst.Lambda, cst.FunctionDef)):
                if isinstance(p, cst.FunctionDef) and child is p.body:
                    self._in_function(source, p, parents[i + 1 :])
                return
            if isinstance(p, cst.ClassDef):
                if self._assigned_directly(node, parents[i + 1 :]) and S.fastapi_gate(self.context):
                    self.report(node, "Session created once in a class body and shared by every instance")
                return
            if isinstance(p, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
                return
            child = p
        if self._assigned_directly(node, parents[1:]) and not S.in_main_block(self.context):
            self._module_level(source, parents)

    @staticmethod
    def _assigned_directly(node: cst.Call, chain: list[cst.CSTNode]) -> bool:
        """The call is the value of an assignment statement in the block `chain` starts in."""
        if not chain:
            return False
        stmt = chain[-1]
        if isinstance(stmt, cst.AssignTarget):
            return False
        return isinstance(stmt, (cst.Assign, cst.AnnAssign)) and stmt.value is node

    # -- (a) module level -------------------------------------------------------------------------
    def _module_level(self, source: S.SessionSource, parents: list[cst.CSTNode]) -> None:
        ctx = self.context
        assign = parents[-1]
        line = parents[-2] if len(parents) >= 2 else None
        targets = [t.target for t in assign.targets] if isinstance(assign, cst.Assign) else [assign.target]
        if len(targets) != 1 or not isinstance(targets[0], cst.Name) or not isinstance(line, cst.SimpleStatementLine):
            return
        name = targets[0].value
        if not S.fastapi_gate(ctx):
            return
        facts = S.module_facts(ctx)
        refs = [r for r in facts.references.get(name, []) if r.node is not targets[0]]
        qn = f"{ctx.module_name}.{name}" if ctx.module_name else name
        importers = S.importers(ctx, qn) if ctx.module_name else []
        in_functions = [r for r in refs if r.outer is not None]
        if not in_functions and not importers:
            return  # used only by module-level statements: it runs once
        users: list[cst.FunctionDef] = []
        plain: list[str] = []
        module_level = False
        top_ids = {id(s) for s in ctx.module.body}
        for r in refs:
            f = r.outer
            if f is None:
                module_level = True
            elif id(f) in top_ids and (S.is_route(ctx, f) or S.is_dependency(ctx, f)) and not _rebinds(f, name):
                if f not in users:
                    users.append(f)
            else:
                plain.append(f"`{f.name.value}`")
        reasons = []
        if plain:
            reasons.append(f"{_join(plain)} {_verb(plain)} not a path operation or dependency")
        if module_level:
            reasons.append("module-level code uses it")
        if importers:
            names = [f"`{m}`" for m in importers]
            reasons.append(f"{_join(names)} {_verb(names, 'import')} it")
        message = "Session created once at module level and shared by every request"
        if not users:
            self.report(source.call, f"{message} (no fix: {'; '.join(reasons)})")
            return
        planned = self._module_fix(source, line, assign, name, users, remove=not reasons)
        fix = None
        if planned is not None:
            fix, plan = planned
            if reasons:
                fix.applicability = Applicability.DISPLAY_ONLY
            fix = S.share_generated(ctx, plan, fix)
        if reasons:
            message += f" ({'the fix is display-only' if fix is not None else 'no fix'}: {'; '.join(reasons)})"
        self.report(source.call, message, fix=fix)

    def _module_fix(
        self,
        source: S.SessionSource,
        line: cst.SimpleStatementLine,
        assign: cst.BaseSmallStatement,
        name: str,
        users: list[cst.FunctionDef],
        remove: bool,
    ) -> tuple[FixRequest, S.DependencyPlan] | None:
        ctx = self.context
        body = list(ctx.module.body)
        if line not in body:
            return None  # inside a module-level `if`/`try`: removing it could leave an empty block
        first_user = min(body.index(u) for u in users)
        if body.index(line) > first_user:
            return None
        plan = S.session_dependency(ctx, source, before=body[first_user])
        if plan is None or any(S.function_qualname(ctx, u) == plan.qualname for u in users):
            return None  # the dependency itself uses the shared session
        imports = list(plan.add_imports)
        fix = self.fix(applicability=Applicability.UNSAFE)
        for user in users:
            pp = S.dependency_param(ctx, name, plan)
            imports += pp.add_imports
            fix.also(user, user.with_changes(params=S.add_param(user.params, pp)))
        if plan.generated:
            if plan.anchor is None or plan.anchor in users or (remove and plan.anchor is line):
                return None
            fix.also(plan.anchor, S.insert_after(ctx, plan.anchor, plan.new_function))
        if remove:
            if len(line.body) == 1:
                S.remove_statement(ctx, fix, line)
            else:
                fix.also(assign, cst.RemovalSentinel.REMOVE)
            fix.remove_imports = tuple(_callee_imports(ctx, source))
        fix.add_imports = tuple(dict.fromkeys(_spec(i) for i in imports))
        return fix, plan

    # -- (c) parameter defaults -------------------------------------------------------------------
    def _default(self, source: S.SessionSource, param: cst.Param, chain: list[cst.CSTNode]) -> None:
        ctx = self.context
        owner = next((p for p in reversed(chain) if isinstance(p, (cst.FunctionDef, cst.Lambda))), None)
        for k, p in enumerate(chain):
            if isinstance(p, (cst.FunctionDef, cst.Lambda)) and p is not owner:
                if k + 1 < len(chain) and chain[k + 1] is p.body:
                    return  # a default of a function defined inside a body: evaluated on every call
        message = "Session created once as a parameter default and shared by every call"
        if owner is None:
            self.report(source.call, message)
            return
        if isinstance(owner, cst.Lambda):
            fix = self._lambda_fix(source, owner, param)
            self.report(source.call, message, fix=fix)
            return
        if not (S.is_route(ctx, owner) or S.is_dependency(ctx, owner)):
            self.report(
                source.call,
                f"{message} (no fix: `{owner.name.value}` is not a path operation or dependency)",
            )
            return
        plan = S.session_dependency(ctx, source, before=_top_statement(ctx, owner))
        if plan is None:
            self.report(source.call, message)
            return
        fix = self.fix(applicability=Applicability.UNSAFE)
        may_drop_default = _may_drop_default(owner.params, param)
        pp = S.dependency_param(ctx, param.name.value, plan, allow_no_default=may_drop_default)
        add = list(pp.add_imports)
        if pp.has_default and param.annotation is not None:
            new_param = param.with_changes(default=pp.param.default)
            add = [i for i in add if i not in pp.type_imports]
        else:
            new_param = param.with_changes(
                annotation=pp.param.annotation,
                default=pp.param.default,
                equal=pp.param.equal if pp.has_default else cst.MaybeSentinel.DEFAULT,
            )
        fix.also(param, new_param)
        if plan.generated:
            if plan.anchor is None:
                self.report(source.call, message)
                return
            fix.also(plan.anchor, S.insert_after(ctx, plan.anchor, plan.new_function))
        fix.add_imports = tuple(dict.fromkeys(_spec(i) for i in add))
        self.report(source.call, message, fix=S.share_generated(ctx, plan, fix))

    def _lambda_fix(self, source: S.SessionSource, lam: cst.Lambda, param: cst.Param) -> FixRequest | None:
        """`Depends(lambda s=SessionLocal(): s)` -> `Depends(get_db)`."""
        ctx = self.context
        facts = S.module_facts(ctx)
        if id(lam) not in facts.dependency_lambdas:
            return None
        if not isinstance(lam.body, cst.Name) or lam.body.value != param.name.value:
            return None
        plan = S.session_dependency(ctx, source, before=_top_statement(ctx, lam))
        if plan is None:
            return None
        fix = self.fix(lam, cst.parse_expression(plan.expr), applicability=Applicability.UNSAFE)
        if plan.generated:
            if plan.anchor is None:
                return None
            fix.also(plan.anchor, S.insert_after(ctx, plan.anchor, plan.new_function))
        fix.add_imports = tuple(_spec(i) for i in plan.add_imports)
        return S.share_generated(ctx, plan, fix)

    # -- (d) app.state and globals ----------------------------------------------------------------
    def _in_function(self, source: S.SessionSource, func: cst.FunctionDef, chain: list[cst.CSTNode]) -> None:
        ctx = self.context
        stmt = chain[-1] if chain else None
        if not isinstance(stmt, (cst.Assign, cst.AnnAssign)) or stmt.value is not source.call:
            return
        targets = [t.target for t in stmt.targets] if isinstance(stmt, cst.Assign) else [stmt.target]
        for target in targets:
            if _is_app_state(target):
                if S.fastapi_gate(ctx) and not S.in_main_block(ctx):
                    self.report(source.call, "Session stored on `app.state` and shared by every request")
                return
            if isinstance(target, cst.Name) and target.value in _globals(func):
                if S.fastapi_gate(ctx) and not S.in_main_block(ctx) and not S.is_test_setup(ctx, func):
                    self.report(
                        source.call, f"Session stored in the global `{target.value}` and shared by every request"
                    )
                return

    # -- (e) scoped registries --------------------------------------------------------------------
    def _registry_use(self, func_expr: cst.BaseExpression) -> None:
        """`Scoped()` or `Scoped.execute(...)` inside a path operation or dependency."""
        ctx = self.context
        if not ctx.functions or type(func_expr) not in (cst.Name, cst.Attribute):  # concrete: compared by type
            return
        base: cst.BaseExpression = func_expr
        registry = S.registry_of(ctx, func_expr)
        if registry is None and type(func_expr) is cst.Attribute:
            base = func_expr.value
            registry = S.registry_of(ctx, base) if type(base) in (cst.Name, cst.Attribute) else None
        if registry is None:
            return
        func = ctx.functions[0]
        if id(func) in self._registry_reported or S.in_main_block(ctx) or not S.fastapi_gate(ctx):
            return
        if not (S.is_route(ctx, func) or S.is_dependency(ctx, func)):
            return
        label = dotted_name(base) or "the registry"
        if func.asynchronous is not None and not registry.is_async:
            message = f"Thread-local `{label}` used in `async def`: every request on the event loop shares one session"
        else:
            # a `.remove()` elsewhere in the project is invisible here: only registries of this module count
            if not _module_defines(ctx, registry.qualname) or S.registry_cleaned(ctx, registry.qualname):
                return
            message = (
                f"`{label}` used by a path operation, and nothing calls `{label}.remove()` after the request: "
                "the registry's session outlives the request and is reused"
            )
        self._registry_reported.add(id(func))
        self.report(base, message)


def _module_defines(ctx, qn: str) -> bool:
    return qn in S.local_factories(ctx)


def _is_app_state(target: cst.BaseExpression) -> bool:
    """`app.state.db`, `request.app.state.db`, `self.app.state.db`."""
    if not isinstance(target, cst.Attribute) or not isinstance(target.value, cst.Attribute):
        return False
    state = target.value
    if state.attr.value != "state":
        return False
    owner = dotted_name(state.value)
    return owner is not None and owner.split(".")[-1] == "app"


def _globals(func: cst.FunctionDef) -> set[str]:
    names: set[str] = set()
    stack: list[cst.CSTNode] = [func.body]
    while stack:
        n = stack.pop()
        if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(n, cst.Global):
            names.update(x.name.value for x in n.names)
        stack.extend(children(n))
    return names


def _rebinds(func: cst.FunctionDef, name: str) -> bool:
    return name in _globals(func)


def _top_statement(ctx, node: cst.CSTNode) -> cst.CSTNode | None:
    i = S._top_index(ctx, node)
    return ctx.module.body[i] if i is not None else None


def _may_drop_default(params: cst.Parameters, param: cst.Param) -> bool:
    """Whether `param` may lose its default: keyword-only, or no earlier positional default."""
    if any(p is param for p in params.kwonly_params):
        return True
    for p in (*params.posonly_params, *params.params):
        if p is param:
            return True
        if p.default is not None:
            return False
    return False


def _callee_imports(ctx, source: S.SessionSource) -> list[tuple]:
    """The import of the factory the removed session was made from (removed only if nothing else uses it)."""
    expr = source.callee
    name = dotted_name(expr)
    if name is None:
        return []
    head = name.split(".")[0]
    target = ctx.names.imports.get(head)
    if target is None or "." not in target:
        return []
    module, _, obj = target.rpartition(".")
    return [(module, obj, head if head != obj else None)]


def _spec(item: tuple) -> tuple:
    return tuple(item) + (None,) * (3 - len(item))


def _join(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _verb(items: list[str], verb: str = "is") -> str:
    plural = len(dict.fromkeys(items)) > 1
    if verb == "is":
        return "are" if plural else "is"
    return verb if plural else verb + "s"
