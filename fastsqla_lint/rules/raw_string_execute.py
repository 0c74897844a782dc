"""## What it does
Checks for a plain SQL string (a literal, an f-string, or a name bound to a string) passed to `execute()`
of a SQLAlchemy `Session`, `AsyncSession`, `Connection` or `AsyncConnection`.

## Why is this bad?
SQLAlchemy 2.0 no longer coerces strings to SQL. `Session.execute("SELECT 1")` raises
`ArgumentError: Textual SQL expression 'SELECT 1' should be explicitly declared as text('SELECT 1')`,
and `Connection.execute("SELECT 1")` raises `ObjectNotExecutableError: Not an executable object`. The
code worked on 1.x and fails on the first request after the upgrade, typically in a health check.

The receiver must be proven to be a session or connection (a parameter annotated with one or filled by a
dependency that yields one, or a local made by a session factory or `engine.connect()`): `sqlite3` and
`aiosqlite` cursors take strings and are left alone.

## Known problems
Only reported when the installed SQLAlchemy is 2.0 or later, or unknown. Receivers reached through
attributes (`self.db`) or returned by helper functions are not resolved.

## Example
    from fastapi import Depends, FastAPI
    from sqlalchemy.orm import Session

    from app.db import get_db

    app = FastAPI()

    @app.get("/health")
    def health(db: Session = Depends(get_db)):
        db.execute("SELECT 1")
        return {"status": "ok"}

## Use instead
    from fastapi import Depends, FastAPI
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from app.db import get_db

    app = FastAPI()

    @app.get("/health")
    def health(db: Session = Depends(get_db)):
        db.execute(text("SELECT 1"))
        return {"status": "ok"}

## Fix safety
Safe: the string is wrapped in `text()` (imported if needed), which is what SQLAlchemy 1.x did implicitly.
`text()` treats `:word` as a bind parameter, so a colon that is not one of the parameters passed to
`execute()` (`'at :noon'`) is escaped as `\\:`; `::int` casts are left as they are.
Unsafe for an f-string: the interpolated values are not visible, and a `:word` in them would become a
bind parameter. Display-only when the string uses DBAPI placeholders (`%s`, `%(name)s`, `?`: use
`exec_driver_sql()` or rewrite them as `:name`), when the parameters passed are not a literal so the
binds are unknown, or when a colon sits inside an f-string's literal text or a string built elsewhere.

## References
- SQLAlchemy 2.0 migration guide, "Coercion of string SQL to text() removed"
- SQLAlchemy docs, `sqlalchemy.sql.expression.text` ("Bound parameters", escaping with `\\:`)
"""

from __future__ import annotations

import re

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability
from fastsqla_lint.literals import UNKNOWN, literal_value
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules import _handles

# The pattern `text()` uses to find bind parameters (sqlalchemy.sql.elements.TextClause).
BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])")
DBAPI_PLACEHOLDER = re.compile(r"%s|%\(\w+\)s|\?")


