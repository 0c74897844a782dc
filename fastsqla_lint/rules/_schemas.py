"""What a path operation serialises, and Pydantic schemas for ORM classes.

Shared by the rules that look at response types (FSL003 `orm-response-model`, FSL010
`orm-returned-without-schema`). Everything here reads the tree and the project index; nothing reports.

Type expressions
    `type_refs(expr, qualify)` yields the class references inside a type expression, looking through
    `Optional`/`Union`/`|`, `list`/`List`/`set`/`Sequence`/`tuple`, the value type of `dict`/`Mapping`,
    `Annotated` (its first argument) and string annotations (`"User"`, `"list[User]"`; the same for
    `from __future__ import annotations`, whose annotations are plain expressions in the tree). Each
    `TypeRef` carries the expression naming the class, the node of the checked module that holds it (the
    string literal, for a string annotation) and its qualified name. `replace_refs(expr, {ref: new})`
    rebuilds a type expression with some references replaced, unquoting string annotations on the way.
    `is_no_model_annotation(expr, qualify)`: `None`, `Any` or a `Response` class.

Path operations
    `route_decorator_calls(func, qualify, index, qualname)`: the decorators making `func` a path operation
    (receiver a FastAPI app or router of the index, or the index lists the function as an endpoint).
    `is_add_api_route(call, qualify, index)`: `<app>.add_api_route(path, endpoint, ...)`.
    `response_slots(func, call, qualify, return_annotation_counts, include_params)`: where the path
    operation declares a type FastAPI turns into a Pydantic field: `response_model=` (explicit wins, `None`
    included), else the return annotation (unless `is_no_model_annotation`), `responses={...: {"model": X}}`,
    and body parameters (not `Depends`/`Security`, directly or through `Annotated`).
    `keyword_arg(call, name)`: read a keyword argument (`with_keyword`, from `_engines`, sets one).

ORM classes and schemas
    `orm_class(index, qualname)`: the indexed mapped class as an `OrmClass` (kind "declarative",
    "dataclass" or "sqlmodel"; columns with their Python type, nullability, relationship flag), or None.
    `looks_secret(name)`: `password`, `hash`, `secret`, `token`, `api_key`, `salt`, ...
    `SchemaPlan(module, module_name, names, index, statement)` chooses the schema for an ORM class used by
    the top-level `statement` of the checked module: `read_schema(orm)` returns the name of an existing
    schema (this module's classes defined above `statement`, then the project's Pydantic models whose fields
    are all columns of the model, nearest module first, preferring `<Model>Read/Out/Public/Response/Schema`),
    or of a generated `class <Model>Read(BaseModel)` with `model_config = ConfigDict(from_attributes=True)`
    and one field per column (nullable ones as `X | None`, or `Optional[X]` in modules using that style;
    relationships left out; secret-looking columns left out with a comment). `input_schema(orm)` looks for
    `<Model>Create/In/Input/Update` only. `plan.imports` then holds the imports these names need, and
    `plan.apply(fix, node, new)` adds the replacement and the generated classes (after the imports, or right
    above `statement` when a field's type is a class of the module itself) to a `FixRequest`:

        plan = SchemaPlan(module, ctx.module_name, ctx.names, self.index, top_level_statement)
        name = plan.read_schema(orm)  # may generate a class
        fix = self.fix(applicability=Applicability.UNSAFE, title=plan.title("response_model"),
                       add_imports=plan.imports)
        plan.apply(fix, call, with_keyword(call, "response_model", cst.Name(name)))

    Lower-level pieces: `schema_fields`, `generated_schema`, `schema_statement`, `schema_insertion_index`,
    `local_schemas`, `pydantic_schemas_for`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.literals import literal_value
from fastsqla_lint.rules._engines import with_keyword

Qualify = Callable[[cst.BaseExpression], "str | None"]

# -- type expressions ----------------------------------------------------------------------------------

_UNION = frozenset(
    {"typing.Optional", "typing.Union", "typing_extensions.Optional", "typing_extensions.Union", "types.UnionType"}
)
_ALL_ARGS = frozenset(
    {
        "builtins.list",
        "builtins.set",
        "builtins.frozenset",
        "builtins.tuple",
        "typing.List",
        "typing.Set",
        "typing.FrozenSet",
        "typing.Tuple",
        "typing.Sequence",
        "typing.MutableSequence",
        "typing.AbstractSet",
        "typing.MutableSet",
        "typing.Collection",
        "typing.Iterable",
        "typing.Deque",
        "collections.deque",
        "collections.abc.Sequence",
        "collections.abc.MutableSequence",
        "collections.abc.Set",
        "collections.abc.MutableSet",
        "collections.abc.Collection",
        "collections.abc.Iterable",
    }
)
_VALUE_ARG = frozenset(
    {
        "builtins.dict",
        "typing.Dict",
        "typing.Mapping",
        "typing.MutableMapping",
        "typing.DefaultDict",
        "typing.OrderedDict",
        "collections.defaultdict",
        "collections.OrderedDict",
        "collections.abc.Mapping",
        "collections.abc.MutableMapping",
    }
)
_NO_MODEL = frozenset({"typing.Any", "typing_extensions.Any", "builtins.None"})


@dataclass(frozen=True, eq=False)
class TypeRef:
    """One class reference inside a type expression."""

    expr: cst.BaseExpression  # the Name/Attribute naming the class (inside `parsed` for string annotations)
    anchor: cst.BaseExpression  # the node of the checked module holding it: `expr`, or the string literal
    qualname: str | None
    parsed: cst.BaseExpression | None = None  # the parsed text of the string literal `anchor`, if any


def _subscript_args(node: cst.Subscript) -> list[cst.BaseExpression]:
    out = []
    for el in node.slice:
        if isinstance(el.slice, cst.Index):
            out.append(el.slice.value)
    return out


def _parse_string_annotation(node: cst.BaseExpression) -> cst.BaseExpression | None:
    value = literal_value(node)
    if not isinstance(value, str):
        return None
    try:
        return cst.parse_expression(value.strip())
    except Exception:  # not an expression: not a type we can read
        return None


def type_refs(expr: cst.BaseExpression | None, qualify: Qualify) -> Iterator[TypeRef]:
    """The class references of a type expression, through the wrappers FastAPI looks through.

    Unknown generics (`Page[User]`, `Literal[...]`) are not entered: they are classes of their own.
    """
    yield from _refs(expr, qualify, None, None)


def _refs(expr, qualify: Qualify, anchor, parsed) -> Iterator[TypeRef]:
    if expr is None:
        return
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        if anchor is not None:  # a string inside a string annotation: not a type
            return
        inner = _parse_string_annotation(expr)
        if inner is not None:
            yield from _refs(inner, qualify, expr, inner)
        return
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
        yield from _refs(expr.left, qualify, anchor, parsed)
        yield from _refs(expr.right, qualify, anchor, parsed)
        return
    if isinstance(expr, cst.Subscript):
        base = qualify(expr.value)
        args = _subscript_args(expr)
        if base in known.ANNOTATED:
            args = args[:1]
        elif base in _VALUE_ARG:
            args = args[-1:]
        elif base not in _UNION and base not in _ALL_ARGS:
            return
        for arg in args:
            yield from _refs(arg, qualify, anchor, parsed)
        return
    if isinstance(expr, (cst.Name, cst.Attribute)):
        if isinstance(expr, cst.Name) and expr.value == "None":
            return
        yield TypeRef(expr, anchor if anchor is not None else expr, qualify(expr), parsed)


def is_no_model_annotation(expr: cst.BaseExpression, qualify: Qualify) -> bool:
    """`None`, `Any` or a `Response` class: FastAPI then builds no response model from the annotation."""
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        inner = _parse_string_annotation(expr)
        return inner is not None and is_no_model_annotation(inner, qualify)
    if isinstance(expr, cst.Name) and expr.value == "None":
        return True
    qn = qualify(expr)
    if qn is None:
        return False
    return (
        qn in _NO_MODEL
        or qn in known.RESPONSE_CLASSES
        or any(qn.startswith(p) and qn.rsplit(".", 1)[-1].endswith("Response") for p in known.RESPONSE_CLASSES_PREFIXES)
    )


class _ByIdentity(cst.CSTTransformer):
    def __init__(self, replacements: dict[int, cst.BaseExpression]) -> None:
        super().__init__()
        self.replacements = replacements

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) not in self.replacements

    def on_leave(self, original_node, updated_node):  # type: ignore[override]
        return self.replacements.get(id(original_node), updated_node)


def replace_refs(expr: cst.BaseExpression, new: dict[TypeRef, cst.BaseExpression]) -> cst.BaseExpression:
    """`expr` with each reference replaced; string annotations holding a replaced reference are unquoted.

    The result is a type expression usable as a value (`response_model=list[UserRead]`).
    """
    direct: dict[int, cst.BaseExpression] = {}
    by_string: dict[int, tuple[cst.BaseExpression, dict[int, cst.BaseExpression]]] = {}
    for ref, value in new.items():
        if ref.parsed is None:
            direct[id(ref.expr)] = value
        else:
            by_string.setdefault(id(ref.anchor), (ref.parsed, {}))[1][id(ref.expr)] = value
    for anchor_id, (parsed, mapping) in by_string.items():
        direct[anchor_id] = parsed.visit(_ByIdentity(mapping))
    if id(expr) in direct:
        return direct[id(expr)]
    return expr.visit(_ByIdentity(direct))


# -- path operations -----------------------------------------------------------------------------------


def route_decorator_calls(func: cst.FunctionDef, qualify: Qualify, index, qualname: str | None) -> list[cst.Call]:
    """The `@<app or router>.<method>(...)` decorator calls making `func` (named `qualname`) a path operation.

    The receiver must be a FastAPI app or router known to the project index, or the index must list the
    function as an endpoint (an app created inside a factory function).
    """
    out = []
    is_route = None
    for dec in func.decorators:
        call = dec.decorator
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            continue
        if call.func.attr.value not in known.ROUTE_DECORATORS:
            continue
        receiver = qualify(call.func.value)
        if receiver is not None and index.app(receiver) is not None:
            out.append(call)
            continue
        if is_route is None:
            is_route = qualname is not None and index.route(qualname) is not None
        if is_route:
            out.append(call)
    return out


def is_add_api_route(call: cst.Call, qualify: Qualify, index) -> bool:
    """`<app or router>.add_api_route(path, endpoint, ...)`."""
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value != "add_api_route":
        return False
    receiver = qualify(func.value)
    return receiver is not None and index.app(receiver) is not None


def keyword_arg(call: cst.Call, name: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


@dataclass(frozen=True)
class ResponseSlot:
    """A type a path operation hands to FastAPI, and where it is written."""

    kind: str  # "response_model", "return", "responses" or "body"
    expr: cst.BaseExpression  # the whole type expression
    refs: tuple[TypeRef, ...]
    param: cst.Param | None = None


def _is_dependency_param(param: cst.Param, qualify: Qualify) -> bool:
    default = param.default
    if isinstance(default, cst.Call) and qualify(default.func) in known.DEPENDS_OR_SECURITY:
        return True
    ann = param.annotation.annotation if param.annotation is not None else None
    if isinstance(ann, cst.Subscript) and qualify(ann.value) in known.ANNOTATED:
        for meta in _subscript_args(ann)[1:]:
            if isinstance(meta, cst.Call) and qualify(meta.func) in known.DEPENDS_OR_SECURITY:
                return True
    return False


def response_slots(
    func: cst.FunctionDef | None,
    call: cst.Call,
    qualify: Qualify,
    return_annotation_counts: bool = True,
    include_params: bool = True,
) -> list[ResponseSlot]:
    """Where a path operation declares types that FastAPI validates.

    `call` is the route decorator (or `add_api_route` call) and `func` the endpoint when its definition
    is at hand. `return_annotation_counts` is False for FastAPI < 0.89, which ignored return annotations;
    `include_params` is False for the second and later decorators of one endpoint.
    """
    slots: list[ResponseSlot] = []
    explicit = keyword_arg(call, "response_model")
    if explicit is not None:
        value = explicit.value
        if not (isinstance(value, cst.Name) and value.value == "None"):
            slots.append(ResponseSlot("response_model", value, tuple(type_refs(value, qualify))))
    elif return_annotation_counts and func is not None and func.returns is not None:
        ann = func.returns.annotation
        if not is_no_model_annotation(ann, qualify):
            slots.append(ResponseSlot("return", ann, tuple(type_refs(ann, qualify))))
    responses = keyword_arg(call, "responses")
    if responses is not None and isinstance(responses.value, cst.Dict):
        for el in responses.value.elements:
            if not isinstance(el, cst.DictElement) or not isinstance(el.value, cst.Dict):
                continue
            for inner in el.value.elements:
                if isinstance(inner, cst.DictElement) and literal_value(inner.key) == "model":
                    slots.append(ResponseSlot("responses", inner.value, tuple(type_refs(inner.value, qualify))))
    if func is None or not include_params:
        return slots
    params = func.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.annotation is None or _is_dependency_param(param, qualify):
            continue
        ann = param.annotation.annotation
        slots.append(ResponseSlot("body", ann, tuple(type_refs(ann, qualify)), param))
    return slots


# -- schemas -------------------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"password|passwd|hash|secret|token|api_?key|salt", re.IGNORECASE)
PREFERRED_SUFFIXES = ("Read", "Out", "Public", "Response", "Schema")
INPUT_SUFFIXES = ("Create", "Update", "In", "Input", "Patch", "Filter", "Base")


def looks_secret(name: str) -> bool:
    """Whether a column name looks like it holds a secret (`hashed_password`, `api_key`, `salt`, ...)."""
    return SECRET_NAME.search(name) is not None


@dataclass(frozen=True)
class SchemaField:
    """One field of a generated schema: its name and Python type (source text and the imports it needs)."""

    name: str
    annotation: str  # e.g. "int", "datetime"; "Any" when the column's type is unknown
    nullable: bool = False
    imports: tuple[tuple[str, str | None], ...] = ()  # (module, name) pairs, as `Rule.fix(add_imports=...)` takes
    local: bool = False  # the type names a class defined in the target module itself


@dataclass(frozen=True)
class GeneratedSchema:
    name: str
    source: str  # the class statement, ending with a newline
    imports: tuple[tuple[str, str | None], ...] = field(default=())


def uses_optional_style(module: cst.Module) -> bool:
    """Whether the module writes nullable types as `Optional[X]` rather than `X | None`."""
    code = module.code
    return "Optional[" in code and "| None" not in code


def generated_schema(
    model_name: str,
    fields: Sequence[SchemaField],
    optional_style: bool = False,
    name: str | None = None,
    pydantic_v1: bool = False,
) -> GeneratedSchema:
    """The source of `class <Model>Read(BaseModel)` for the given columns.

    Columns whose names look secret are left out, each with a one-line comment saying so. Pydantic 1
    gets `class Config: orm_mode = True` (at the end) instead of `model_config = ConfigDict(...)`.
    """
    class_name = name or f"{model_name}Read"
    if pydantic_v1:
        imports: list[tuple[str, str | None]] = [("pydantic", "BaseModel")]
        lines = [f"class {class_name}(BaseModel):"]
    else:
        imports = [("pydantic", "BaseModel"), ("pydantic", "ConfigDict")]
        lines = [f"class {class_name}(BaseModel):", "    model_config = ConfigDict(from_attributes=True)", ""]
    for f in fields:
        if looks_secret(f.name):
            lines.append(f"    # {f.name} is left out: its name looks secret")
            continue
        ann = f.annotation
        if f.nullable:
            if optional_style:
                ann = f"Optional[{ann}]"
                imports.append(("typing", "Optional"))
            else:
                ann = f"{ann} | None"
        if f.annotation == "Any":
            imports.append(("typing", "Any"))
        imports.extend(f.imports)
        lines.append(f"    {f.name}: {ann}")
    if lines[-1] == "":
        lines.pop()
    if pydantic_v1:
        lines += ["", "    class Config:", "        orm_mode = True"]
    unique = tuple(dict.fromkeys(imports))
    return GeneratedSchema(class_name, "\n".join(lines) + "\n", unique)


def schema_statement(schema: GeneratedSchema, module: cst.Module) -> cst.BaseStatement:
    """The generated class as a statement of `module` (its indentation and newlines), two blank lines above."""
    stmt = cst.parse_statement(schema.source, config=module.config_for_parsing)
    blank = cst.EmptyLine(indent=False, whitespace=cst.SimpleWhitespace(""))
    return stmt.with_changes(leading_lines=[blank, blank])


def _is_import_statement(stmt: cst.CSTNode) -> bool:
    if isinstance(stmt, cst.SimpleStatementLine):
        return all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)
    if isinstance(stmt, (cst.If, cst.Try)):
        # `if TYPE_CHECKING:` / `try: import x except ImportError: ...` blocks of imports
        inner = list(stmt.body.body)
        return bool(inner) and all(
            _is_import_statement(s) or isinstance(s, cst.SimpleStatementLine) and all(isinstance(x, cst.Pass) for x in s.body)
            for s in inner
        )
    return False


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def schema_insertion_index(module: cst.Module) -> int:
    """Where a generated class goes in `module.body`: after the leading docstring and imports.

    An import written right against the statement after it (no blank line, such as
    `import app.models  # noqa: F401` above `create_all`) stays with that statement.
    """
    body = module.body
    pos = 0
    for i, stmt in enumerate(body):
        if _is_import_statement(stmt) or (i == 0 and _is_docstring(stmt)):
            pos = i + 1
            continue
        break
    if (
        1 < pos < len(body)
        and isinstance(body[pos - 1], cst.SimpleStatementLine)
        and body[pos - 1].leading_lines  # a group of its own (blank line or comment above it) ...
        and not _blank_line_before(body[pos])  # ... written against the statement that follows
    ):
        pos -= 1
    return pos


def _blank_line_before(stmt: cst.CSTNode) -> bool:
    return any(line.comment is None for line in getattr(stmt, "leading_lines", ()))


def class_names_in(module: cst.Module) -> set[str]:
    return {s.name.value for s in module.body if isinstance(s, cst.ClassDef)}


def unique_name(wanted: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}{n}" in taken:
        n += 1
    return f"{wanted}{n}"


# -- ORM classes and Pydantic models, as the project index knows them -----------------------------------


@dataclass(frozen=True)
class OrmColumn:
    name: str
    annotation: str | None  # the Python type (without `Optional`), None if unknown
    nullable: bool
    relationship: bool
    module: str = ""  # the module the type is written in (the declaring class's)
    type_names: tuple[str, ...] = ()  # qualified names the type needs (`datetime.datetime`)


@dataclass(frozen=True)
class OrmClass:
    qualname: str
    name: str
    kind: str  # "declarative", "dataclass" or "sqlmodel"
    module: str
    columns: tuple[OrmColumn, ...]


def orm_class(index, qualname: str | None) -> OrmClass | None:
    """The indexed mapped class `qualname` names, or None (unknown names are not ORM classes)."""
    if qualname is None:
        return None
    mapped = index.mapped_class(qualname)
    if mapped is None:
        return None
    columns = []
    for col in mapped.columns:
        owner = index.split(col.owner) if col.owner else None
        columns.append(
            OrmColumn(
                col.name,
                col.python_type,
                col.nullable,
                col.relationship,
                owner[0].name if owner else mapped.module,
                tuple(col.type_names),
            )
        )
    return OrmClass(mapped.qualname, mapped.qualname.rsplit(".", 1)[-1], mapped.kind, mapped.module, tuple(columns))


@dataclass(frozen=True)
class SchemaInfo:
    """A Pydantic model that could serve as a schema: where it lives and its field names."""

    qualname: str
    name: str
    module: str
    fields: frozenset[str]
    from_attributes: bool | None = None  # `from_attributes=True` / `orm_mode = True` in its config


def pydantic_schemas_for(index, orm: OrmClass) -> list[SchemaInfo]:
    """The project's Pydantic models, as schema candidates for `orm` (ranked later by `_schema_rank`)."""
    out = []
    for model in index.pydantic_models(name_prefix=orm.name):
        out.append(_schema_info(model))
    return out


