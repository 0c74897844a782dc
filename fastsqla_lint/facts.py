"""Per-file facts for the project index, collected from the parsed LibCST tree in one targeted pass.

Everything here is plain data (frozen dataclasses, tuples, dicts of literals), so a `ModuleSummary` can
be pickled, cached and merged from worker processes. Names are qualified with the module's own light
name table (`names.NameResolver`); re-exports across the project are followed later by the index.

What is visited: the module body (descending into `if`/`try`/`with`/`for`/`while`/`match` blocks),
class bodies, function signatures and decorators, and function bodies. Expressions inside statements
are only searched (for `yield`, `Depends(...)`, `include_router`, `add_api_route`,
`dependency_overrides[...] = f`, dynamic imports and calls) when the file's text contains one of
`BODY_NEEDLES`; otherwise none of those facts can exist and the search is skipped. When `yield` is the
only needle present, a function body is searched only if the text from its `def` to the next `def` /
`class` / decorator indented no deeper contains `yield`.

Line numbers. LibCST nodes carry no positions, and computing them (PositionProvider, or a code
generation pass) costs a large fraction of a parse. Facts are visited in source order, so a cursor over
the text finds each fact's line with one regex search from the previous fact's position, matching the
statement's start: `import x` / `from x` / `def NAME` / `class NAME` / `@` / the first name of an
assignment (at column 0 for statements directly in the module body, so that a search never lands inside
a function), or a callee name (`Depends`) for calls. Multi-line string statements (docstrings) and
assignments are stepped over, so code-like text inside them is not taken for a statement. The cursor
never passes a fact's real position (unless the statement is written in a form its pattern does not
expect, such as a line break right after `from`), so a miss makes a line too early, not too late; the
tests check import, `def` and `class` lines against Python's own parser on real code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.literals import UNKNOWN, literal_value
from fastsqla_lint.names import NameResolver, dotted_name, resolve_relative
from fastsqla_lint.walk import child_fields, children

# Scopes of an import statement.
MODULE = "module"  # runs when the module is imported (module body, class bodies, if/try/with/for blocks)
FUNCTION = "function"  # inside a function body: runs only when the function is called
TYPE_CHECKING = "type_checking"  # under `if TYPE_CHECKING:`: never runs
MAIN = "main"  # under `if __name__ == "__main__":`: runs only when the file is executed as a script

BODY_NEEDLES = (
    "yield",
    "Depends",
    "Security",
    "dependency_overrides",
    "include_router",
    "add_api_route",
    "import_module",
    "__import__",
    "walk_packages",
)

DYNAMIC_IMPORTS = frozenset(
    {"importlib.import_module", "builtins.__import__", "importlib.__import__", "pkgutil.walk_packages"}
)
TYPE_CHECKING_NAMES = frozenset({"typing.TYPE_CHECKING", "typing_extensions.TYPE_CHECKING"})
OPTIONAL = frozenset({"typing.Optional", "typing_extensions.Optional"})
UNION = frozenset({"typing.Union", "typing_extensions.Union"})
CLASSVAR = frozenset({"typing.ClassVar", "typing_extensions.ClassVar"})

# SQLAlchemy column types -> (python type source, qualified names it needs), by the type's class name.
SA_PYTHON_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {}
for _names, _py in (
    (("Integer", "BigInteger", "SmallInteger", "INTEGER", "BIGINT", "SMALLINT", "INT"), ("int", ())),
    (
        ("String", "Text", "Unicode", "UnicodeText", "VARCHAR", "CHAR", "NVARCHAR", "NCHAR", "TEXT", "CLOB",
         "AutoString"),
        ("str", ()),
    ),
    (("Boolean", "BOOLEAN"), ("bool", ())),
    (("Float", "REAL", "FLOAT", "Double", "DOUBLE", "DOUBLE_PRECISION"), ("float", ())),
    (("Numeric", "NUMERIC", "DECIMAL"), ("Decimal", ("decimal.Decimal",))),
    (("DateTime", "TIMESTAMP", "DATETIME"), ("datetime", ("datetime.datetime",))),
    (("Date", "DATE"), ("date", ("datetime.date",))),
    (("Time", "TIME"), ("time", ("datetime.time",))),
    (("Interval",), ("timedelta", ("datetime.timedelta",))),
    (("LargeBinary", "BLOB", "BINARY", "VARBINARY", "LargeBinaryType"), ("bytes", ())),
    (("JSON", "JSONB"), ("dict", ())),
    (("Uuid", "UUID", "GUID"), ("UUID", ("uuid.UUID",))),
    (("ARRAY",), ("list", ())),
):
    for _n in _names:
        SA_PYTHON_TYPES[_n] = _py


# --------------------------------------------------------------------------------------------------
# Fact types


@dataclass(frozen=True)
class ImportFact:
    """One import statement. `modules` are the modules it may run, absolute, most specific last:
    `import a.b.c` -> ("a.b.c",); `from a import b, c` -> ("a", "a.b", "a.c") (`a.b` counts only if it
    is a module of the project); parent packages are implied and added by the index."""

    line: int
    modules: tuple[str, ...]
    scope: str  # MODULE / FUNCTION / TYPE_CHECKING / MAIN
    conditional: bool = False  # inside if/try/for/while/match at its level (may not run)
    function: str | None = None  # local qualname of the enclosing function (scope FUNCTION)
    star: bool = False


@dataclass(frozen=True)
class DependsFact:
    """One `Depends(...)` / `Security(...)` (or a dependency override)."""

    target: str | None  # qualified name of the dependency callable as written in its module
    form: str  # "name" | "call" (Depends(f())) | "lambda" | "class" (Depends() with no argument) | "other"
    where: str  # "default" | "annotated" | "alias" | "dependencies" | "body" | "override" | "override_key"
    line: int
    security: bool = False
    source: str = ""  # source of the dependency argument
    function: str | None = None  # full qualname of the function it sits in (signature or body)
    scope: str | None = None  # literal `scope=` of Depends, if any
    use_cache: bool | None = None


@dataclass(frozen=True)
class ParamFact:
    name: str
    kind: str  # "posonly" | "regular" | "kwonly" | "star" | "starstar"
    annotation: str | None = None
    default: str | None = None
    annotation_qn: str | None = None  # qualified name of a dotted annotation (`SessionDep`)
    depends: DependsFact | None = None  # from the default or from `Annotated[T, Depends(f)]`

    @property
    def default_is_depends(self) -> bool:
        """`db: Session = Depends(get_db)` (as opposed to `Annotated[...]` or no dependency)."""
        return self.depends is not None and self.depends.where == "default"


@dataclass(frozen=True)
class FunctionFact:
    qualname: str  # module.Class.method / module.outer.inner
    name: str
    module: str
    line: int
    is_async: bool = False
    is_generator: bool = False  # `yield` / `yield from` in its own body (nested defs excluded)
    decorators: tuple[str, ...] = ()  # qualified callee of each decorator (source text when unresolvable)
    params: tuple[ParamFact, ...] = ()
    returns: str | None = None
    class_name: str | None = None  # full qualname of the class a method belongs to
    nested: bool = False  # defined inside another function
    # For generator functions: (callee qualified name, qualified name of its first argument or `bind=`)
    calls: tuple[tuple[str, str | None], ...] = ()

    @property
    def is_async_generator(self) -> bool:
        return self.is_async and self.is_generator

    def param(self, name: str) -> ParamFact | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class FieldFact:
    """One class-level attribute (annotated or assigned), with what its annotation and value say."""

    name: str
    annotation: str | None = None
    mapped: bool = False  # annotation is Mapped[...]
    classvar: bool = False
    python_type: str | None = None  # the annotation's (or Mapped[...]'s) type without Optional / None
    optional: bool = False  # Optional[...] / `| None` / Union[..., None]
    type_names: tuple[str, ...] = ()  # qualified names used by python_type (to import it elsewhere)
    value_call: str | None = None  # qualified callee of the value (`sqlalchemy.orm.mapped_column`)
    primary_key: bool = False
    nullable: bool | None = None  # explicit literal nullable=
    foreign_key: str | None = None
    column_type: str | None = None  # legacy Column(Type): the Python type
    column_type_names: tuple[str, ...] = ()
    has_value: bool = False


@dataclass(frozen=True)
class ClassFact:
    qualname: str
    name: str
    module: str
    line: int
    bases: tuple[str, ...] = ()  # qualified names (source text when unresolvable)
    keywords: dict = field(default_factory=dict)  # class keywords: name -> literal value (or source)
    decorators: tuple[str, ...] = ()  # qualified callee of each decorator
    abstract: bool = False  # `__abstract__ = True`
    tablename: str | None = None
    fields: tuple[FieldFact, ...] = ()
    methods: tuple[str, ...] = ()
    from_attributes: bool | None = None  # model_config from_attributes / class Config orm_mode
    nested: bool = False


@dataclass(frozen=True)
class BindingFact:
    """A module-level `NAME = <call>` (or annotated). The index classifies it by the callee."""

    name: str
    qualname: str
    line: int
    call: str | None  # qualified callee (`sqlalchemy.orm.sessionmaker`)
    chained: bool = False  # `sessionmaker(...)()`: `call` is the inner callee, whose result is called
    args: tuple[str | None, ...] = ()  # qualified names of dotted positional arguments (None otherwise)
    arg_sources: tuple[str, ...] = ()
    keywords: dict = field(default_factory=dict)  # name -> source
    keyword_names: dict = field(default_factory=dict)  # name -> qualified name, for dotted values
    literals: dict = field(default_factory=dict)  # name -> literal value, for literal values
    # engine URLs: ("literal" | "template" | "env-default", text) | ("ref", qualname) | ("drivername", name);
    # a template writes each interpolated part as `rules._engines.INTERPOLATED`
    url: tuple[str, str] | None = None
    # inner call for `scoped_session(sessionmaker(...))`: its callee, bind and literal kwargs
    inner_call: str | None = None
    inner_bind: str | None = None
    inner_literals: dict = field(default_factory=dict)
    dependencies: tuple[DependsFact, ...] = ()  # `dependencies=[Depends(f)]`


@dataclass(frozen=True)
class AliasFact:
    """`SessionDep = Annotated[Session, Depends(get_db)]` (also with TypeAlias / `type X = ...`)."""

    name: str
    qualname: str
    line: int
    type_source: str
    type_qn: str | None
    depends: DependsFact


@dataclass(frozen=True)
class RouteFact:
    function: str | None  # qualified name of the endpoint
    owner: str | None  # qualified name of the app / router (None when local to a function)
    method: str  # get/post/.../api_route/add_api_route
    line: int
    module: str
    path: str | None = None
    methods: tuple[str, ...] = ()  # methods=[...] of api_route / add_api_route
    has_response_model: bool = False  # explicit response_model= (None included)
    response_model: str | None = None  # its source
    response_model_names: tuple[str, ...] = ()  # qualified names inside it
    status_code: object = None
    responses_models: tuple[str, ...] = ()  # qualified names of {"model": X} in responses=
    dependencies: tuple[DependsFact, ...] = ()
    keywords: dict = field(default_factory=dict)  # every keyword: name -> source
    via: str = "decorator"  # "decorator" | "add_api_route"


@dataclass(frozen=True)
class IncludeFact:
    owner: str | None
    router: str | None
    line: int
    module: str
    prefix: str | None = None
    dependencies: tuple[DependsFact, ...] = ()
    function: str | None = None


@dataclass(frozen=True)
class TableFact:
    name: str | None  # the table name literal
    metadata: str | None  # qualified name of the metadata argument (`app.db.Base.metadata`)
    line: int
    module: str
    assigned_to: str | None = None


# --------------------------------------------------------------------------------------------------
# Line finding


class _Lines:
    """A forward-only cursor over the text: the line of the next match of a pattern."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def find(self, pattern: re.Pattern[str]) -> int:
        m = pattern.search(self.text, self.pos)
        if m is None:
            return self.line
        start = m.start(1) if m.groups() else m.start()
        self.line += self.text.count("\n", self.pos, start)
        self.pos = start + 1
        return self.line

    def skip(self, raw: str) -> None:
        """Move past the next occurrence of `raw` (the source of a multi-line string literal), so that
        code-like text inside docstrings is never taken for a statement."""
        idx = self.text.find(raw, self.pos)
        if idx < 0:
            return
        end = idx + len(raw)
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end


    def find_named(self, pattern: re.Pattern[str], name: str | None) -> int:
        """Like `find`, for a pattern whose group 2 must equal `name` (blanks ignored; None: any)."""
        for m in pattern.finditer(self.text, self.pos):
            got = m.group(2)
            if (
                name is None
                or got == name
                or (" " in got or "\t" in got) and got.replace(" ", "").replace("\t", "") == name
            ):
                start = m.start(1)
                self.line += self.text.count("\n", self.pos, start)
                self.pos = start + 1
                return self.line
        return self.line