class RawStringExecute(Rule):
    code = "FSL009"
    name = "raw-string-execute"
    message = "Raw SQL string passed to `execute()`: SQLAlchemy 2.0 raises unless it is wrapped in `text()`"
    fix_title = "Wrap the SQL string in `text()`"
    fix_availability = FixAvailability.SOMETIMES
    needles = (b"execute",)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._handles: dict[int, dict[str, _handles.Handle]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "execute") or not node.args:
            return
        if self.versions.at_least("sqlalchemy", "2.0") is False:
            return
        first = node.args[0]
        if first.keyword is not None or first.star:
            return
        handle = self._receiver(func.value)
        if handle is None:
            return
        kind = self._string_kind(first.value)
        if kind is None:
            return
        message = (
            f"Raw SQL string passed to `{handle.label}.execute()`: SQLAlchemy 2.0 raises unless it is "
            "wrapped in `text()`"
        )
        self.report(first.value, message, fix=self._fix(node, first.value, kind, handle))

    # -- detection ----------------------------------------------------------------------------------
    def _receiver(self, expr: cst.BaseExpression) -> _handles.Handle | None:
        made = _handles.produced_handle(self, expr)
        if made is not None:
            return made
        if not isinstance(expr, cst.Name):
            return None
        for func in reversed(self.context.functions):
            handles = self._handles.get(id(func))
            if handles is None:
                handles = self._handles[id(func)] = _handles.function_handles(self, func)
            if expr.value in handles:
                return handles[expr.value]
            if _binds(func, expr.value):
                return None  # a local of that name that is not a session shadows outer ones
        return None

    def _string_kind(self, expr: cst.BaseExpression) -> str | None:
        """"literal", "fstring" or "name" (a name bound to a string literal), else None."""
        if isinstance(expr, cst.FormattedString):
            return "fstring"
        if isinstance(expr, cst.ConcatenatedString) and _has_fstring(expr):
            return "fstring"
        if isinstance(literal_value(expr), str):
            return "literal"
        if isinstance(expr, cst.Name) and self._bound_string(expr) is not None:
            return "name"
        return None

    def _bound_string(self, name: cst.Name) -> str | None:
        """The string a name is bound to: its one local binding, else the module constant it names."""
        func = self.current_function
        if func is not None and _binds(func, name.value):
            value = _single_value(_local_values(func, name.value))
            return value if isinstance(value, str) else None
        qn = self.qualified_name(name)
        if qn is None:
            return None
        value = self.index.constant(qn)
        module_name = self.context.module_name
        if value is UNKNOWN and (module_name is None or qn == f"{module_name}.{name.value}"):
            value = _single_value(_module_values(self.context.module, name.value))
        return value if isinstance(value, str) else None

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, call: cst.Call, sql: cst.BaseExpression, kind: str, handle: _handles.Handle):
        text_name, imports = self._text_name()
        if text_name is None:
            return None
        applicability = Applicability.SAFE
        new_sql: cst.BaseExpression = sql
        if kind == "fstring":
            # the interpolated values are not visible: a `:word` in them would become a bind
            applicability = Applicability.DISPLAY_ONLY if _fstring_has_colon(sql) else Applicability.UNSAFE
        else:
            value = literal_value(sql) if kind == "literal" else self._bound_string(sql)  # type: ignore[arg-type]
            assert isinstance(value, str)
            if DBAPI_PLACEHOLDER.search(value):
                return self._placeholder_fix(call, sql, value, handle, text_name, imports)
            binds = _bind_keys(call)
            loose = [m for m in BIND.finditer(value) if binds is None or m.group(1) not in binds]
            if loose:
                escaped = _escape(sql, binds) if kind == "literal" and binds is not None else None
                if escaped is None:
                    applicability = Applicability.DISPLAY_ONLY
                else:
                    new_sql = escaped
        title = self.fix_title
        if applicability is Applicability.DISPLAY_ONLY:
            title = "Wrap the SQL in `text()`, escaping as `\\:` each colon that is not a bind parameter"
        wrapped = cst.Call(func=cst.Name(text_name), args=[cst.Arg(new_sql)])
        return self.fix(sql, wrapped, applicability=applicability, title=title, add_imports=imports)

    def _placeholder_fix(self, call, sql, value, handle, text_name, imports):
        """DBAPI placeholders (`%s`, `?`): a connection can run the string as is with `exec_driver_sql()`
        (unsafe: the driver's paramstyle now matters); for a session, show the string rewritten with
        `:p1, :p2` binds and a dict of the positional values (display-only), when they are a literal."""
        func = call.func
        assert isinstance(func, cst.Attribute)
        if handle.connection:
            return self.fix(
                func.attr,
                cst.Name("exec_driver_sql"),
                applicability=Applicability.UNSAFE,
                title="Run the string as is with `exec_driver_sql()`",
            )
        if not isinstance(sql, cst.SimpleString) or "%%" in value or BIND.search(value):
            return None
        params = call.args[1].value if len(call.args) == 2 and call.args[1].keyword is None else None
        placeholders = DBAPI_PLACEHOLDER.findall(value)
        prefix, quote = sql.prefix, sql.quote
        body = sql.value[len(prefix) + len(quote) : len(sql.value) - len(quote)]
        if all(p.startswith("%(") for p in placeholders):
            # `%(name)s` -> `:name`, the dict of values stays as it is
            if params is None:
                return None
            new_body = DBAPI_PLACEHOLDER.sub(lambda m: ":" + m.group(0)[2:-2], body)
            new_sql = sql.with_changes(value=f"{prefix}{quote}{new_body}{quote}")
            new_args = [cst.Arg(cst.Call(func=cst.Name(text_name), args=[cst.Arg(new_sql)])), call.args[1]]
        else:
            if any(p.startswith("%(") for p in placeholders):
                return None
            if not isinstance(params, (cst.Tuple, cst.List)) or len(placeholders) != len(params.elements):
                return None
            if not all(isinstance(el, cst.Element) for el in params.elements):
                return None
            numbers = iter(range(1, len(placeholders) + 1))
            new_body = DBAPI_PLACEHOLDER.sub(lambda m: f":p{next(numbers)}", body)
            new_sql = sql.with_changes(value=f"{prefix}{quote}{new_body}{quote}")
            binds = cst.Dict(
                [
                    cst.DictElement(cst.SimpleString(f'"p{i}"'), el.value)
                    for i, el in enumerate(params.elements, start=1)
                ]
            )
            new_args = [cst.Arg(cst.Call(func=cst.Name(text_name), args=[cst.Arg(new_sql)])), cst.Arg(binds)]
        new_call = call.with_changes(args=new_args)
        return self.fix(
            call,
            new_call,
            applicability=Applicability.DISPLAY_ONLY,
            title="Wrap the SQL in `text()` with `:name` binds instead of DBAPI placeholders",
            add_imports=imports,
        )

    def _text_name(self) -> tuple[str | None, list[tuple]]:
        """The local name to call `text` by, and the import to add for it."""
        names = self.context.names
        for local, qn in names.imports.items():
            if qn in known.SQL_TEXT:
                return local, []
        sqlmodel_only = names.imports_module("sqlmodel") and not names.imports_module("sqlalchemy")
        source = "sqlmodel" if sqlmodel_only else "sqlalchemy"
        taken = set(names.imports) | set(names.defined)
        for func in self.context.functions:
            taken |= _local_names(func)
        if "text" not in taken:
            return "text", [(source, "text")]
        if "sa_text" not in taken:
            return "sa_text", [(source, "text", "sa_text")]
        return None, []