def _schema_info(model) -> SchemaInfo:
    name = model.qualname.rsplit(".", 1)[-1]
    return SchemaInfo(model.qualname, name, model.module, frozenset(model.field_names), model.from_attributes)


def local_schemas(
    module: cst.Module,
    qualify: Qualify,
    module_name: str | None,
    before: cst.CSTNode | None = None,
    index=None,
) -> list[SchemaInfo]:
    """Pydantic models defined at the top level of the checked module itself (above `before`, if given).

    What the index knows about a class (inherited fields, config) is used when it has it; a class generated
    by an earlier fix pass is not in the index (built before fixes run) and is read from the tree.
    """
    out = []
    for stmt in module.body:
        if stmt is before:
            break
        if not isinstance(stmt, cst.ClassDef):
            continue
        name = stmt.name.value
        qn = f"{module_name}.{name}" if module_name else name
        known_model = index.pydantic_model(qn) if index is not None and module_name else None
        if known_model is not None:
            out.append(_schema_info(known_model))
            continue
        if not _is_pydantic_class(stmt, qualify):
            continue
        fields = set()
        from_attributes = None
        for line in stmt.body.body:
            if isinstance(line, cst.ClassDef) and line.name.value == "Config":
                from_attributes = from_attributes or _config_class_from_attributes(line)
            if not isinstance(line, cst.SimpleStatementLine):
                continue
            for small in line.body:
                if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                    ann = qualify(small.annotation.annotation) if small.annotation else None
                    if ann not in ("typing.ClassVar",) and small.target.value != "model_config":
                        fields.add(small.target.value)
                elif isinstance(small, cst.Assign) and isinstance(small.value, cst.Call):
                    if any(
                        a.keyword is not None and a.keyword.value == "from_attributes" and literal_value(a.value) is True
                        for a in small.value.args
                    ):
                        from_attributes = True
        out.append(SchemaInfo(qn, name, module_name or "", frozenset(fields), from_attributes))
    return out