# Statements found by the name they start with (group 2). Statements directly in the module body start
# at column 0 (or after `;`), which keeps a search from matching inside a function body; others may be
# indented, or follow the `:` of a one-line compound statement.
_STARTS = {True: r"(?:^|;[ \t]*)", False: r"(?:^|[;:])[ \t]*"}
_KINDS = {
    "decorator": r"(@)()",
    "import": r"(import[ \t]+([\w.]+))",
    "from": r"(from[ \t]+(\.*(?:[ \t]*(?!import\b)[\w.]+)?))",
    "def": r"((?:async[ \t]+)?def[ \t]+(\w+))",
    "class": r"(class[ \t]+(\w+))",
    "stmt": r"((?:type[ \t]+)?\(?(\w+))",
}
_STATEMENT_RES = {
    (kind, top): re.compile(_STARTS[top] + body, re.M) for kind, body in _KINDS.items() for top in (True, False)
}
_BLOCK_START_RE = re.compile(r"^([ \t]*)(?:@|(?:async[ \t]+)?def\b|class\b)", re.M)
_TOKENS: dict[str, re.Pattern[str]] = {}


def _token(name: str) -> re.Pattern[str]:
    """A pattern for one identifier (a callee name such as `Depends`), cached: there are few of them."""
    pat = _TOKENS.get(name)
    if pat is None:
        pat = _TOKENS[name] = re.compile(rf"(\b{re.escape(name)}\b)")
    return pat


# --------------------------------------------------------------------------------------------------
# The collector


@dataclass
class Collected:
    imports: list[ImportFact] = field(default_factory=list)
    star_imports: list[str] = field(default_factory=list)
    dynamic_imports: list[tuple[int, str]] = field(default_factory=list)
    functions: dict[str, FunctionFact] = field(default_factory=dict)
    classes: dict[str, ClassFact] = field(default_factory=dict)
    bindings: dict[str, list[BindingFact]] = field(default_factory=dict)
    name_aliases: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, AliasFact] = field(default_factory=dict)
    routes: list[RouteFact] = field(default_factory=list)
    includes: list[IncludeFact] = field(default_factory=list)
    depends: list[DependsFact] = field(default_factory=list)
    tables: list[TableFact] = field(default_factory=list)


class _Func:
    """A function being collected: its yields and calls, and its own import table when it imports."""

    __slots__ = ("qualname", "local", "names", "generator", "calls")

    def __init__(self, qualname: str, local: str, names: NameResolver) -> None:
        self.qualname = qualname
        self.local = local
        self.names = names
        self.generator = False
        self.calls: list[tuple[str, str | None]] = []