def _has_fstring(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.FormattedString):
        return True
    if isinstance(node, cst.ConcatenatedString):
        return _has_fstring(node.left) or _has_fstring(node.right)
    return False


def _fstring_has_colon(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.ConcatenatedString):
        return _fstring_has_colon(node.left) or _fstring_has_colon(node.right)
    if isinstance(node, cst.FormattedString):
        return any(isinstance(p, cst.FormattedStringText) and ":" in p.value for p in node.parts)
    value = literal_value(node)
    return isinstance(value, str) and ":" in value


def _bind_keys(call: cst.Call) -> frozenset[str] | None:
    """The bind names the parameters passed to `execute()` provide: empty when none are passed, None when
    they are not a literal dict (or list of dicts)."""
    params = None
    for arg in call.args[1:]:
        if arg.star:
            return None
        if arg.keyword is None or arg.keyword.value in ("params", "parameters"):
            params = arg.value
            break
    if params is None:
        return frozenset()
    items = [params]
    if isinstance(params, (cst.List, cst.Tuple)):
        items = [el.value for el in params.elements if isinstance(el, cst.Element)]
        if len(items) != len(params.elements):
            return None
    keys: set[str] = set()
    for item in items:
        if not isinstance(item, cst.Dict):
            return None
        for el in item.elements:
            if not isinstance(el, cst.DictElement):
                return None
            key = literal_value(el.key)
            if not isinstance(key, str):
                return None
            keys.add(key)
    return frozenset(keys)


def _escape(node: cst.BaseExpression, binds: frozenset[str]) -> cst.BaseExpression | None:
    """The string literal with each `:word` that is not a bind escaped as `\\:` (None if not doable)."""
    if not isinstance(node, cst.SimpleString):
        return None
    value = literal_value(node)
    assert isinstance(value, str)
    expected = BIND.sub(lambda m: m.group(0) if m.group(1) in binds else "\\" + m.group(0), value)
    prefix = node.prefix
    quote = node.quote
    body = node.value[len(prefix) + len(quote) : len(node.value) - len(quote)]
    slash = "\\" if "r" in prefix.lower() else "\\\\"
    new_body = BIND.sub(lambda m: m.group(0) if m.group(1) in binds else slash + m.group(0), body)
    new = node.with_changes(value=f"{prefix}{quote}{new_body}{quote}")
    if literal_value(new) != expected:
        return None
    return new


def _binds(func: cst.FunctionDef, name: str) -> bool:
    return name in _local_names(func)


def _local_names(func: cst.FunctionDef) -> set[str]:
    """Parameters and names assigned in a function's own body."""
    params = func.params
    out = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    for p in (params.star_arg, params.star_kwarg):
        if isinstance(p, cst.Param):
            out.add(p.name.value)
    for node in _handles.iter_own_bindings(func.body):
        if isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign)):
            target = node.target
        elif isinstance(node, cst.AsName):
            target = node.name
        elif isinstance(node, (cst.For, cst.CompFor)):
            target = node.target
        else:
            continue
        for sub in _names_in(target):
            out.add(sub)
    return out


def _names_in(target: cst.CSTNode):
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            yield from _names_in(el.value)
    elif isinstance(target, cst.StarredElement):
        yield from _names_in(target.value)


def _local_values(func: cst.FunctionDef, name: str) -> list[cst.BaseExpression]:
    """The values assigned to `name` in the function; an empty list if any binding is not a plain assignment."""
    values = []
    for node in _handles.iter_own_bindings(func.body):
        if isinstance(node, cst.Assign):
            if any(name in _names_in(t.target) for t in node.targets):
                if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
                    return []
                values.append(node.value)
        elif isinstance(node, cst.AnnAssign) and name in _names_in(node.target):
            if node.value is None:
                continue
            values.append(node.value)
        elif isinstance(node, (cst.AugAssign, cst.For, cst.CompFor, cst.AsName)):
            target = node.name if isinstance(node, cst.AsName) else node.target
            if name in _names_in(target):
                return []
    params = func.params
    if any(p.name.value == name for p in (*params.posonly_params, *params.params, *params.kwonly_params)):
        return []
    return values if len(values) == 1 else []


def _single_value(values: list[cst.BaseExpression]) -> object:
    return literal_value(values[0]) if len(values) == 1 else UNKNOWN


def _module_values(module: cst.Module, name: str) -> list[cst.BaseExpression]:
    values = []
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign) and any(
                    isinstance(t.target, cst.Name) and t.target.value == name for t in small.targets
                ):
                    values.append(small.value)
    return values if len(values) == 1 else []