def _config_class_from_attributes(node: cst.ClassDef) -> bool:
    """Pydantic 1 `class Config: orm_mode = True` (or `from_attributes = True`)."""
    for line in node.body.body:
        if isinstance(line, cst.SimpleStatementLine):
            for small in line.body:
                if (
                    isinstance(small, cst.Assign)
                    and any(
                        isinstance(t.target, cst.Name) and t.target.value in ("orm_mode", "from_attributes")
                        for t in small.targets
                    )
                    and literal_value(small.value) is True
                ):
                    return True
    return False


def _is_pydantic_class(node: cst.ClassDef, qualify: Qualify) -> bool:
    table = any(
        a.keyword is not None and a.keyword.value == "table" and literal_value(a.value) is True for a in node.bases
    )
    for base in node.bases:
        if base.keyword is not None:
            continue
        qn = qualify(base.value)
        if qn in known.PYDANTIC_BASE_MODEL or (qn in known.SQLMODEL and not table):
            return True
    return False


def _schema_rank(schema: SchemaInfo, orm: OrmClass, suffixes: Sequence[str]) -> int | None:
    """Lower is better; None: not a schema for this class."""
    columns = {c.name for c in orm.columns if not c.relationship}
    if not schema.fields or not schema.fields <= columns:
        return None
    if any(looks_secret(f) for f in schema.fields) and suffixes is PREFERRED_SUFFIXES:
        return None
    for i, suffix in enumerate(suffixes):
        if schema.name == orm.name + suffix:
            return i
    if schema.name == orm.name and schema.module.rsplit(".", 1)[-1] in ("schemas", "schema"):
        return len(suffixes)
    if (
        suffixes is PREFERRED_SUFFIXES
        and schema.name.startswith(orm.name)
        and schema.name[len(orm.name) : len(orm.name) + 1].isupper()
        and not schema.name.endswith(INPUT_SUFFIXES)
    ):
        return len(suffixes) + 1  # `UserDetail`, `UserSummary`
    return None


