"""## What it does
Checks for SQL built with an f-string, `%` formatting, `str.format()` or `+` concatenation and given to
`text()`, to `execute()` of a SQLAlchemy session or connection, or to `exec_driver_sql()`: directly, or
through a local variable assigned once.

## Why is this bad?
An interpolated value is pasted into the statement as SQL, not sent as a parameter: a value containing a
quote (`' OR '1'='1`) changes what the statement does. This is SQL injection, and it is the one mistake
`text()` does not protect from. Bound parameters (`:email` in the SQL and `{"email": email}` passed along)
send the value separately, so it can never become SQL.

The severity is raised to error when an interpolated value comes from a parameter of the path operation,
that is straight from the request. Values that cannot carry SQL are left alone: literals, module-level
constants, `int()` / `float()` / `len()` results, path-operation parameters FastAPI has validated as
numbers, booleans, UUIDs or dates, a mapped class's `__tablename__`, and a list of `:name` placeholders
joined together.
Ruff's S608 and bandit's B608 report these strings without a fix, and ruff's UP031/UP032 rewrite `%` and
`.format()` into f-strings that are just as injectable.

## Known problems
A variable built in several steps (`sql += ...`) is not followed. Table and column names cannot be
bound parameters, and whether a name is safe depends on where it comes from, so those slots are only
shown with a suggested allow-list check.

## Example
    from fastapi import Depends, FastAPI
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from app.db import get_db

    app = FastAPI()

    @app.get("/users")
    def find_users(email: str, db: Session = Depends(get_db)):
        rows = db.execute(text(f"SELECT id, name FROM users WHERE email = '{email}'"))
        return [dict(row._mapping) for row in rows]

## Use instead
    from fastapi import Depends, FastAPI
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from app.db import get_db

    app = FastAPI()

    @app.get("/users")
    def find_users(email: str, db: Session = Depends(get_db)):
        rows = db.execute(text("SELECT id, name FROM users WHERE email = :email"), {"email": email})
        return [dict(row._mapping) for row in rows]

## Fix safety
Unsafe, and offered only when every interpolation fills a whole quoted SQL string (`'{email}'`, or
`'%{term}%'`, whose bound value becomes `f"%{term}%"`): each quoted string becomes a `:name` bound
parameter, and the values go in a parameters dict passed to `execute()` (merged into a literal dict already
there), or to `.bindparams()` when the `text()` is not executed on the spot. A raw string given to
`execute()` is wrapped in `text()`, and `exec_driver_sql()` becomes `execute(text(...))`. The statement
now receives each value with its own type instead of its text (`5` rather than `'5'`), which the database
may compare differently. Display-only when a slot is not quoted (a table or column name, or a number):
quoted values are still shown as parameters, and an allow-list check is shown before the statement.
No fix when a slot uses a format spec other than plain `%s` / `%d`, or the string cannot be rebuilt.

## References
- SQLAlchemy docs, "Using Textual SQL" and `text()` ("Bound parameters")
- OWASP, "SQL Injection Prevention Cheat Sheet" (allow-list input validation for names)
- Semgrep rule `avoid-sqlalchemy-text`; ruff S608, bandit B608
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from string import Formatter
from typing import Iterator, Union

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.literals import UNKNOWN, evaluate, literal_value
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _handles, _sessions
from fastsqla_lint.rules._edits import contains, has_comment, replace_in, statement_of, walk
from fastsqla_lint.rules._engines import with_keyword

# How `text()` finds bind parameters (sqlalchemy.sql.elements.TextClause).
BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])")
PERCENT_FIELD = re.compile(r"%%|%(?:\((\w+)\))?([-#0 +]*\d*(?:\.\d+)?)([diouxXeEfFgGcrsa%])")
SAFE_CALLS = frozenset({"builtins.int", "builtins.float", "builtins.len", "builtins.bool", "builtins.round"})
VALIDATED_TYPES = frozenset(
    {
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "uuid.UUID",
        "datetime.date",
        "datetime.datetime",
        "decimal.Decimal",
    }
)
CONSUMERS = frozenset({"execute", "scalars", "scalar", "exec"})
HOW = {"fstring": "an f-string", "percent": "`%` formatting", "format": "`str.format()`", "concat": "`+` concatenation"}


@dataclass
class Slot:
    """One interpolation: the expression, and its source inside an f-string (`{x!r}`) when it has a
    conversion or format spec (None: the plain value)."""

    expr: cst.BaseExpression | None
    spec_source: str | None = None
    complex: bool = False  # a format the bound value cannot reproduce


Piece = Union[str, Slot]


@dataclass
class Built:
    """A string expression built from pieces of literal text and interpolations."""

    node: cst.BaseExpression  # the expression that builds the string
    how: str  # a key of HOW
    components: list[tuple[cst.BaseExpression, list[Piece]]]  # parts of an implicit concatenation, or one
    binding: cst.Assign | None = None  # `sql = f"..."` when the sink receives a name

    @property
    def pieces(self) -> list[Piece]:
        return [p for _, pieces in self.components for p in pieces]

    @property
    def slots(self) -> list[Slot]:
        return [p for p in self.pieces if isinstance(p, Slot)]


@dataclass
class Sink:
    kind: str  # "text" | "execute" | "driver"
    call: cst.Call
    arg: cst.Arg


@dataclass
class Binds:
    """Bind names given to the values, in order of appearance."""

    names: dict[str, str] = field(default_factory=dict)  # value source -> bind name
    values: dict[str, cst.BaseExpression] = field(default_factory=dict)  # bind name -> value expression
    taken: set[str] = field(default_factory=set)

    def add(self, hint: str, source: str, value: cst.BaseExpression) -> str:
        if source in self.names:
            return self.names[source]
        base = re.sub(r"\W", "_", hint).strip("_") or "param"
        if base[0].isdigit() or keyword.iskeyword(base):
            base = f"p_{base}"
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        self.names[source] = name
        self.values[name] = value
        return name


class InterpolatedSql(Rule):
    code = "FSL014"
    name = "interpolated-sql"
    message = "SQL built by string interpolation: the values are pasted into the statement (SQL injection)"
    fix_title = "Send the values as bound parameters (`:name` and a parameters dict)"
    fix_availability = FixAvailability.SOMETIMES
    severity = Severity.WARNING
    needles = (b"text", b"execute", b"exec_driver_sql")
    standalone_needles = (b"exec_driver_sql",)  # its receiver is not resolved: only SQLAlchemy has the method

    def __init__(self, context) -> None:
        super().__init__(context)
        self._handles: dict[int, dict[str, _handles.Handle]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        sink = self._sink(node)
        if sink is None:
            return
        built = self._built(sink.arg.value)
        if built is None:
            return
        risky = [s for s in built.slots if not self._harmless(s)]
        if not risky:
            return
        from_request = self._request_params(risky)
        target = {"text": "`text()`", "execute": "`execute()`", "driver": "`exec_driver_sql()`"}[sink.kind]
        message = f"SQL built with {HOW[built.how]} and passed to {target}: "
        if from_request:
            names = ", ".join(f"`{n}`" for n in from_request)
            verbs = ("comes", "is") if len(from_request) == 1 else ("come", "are")
            message += f"{names} {verbs[0]} from the request and {verbs[1]} pasted into the statement (SQL injection)"
            severity = Severity.ERROR
        else:
            message += "the interpolated values are pasted into the statement (SQL injection)"
            severity = Severity.WARNING
        self.report(sink.arg.value, message, severity=severity, fix=self._fix(sink, built))

    # -- detection ----------------------------------------------------------------------------------
    def _sink(self, call: cst.Call) -> Sink | None:
        if not call.args or call.args[0].keyword is not None or call.args[0].star:
            return None
        first = call.args[0]
        func = call.func
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            if attr == "exec_driver_sql":
                return Sink("driver", call, first)
            if attr == "execute" and self._is_database(func.value):
                if isinstance(first.value, cst.Call) and self.resolves_to(first.value.func, known.SQL_TEXT):
                    return None  # the text() call is the sink
                return Sink("execute", call, first)
        if self.resolves_to(func, known.SQL_TEXT):
            return Sink("text", call, first)
        return None

    def _is_database(self, expr: cst.BaseExpression) -> bool:
        """The receiver is a session or connection (a handle of the enclosing function, or made in place)."""
        if _handles.produced_handle(self, expr) is not None:
            return True
        func = self.current_function
        if func is None or not isinstance(expr, cst.Name):
            return False
        handles = self._handles.get(id(func))
        if handles is None:
            handles = self._handles[id(func)] = _handles.function_handles(self, func)
        return expr.value in handles

    def _built(self, expr: cst.BaseExpression) -> Built | None:
        found = _template(expr)
        if found is not None:
            return Built(expr, *found)
        if isinstance(expr, cst.Name) and self.current_function is not None:
            binding = _single_binding(self.current_function, expr.value)
            if binding is not None:
                found = _template(binding.value)
                if found is not None:
                    return Built(binding.value, *found, binding=binding)
        return None

    def _harmless(self, slot: Slot) -> bool:
        """A value that cannot carry SQL: a literal, a module constant, a number, a list of `:binds`."""
        expr = slot.expr
        if expr is None:
            return False
        if literal_value(expr) is not UNKNOWN:
            return True
        if isinstance(expr, cst.Call) and self.resolves_to(expr.func, SAFE_CALLS):
            return True
        if isinstance(expr, cst.Attribute) and self._table_name(expr):
            return True
        if isinstance(expr, (cst.Name, cst.Attribute)):
            func = self.current_function
            if isinstance(expr, cst.Name) and func is not None and _binds_locally(func, expr.value):
                if self._validated_param(func, expr.value):
                    return True
                binding = _single_binding(func, expr.value)
                return binding is not None and _is_bind_list(binding.value)
            qn = self.qualified_name(expr)
            if qn is not None and self.index.constant(qn) is not UNKNOWN:
                return True
        return False

    def _table_name(self, expr: cst.Attribute) -> bool:
        """`Model.__tablename__` or `Model.__table__.name` of a mapped class."""
        owner = None
        if expr.attr.value == "__tablename__":
            owner = expr.value
        elif expr.attr.value in ("name", "fullname") and isinstance(expr.value, cst.Attribute):
            if expr.value.attr.value == "__table__":
                owner = expr.value.value
        qn = self.qualified_name(owner) if owner is not None else None
        return qn is not None and self.index.mapped_class(qn) is not None

    def _validated_param(self, func: cst.FunctionDef, name: str) -> bool:
        """A path-operation parameter that FastAPI has validated as a number, boolean, UUID or date."""
        params = func.params
        for p in (*params.posonly_params, *params.params, *params.kwonly_params):
            if p.name.value == name and p.annotation is not None:
                annotation = _handles.param_type(self, p)
                return self.resolves_to(annotation, VALIDATED_TYPES) and _sessions.is_route(self.context, func)
        return False

    def _request_params(self, slots: list[Slot]) -> list[str]:
        """Names of path-operation parameters (not dependencies) used by the slots."""
        func = self.current_function
        if func is None or not _sessions.is_route(self.context, func):
            return []
        params = func.params
        request_params = {
            p.name.value
            for p in (*params.posonly_params, *params.params, *params.kwonly_params)
            if _handles.param_dependency(self, p) is None
        }
        found: list[str] = []
        for slot in slots:
            for node in walk(slot.expr):
                if isinstance(node, cst.Name) and node.value in request_params and node.value not in found:
                    found.append(node.value)
        return found

    # -- fix ----------------------------------------------------------------------------------------
    def _fix(self, sink: Sink, built: Built) -> FixRequest | None:
        if any(s.complex for s in built.slots):
            return None
        existing = {m.group(1) for p in built.pieces if isinstance(p, str) for m in BIND.finditer(p)}
        converted = self._convert(built, existing)
        if converted is None:
            return None
        new_string, identifiers, binds = converted
        if not binds.values:
            return self._guard_only(identifiers)
        if sink.kind != "text":
            literal = "".join(p for p in built.pieces if isinstance(p, str))
            if existing or (sink.kind == "driver" and "%" in literal):
                return None  # `text()` would read these as parameters
        replacements: dict[int, tuple[cst.CSTNode, cst.CSTNode]] = {}
        imports: list[tuple] = []
        if built.binding is not None:
            if _count_uses(self.current_function, built.binding) != 1:
                return None
            replacements[id(built.node)] = (built.node, new_string)
            sql_expr: cst.BaseExpression = sink.arg.value
        else:
            sql_expr = new_string
        params = _params_dict(binds)
        if sink.kind == "text":
            consumer = self._consumer(sink.call)
            new_text = sink.call.with_changes(args=[sink.arg.with_changes(value=sql_expr), *sink.call.args[1:]])
            placed = _with_params(consumer, params) if consumer is not None else None
            if placed is not None:
                assert consumer is not None
                replacements[id(consumer)] = (consumer, replace_in(placed, {id(sink.call): (sink.call, new_text)}))
            else:
                replacements[id(sink.call)] = (sink.call, _bindparams(new_text, binds))
        else:
            text_name, imports = self._text_name()
            if text_name is None:
                return None
            wrapped = cst.Call(func=cst.Name(text_name), args=[cst.Arg(sql_expr)])
            call = sink.call
            if sink.kind == "driver":
                if len(call.args) != 1:
                    return None
                assert isinstance(call.func, cst.Attribute)
                call = call.with_changes(func=call.func.with_changes(attr=cst.Name("execute")))
            call = call.with_changes(args=[sink.arg.with_changes(value=wrapped), *call.args[1:]])
            placed = _with_params(call, params)
            if placed is None:
                return None
            replacements[id(sink.call)] = (sink.call, placed)
        applicability = Applicability.UNSAFE
        title = "Send the quoted values as bound parameters: " + ", ".join(f"`:{n}`" for n in binds.values)
        if identifiers:
            applicability = Applicability.DISPLAY_ONLY
            guarded = self._guard(identifiers, replacements)
            if guarded is not None:
                replacements = guarded
            title += "; check " + _names(identifiers) + " against an allow-list"
        fix = self.fix(applicability=applicability, title=title, add_imports=imports)
        for node, new in replacements.values():
            fix.also(node, new)
        return fix

    def _convert(self, built: Built, existing: set[str]) -> tuple[cst.BaseExpression, list[str], Binds] | None:
        """The SQL with quoted values as `:name` binds (as a string expression), the source of every
        unquoted interpolation, and the binds. An implicit concatenation keeps its parts (and layout) when
        no quoted SQL string spans two of them."""
        module = self.context.module
        if len(built.components) > 1:
            binds = Binds(taken=set(existing))
            identifiers: list[str] = []
            mapping: dict[int, tuple[cst.CSTNode, cst.CSTNode]] = {}
            for node, pieces in built.components:
                scanned = _scan(pieces, binds, module)
                if scanned is None:
                    break
                text, found = scanned
                identifiers += [f for f in found if f not in identifiers]
                if any(isinstance(p, Slot) for p in pieces):
                    new = _string_like(node, text, bool(found))
                    if new is None:
                        break
                    mapping[id(node)] = (node, new)
            else:
                new_node = replace_in(built.node, mapping)
                assert isinstance(new_node, cst.BaseExpression)
                return new_node, identifiers, binds
        if has_comment(built.node):
            return None  # rebuilding it as one string would drop the comments
        binds = Binds(taken=set(existing))
        scanned = _scan(built.pieces, binds, module)
        if scanned is None:
            return None
        text, identifiers = scanned
        like = built.node if isinstance(built.node, (cst.SimpleString, cst.FormattedString)) else None
        new = _string_like(like, text, bool(identifiers))
        return (new, identifiers, binds) if new is not None else None

    def _consumer(self, text_call: cst.Call) -> cst.Call | None:
        """The `x.execute(text(...))` call the text is executed by, when it is its first argument."""
        parents = self.context.parents
        if len(parents) < 2:
            return None
        arg, call = parents[-1], parents[-2]
        if (
            isinstance(arg, cst.Arg)
            and arg.value is text_call
            and isinstance(call, cst.Call)
            and call.args
            and call.args[0] is arg
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value in CONSUMERS
        ):
            return call
        return None

    def _text_name(self) -> tuple[str | None, list[tuple]]:
        local = _sessions.local_name_for(self.context, known.SQL_TEXT)
        if local is not None:
            return local, []
        taken = set(self.names.imports) | set(self.names.defined)
        for func in self.context.functions:
            taken |= {n.value for n in walk(func) if isinstance(n, cst.Name)}
        if "text" in taken:
            return None, []
        source = "sqlmodel" if self.names.imports_module("sqlmodel") and not self.names.imports_module("sqlalchemy") else "sqlalchemy"
        return "text", [(source, "text")]

    def _guard(
        self, identifiers: list[str], replacements: dict[int, tuple[cst.CSTNode, cst.CSTNode]]
    ) -> dict[int, tuple[cst.CSTNode, cst.CSTNode]] | None:
        """The replacements, with an allow-list check of the unquoted names inserted before the statement."""
        found = statement_of(self.context.parents)
        if found is None:
            return None
        stmt, _ = found
        config = self.context.module.config_for_parsing
        guards = []
        for source in identifiers:
            guards.append(
                cst.parse_statement(
                    f"if {source} not in ():  # the names `{source}` may take\n"
                    f"    raise ValueError(f\"unexpected name: {{{source}!r}}\")\n",
                    config=config,
                )
            )
        inner = {k: v for k, v in replacements.items() if contains(stmt, v[0])}
        outer = {k: v for k, v in replacements.items() if k not in inner}
        new_stmt = replace_in(stmt, inner) if inner else stmt
        assert isinstance(new_stmt, cst.BaseStatement)
        guards[0] = guards[0].with_changes(leading_lines=stmt.leading_lines)
        new_stmt = new_stmt.with_changes(leading_lines=())
        outer[id(stmt)] = (stmt, cst.FlattenSentinel([*guards, new_stmt]))
        return outer

    def _guard_only(self, identifiers: list[str]) -> FixRequest | None:
        replacements = self._guard(identifiers, {})
        if replacements is None:
            return None
        title = f"Check {_names(identifiers)} against an allow-list of known names before interpolating"
        fix = self.fix(applicability=Applicability.DISPLAY_ONLY, title=title)
        for node, new in replacements.values():
            fix.also(node, new)
        return fix


# -- templates ----------------------------------------------------------------------------------------
def _template(node: cst.BaseExpression) -> tuple[str, list[tuple[cst.BaseExpression, list[Piece]]]] | None:
    """How a string expression is built and its pieces (per component of an implicit concatenation);
    None when it is not built by interpolation."""
    if isinstance(node, cst.ConcatenatedString):
        components = list(_concat_parts(node))
        out = []
        for part in components:
            pieces = _string_pieces(part)
            if pieces is None:
                return None
            out.append((part, pieces))
        if not any(isinstance(p, Slot) for _, ps in out for p in ps):
            return None
        return "fstring", out
    if isinstance(node, cst.FormattedString):
        pieces = _string_pieces(node)
        if pieces is None or not any(isinstance(p, Slot) for p in pieces):
            return None
        return "fstring", [(node, pieces)]
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
        pieces = _percent(node)
        return ("percent", [(node, pieces)]) if pieces is not None else None
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        pieces = _concat(node)
        if pieces is None or not any(isinstance(p, Slot) for p in pieces):
            return None
        return "concat", [(node, pieces)]
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "format":
        pieces = _format(node)
        return ("format", [(node, pieces)]) if pieces is not None else None
    return None


def _concat_parts(node: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    if isinstance(node, cst.ConcatenatedString):
        yield from _concat_parts(node.left)
        yield from _concat_parts(node.right)
    else:
        yield node


def _string_pieces(node: cst.BaseExpression) -> list[Piece] | None:
    """Pieces of a string literal or f-string (None for bytes or anything else)."""
    if isinstance(node, cst.SimpleString):
        value = literal_value(node)
        return [value] if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = _string_pieces(node.left), _string_pieces(node.right)
        return left + right if left is not None and right is not None else None
    if not isinstance(node, cst.FormattedString):
        return None
    prefix = node.start[: -len(node.end)].lower().replace("f", "")
    if "b" in prefix:
        return None
    pieces: list[Piece] = []
    for part in node.parts:
        if isinstance(part, cst.FormattedStringText):
            raw = part.value.replace("{{", "{").replace("}}", "}")
            try:
                value = evaluate(f"{prefix}{node.end}{raw}{node.end}")
            except (ValueError, SyntaxError):
                return None
            pieces.append(value)
        elif isinstance(part, cst.FormattedStringExpression):
            plain = part.conversion is None and part.format_spec is None and part.equal is None
            source = None if plain else cst.Module(body=[]).code_for_node(part)
            pieces.append(Slot(part.expression, source, complex=part.equal is not None))
    return pieces


def _is_string(node: cst.BaseExpression) -> bool:
    return _string_pieces(node) is not None or _template(node) is not None


def _concat(node: cst.BaseExpression) -> list[Piece] | None:
    """`"a" + x + "b"`: pieces, when at least one side is a string."""
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        left, right = _concat(node.left), _concat(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else [Slot(node.left)]) + (right if right is not None else [Slot(node.right)])
    if isinstance(node, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
        return _string_pieces(node)
    found = _template(node)
    if found is not None:
        return [p for _, ps in found[1] for p in ps]
    return None


def _percent(node: cst.BinaryOperation) -> list[Piece] | None:
    text = literal_value(node.left)
    if not isinstance(text, str):
        return None
    right = node.right
    positional: list[cst.BaseExpression] | None = None
    named: dict[str, cst.BaseExpression] = {}
    if isinstance(right, cst.Tuple):
        positional = [el.value for el in right.elements if isinstance(el, cst.Element)]
        if len(positional) != len(right.elements):
            return None
    elif isinstance(right, cst.Dict):
        for el in right.elements:
            key = literal_value(el.key) if isinstance(el, cst.DictElement) else UNKNOWN
            if not isinstance(key, str):
                return None
            assert isinstance(el, cst.DictElement)
            named[key] = el.value
    else:
        positional = [right]
    pieces: list[Piece] = []
    pos = 0
    index = 0
    for m in PERCENT_FIELD.finditer(text):
        pieces.append(text[pos : m.start()])
        pos = m.end()
        if m.group(0) == "%%":
            pieces.append("%")
            continue
        name, flags, conv = m.group(1), m.group(2), m.group(3)
        if name is not None:
            expr = named.get(name)
        elif positional is not None and index < len(positional):
            expr = positional[index]
            index += 1
        else:
            expr = None
        pieces.append(Slot(expr, complex=expr is None or bool(flags) or conv not in "sdi"))
    pieces.append(text[pos:])
    if positional is not None and index != len(positional) and len(positional) > 1:
        return None
    return [p for p in pieces if p != ""] if any(isinstance(p, Slot) for p in pieces) else None


def _format(node: cst.Call) -> list[Piece] | None:
    assert isinstance(node.func, cst.Attribute)
    text = literal_value(node.func.value)
    if not isinstance(text, str):
        return None
    positional = [a.value for a in node.args if a.keyword is None and not a.star]
    named = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
    unknown = any(a.star for a in node.args)
    try:
        fields = list(Formatter().parse(text))
    except ValueError:
        return None
    pieces: list[Piece] = []
    auto = 0
    for literal, name, spec, conversion in fields:
        if literal:
            pieces.append(literal)
        if name is None:
            continue
        head = re.match(r"[^.\[]*", name).group(0)  # type: ignore[union-attr]
        expr: cst.BaseExpression | None
        if head == "":
            expr = positional[auto] if auto < len(positional) else None
            auto += 1
        elif head.isdigit():
            expr = positional[int(head)] if int(head) < len(positional) else None
        else:
            expr = named.get(head)
        complex_ = expr is None or unknown or bool(spec) or bool(conversion) or head != name
        pieces.append(Slot(expr, complex=complex_))
    return pieces if any(isinstance(p, Slot) for p in pieces) else None


def _is_bind_list(node: cst.BaseExpression) -> bool:
    """`", ".join(f":id{i}" for i in ...)`: placeholders only."""
    if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "join"):
        return False
    if not isinstance(literal_value(node.func.value), str) or len(node.args) != 1:
        return False
    gen = node.args[0].value
    if not isinstance(gen, (cst.GeneratorExp, cst.ListComp)):
        return False
    pieces = _string_pieces(gen.elt)
    return bool(pieces) and isinstance(pieces[0], str) and pieces[0].startswith(":") and re.fullmatch(
        r":\w+", "".join(p if isinstance(p, str) else "x" for p in pieces)
    ) is not None


# -- rewriting ----------------------------------------------------------------------------------------
def _scan(pieces: list[Piece], binds: Binds, module: cst.Module) -> tuple[str, list[str]] | None:
    """The SQL text with each quoted SQL string that holds interpolations turned into one `:name` bind, and
    the sources of the unquoted interpolations, which stay as `{source}` (literal braces are doubled, as in
    an f-string); None when a quote is left open."""
    items: list[Piece] = []
    for p in pieces:
        items.extend(p if isinstance(p, str) else [p])
    out: list[str] = []
    identifiers: list[str] = []
    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, Slot):
            source = module.code_for_node(item.expr) if item.expr is not None else None
            if source is None:
                return None
            if source not in identifiers:
                identifiers.append(source)
            out.append(item.spec_source or "{" + source + "}")
            i += 1
            continue
        if item != "'":
            out.append(item.replace("{", "{{").replace("}", "}}"))
            i += 1
            continue
        j = i + 1
        content: list[Piece] = []
        while True:
            if j >= len(items):
                return None
            if items[j] == "'" and j + 1 < len(items) and items[j + 1] == "'":
                content.append("'")
                j += 2
            elif items[j] == "'":
                break
            else:
                content.append(items[j])
                j += 1
        slots = [c for c in content if isinstance(c, Slot)]
        if not slots:
            text = "".join(c for c in content if isinstance(c, str))
            out.append("'" + text.replace("'", "''").replace("{", "{{").replace("}", "}}") + "'")
        else:
            value = _bound_value(content, module)
            if value is None:
                return None
            expr, source, hint = value
            out.append(":" + binds.add(hint, source, expr))
        i = j + 1
    return "".join(out), identifiers


def _bound_value(content: list[Piece], module: cst.Module) -> tuple[cst.BaseExpression, str, str] | None:
    """The value a quoted SQL string with interpolations binds: the expression itself when it is the whole
    string, else an f-string of the content. Returns (expression, source, bind-name hint)."""
    slots = [c for c in content if isinstance(c, Slot)]
    if len(content) == 1 and slots[0].spec_source is None and slots[0].expr is not None:
        expr = slots[0].expr
        return expr, module.code_for_node(expr), _hint(expr)
    code = []
    for c in content:
        if isinstance(c, str):
            code.append(c.replace("{", "{{").replace("}", "}}"))
        elif c.expr is None:
            return None
        else:
            code.append(c.spec_source or "{" + module.code_for_node(c.expr) + "}")
    body = "".join(code)
    for quote in ('"', "'"):
        literal = f"f{quote}{body.replace(chr(92), chr(92) * 2)}{quote}"
        if quote in body or "\n" in body:
            continue
        try:
            expr = cst.parse_expression(literal)
        except cst.ParserSyntaxError:
            continue
        risky = [s for s in slots if s.expr is not None]
        return expr, literal, _hint(risky[0].expr) if len(risky) == 1 and risky[0].expr is not None else "value"
    return None


def _hint(expr: cst.BaseExpression) -> str:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
        key = literal_value(expr.slice[0].slice.value)
        if isinstance(key, str):
            return key
    if isinstance(expr, cst.Call):
        return _hint(expr.func)
    return "value"


def _string_like(like: cst.BaseExpression | None, text: str, interpolated: bool) -> cst.BaseExpression | None:
    """A string expression for `text` (f-string source: `{source}` slots, doubled literal braces), in the
    quotes of `like`; a plain string when nothing is left `interpolated`. None when it cannot be written."""
    quote = '"'
    prefix = ""
    if isinstance(like, cst.SimpleString):
        quote, prefix = like.quote, like.prefix.lower().replace("r", "")
    elif isinstance(like, cst.FormattedString):
        quote = like.end
        prefix = like.start[: -len(like.end)].lower().replace("f", "").replace("r", "")
    if not interpolated:
        text = text.replace("{{", "{").replace("}}", "}")
    body = text.replace("\\", "\\\\")
    if len(quote) == 3:
        body = body.replace(quote, "\\" + quote)
        if body.endswith(quote[0]):
            body = body[:-1] + "\\" + quote[0]
    else:
        body = body.replace(quote, "\\" + quote).replace("\n", "\\n").replace("\r", "\\r")
    try:
        return cst.parse_expression(f"{prefix}{'f' if interpolated else ''}{quote}{body}{quote}")
    except cst.ParserSyntaxError:
        return None


def _params_dict(binds: Binds) -> cst.Dict:
    return cst.Dict(
        [cst.DictElement(cst.SimpleString(f'"{name}"'), value) for name, value in binds.values.items()]
    )


def _with_params(call: cst.Call, params: cst.Dict) -> cst.Call | None:
    """`call` with the parameters passed: a new argument, or merged into a literal dict already there."""
    assert isinstance(call.func, cst.Attribute)
    is_exec = call.func.attr.value == "exec"
    for i, arg in enumerate(call.args[1:], start=1):
        if arg.star:
            return None
        if (arg.keyword is None and not is_exec) or (arg.keyword is not None and arg.keyword.value in ("params", "parameters")):
            if not isinstance(arg.value, cst.Dict):
                return None
            existing = {literal_value(el.key) for el in arg.value.elements if isinstance(el, cst.DictElement)}
            new = [el for el in params.elements if literal_value(el.key) not in existing]
            if len(new) != len(params.elements):
                return None
            merged = arg.value.with_changes(elements=[*_with_commas(arg.value.elements), *new])
            args = list(call.args)
            args[i] = arg.with_changes(value=merged)
            return call.with_changes(args=args)
    args = list(call.args)
    if is_exec or len(args) == 1:
        # appended last, in the call's layout (one argument per line or not)
        new_call = with_keyword(call, "params", params)
        if is_exec:
            return new_call
        last = new_call.args[-1].with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
        return new_call.with_changes(args=[*new_call.args[:-1], last])
    # positional parameters go right after the statement, before the keyword arguments
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if args[0].comma is cst.MaybeSentinel.DEFAULT:
        args[0] = args[0].with_changes(comma=comma)
    args.insert(1, cst.Arg(params, comma=comma))
    return call.with_changes(args=args)


def _with_commas(elements) -> list:
    out = list(elements)
    if out and out[-1].comma is cst.MaybeSentinel.DEFAULT:
        out[-1] = out[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return out


def _bindparams(text_call: cst.Call, binds: Binds) -> cst.Call:
    """`text(...).bindparams(name=value, ...)`."""
    eq = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
    args = [cst.Arg(value, keyword=cst.Name(name), equal=eq) for name, value in binds.values.items()]
    args = [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))) for a in args[:-1]] + args[-1:]
    return cst.Call(func=cst.Attribute(value=text_call, attr=cst.Name("bindparams")), args=args)


# -- small helpers ------------------------------------------------------------------------------------
def _binds_locally(func: cst.FunctionDef, name: str) -> bool:
    params = func.params
    if any(p.name.value == name for p in (*params.posonly_params, *params.params, *params.kwonly_params)):
        return True
    for node in _handles.iter_own_nodes(func.body):
        target = None
        if isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor)):
            target = node.target
        elif isinstance(node, cst.AsName):
            target = node.name
        if target is not None and any(isinstance(n, cst.Name) and n.value == name for n in walk(target)):
            return True
    return False


def _single_binding(func: cst.FunctionDef, name: str) -> cst.Assign | None:
    """The one `name = value` of the function, when it is bound nowhere else (parameters included)."""
    params = func.params
    if any(p.name.value == name for p in (*params.posonly_params, *params.params, *params.kwonly_params)):
        return None
    found: list[cst.Assign] = []
    for node in _handles.iter_own_bindings(func.body):
        if isinstance(node, cst.Assign):
            if any(isinstance(n, cst.Name) and n.value == name for t in node.targets for n in walk(t.target)):
                if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
                    return None
                found.append(node)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor, cst.AsName)):
            target = node.name if isinstance(node, cst.AsName) else node.target
            if any(isinstance(n, cst.Name) and n.value == name for n in walk(target)):
                return None
    return found[0] if len(found) == 1 else None


def _count_uses(func: cst.FunctionDef | None, binding: cst.Assign) -> int:
    """How often the bound name is read in the function."""
    if func is None:
        return 0
    target = binding.targets[0].target
    assert isinstance(target, cst.Name)
    return sum(
        1
        for n in _handles.iter_own_nodes(func.body)
        if isinstance(n, cst.Name) and n.value == target.value and n is not target
    )


def _names(identifiers: list[str]) -> str:
    return ", ".join(f"`{s}`" for s in identifiers)