def _child_resolver(names: NameResolver) -> NameResolver:
    child = NameResolver(names.module_name, names.is_package)
    child.imports = dict(names.imports)
    child.defined = names.defined
    return child


class Collector:
    def __init__(self, module: cst.Module, names: NameResolver, text: str | None) -> None:
        self.module = module
        self.names = names
        self.modname = names.module_name or ""
        self.text = text if text is not None else module.code
        self.lines = _Lines(self.text)
        self.deep = any(n in self.text for n in BODY_NEEDLES)
        # needles other than `yield`: FastAPI wiring and dynamic imports can sit anywhere
        self.deep_wiring = self.deep and any(n in self.text for n in BODY_NEEDLES[1:])
        # whether the statements being visited are searched (set per function and class body)
        self.scanning = self.deep
        self.out = Collected()
        self.assign_counts: dict[str, int] = {}
        self.handled: set[int] = set()  # Depends calls already recorded by a specific handler
        self._func: _Func | None = None
        self._top = True  # visiting a statement directly in the module body
        self._stmt_lead: str | None = None  # first name of the module-level assignment being visited
        self._stmt_line: int | None = None

    # -- helpers ----------------------------------------------------------------------------------
    def src(self, node: cst.CSTNode) -> str:
        """The source text of an expression (a code generation pass only for uncommon shapes)."""
        fast = _fast_source(node)
        return fast if fast is not None else self.module.code_for_node(node)

    @property
    def resolver(self) -> NameResolver:
        return self._func.names if self._func is not None else self.names

    def qn(self, expr: cst.BaseExpression | None) -> str | None:
        return self.resolver.qualified_name(expr)

    def qn_or_src(self, expr: cst.BaseExpression) -> str:
        return self.qn(expr) or self.src(expr)

    def full(self, local: str) -> str:
        return f"{self.modname}.{local}" if self.modname else local

    def token_line(self, name: str) -> int:
        return self.lines.find(_token(name))

    def region_has(self, needle: str, start: int) -> bool:
        """Whether `needle` occurs between the `def` just found and the next `def` / `class` /
        decorator indented no deeper (an over-estimate of the function's text, used to skip searching
        bodies that cannot hold what the search looks for)."""
        text = self.text
        line_start = text.rfind("\n", 0, start) + 1
        indent = start - line_start
        end = len(text)
        for m in _BLOCK_START_RE.finditer(text, start + 1):
            if len(m.group(1).expandtabs()) <= indent:
                end = m.start()
                break
        return text.find(needle, start, end) >= 0

    def callee_token(self, func: cst.BaseExpression) -> str | None:
        if isinstance(func, cst.Name):
            return func.value
        if isinstance(func, cst.Attribute):
            return func.attr.value
        return None

    # -- statements -------------------------------------------------------------------------------
    def run(self) -> Collected:
        self.body(self.module.body, scope=MODULE, cond=False, prefix="", cls=None)
        out = self.out
        for name, count in list(self.assign_counts.items()):
            if count != 1:
                out.name_aliases.pop(name, None)
        return out

    def body(self, stmts, scope: str, cond: bool, prefix: str, cls: list | None) -> None:
        for stmt in stmts:
            self.statement(stmt, scope, cond, prefix, cls)

    def block(self, block, scope, cond, prefix, cls) -> None:
        top = self._top
        self._top = False
        try:
            if isinstance(block, cst.IndentedBlock):
                self.body(block.body, scope, cond, prefix, cls)
            elif isinstance(block, cst.SimpleStatementSuite):
                for small in block.body:
                    self.small(small, scope, cond, prefix, cls)
        finally:
            self._top = top

    def stmt_line(self) -> int:
        """The line of the module-level assignment being visited, found once (on first need)."""
        if self._stmt_line is None:
            self._stmt_line = self.find("stmt", self._stmt_lead)
        return self._stmt_line

    def find(self, kind: str, name: str | None) -> int:
        """The line of the next statement of `kind` starting with `name`."""
        return self.lines.find_named(_STATEMENT_RES[(kind, self._top)], name)

    def statement(self, stmt, scope, cond, prefix, cls) -> None:
        tp = type(stmt)
        if tp is cst.SimpleStatementLine:
            for small in stmt.body:
                self.small(small, scope, cond, prefix, cls)
        elif tp is cst.FunctionDef:
            self.function(stmt, scope, prefix, cls)
        elif tp is cst.ClassDef:
            self.klass(stmt, scope, cond, prefix)
        elif tp is cst.If:
            self.if_(stmt, scope, cond, prefix, cls)
        elif tp is cst.Try or tp.__name__ == "TryStar":
            self.block(stmt.body, scope, True, prefix, cls)
            for h in stmt.handlers:
                if self.scanning and h.type is not None:
                    self.scan(h.type)
                self.block(h.body, scope, True, prefix, cls)
            if stmt.orelse is not None:
                self.block(stmt.orelse.body, scope, True, prefix, cls)
            if stmt.finalbody is not None:
                self.block(stmt.finalbody.body, scope, cond, prefix, cls)
        elif tp is cst.With:
            if self.scanning:
                for item in stmt.items:
                    self.scan(item)
            self.block(stmt.body, scope, cond, prefix, cls)
        elif tp is cst.For:
            if self.scanning:
                self.scan(stmt.target)
                self.scan(stmt.iter)
            self.block(stmt.body, scope, True, prefix, cls)
            if stmt.orelse is not None:
                self.block(stmt.orelse.body, scope, True, prefix, cls)
        elif tp is cst.While:
            if self.scanning:
                self.scan(stmt.test)
            self.block(stmt.body, scope, True, prefix, cls)
            if stmt.orelse is not None:
                self.block(stmt.orelse.body, scope, True, prefix, cls)
        elif tp is cst.Match:
            if self.scanning:
                self.scan(stmt.subject)
            for case in stmt.cases:
                if self.scanning and case.guard is not None:
                    self.scan(case.guard)
                self.block(case.body, scope, True, prefix, cls)

    def if_(self, stmt: cst.If, scope, cond, prefix, cls) -> None:
        test = stmt.test
        kind = None
        if self.resolver.qualified_name(test) in TYPE_CHECKING_NAMES or dotted_name(test) == "TYPE_CHECKING":
            kind = TYPE_CHECKING
        elif _is_main_guard(test):
            kind = MAIN
        elif self.scanning:
            self.scan(test)
        inner = scope
        if kind is not None and scope == MODULE:
            inner = kind
        elif kind == TYPE_CHECKING:
            inner = TYPE_CHECKING
        self.block(stmt.body, inner, cond or kind is None, prefix, cls)
        orelse = stmt.orelse
        if orelse is not None:
            if isinstance(orelse, cst.If):
                self.if_(orelse, scope, True, prefix, cls)
            else:
                self.block(orelse.body, scope, True, prefix, cls)

    def small(self, small, scope, cond, prefix, cls) -> None:
        tp = type(small)
        if tp is cst.Import or tp is cst.ImportFrom:
            self.import_(small, scope, cond)
            return
        at_module = self._func is None and cls is None
        if tp is cst.Assign:
            if at_module:
                self._stmt_lead, self._stmt_line = _leading_name(small.targets[0].target), None
                self.stmt_line()  # every one, so that a later one is never found at an earlier one's place
                for t in small.targets:
                    self.module_assign(t.target, small.value, None)
            elif cls is not None:
                for t in small.targets:
                    if isinstance(t.target, cst.Name):
                        cls.append((t.target.value, None, small.value))
            if self.scanning:
                self.overrides(small)
            if isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
                self.skip_string(small.value)
        elif tp is cst.AnnAssign:
            if at_module:
                self._stmt_lead, self._stmt_line = _leading_name(small.target), None
                self.stmt_line()
                self.module_assign(small.target, small.value, small.annotation.annotation)
            elif cls is not None and isinstance(small.target, cst.Name):
                cls.append((small.target.value, small.annotation.annotation, small.value))
        elif tp is cst.TypeAlias:
            if at_module:
                self._stmt_lead, self._stmt_line = small.name.value, None
                self.alias(small.name.value, small.value)
            return
        elif tp is cst.Expr and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
            self.skip_string(small.value)
            return
        elif tp is cst.Expr and at_module:
            value = small.value
            if isinstance(value, cst.Call) and self.qn(value.func) in known.TABLE:
                self.table(value, None)
        if self.scanning:
            self.scan(small)

    def skip_string(self, node) -> None:
        if isinstance(node, cst.ConcatenatedString):
            self.skip_string(node.left)
            self.skip_string(node.right)
        elif isinstance(node, cst.SimpleString) and "\n" in node.value:
            self.lines.skip(node.value)

    # -- imports ----------------------------------------------------------------------------------
    def import_(self, node, scope: str, cond: bool) -> None:
        if isinstance(node, cst.Import):
            first = dotted_name(node.names[0].name) if node.names else None
            line = self.find("import", first or "")
        else:
            mod = dotted_name(node.module) if node.module is not None else ""
            line = self.find("from", "." * len(node.relative) + (mod or ""))
        func = self._func
        if func is not None:
            if func.names is self.names:
                func.names = _child_resolver(self.names)
            func.names.add_import(node)
        mods: list[str] = []
        star = False
        if isinstance(node, cst.Import):
            for alias in node.names:
                name = dotted_name(alias.name)
                if name:
                    mods.append(name)
        else:
            level = len(node.relative)
            target = dotted_name(node.module) if node.module is not None else ""
            base = resolve_relative(self.names.module_name, self.names.is_package, level, target or "")
            if base is None:
                return
            mods.append(base)
            if isinstance(node.names, cst.ImportStar):
                star = True
            else:
                for alias in node.names:
                    name = dotted_name(alias.name)
                    if name:
                        mods.append(f"{base}.{name}")
        in_function = func is not None
        fact = ImportFact(
            line=line,
            modules=tuple(mods),
            scope=FUNCTION if in_function else scope,
            conditional=cond,
            function=func.local if func is not None else None,
            star=star,
        )
        self.out.imports.append(fact)
        if star and not in_function and scope in (MODULE, MAIN):
            self.out.star_imports.append(mods[0])

    # -- module-level assignments -----------------------------------------------------------------
    def module_assign(self, target, value, annotation) -> None:
        if not isinstance(target, cst.Name):
            return
        name = target.value
        self.assign_counts[name] = self.assign_counts.get(name, 0) + 1
        if value is None:
            return
        if isinstance(value, cst.Subscript) and self.qn(value.value) in known.ANNOTATED:
            self.alias(name, value)
            return
        if annotation is not None and self.qn(annotation) in ("typing.TypeAlias", "typing_extensions.TypeAlias"):
            if isinstance(value, cst.Subscript):
                self.alias(name, value)
            return
        if isinstance(value, (cst.Name, cst.Attribute)):
            q = self.qn(value)
            if q is not None:
                self.out.name_aliases[name] = q
            return
        if isinstance(value, cst.Call):
            self.binding(name, value)

    def binding(self, name: str, call: cst.Call) -> None:
        func = call.func
        chained = False
        inner: cst.Call | None = None
        if isinstance(func, cst.Call):  # sessionmaker(...)()
            chained = True
            inner = func
            func = func.func
        callee = self.qn(func)
        if callee is None and isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            # a method of a fresh instance: `registry().generate_base()` -> `sqlalchemy.orm.registry().generate_base`
            inner_callee = self.qn(func.value.func)
            if inner_callee is not None:
                callee = f"{inner_callee}().{func.attr.value}"
        line = self.stmt_line()
        if callee in known.TABLE:
            self.table(call, name, line)
        described = inner if chained else call
        assert described is not None
        args: list[str | None] = []
        arg_sources: list[str] = []
        keywords: dict[str, str] = {}
        keyword_names: dict[str, str] = {}
        literals: dict[str, object] = {}
        deps: tuple[DependsFact, ...] = ()
        for arg in described.args:
            if arg.star:
                keywords[arg.star] = self.src(arg.value)
                continue
            if arg.keyword is None:
                args.append(self.qn(arg.value) if isinstance(arg.value, (cst.Name, cst.Attribute)) else None)
                arg_sources.append(self.src(arg.value))
                continue
            kw = arg.keyword.value
            keywords[kw] = self.src(arg.value)
            if isinstance(arg.value, (cst.Name, cst.Attribute)):
                q = self.qn(arg.value)
                if q is not None:
                    keyword_names[kw] = q
            lit = literal_value(arg.value)
            if lit is not UNKNOWN:
                literals[kw] = lit
            if kw == "dependencies":
                deps = self.dependency_list(arg.value, None)
        url = None
        if callee in known.ENGINES:
            url = self.engine_url(described)
        inner_call = inner_bind = None
        inner_literals: dict[str, object] = {}
        first = described.args[0] if described.args else None
        if not chained and first is not None and first.keyword is None and isinstance(first.value, cst.Call):
            sub = first.value
            inner_call = self.qn(sub.func)
            for a in sub.args:
                if a.keyword is None and not a.star and inner_bind is None:
                    inner_bind = self.qn(a.value) if isinstance(a.value, (cst.Name, cst.Attribute)) else None
                elif a.keyword is not None:
                    if a.keyword.value == "bind":
                        inner_bind = self.qn(a.value) if isinstance(a.value, (cst.Name, cst.Attribute)) else None
                    lit = literal_value(a.value)
                    if lit is not UNKNOWN:
                        inner_literals[a.keyword.value] = lit
                    elif a.keyword.value == "class_":
                        q = self.qn(a.value)
                        if q is not None:
                            inner_literals["class_"] = q
        fact = BindingFact(
            name=name,
            qualname=self.full(name),
            line=line,
            call=callee,
            chained=chained,
            args=tuple(args),
            arg_sources=tuple(arg_sources),
            keywords=keywords,
            keyword_names=keyword_names,
            literals=literals,
            url=url,
            inner_call=inner_call,
            inner_bind=inner_bind,
            inner_literals=inner_literals,
            dependencies=deps,
        )
        self.out.bindings.setdefault(name, []).append(fact)

    def engine_url(self, call: cst.Call, expr: cst.BaseExpression | None = None, depth: int = 0):
        """What the URL argument of an engine call is, as FSL005 reads it (`rules/_engines.py`):
        ("literal" | "template", text with INTERPOLATED for interpolations), ("ref", qualname of a
        constant), ("drivername" | "drivername_ref", ...) for `URL.create`, or ("env-default", text)."""
        from fastsqla_lint.rules._engines import ENV_LOOKUPS, INTERPOLATED, string_template

        if expr is None:
            for i, arg in enumerate(call.args):
                if (arg.keyword is None and not arg.star and i == 0) or (
                    arg.keyword is not None and arg.keyword.value == "url"
                ):
                    expr = arg.value
                    break
        if expr is None or depth > 3:
            return None
        template = string_template(expr)
        if template is not None:
            return ("template" if INTERPOLATED in template else "literal", template)
        if isinstance(expr, (cst.Name, cst.Attribute)):
            q = self.qn(expr)
            return ("ref", q) if q else None
        if isinstance(expr, cst.Call):
            callee = self.qn(expr.func)
            if callee in known.URL_CREATE:
                for i, arg in enumerate(expr.args):
                    if (arg.keyword is None and not arg.star and i == 0) or (
                        arg.keyword is not None and arg.keyword.value == "drivername"
                    ):
                        lit = literal_value(arg.value)
                        if isinstance(lit, str):
                            return ("drivername", lit)
                        if isinstance(arg.value, (cst.Name, cst.Attribute)):
                            q = self.qn(arg.value)
                            return ("drivername_ref", q) if q else None
                return None
            if callee in ENV_LOOKUPS:
                for i, arg in enumerate(expr.args):
                    if (arg.keyword is None and not arg.star and i == 1) or (
                        arg.keyword is not None and arg.keyword.value == "default"
                    ):
                        found = self.engine_url(call, arg.value, depth + 1)
                        if found is not None and found[0] in ("literal", "template"):
                            return ("env-default", found[1])
                return None
        return None

    def alias(self, name: str, value: cst.BaseExpression) -> None:
        if not (isinstance(value, cst.Subscript) and self.qn(value.value) in known.ANNOTATED):
            return
        elements = value.slice
        if not elements:
            return
        first = elements[0].slice
        type_expr = first.value if isinstance(first, cst.Index) else None
        line = self.stmt_line()
        for el in elements[1:]:
            idx = el.slice
            if not isinstance(idx, cst.Index):
                continue
            expr = idx.value
            if isinstance(expr, cst.Call) and self.qn(expr.func) in known.DEPENDS_OR_SECURITY:
                dep = self.depends_fact(expr, "alias", None, type_expr, line=line)
                self.out.aliases[name] = AliasFact(
                    name=name,
                    qualname=self.full(name),
                    line=line,
                    type_source=self.src(type_expr) if type_expr is not None else "",
                    type_qn=self.qn(type_expr) if isinstance(type_expr, (cst.Name, cst.Attribute)) else None,
                    depends=dep,
                )
                self.out.depends.append(dep)
                return

    def table(self, call: cst.Call, assigned_to: str | None, line: int | None = None) -> None:
        if line is None:
            tok = self.callee_token(call.func)
            line = self.token_line(tok) if tok else self.lines.line
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        name = literal_value(positional[0]) if positional else UNKNOWN
        meta = None
        if len(positional) > 1 and isinstance(positional[1], (cst.Name, cst.Attribute)):
            meta = self.qn(positional[1])
        for a in call.args:
            if (
                a.keyword is not None
                and a.keyword.value == "metadata"
                and isinstance(a.value, (cst.Name, cst.Attribute))
            ):
                meta = self.qn(a.value)
        self.out.tables.append(
            TableFact(
                name=name if isinstance(name, str) else None,
                metadata=meta,
                line=line,
                module=self.modname,
                assigned_to=self.full(assigned_to) if assigned_to else None,
            )
        )

    # -- dependencies -----------------------------------------------------------------------------
    def depends_fact(
        self,
        call: cst.Call,
        where: str,
        function: str | None,
        type_expr: cst.BaseExpression | None = None,
        line: int | None = None,
    ) -> DependsFact:
        callee = self.qn(call.func)
        self.handled.add(id(call))
        if line is None:
            tok = self.callee_token(call.func)
            line = self.token_line(tok) if tok else self.lines.line
        target_expr = None
        scope = None
        use_cache = None
        for i, arg in enumerate(call.args):
            if arg.keyword is None and not arg.star and i == 0:
                target_expr = arg.value
            elif arg.keyword is not None:
                kw = arg.keyword.value
                if kw == "dependency":
                    target_expr = arg.value
                elif kw == "scope":
                    lit = literal_value(arg.value)
                    scope = lit if isinstance(lit, str) else None
                elif kw == "use_cache":
                    lit = literal_value(arg.value)
                    use_cache = lit if isinstance(lit, bool) else None
        target = None
        source = ""
        if target_expr is None:
            form = "class"
            if type_expr is not None and isinstance(type_expr, (cst.Name, cst.Attribute)):
                target = self.qn(type_expr)
        else:
            source = self.src(target_expr)
            if isinstance(target_expr, (cst.Name, cst.Attribute)):
                form = "name"
                target = self.qn(target_expr)
            elif isinstance(target_expr, cst.Call):
                form = "call"
                if isinstance(target_expr.func, (cst.Name, cst.Attribute)):
                    target = self.qn(target_expr.func)
            elif isinstance(target_expr, cst.Lambda):
                form = "lambda"
            else:
                form = "other"
        return DependsFact(
            target=target,
            form=form,
            where=where,
            line=line,
            security=callee in known.SECURITY,
            source=source,
            function=function,
            scope=scope,
            use_cache=use_cache,
        )

    def dependency_list(self, expr: cst.BaseExpression, function: str | None) -> tuple[DependsFact, ...]:
        out = []
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            for el in expr.elements:
                v = el.value
                if isinstance(v, cst.Call) and self.qn(v.func) in known.DEPENDS_OR_SECURITY:
                    out.append(self.depends_fact(v, "dependencies", function))
        self.out.depends.extend(out)
        return tuple(out)

    def overrides(self, node: cst.Assign) -> None:
        for t in node.targets:
            tgt = t.target
            if isinstance(tgt, cst.Subscript) and (dotted_name(tgt.value) or "").endswith("dependency_overrides"):
                line = self.token_line("dependency_overrides")
                fn = self._func.qualname if self._func is not None else None
                if len(tgt.slice) == 1 and isinstance(tgt.slice[0].slice, cst.Index):
                    key = tgt.slice[0].slice.value
                    self.out.depends.append(self._override(key, "override_key", line, fn))
                self.out.depends.append(self._override(node.value, "override", line, fn))

    def _override(self, expr, where, line, fn) -> DependsFact:
        if isinstance(expr, (cst.Name, cst.Attribute)):
            return DependsFact(self.qn(expr), "name", where, line, source=self.src(expr), function=fn)
        if isinstance(expr, cst.Lambda):
            return DependsFact(None, "lambda", where, line, source=self.src(expr), function=fn)
        if isinstance(expr, cst.Call) and isinstance(expr.func, (cst.Name, cst.Attribute)):
            return DependsFact(self.qn(expr.func), "call", where, line, source=self.src(expr), function=fn)
        return DependsFact(None, "other", where, line, source=self.src(expr), function=fn)

    # -- functions --------------------------------------------------------------------------------
    def function(self, node: cst.FunctionDef, scope, prefix: str, cls) -> None:
        name = node.name.value
        local = f"{prefix}{name}"
        qualname = self.full(local)
        outer = self._func
        decorators: list[str] = []
        for dec in node.decorators:
            expr = dec.decorator
            dline = self.find("decorator", None)
            func = expr.func if isinstance(expr, cst.Call) else expr
            decorators.append(self.qn_or_src(func) if isinstance(func, (cst.Name, cst.Attribute)) else self.src(func))
            if (
                isinstance(expr, cst.Call)
                and isinstance(expr.func, cst.Attribute)
                and expr.func.attr.value in known.ROUTE_DECORATORS
            ):
                self.route_decorator(expr, expr.func.attr.value, dline, qualname)
            if self.deep:
                self.scan(expr, function=qualname)
        line = self.find("def", name)
        def_pos = self.lines.pos - 1
        params = self.params(node.params, qualname)
        returns = self.src(node.returns.annotation) if node.returns is not None else None
        class_name = self.full(prefix[:-1]) if cls is not None and prefix.endswith(".") else None
        f = _Func(qualname, local, outer.names if outer is not None else self.names)
        self._func = f
        scanning = self.scanning
        self.scanning = self.deep_wiring or (self.deep and self.region_has("yield", def_pos))
        try:
            self.block(node.body, FUNCTION, False, f"{local}.", None)
        finally:
            self._func = outer
            self.scanning = scanning
        self.out.functions[local] = FunctionFact(
            qualname=qualname,
            name=name,
            module=self.modname,
            line=line,
            is_async=node.asynchronous is not None,
            is_generator=f.generator,
            decorators=tuple(decorators),
            params=params,
            returns=returns,
            class_name=class_name,
            nested=outer is not None,
            calls=tuple(dict.fromkeys(f.calls)) if f.generator else (),
        )

    def params(self, params: cst.Parameters, function: str) -> tuple[ParamFact, ...]:
        out: list[ParamFact] = []
        groups = [("posonly", params.posonly_params), ("regular", params.params)]
        if isinstance(params.star_arg, cst.Param):
            groups.append(("star", (params.star_arg,)))
        groups.append(("kwonly", params.kwonly_params))
        if params.star_kwarg is not None:
            groups.append(("starstar", (params.star_kwarg,)))
        for kind, group in groups:
            for p in group:
                ann = p.annotation.annotation if p.annotation is not None else None
                dep = None
                ann_qn = None
                if ann is not None:
                    if isinstance(ann, (cst.Name, cst.Attribute)):
                        ann_qn = self.qn(ann)
                    elif isinstance(ann, cst.Subscript) and self.qn(ann.value) in known.ANNOTATED and ann.slice:
                        first = ann.slice[0].slice
                        type_expr = first.value if isinstance(first, cst.Index) else None
                        for el in ann.slice[1:]:
                            idx = el.slice
                            if (
                                isinstance(idx, cst.Index)
                                and isinstance(idx.value, cst.Call)
                                and self.qn(idx.value.func) in known.DEPENDS_OR_SECURITY
                            ):
                                dep = self.depends_fact(idx.value, "annotated", function, type_expr)
                                break
                    elif self.deep and isinstance(ann, cst.Call):
                        self.scan(ann, function=function)
                default = p.default
                if default is not None:
                    if isinstance(default, cst.Call) and self.qn(default.func) in known.DEPENDS_OR_SECURITY:
                        dep = self.depends_fact(default, "default", function, ann)
                    elif self.deep:
                        self.scan(default, function=function)
                if dep is not None:
                    self.out.depends.append(dep)
                out.append(
                    ParamFact(
                        name=p.name.value,
                        kind=kind,
                        annotation=self.src(ann) if ann is not None else None,
                        default=self.src(default) if default is not None else None,
                        annotation_qn=ann_qn,
                        depends=dep,
                    )
                )
        return tuple(out)

    def route_decorator(self, call: cst.Call, method: str, line: int, function: str | None) -> None:
        func = call.func
        assert isinstance(func, cst.Attribute)
        owner = self.qn(func.value)
        self.out.routes.append(self.route_fact(call, method, line, function, owner, "decorator"))

    def route_fact(self, call, method, line, function, owner, via) -> RouteFact:
        path = None
        methods: tuple[str, ...] = ()
        has_rm = False
        rm = None
        rm_names: tuple[str, ...] = ()
        status = None
        responses: tuple[str, ...] = ()
        deps: tuple[DependsFact, ...] = ()
        keywords: dict[str, str] = {}
        positional = 0
        for arg in call.args:
            if arg.star:
                continue
            if arg.keyword is None:
                if positional == 0:
                    lit = literal_value(arg.value)
                    path = lit if isinstance(lit, str) else None
                positional += 1
                continue
            kw = arg.keyword.value
            keywords[kw] = self.src(arg.value)
            if kw == "path":
                lit = literal_value(arg.value)
                path = lit if isinstance(lit, str) else None
            elif kw == "response_model":
                has_rm = True
                rm = self.src(arg.value)
                rm_names = self.names_in(arg.value)
            elif kw == "status_code":
                lit = literal_value(arg.value)
                if lit is not UNKNOWN:
                    status = lit
                elif isinstance(arg.value, (cst.Name, cst.Attribute)):
                    status = self.qn_or_src(arg.value)
            elif kw == "methods":
                lit = literal_value(arg.value)
                if isinstance(lit, (list, tuple, set)):
                    methods = tuple(str(m).lower() for m in lit)
            elif kw == "responses":
                responses = self.responses_models(arg.value)
            elif kw == "dependencies":
                deps = self.dependency_list(arg.value, function)
        return RouteFact(
            function=function,
            owner=owner,
            method=method,
            line=line,
            module=self.modname,
            path=path,
            methods=methods,
            has_response_model=has_rm,
            response_model=rm,
            response_model_names=rm_names,
            status_code=status,
            responses_models=responses,
            dependencies=deps,
            keywords=keywords,
            via=via,
        )

    def names_in(self, expr: cst.BaseExpression) -> tuple[str, ...]:
        """Qualified names of the dotted names inside a type expression (string annotations parsed)."""
        out: list[str] = []
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, (cst.Name, cst.Attribute)):
                q = self.qn(node)
                if q is not None:
                    out.append(q)
                continue
            if isinstance(node, cst.SimpleString):
                lit = literal_value(node)
                if isinstance(lit, str):
                    try:
                        stack.append(cst.parse_expression(lit))
                    except Exception:
                        pass
                continue
            if isinstance(node, cst.Subscript):
                stack.append(node.value)
                for el in node.slice:
                    if isinstance(el.slice, cst.Index):
                        stack.append(el.slice.value)
            elif isinstance(node, cst.BinaryOperation):
                stack.extend((node.left, node.right))
            elif isinstance(node, (cst.List, cst.Tuple)):
                stack.extend(el.value for el in node.elements)
        return tuple(dict.fromkeys(reversed(out)))

    def responses_models(self, expr: cst.BaseExpression) -> tuple[str, ...]:
        out: list[str] = []
        if isinstance(expr, cst.Dict):
            for el in expr.elements:
                if isinstance(el, cst.DictElement) and isinstance(el.value, cst.Dict):
                    for inner in el.value.elements:
                        if (
                            isinstance(inner, cst.DictElement)
                            and literal_value(inner.key) == "model"
                        ):
                            out.extend(self.names_in(inner.value))
        return tuple(out)

    # -- classes ----------------------------------------------------------------------------------
    def klass(self, node: cst.ClassDef, scope, cond, prefix: str) -> None:
        name = node.name.value
        local = f"{prefix}{name}"
        decorators = []
        for dec in node.decorators:
            self.find("decorator", None)
            expr = dec.decorator
            func = expr.func if isinstance(expr, cst.Call) else expr
            decorators.append(self.qn_or_src(func) if isinstance(func, (cst.Name, cst.Attribute)) else self.src(func))
            if self.deep:
                self.scan(expr)
        line = self.find("class", name)
        bases = []
        keywords: dict[str, object] = {}
        for arg in node.bases:
            v = arg.value
            bases.append(self.qn_or_src(v) if isinstance(v, (cst.Name, cst.Attribute)) else self.src(v))
        for arg in node.keywords:
            if arg.keyword is None:
                continue
            lit = literal_value(arg.value)
            keywords[arg.keyword.value] = lit if lit is not UNKNOWN else self.src(arg.value)
        members: list = []
        outer_nested = self._func is not None
        scanning = self.scanning
        self.scanning = self.deep_wiring
        try:
            self.block(node.body, scope, cond, f"{local}.", members)
        finally:
            self.scanning = scanning
        fields: list[FieldFact] = []
        abstract = False
        tablename = None
        from_attributes = None
        for mname, ann, value in members:
            if mname == "__abstract__":
                abstract = literal_value(value) is True
                continue
            if mname == "__tablename__":
                lit = literal_value(value)
                tablename = lit if isinstance(lit, str) else None
                continue
            if mname == "model_config":
                from_attributes = self.config_from_attributes(value, from_attributes)
                continue
            if mname == "__table__" and isinstance(value, cst.Call) and self.qn(value.func) in known.TABLE:
                self.table(value, local, line)
                continue
            if mname.startswith("__") and mname.endswith("__"):
                continue
            fields.append(self.field_fact(mname, ann, value))
        methods = []
        for stmt in node.body.body if isinstance(node.body, cst.IndentedBlock) else ():
            if isinstance(stmt, cst.FunctionDef):
                methods.append(stmt.name.value)
            elif isinstance(stmt, cst.ClassDef) and stmt.name.value == "Config":
                for inner in _simple_assigns(stmt):
                    if inner[0] in ("orm_mode", "from_attributes") and literal_value(inner[1]) is True:
                        from_attributes = True
        self.out.classes[local] = ClassFact(
            qualname=self.full(local),
            name=name,
            module=self.modname,
            line=line,
            bases=tuple(bases),
            keywords=keywords,
            decorators=tuple(decorators),
            abstract=abstract,
            tablename=tablename,
            fields=tuple(fields),
            methods=tuple(methods),
            from_attributes=from_attributes,
            nested=outer_nested or bool(prefix),
        )

    def config_from_attributes(self, value, current):
        if isinstance(value, cst.Call):
            for a in value.args:
                if a.keyword is not None and a.keyword.value in ("from_attributes", "orm_mode"):
                    lit = literal_value(a.value)
                    if isinstance(lit, bool):
                        return lit
        elif isinstance(value, cst.Dict):
            lit = literal_value(value)
            if isinstance(lit, dict) and isinstance(lit.get("from_attributes"), bool):
                return lit["from_attributes"]
        return current

    def field_fact(self, name: str, ann, value) -> FieldFact:
        mapped = classvar = optional = False
        python_type = None
        type_names: tuple[str, ...] = ()
        if ann is not None:
            core = ann
            if isinstance(core, cst.SimpleString):
                lit = literal_value(core)
                if isinstance(lit, str):
                    try:
                        core = cst.parse_expression(lit)
                    except Exception:
                        core = None
            if isinstance(core, cst.Subscript):
                head = self.qn(core.value)
                if head in known.MAPPED or (head or "").endswith(".Mapped") or dotted_name(core.value) == "Mapped":
                    mapped = True
                    core = _first_index(core)
                elif head in CLASSVAR:
                    classvar = True
            if core is not None:
                core, optional = self.unwrap_optional(core)
            if core is not None:
                python_type = self.src(core)
                type_names = tuple(q for q in self.names_in(core) if not q.startswith("builtins."))
        value_call = None
        primary_key = False
        nullable = None
        foreign_key = None
        column_type = None
        column_type_names: tuple[str, ...] = ()
        if isinstance(value, cst.Call):
            value_call = self.qn(value.func)
            primary_key, nullable, foreign_key, column_type, column_type_names = self.column_args(value)
        return FieldFact(
            name=name,
            annotation=self.src(ann) if ann is not None else None,
            mapped=mapped,
            classvar=classvar,
            python_type=python_type,
            optional=optional,
            type_names=type_names,
            value_call=value_call,
            primary_key=primary_key,
            nullable=nullable,
            foreign_key=foreign_key,
            column_type=column_type,
            column_type_names=column_type_names,
            has_value=value is not None,
        )

    def column_args(self, call: cst.Call):
        primary_key = False
        nullable = None
        foreign_key = None
        column_type = None
        column_type_names: tuple[str, ...] = ()
        for arg in call.args:
            v = arg.value
            if arg.keyword is not None:
                kw = arg.keyword.value
                if kw == "primary_key":
                    primary_key = literal_value(v) is True
                elif kw == "nullable":
                    lit = literal_value(v)
                    nullable = lit if isinstance(lit, bool) else None
                elif kw == "foreign_key":
                    lit = literal_value(v)
                    foreign_key = lit if isinstance(lit, str) else self.src(v)
                elif kw == "sa_column" and isinstance(v, cst.Call):
                    pk, nl, fk, ct, ctn = self.column_args(v)
                    primary_key = primary_key or pk
                    nullable = nl if nl is not None else nullable
                    foreign_key = foreign_key or fk
                    column_type, column_type_names = column_type or ct, column_type_names or ctn
                elif kw in ("type_", "sa_type") and column_type is None:
                    column_type, column_type_names = self.sa_python_type(v)
                continue
            if arg.star:
                continue
            if isinstance(v, cst.Call) and (self.qn(v.func) or "").endswith("ForeignKey"):
                lit = literal_value(v.args[0].value) if v.args else UNKNOWN
                foreign_key = lit if isinstance(lit, str) else self.src(v)
                continue
            if column_type is None and not isinstance(v, (cst.SimpleString, cst.ConcatenatedString)):
                column_type, column_type_names = self.sa_python_type(v)
        return primary_key, nullable, foreign_key, column_type, column_type_names

    def sa_python_type(self, expr) -> tuple[str | None, tuple[str, ...]]:
        func = expr.func if isinstance(expr, cst.Call) else expr
        if not isinstance(func, (cst.Name, cst.Attribute)):
            return None, ()
        q = self.qn(func) or ""
        last = q.rsplit(".", 1)[-1]
        if not (q.startswith("sqlalchemy") or q.startswith("sqlmodel")):
            return None, ()
        if last == "Enum" and isinstance(expr, cst.Call) and expr.args:
            first = expr.args[0].value
            if isinstance(first, (cst.Name, cst.Attribute)):
                eq = self.qn(first)
                return self.src(first), (eq,) if eq else ()
            return "str", ()
        return SA_PYTHON_TYPES.get(last, (None, ()))

    def unwrap_optional(self, expr) -> tuple[cst.BaseExpression | None, bool]:
        """Strip Optional[...] / Union[..., None] / `X | None`; returns (core, optional)."""
        if isinstance(expr, cst.Subscript):
            head = self.qn(expr.value)
            if head in OPTIONAL:
                return _first_index(expr), True
            if head in UNION:
                items = [el.slice.value for el in expr.slice if isinstance(el.slice, cst.Index)]
                rest = [i for i in items if not _is_none(i)]
                if len(rest) < len(items):
                    if len(rest) == 1:
                        return rest[0], True
                    return expr, True
                return expr, False
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
            items = _flatten_bitor(expr)
            rest = [i for i in items if not _is_none(i)]
            if len(rest) < len(items):
                if len(rest) == 1:
                    return rest[0], True
                return _join_bitor(rest), True
        return expr, False

    # -- expression search ------------------------------------------------------------------------
    def scan(self, node: cst.CSTNode, function: str | None = None) -> None:
        """Search an expression (or small statement) for calls and yields the index records."""
        func = self._func
        fn_name = function or (func.qualname if func is not None else None)
        stack: list[cst.CSTNode] = [node]
        found: list[cst.Call] = []
        while stack:
            n = stack.pop()
            tp = type(n)
            if tp is cst.Call:
                found.append(n)
            elif tp is cst.Yield:
                if func is not None:
                    func.generator = True
            elif tp is cst.Lambda:
                continue
            fields = child_fields(tp)
            if not fields:  # a leaf: a name, a number, a string
                continue
            kids = children(n, fields)
            if kids:
                kids.reverse()
                stack.extend(kids)
        for call in found:
            self.call(call, fn_name)

    def call(self, call: cst.Call, function: str | None) -> None:
        func = call.func
        callee = self.qn(func) if isinstance(func, (cst.Name, cst.Attribute)) else None
        if callee in known.DEPENDS_OR_SECURITY:
            if id(call) in self.handled:
                return
            self.out.depends.append(self.depends_fact(call, "body", function))
            return
        if callee in DYNAMIC_IMPORTS:
            tok = self.callee_token(func)
            self.out.dynamic_imports.append((self.token_line(tok) if tok else self.lines.line, callee))
            return
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            if attr == "include_router":
                self.include(call, function)
                return
            if attr == "add_api_route":
                line = self.token_line("add_api_route")
                endpoint = None
                for i, a in enumerate(call.args):
                    if (a.keyword is None and i == 1) or (a.keyword is not None and a.keyword.value == "endpoint"):
                        if isinstance(a.value, (cst.Name, cst.Attribute)):
                            endpoint = self.qn(a.value)
                owner = self.qn(func.value)
                self.out.routes.append(
                    self.route_fact(call, "add_api_route", line, endpoint, owner, "add_api_route")
                )
                return
            if attr == "update" and (dotted_name(func.value) or "").endswith("dependency_overrides"):
                line = self.token_line("dependency_overrides")
                if call.args and isinstance(call.args[0].value, cst.Dict):
                    for el in call.args[0].value.elements:
                        if isinstance(el, cst.DictElement):
                            self.out.depends.append(self._override(el.key, "override_key", line, function))
                            self.out.depends.append(self._override(el.value, "override", line, function))
                return
        f = self._func
        if f is not None and callee is not None:
            bind = None
            for i, a in enumerate(call.args):
                if (a.keyword is None and i == 0 and not a.star) or (
                    a.keyword is not None and a.keyword.value == "bind"
                ):
                    if isinstance(a.value, (cst.Name, cst.Attribute)):
                        bind = self.qn(a.value)
                    break
            f.calls.append((callee, bind))

    def include(self, call: cst.Call, function: str | None) -> None:
        func = call.func
        assert isinstance(func, cst.Attribute)
        line = self.token_line("include_router")
        owner = self.qn(func.value)
        router = None
        prefix = None
        deps: tuple[DependsFact, ...] = ()
        for i, a in enumerate(call.args):
            if a.keyword is None and i == 0 and isinstance(a.value, (cst.Name, cst.Attribute)):
                router = self.qn(a.value)
            elif a.keyword is not None:
                kw = a.keyword.value
                if kw == "router" and isinstance(a.value, (cst.Name, cst.Attribute)):
                    router = self.qn(a.value)
                elif kw == "prefix":
                    lit = literal_value(a.value)
                    prefix = lit if isinstance(lit, str) else None
                elif kw == "dependencies":
                    deps = self.dependency_list(a.value, function)
        self.out.includes.append(IncludeFact(owner, router, line, self.modname, prefix, deps, function))