class SchemaPlan:
    """Chooses (or generates) Pydantic schemas for ORM classes used in one module, for one fix.

    `read_schema(orm)` / `input_schema(orm)` return the name to write in the module; `imports` collects
    the imports that name needs; `apply(fix, node, new)` adds the node replacement and the generated
    classes to a `FixRequest`.
    """

    def __init__(
        self,
        module: cst.Module,
        module_name: str | None,
        names,
        index,
        statement: cst.CSTNode | None = None,
        versions=None,
    ) -> None:
        """`statement` is the top-level statement the schema is used in: local schemas must be above it.

        With `versions`: FastAPI < 0.100 only validates ORM objects through schemas with `orm_mode` /
        `from_attributes`, and Pydantic < 2 (implied by FastAPI < 0.100) gets a `class Config:
        orm_mode = True` instead of `ConfigDict`.
        """
        self.module = module
        self.require_from_attributes = versions is not None and versions.at_least("fastapi", "0.100") is False
        # FastAPI < 0.100 only supports Pydantic 1
        self.pydantic_v1 = versions is not None and (
            versions.at_least("pydantic", "2.0") is False or versions.at_least("fastapi", "0.100") is False
        )
        self.statement = statement
        self.module_name = module_name
        self.names = names
        self.index = index
        self.imports: list[tuple[str, str | None]] = []
        self.generated: list[GeneratedSchema] = []
        self.chosen: list[str] = []
        self.needs_local_names = False  # a generated field's type is a class of this module
        self._generated_for: dict[str, str] = {}
        self._qualify = lambda e: names.qualified_name(e)

    # -- choosing ----------------------------------------------------------------------------------
    def read_schema(self, orm: OrmClass) -> str | None:
        """An existing response schema for `orm`, else a generated `<Model>Read` (None: no column is known)."""
        existing = self._existing(orm, PREFERRED_SUFFIXES)
        if existing is not None:
            return existing
        if orm.qualname in self._generated_for:
            return self._generated_for[orm.qualname]
        fields = schema_fields(self.index, orm, self.names)
        if not any(not looks_secret(f.name) for f in fields):
            return None  # nothing known to serialise: no schema rather than an empty one
        taken = set(self.names.defined) | set(self.names.imports) | class_names_in(self.module)
        taken |= {g.name for g in self.generated}
        name = unique_name(f"{orm.name}Read", taken)
        optional = uses_optional_style(self.module) or self.pydantic_v1  # Pydantic 1 era: Python < 3.10
        schema = generated_schema(orm.name, fields, optional, name, self.pydantic_v1)
        self.generated.append(schema)
        self._generated_for[orm.qualname] = name
        self.needs_local_names = self.needs_local_names or any(f.local for f in fields)
        self.imports.extend(schema.imports)
        self.chosen.append(f"a generated `{name}`")
        return name

    def input_schema(self, orm: OrmClass) -> str | None:
        """An existing input schema (`<Model>Create`, `In`, ...) for `orm`, or None."""
        return self._existing(orm, ("Create", "In", "Input", "Update"))

    def _existing(self, orm: OrmClass, suffixes: Sequence[str]) -> str | None:
        """The best existing schema: in this module or the model's own first, then by name, then by module."""
        best: tuple[tuple, SchemaInfo] | None = None
        local = local_schemas(self.module, self._qualify, self.module_name, self.statement, self.index)
        for order, candidates in enumerate((local, pydantic_schemas_for(self.index, orm))):
            for schema in candidates:
                rank = _schema_rank(schema, orm, suffixes)
                if order == 1 and (schema.module == self.module_name or not self._importable(schema)):
                    continue  # this module's own schemas come from the scan above (only those defined above)
                if rank is None or (self.require_from_attributes and not schema.from_attributes):
                    continue
                near = 0 if schema.module in (self.module_name, orm.module) else 1
                key = (near, rank, order, schema.qualname)
                if best is None or key < best[0]:
                    best = (key, schema)
        if best is None:
            return None
        schema = best[1]
        if schema.module != (self.module_name or "") and self.names.qualify(schema.name) != schema.qualname:
            self.imports.append((schema.module, schema.name))
        self.chosen.append(f"`{schema.name}`")
        return schema.name

    def _importable(self, schema: SchemaInfo) -> bool:
        if schema.module == self.module_name:
            return True
        bound = self.names.qualify(schema.name)
        if bound is not None and bound != schema.qualname and self.index.canonical(bound) != schema.qualname:
            return False  # the name means something else here
        closure = self.index.import_closure(schema.module)
        return self.module_name is None or self.module_name not in closure

    # -- output ------------------------------------------------------------------------------------
    def title(self, what: str) -> str:
        used = ", ".join(dict.fromkeys(self.chosen))
        return f"Use {used} as `response_model`" if what == "response_model" else f"Annotate with {used}"

    def apply(self, fix, node: cst.CSTNode, new: cst.CSTNode) -> None:
        """Add `node -> new` and the generated classes (after the imports) to `fix`."""
        if not self.generated:
            fix.also(node, new)
            return
        statements = [schema_statement(g, self.module) for g in self.generated]
        body = self.module.body
        pos = schema_insertion_index(self.module)
        if self.needs_local_names and self.statement in body:
            pos = body.index(self.statement)  # after the module's own classes the fields name
        if pos < len(body):
            # the statement after the classes gets two blank lines (and takes `node -> new` if it holds it)
            following = body[pos]
            updated = following.deep_replace(node, new) if _contains(following, node) else following
            if updated is following:
                fix.also(node, new)
            updated = updated.with_changes(leading_lines=_two_blank_lines(following.leading_lines))
            if pos == 0:
                statements[0] = statements[0].with_changes(leading_lines=())
            fix.also(following, cst.FlattenSentinel([*statements, updated]))
        else:
            fix.also(node, new)
            anchor = body[pos - 1]
            fix.also(anchor, cst.FlattenSentinel([anchor, *statements]))


