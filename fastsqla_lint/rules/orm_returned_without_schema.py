"""## What it does
Checks for a path operation with no response model (no `response_model=`, or `response_model=None`, and no
return annotation FastAPI would use) that returns an ORM object or a list of them: the result of
`db.get(User, id)`, `db.query(User)...first()` / `.one()` / `.all()`, `db.scalars(select(User))...`,
`db.scalar(select(User)...)`, `db.execute(select(User)).scalar_one()`, `db.exec(select(User))...`, a
constructor `User(...)`, or a local bound to one of them.

## Why is this bad?
With no response model, FastAPI's `jsonable_encoder` falls back to the object's `__dict__`:
- every loaded column is sent, `hashed_password` included (the message names the columns whose names
  look secret, and the diagnostic is then an error);
- after `commit()` without `refresh()`, every attribute has expired and the client receives `{}` (also
  an error), or, returned from a closed session, a `DetachedInstanceError`;
- relationships and unloaded columns come and go depending on what the code happened to touch.

A response schema fixes the shape: only its fields are sent, and reading them reloads expired attributes
while the session is still open.

Return annotations count as response models (FastAPI 0.89 and later): `-> UserRead` is fine, and an ORM
class as the annotation is FSL003's business.

## Example
    from fastapi import Depends, FastAPI
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    from app.db import get_db

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str]
        hashed_password: Mapped[str]

    app = FastAPI()

    @app.get("/users/{user_id}")
    def read_user(user_id: int, db: Session = Depends(get_db)):
        return db.get(User, user_id)

## Use instead
    from fastapi import Depends, FastAPI
    from pydantic import BaseModel, ConfigDict
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    from app.db import get_db

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str]
        hashed_password: Mapped[str]

    class UserRead(BaseModel):
        model_config = ConfigDict(from_attributes=True)

        id: int
        email: str

    app = FastAPI()

    @app.get("/users/{user_id}", response_model=UserRead)
    def read_user(user_id: int, db: Session = Depends(get_db)):
        return db.get(User, user_id)

## Fix safety
Unsafe: the response changes shape (only the schema's fields are sent). The fix is the one FSL003 uses: an
existing, importable Pydantic schema for the model (`<Model>Read`, `Out`, `Public`, `Response`, `Schema`),
or a generated `class <Model>Read(BaseModel)` with `from_attributes=True`, one field per column and the
secret-looking columns left out; then `response_model=` (`list[...]` for a list) on the route decorator.
It never adds `refresh()`: that would turn the `{}` into a leak when the schema is not there. No fix for a
route registered with `add_api_route`.

## References
- FastAPI docs, "Response Model - Return Type"
- https://github.com/fastapi/fastapi/issues/172 (empty response after commit)
- SQLAlchemy docs, "Committing" (`expire_on_commit`)
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules import _handles, _schemas

# Methods that keep a query or a select on the same entity.
QUERY_CHAIN = frozenset(
    {
        "filter",
        "filter_by",
        "where",
        "order_by",
        "limit",
        "offset",
        "join",
        "outerjoin",
        "options",
        "distinct",
        "group_by",
        "having",
        "execution_options",
        "populate_existing",
        "with_for_update",
    }
)
ONE = frozenset({"first", "one", "one_or_none", "scalar", "scalar_one", "scalar_one_or_none", "get"})
MANY = frozenset({"all"})


@dataclass(frozen=True)
class _Returned:
    model: str  # qualified name of the mapped class
    many: bool


class OrmReturnedWithoutSchema(Rule):
    code = "FSL010"
    name = "orm-returned-without-schema"
    message = "ORM object returned by a path operation with no response model"
    fix_title = "Add a response schema: `response_model=<Model>Read`"
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.WARNING
    needles = (b"return",)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not _handles.is_route(self, node):
            return
        calls = _handles.route_calls(self, node)
        if any(self._declares_model(call) for call in calls):
            return
        explicit_none = any(_schemas.keyword_arg(call, "response_model") is not None for call in calls)
        if not explicit_none and self._annotation_is_model(node):
            return
        handles = _handles.LazyHandles(self, node)
        for ret in _handles.iter_own_nodes(node.body):
            if type(ret) is cst.Return and ret.value is not None:  # by type: cheaper than isinstance on a miss
                found = self._returned(ret.value, node, handles)
                if found is not None:
                    self._report(node, ret.value, found, calls, handles)
                    return

    # -- is there a response model? -----------------------------------------------------------------
    def _declares_model(self, call: cst.Call) -> bool:
        arg = _schemas.keyword_arg(call, "response_model")
        return arg is not None and not (isinstance(arg.value, cst.Name) and arg.value.value == "None")

    def _annotation_is_model(self, func: cst.FunctionDef) -> bool:
        if func.returns is None or self.versions.at_least("fastapi", "0.89") is False:
            return False
        return not _schemas.is_no_model_annotation(func.returns.annotation, self.qualified_name)

    # -- what is returned ---------------------------------------------------------------------------
    def _returned(self, expr: cst.BaseExpression, func: cst.FunctionDef, handles, seen=frozenset()) -> _Returned | None:
        if isinstance(expr, cst.Await):
            return self._returned(expr.expression, func, handles, seen)
        if isinstance(expr, cst.Name):
            if expr.value in seen:
                return None
            return self._local(expr.value, func, handles, seen | {expr.value})
        if not isinstance(expr, cst.Call):
            return None
        model = self._mapped(expr.func)
        if model is not None:
            return _Returned(model, False)  # a constructor
        callee = expr.func
        if not isinstance(callee, cst.Attribute):
            return None
        method = callee.attr.value
        receiver = _unawait(callee.value)
        # session methods
        if isinstance(receiver, cst.Name) and receiver.value in handles:
            if method in ("get", "get_one") and expr.args:
                model = self._mapped(expr.args[0].value)
                return _Returned(model, False) if model is not None else None
            if method in ("scalar",) and expr.args:
                model = self._selected(expr.args[0].value)
                return _Returned(model, False) if model is not None else None
            return None
        # terminal methods on a query / result
        if method in ONE or method in MANY:
            source = self._source(receiver, handles)
            if source is None:
                return None
            kind, model = source
            if kind == "select":
                return None
            if kind == "result" and method not in ("scalar", "scalar_one", "scalar_one_or_none"):
                return None  # Row objects, not ORM instances
            if kind in ("query", "scalars") and method in ("scalar", "scalar_one", "scalar_one_or_none"):
                return _Returned(model, False) if kind == "query" else None
            if kind == "query" and method == "get":
                return _Returned(model, False)
            return _Returned(model, method in MANY)
        return None

    def _source(self, expr: cst.BaseExpression, handles) -> tuple[str, str] | None:
        """What a receiver chain is: ("query", M) for `db.query(M)...`, ("select", M) for `select(M)...`,
        ("result", M) for `db.execute(select(M))`, ("scalars", M) for `db.scalars(select(M))`,
        `db.exec(select(M))` or `<result>.scalars()`."""
        expr = _unawait(expr)
        if not isinstance(expr, cst.Call):
            return None
        callee = expr.func
        if self.resolves_to(callee, known.SELECT):
            model = self._mapped(expr.args[0].value) if len(expr.args) == 1 else None
            return ("select", model) if model is not None else None
        if not isinstance(callee, cst.Attribute):
            return None
        method = callee.attr.value
        receiver = _unawait(callee.value)
        if isinstance(receiver, cst.Name) and receiver.value in handles:
            if method == "query" and len(expr.args) == 1:
                model = self._mapped(expr.args[0].value)
                return ("query", model) if model is not None else None
            if method in ("scalars", "exec", "execute") and expr.args:
                model = self._selected(expr.args[0].value)
                if model is None:
                    return None
                return ("result", model) if method == "execute" else ("scalars", model)
            return None
        inner = self._source(receiver, handles)
        if inner is None:
            return None
        kind, model = inner
        if method in QUERY_CHAIN and kind in ("query", "select"):
            return inner
        if method in ("scalars", "unique") and kind in ("result", "scalars"):
            return ("scalars", model)
        return None

    def _selected(self, expr: cst.BaseExpression) -> str | None:
        found = self._source(expr, {})
        return found[1] if found is not None and found[0] == "select" else None

    def _mapped(self, expr: cst.BaseExpression) -> str | None:
        qn = self.qualified_name(expr)
        fact = self.index.mapped_class(qn) if qn is not None else None
        return fact.qualname if fact is not None else None

    def _param(self, name: str, func: cst.FunctionDef) -> _Returned | None:
        """An ORM object a dependency gives (`user: User = Depends(get_current_user)`, or a dependency
        whose return annotation is an ORM class)."""
        for param in (*func.params.posonly_params, *func.params.params, *func.params.kwonly_params):
            if param.name.value != name:
                continue
            target = _handles.param_dependency(self, param)
            if target is None:
                return None
            model = self._mapped(_handles.param_type(self, param)) if param.annotation is not None else None
            if model is None:
                qn = target if isinstance(target, str) else self.qualified_name(target)
                model = self._returns_model(qn) if qn is not None else None
            return _Returned(model, False) if model is not None else None
        return None

    def _returns_model(self, function_qn: str) -> str | None:
        """The mapped class a project function's return annotation names (a plain dotted name)."""
        fact = self.index.function(function_qn)
        summary = self.index.module(fact.module) if fact is not None else None
        if fact is None or summary is None or not fact.returns:
            return None
        head, _, rest = fact.returns.strip().partition(".")
        if not head.isidentifier() or (rest and not all(p.isidentifier() for p in rest.split("."))):
            return None
        base = summary.imports.get(head) or (f"{fact.module}.{head}" if head in summary.defined else None)
        if base is None:
            return None
        mapped = self.index.mapped_class(f"{base}.{rest}" if rest else base)
        return mapped.qualname if mapped is not None else None

    def _local(self, name: str, func: cst.FunctionDef, handles, seen) -> _Returned | None:
        """The ORM value every assignment of a local gives (`None` assignments aside), or the ORM object
        a dependency parameter of that name receives."""
        found: _Returned | None = self._param(name, func)
        for node in _handles.iter_own_nodes(func.body):
            value = None
            if isinstance(node, cst.Assign) and any(_binds(t.target, name) for t in node.targets):
                if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
                    return None
                value = node.value
            elif isinstance(node, cst.AnnAssign) and _binds(node.target, name):
                value = node.value
                if value is None:
                    continue
            elif isinstance(node, (cst.AugAssign, cst.For, cst.CompFor)) and _binds(node.target, name):
                return None
            elif isinstance(node, cst.AsName) and _binds(node.name, name):
                return None
            else:
                continue
            if isinstance(value, cst.Name) and value.value == "None":
                continue
            got = self._returned(value, func, handles, seen)
            if got is None or (found is not None and got != found):
                return None
            found = got
        return found

    # -- report -------------------------------------------------------------------------------------
    def _report(self, func, value, found: _Returned, calls, handles) -> None:
        mapped = self.index.mapped_class(found.model)
        name = found.model.rsplit(".", 1)[-1]
        article = "an" if name[:1].upper() in "AEIO" else "a"
        what = f"a list of `{name}` objects" if found.many else f"{article} `{name}` object"
        secrets = [c.name for c in mapped.columns if not c.relationship and _schemas.looks_secret(c.name)]
        expired = not found.many and self._expired_on_return(func, value, handles)
        severity = self.severity
        message = f"`{func.name.value}` returns {what} with no response model: every loaded column is sent"
        if secrets:
            severity = Severity.ERROR
            listed = ", ".join(f"`{c}`" for c in secrets)
            message += f", {listed} included"
        if expired:
            severity = Severity.ERROR
            message += "; after `commit()` without `refresh()` its attributes have expired and the response is `{}`"
        self.report(value, message, severity=severity, fix=self._fix(calls, found))

    def _expired_on_return(self, func: cst.FunctionDef, value: cst.BaseExpression, handles) -> bool:
        """Whether a session of the function commits, and the returned name is not refreshed afterwards."""
        target = _unawait(value)
        commits = [
            n
            for n in _handles.iter_own_nodes(func.body)
            if isinstance(n, cst.Call)
            and isinstance(n.func, cst.Attribute)
            and n.func.attr.value == "commit"
            and isinstance(n.func.value, cst.Name)
            and n.func.value.value in handles
            and self._expires(func, n.func.value.value)
        ]
        if not commits:
            return False
        if not isinstance(target, cst.Name):
            return False
        nodes = list(_handles.iter_own_nodes(func.body))
        last_commit = max(nodes.index(c) for c in commits)
        for n in nodes[last_commit:]:
            if (
                isinstance(n, cst.Call)
                and isinstance(n.func, cst.Attribute)
                and n.func.attr.value == "refresh"
                and n.args
                and isinstance(n.args[0].value, cst.Name)
                and n.args[0].value.value == target.value
            ):
                return False
        return True

    def _expires(self, func: cst.FunctionDef, session: str) -> bool:
        """False when the session comes from a factory made with `expire_on_commit=False`."""
        for param in (*func.params.params, *func.params.kwonly_params, *func.params.posonly_params):
            if param.name.value != session:
                continue
            target = _handles.param_dependency(self, param)
            qn = target if isinstance(target, str) else self.qualified_name(target) if target is not None else None
            fact = self.index.function(qn) if qn is not None else None
            for callee, _ in fact.calls if fact is not None else ():
                factory = self.index.session_factory(self.index.canonical(callee))
                if factory is not None and factory.literals.get("expire_on_commit") is False:
                    return False
        return True

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, calls: list[cst.Call], found: _Returned):
        if not calls:
            return None
        orm = _schemas.orm_class(self.index, found.model)
        if orm is None:
            return None
        plan = _schemas.SchemaPlan(self.context.module, self.context.module_name, self.names, self.index)
        schema = plan.read_schema(orm)
        if schema is None:
            return None
        value: cst.BaseExpression = cst.Name(schema)
        if found.many:
            value = cst.Subscript(cst.Name("list"), [cst.SubscriptElement(cst.Index(value))])
        fix = self.fix(applicability=Applicability.UNSAFE, title=plan.title("response_model"), add_imports=plan.imports)
        first, *others = calls
        for call in others:
            fix.also(call, _schemas.with_keyword(call, "response_model", value))
        plan.apply(fix, first, _schemas.with_keyword(first, "response_model", value))
        return fix


def _unawait(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr.expression if isinstance(expr, cst.Await) else expr


def _binds(target: cst.BaseExpression, name: str) -> bool:
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_binds(el.value, name) for el in target.elements)
    if isinstance(target, cst.StarredElement):
        return _binds(target.value, name)
    return False