# --------------------------------------------------------------------------------------------------
# small helpers

def _comma_source(comma) -> str | None:
    """An element's comma as written on one line: "" when there is none, None when it spans lines."""
    if type(comma) is not cst.Comma:
        return ""
    b, a = _ws(comma.whitespace_before), _ws(comma.whitespace_after)
    return None if b is None or a is None else f"{b},{a}"


def _ws(ws) -> str | None:
    return ws.value if type(ws) is cst.SimpleWhitespace else None


def _fast_source(node) -> str | None:
    """The exact source of the usual annotation and default shapes (names, attributes, literals,
    subscripts, `X | Y`), or None for anything else (parentheses, line breaks, ...)."""
    tp = type(node)
    if tp is cst.Name or tp is cst.SimpleString or tp is cst.Integer or tp is cst.Float:
        return None if node.lpar else node.value
    if node.lpar if hasattr(node, "lpar") else False:
        return None
    if tp is cst.Attribute:
        value = _fast_source(node.value)
        dot = node.dot
        if value is None or type(dot) is not cst.Dot:
            return None
        before, after = _ws(dot.whitespace_before), _ws(dot.whitespace_after)
        if before is None or after is None:
            return None
        return f"{value}{before}.{after}{node.attr.value}"
    if tp is cst.Subscript:
        value = _fast_source(node.value)
        head = _ws(node.whitespace_after_value)
        open_ws = _ws(node.lbracket.whitespace_after)
        close_ws = _ws(node.rbracket.whitespace_before)
        if value is None or head is None or open_ws is None or close_ws is None:
            return None
        parts = [value, head, "[", open_ws]
        last = len(node.slice) - 1
        for i, el in enumerate(node.slice):
            index = el.slice
            if type(index) is not cst.Index or index.star is not None:
                return None
            inner = _fast_source(index.value)
            if inner is None:
                return None
            comma = _comma_source(el.comma)
            if comma is None or (not comma and i != last):
                return None
            parts += [inner, comma]
        parts.append(close_ws)
        parts.append("]")
        return "".join(parts)
    if tp is cst.BinaryOperation and type(node.operator) is cst.BitOr:
        left, right = _fast_source(node.left), _fast_source(node.right)
        b, a = _ws(node.operator.whitespace_before), _ws(node.operator.whitespace_after)
        if left is None or right is None or b is None or a is None:
            return None
        return f"{left}{b}|{a}{right}"
    if tp is cst.Call:  # `Depends(get_db)`, `Field(default=None)`: the usual parameter defaults
        return _fast_call_source(node)
    if tp is cst.Ellipsis:
        return "..."
    return None