def _two_blank_lines(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """`lines` with at least two blank lines before the first comment."""
    lines = list(lines)
    blank = 0
    while blank < len(lines) and lines[blank].comment is None:
        blank += 1
    empty = cst.EmptyLine(indent=False, whitespace=cst.SimpleWhitespace(""))
    return [empty] * max(0, 2 - blank) + lines


def _contains(tree: cst.CSTNode, node: cst.CSTNode) -> bool:
    found = False

    class _Find(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            nonlocal found
            if n is node:
                found = True
            return not found

    tree.visit(_Find())
    return found


def schema_fields(index, orm: OrmClass, names) -> list[SchemaField]:
    """One `SchemaField` per column of `orm` (relationships left out), typed for the module of `names`.

    A type that cannot be named in that module becomes `Any`.
    """
    out = []
    for col in orm.columns:
        if col.relationship:
            continue
        ann, imports, local = _retarget_type(index, col, names)
        out.append(SchemaField(col.name, ann, col.nullable, imports, local))
    return out


def _retarget_type(index, col: OrmColumn, names) -> tuple[str, tuple, bool]:
    """The column's type, written in its class's module, rewritten for the module whose name table is `names`.

    Returns the annotation, the imports it needs, and whether it names a class of that module itself.
    """
    from fastsqla_lint.names import dotted_name

    if col.annotation is None:
        return "Any", (), False
    try:
        expr = cst.parse_expression(col.annotation)
    except Exception:
        return "Any", (), False
    summary = index.module(col.module) if col.module else None
    imports: list[tuple[str, str | None]] = []
    failed = False
    local = False

    def qualify_there(dotted: str) -> str | None:
        last = dotted.rsplit(".", 1)[-1]
        hits = [q for q in col.type_names if q.rsplit(".", 1)[-1] == last]
        if len(hits) == 1:
            return hits[0]
        head, _, rest = dotted.partition(".")
        target = None
        if summary is not None:
            if head in summary.imports:
                target = summary.imports[head]
            elif head in summary.defined:
                target = f"{col.module}.{head}"
        if target is None and head in _BUILTIN_TYPES:
            target = f"builtins.{head}"
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    class _Retarget(cst.CSTTransformer):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return not isinstance(node, (cst.Name, cst.Attribute, cst.SimpleString))

        def on_leave(self, original_node, updated_node):  # type: ignore[override]
            nonlocal failed, local
            if isinstance(original_node, cst.SimpleString):
                failed = True  # a forward reference: not a column type a schema can name
                return updated_node
            if not isinstance(original_node, (cst.Name, cst.Attribute)):
                return updated_node
            dotted = dotted_name(original_node)
            qn = qualify_there(dotted) if dotted else None
            if qn is None:
                failed = True
                return updated_node
            qn = index.canonical(qn)
            if qn.startswith("builtins."):
                return cst.Name(qn[len("builtins.") :])
            mod, _, attr = qn.rpartition(".")
            here = names.qualify(attr)
            if here is not None and index.canonical(here) != qn:
                # the short name means something else here: use the module if it is imported (`dt.datetime`)
                alias = next((k for k, v in sorted(names.imports.items()) if v == mod), None)
                if alias is None:
                    failed = True
                    return updated_node
                return cst.Attribute(cst.Name(alias), cst.Name(attr))
            if here is None:
                imports.append((mod, attr))
            elif mod == names.module_name:
                local = True
            return cst.Name(attr)

    new = expr.visit(_Retarget())
    if failed:
        return "Any", (), False
    return cst.Module([]).code_for_node(new), tuple(imports), local


_BUILTIN_TYPES = frozenset({"int", "str", "float", "bool", "bytes", "dict", "list", "set", "tuple", "frozenset", "object"})
