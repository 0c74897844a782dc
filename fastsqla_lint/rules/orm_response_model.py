"""## What it does
Checks for SQLAlchemy ORM classes used where FastAPI expects a Pydantic type: `response_model=`, the
return annotation of a path operation (FastAPI 0.89 and later make it the response model),
`responses={...: {"model": ...}}`, and request body parameters. Wrappers are looked through
(`Optional`, `Union`, `|`, `list`, `Sequence`, `dict` values, `tuple`, `Annotated`, string annotations),
and the class is resolved across the project, so a `User` imported from `models.py` is recognised while
a Pydantic class that happens to live in a module called `models` is not.

## Why is this bad?
FastAPI builds a Pydantic field from each of these types. A declarative ORM class is not a valid Pydantic
type, so FastAPI raises `FastAPIError: Invalid args for response field!` when the route is registered,
that is, when the app is imported. A `MappedAsDataclass` class is a dataclass: depending on the Pydantic
version, FastAPI either cannot build a schema for its `Mapped[...]` fields, or accepts it and then
serialises every column and relationship (lazy loads, reference cycles, secret columns). A schema also
decides what leaves the server: the ORM class would expose `hashed_password`.

SQLModel classes with `table=True` are valid Pydantic models and are not reported unless the
`sqlmodel-tables` option is set (then as info: they expose every column, and as a body let clients set `id`).
Dependencies returning ORM objects (`def get_current_user(...) -> User`) are not response models and
are not reported; neither is an ORM return annotation under an explicit `response_model=` (or
`response_model=None`), nor `-> Any` / `-> None` / `-> Response`.

## Example
    from fastapi import FastAPI
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str]
        hashed_password: Mapped[str]

    app = FastAPI()

    @app.get("/users/{user_id}")
    def read_user(user_id: int) -> User:
        ...

## Use instead
    from fastapi import FastAPI
    from pydantic import BaseModel, ConfigDict
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    def read_user(user_id: int) -> User:
        ...

## Options
- `sqlmodel-tables` (bool, default false): also report SQLModel `table=True` classes, as info.

## Fix safety
Unsafe: the response changes shape (only the schema's fields are sent). The fix uses an existing Pydantic
schema for the model when one is importable and its fields are columns of the model (preferring
`<Model>Read`, `Out`, `Public`, `Response`, `Schema`, adding its import); otherwise it generates
`class <Model>Read(BaseModel)` after the imports of the route's module, with
`model_config = ConfigDict(from_attributes=True)` and one field per column (nullable columns as
`X | None`, or `Optional[X]` when the module uses that style), relationships left out, and columns whose
names look secret (`password`, `hash`, `secret`, `token`, `api_key`, `salt`) left out with a comment. It then
sets `response_model=` on the decorator, keeping wrappers (`list[UserRead]`) and the return annotation
(FastAPI gives `response_model=` priority). It never inserts `response_model=None`, which silences the
error but serialises the ORM object's `__dict__` instead.

For a body parameter the fix is display-only (the function body receives a different object), and is
offered only when an input schema such as `<Model>Create` exists.

## References
- FastAPI docs, "Response Model - Return Type", section "Invalid Return Type Annotations"
- https://github.com/fastapi/fastapi/issues/2793
- SQLModel docs, "Multiple Models with FastAPI"
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules import _schemas as schemas

_PLACE = {
    "response_model": "as `response_model`",
    "return": "as the return annotation, which FastAPI uses as the response model",
    "responses": "as a `responses=` model",
}


class OrmResponseModel(Rule):
    code = "FSL003"
    name = "orm-response-model"
    message = "ORM class used as a response model"
    fix_title = "Use a Pydantic schema instead of the ORM class"
    fix_availability = FixAvailability.SOMETIMES
    # a route decorator (`@router.get(`) or `add_api_route(` must be in the file
    needles = tuple(f".{m}(".encode() for m in known.ROUTE_DECORATORS) + (b"add_api_route",)
    options = {"sqlmodel-tables": False}
    _visiting: cst.CSTNode | None = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not node.decorators:
            return
        calls = schemas.route_decorator_calls(node, self.qualified_name, self.index, self._qualname(node))
        self._visiting = node
        annotation_counts = self.versions.at_least("fastapi", "0.89") is not False
        for i, call in enumerate(calls):
            for slot in schemas.response_slots(node, call, self.qualified_name, annotation_counts, i == 0):
                self._check_slot(call, slot)

    def visit_Call(self, node: cst.Call) -> None:
        if not schemas.is_add_api_route(node, self.qualified_name, self.index):
            return
        endpoint = None
        for i, arg in enumerate(node.args):
            if (arg.keyword is None and i == 1) or (arg.keyword is not None and arg.keyword.value == "endpoint"):
                endpoint = self._local_function(arg.value)
        annotation_counts = self.versions.at_least("fastapi", "0.89") is not False
        for slot in schemas.response_slots(endpoint, node, self.qualified_name, annotation_counts):
            self._check_slot(node, slot)

    def _top_statement(self) -> cst.CSTNode | None:
        """The module-level statement holding the route being checked (a schema must be defined above it)."""
        parents = self.context.parents
        return parents[1] if len(parents) > 1 else self._visiting

    def _qualname(self, node: cst.FunctionDef) -> str | None:
        """`module.Class.method` / `module.outer.inner` for the function being visited."""
        module_name = self.context.module_name
        if not module_name:
            return None
        parts = [p.name.value for p in self.context.parents if isinstance(p, (cst.FunctionDef, cst.ClassDef))]
        return ".".join([module_name, *parts, node.name.value])

    def _local_function(self, expr: cst.BaseExpression) -> cst.FunctionDef | None:
        if not isinstance(expr, cst.Name):
            return None
        for stmt in self.context.module.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == expr.value:
                return stmt
        return None

    # -- one slot ----------------------------------------------------------------------------------
    def _check_slot(self, call: cst.Call, slot: schemas.ResponseSlot) -> None:
        found: list[tuple[schemas.TypeRef, schemas.OrmClass]] = []
        include_sqlmodel = bool(self.context.options.get("sqlmodel-tables", self.options["sqlmodel-tables"]))
        for ref in slot.refs:
            orm = schemas.orm_class(self.index, ref.qualname)
            if orm is None or (orm.kind == "sqlmodel" and not include_sqlmodel):
                continue
            found.append((ref, orm))
        if not found:
            return
        kinds = {orm.kind for _, orm in found}
        severity = (
            Severity.ERROR if "declarative" in kinds else Severity.WARNING if "dataclass" in kinds else Severity.INFO
        )
        names = ", ".join(dict.fromkeys(f"`{orm.name}`" for _, orm in found))
        if slot.kind == "body":
            assert slot.param is not None
            message = (
                f"Body parameter `{slot.param.name.value}` is annotated with the ORM class {names}: "
                + _consequence(severity, body=True)
            )
            self.report(slot.expr, message, severity=severity, fix=self._body_fix(slot, found))
            return
        message = f"ORM class {names} used {_PLACE[slot.kind]}: " + _consequence(severity, body=False)
        self.report(slot.expr, message, severity=severity, fix=self._response_fix(call, slot, found))

    # -- fixes -------------------------------------------------------------------------------------
    def _response_fix(self, call, slot, found):
        module = self.context.module
        plan = schemas.SchemaPlan(
            module, self.context.module_name, self.names, self.index, self._top_statement(), self.versions
        )
        replacements: dict[schemas.TypeRef, cst.BaseExpression] = {}
        for ref, orm in found:
            name = plan.read_schema(orm)
            if name is None:
                return None
            replacements[ref] = cst.Name(name)
        new_value = schemas.replace_refs(slot.expr, replacements)
        if slot.kind == "return":
            new_call = schemas.with_keyword(call, "response_model", new_value)
        else:
            new_call = call.deep_replace(slot.expr, new_value)
        fix = self.fix(
            applicability=Applicability.UNSAFE,
            title=plan.title("response_model"),
            add_imports=plan.imports,
        )
        plan.apply(fix, call, new_call)
        return fix

    def _body_fix(self, slot, found):
        module = self.context.module
        plan = schemas.SchemaPlan(
            module, self.context.module_name, self.names, self.index, self._top_statement(), self.versions
        )
        replacements = {}
        for ref, orm in found:
            name = plan.input_schema(orm)
            if name is None:
                return None
            replacements[ref] = cst.Name(name)
        new_ann = schemas.replace_refs(slot.expr, replacements)
        return self.fix(
            slot.expr,
            new_ann,
            applicability=Applicability.DISPLAY_ONLY,
            title=plan.title("annotation"),
            add_imports=plan.imports,
        )


def _consequence(severity: Severity, body: bool) -> str:
    if severity is Severity.ERROR:
        return "FastAPI raises `FastAPIError` when the route is registered"
    if severity is Severity.WARNING:
        return (
            "it is a `MappedAsDataclass` class, which FastAPI either cannot build a schema for (its `Mapped[...]` "
            "fields) or serialises with every column and relationship"
        )
    if body:
        return "clients can set every column, `id` included"
    return "every column is exposed"