def _fast_call_source(node: cst.Call) -> str | None:
    """`_fast_source` of a call written on one line (what LibCST's code generation would give)."""
    func = _fast_source(node.func)
    after, before = _ws(node.whitespace_after_func), _ws(node.whitespace_before_args)
    if func is None or after is None or before is None:
        return None
    parts = [func, after, "(", before]
    last = len(node.args) - 1
    for i, arg in enumerate(node.args):
        star_ws, tail, value = _ws(arg.whitespace_after_star), _ws(arg.whitespace_after_arg), _fast_source(arg.value)
        if star_ws is None or tail is None or value is None:
            return None
        parts.append(arg.star)
        parts.append(star_ws)
        if arg.keyword is not None:
            keyword, equal = _fast_source(arg.keyword), arg.equal
            if keyword is None or type(equal) is not cst.AssignEqual:
                return None
            b, a = _ws(equal.whitespace_before), _ws(equal.whitespace_after)
            if b is None or a is None:
                return None
            parts.append(f"{keyword}{b}={a}")
        elif arg.equal is not cst.MaybeSentinel.DEFAULT:
            return None
        comma = _comma_source(arg.comma)
        if comma is None or (not comma and i != last):
            return None
        parts += [value, comma, tail]
    parts.append(")")
    return "".join(parts)


def _leading_name(expr) -> str | None:
    """The first identifier of an assignment target's text: `a` of `a.b[0]`, `x` of `x, y`."""
    while True:
        tp = type(expr)
        if tp is cst.Name:
            return expr.value
        if tp is cst.Attribute or tp is cst.Subscript:
            expr = expr.value
        elif tp is cst.Tuple or tp is cst.List:
            if not expr.elements:
                return None
            expr = expr.elements[0].value
        elif tp is cst.StarredElement:
            return None
        else:
            return None


def _first_index(sub: cst.Subscript) -> cst.BaseExpression | None:
    if sub.slice and isinstance(sub.slice[0].slice, cst.Index):
        return sub.slice[0].slice.value
    return None


def _is_none(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _flatten_bitor(expr) -> list:
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
        return _flatten_bitor(expr.left) + _flatten_bitor(expr.right)
    return [expr]


def _join_bitor(items: list) -> cst.BaseExpression:
    out = items[0]
    for it in items[1:]:
        out = cst.BinaryOperation(left=out, operator=cst.BitOr(), right=it)
    return out


def _is_main_guard(test) -> bool:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    comp = test.comparisons[0]
    if not isinstance(comp.operator, cst.Equal):
        return False
    sides = (test.left, comp.comparator)
    names = [s for s in sides if isinstance(s, cst.Name) and s.value == "__name__"]
    lits = [s for s in sides if literal_value(s) == "__main__"]
    return bool(names and lits)


def _simple_assigns(cls: cst.ClassDef):
    body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else cls.body.body
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            smalls = stmt.body
        elif isinstance(stmt, cst.BaseSmallStatement):
            smalls = (stmt,)
        else:
            smalls = ()
        for small in smalls:
            if isinstance(small, cst.Assign) and isinstance(small.targets[0].target, cst.Name):
                yield small.targets[0].target.value, small.value
            elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
                yield small.target.value, small.value


def collect(module: cst.Module, names: NameResolver, text: str | None = None) -> Collected:
    return Collector(module, names, text).run()
