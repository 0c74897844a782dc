"""Engine calls and database URLs, for the rules that look at `create_engine(...)`.

- `parse_url(text)`: what a database URL says (backend, driver, in-memory or file for SQLite, query); an
  interpolated part is written as `INTERPOLATED` and makes only that part unknown.
- `EngineCalls(rule)`: per-file analysis of engine constructor calls, resolving the URL argument from a
  literal, an f-string, a module-level constant of the same module, a constant imported from another project
  module (through the index), `URL.create("sqlite", ...)`, or an environment lookup with a literal default
  (`os.getenv("DATABASE_URL", "sqlite:///./app.db")`); anything else is unknown (None).
- `with_keyword`, `with_dict_item`: append an argument or a dict entry, keeping the layout (one item per
  line or not, trailing comma, comments on the last line).

Pure functions of the syntax tree; nothing here reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Formatter
from typing import TYPE_CHECKING, Mapping
from urllib.parse import parse_qsl

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.literals import UNKNOWN, literal_value
from fastsqla_lint.names import _flat_statements

if TYPE_CHECKING:
    from fastsqla_lint.rule import Rule

INTERPOLATED = "\x00"  # stands for an interpolated part of an f-string
SQLITE_SYNC_DRIVERS = frozenset({None, "pysqlite", "pysqlcipher"})
ENV_LOOKUPS = frozenset({"os.getenv", "os.environ.get", "os.environ.setdefault"})
_PERCENT_FIELD = re.compile(r"%%|%(\([^)]*\))?[-#0 +]*(\*|\d+)?(\.(\*|\d+))?[diouxXeEfFgGcrsa]")
CREATE_ENGINE = frozenset(n for n in known.SYNC_ENGINES if n.endswith(".create_engine"))


@dataclass(frozen=True)
class DatabaseUrl:
    """What is known about a database URL.

    `kind` (SQLite only): "memory" (a private in-memory database: `sqlite://`, `:memory:`, `mode=memory`),
    "shared-memory" (an in-memory database every connection shares: `cache=shared`), "file", or "unknown".
    `query` is None when part of the query string is interpolated. `source` says where the URL came from:
    "literal", "template" (an f-string or a formatted string), "constant", "URL.create" or "env-default" (the default of an environment lookup:
    the engine may use another database when the variable is set).
    """

    backend: str
    driver: str | None
    kind: str
    query: Mapping[str, str] | None
    source: str = "literal"

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def is_sync_sqlite(self) -> bool:
        return self.is_sqlite and self.driver in SQLITE_SYNC_DRIVERS

    def with_source(self, source: str) -> "DatabaseUrl":
        return DatabaseUrl(self.backend, self.driver, self.kind, self.query, source)


def parse_url(text: str, source: str = "literal") -> DatabaseUrl | None:
    """Parse `backend[+driver]://rest`; None when the scheme itself is not literal or not a URL."""
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or INTERPOLATED in scheme:
        return None
    backend, _, driver = scheme.partition("+")
    if not backend.replace("_", "").isalnum():
        return None
    location, qmark, query_text = rest.partition("?")
    # An interpolated query is unknown; an interpolated path (`f"sqlite:///{path}"`) is taken to be a path.
    query = None if INTERPOLATED in query_text else dict(parse_qsl(query_text, keep_blank_values=True))
    kind = "unknown"
    if backend == "sqlite":
        kind = _sqlite_kind(location, query or {}, query_text)
    return DatabaseUrl(backend.lower(), driver.lower() or None, kind, query, source)


def _sqlite_kind(location: str, query: Mapping[str, str], query_text: str) -> str:
    if location == "":
        return "memory"  # sqlite://
    if not location.startswith("/"):
        return "unknown"  # sqlite://host/...: not a form SQLAlchemy documents
    database = location[1:]
    shared = query.get("cache") == "shared" or "cache=shared" in query_text
    memory = database in ("", ":memory:") or ":memory:" in database or query.get("mode") == "memory"
    if memory:
        return "shared-memory" if shared and database not in ("", ":memory:") else "memory"
    return "file"


def thread_check_from_query(url: DatabaseUrl) -> object:
    """The `check_same_thread` value in the URL's query: True/False, UNKNOWN (other text), None (absent)."""
    if url.query is None or "check_same_thread" not in url.query:
        return None
    value = url.query["check_same_thread"].strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return UNKNOWN


def string_template(node: cst.BaseExpression) -> str | None:
    """The text a string expression builds, interpolations written as INTERPOLATED; None if not a string.

    Strings and f-strings, `"literal" + anything`, `"literal {}".format(...)` and `"literal %s" % ...`.
    """
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Add, cst.Modulo)):
        left = string_template(node.left)
        if left is None:
            return None
        if isinstance(node.operator, cst.Modulo):
            return _PERCENT_FIELD.sub(lambda m: "%" if m.group(0) == "%%" else INTERPOLATED, left)
        right = string_template(node.right)
        return left + (right if right is not None else INTERPOLATED)
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "format"
        and isinstance(node.func.value, (cst.SimpleString, cst.ConcatenatedString))
    ):
        text = string_template(node.func.value)
        if text is None:
            return None
        try:
            fields = list(Formatter().parse(text))
        except ValueError:
            return None
        return "".join(lit + (INTERPOLATED if name is not None else "") for lit, name, _, _ in fields)
    if isinstance(node, cst.SimpleString):
        value = literal_value(node)
        return value if isinstance(value, str) else None
    if isinstance(node, cst.FormattedString):
        out = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                out.append(part.value.replace("{{", "{").replace("}}", "}"))
            else:
                out.append(INTERPOLATED)
        return "".join(out)
    if isinstance(node, cst.ConcatenatedString):
        left = string_template(node.left)
        right = string_template(node.right)
        return left + right if left is not None and right is not None else None
    return None


@dataclass
class ThreadFlag:
    """`check_same_thread` as an engine call gives it.

    `state`: "set" (`value` is True, False or UNKNOWN), "missing" (a place exists to add it: `target`, a dict
    literal or `dict(...)` call, possibly the value of the module-level name `bound_to`), "absent" (no
    `connect_args` at all), or "unknown" (cannot tell: `**kwargs`, a name bound elsewhere, a call).
    """

    state: str
    value: object = None
    target: cst.Dict | cst.Call | None = None
    bound_to: str | None = None


@dataclass
class EngineCall:
    call: cst.Call
    url_arg: cst.BaseExpression | None
    url: DatabaseUrl | None
    keywords: dict[str, cst.Arg]
    splat: bool  # `*args` or `**kwargs` in the call: anything may be passed


class EngineCalls:
    """Engine constructor calls of one file, seen through a rule's name resolution and project index."""

    MAX_DEPTH = 4

    def __init__(self, rule: "Rule") -> None:
        self.rule = rule
        self._bindings: dict[str, list[cst.BaseExpression | None]] | None = None

    # -- module-level bindings ------------------------------------------------------------------
    def bindings(self) -> dict[str, list[cst.BaseExpression | None]]:
        """Every module-level binding of each name (inside `if`/`try` too); None for a non-literal target."""
        if self._bindings is None:
            found: dict[str, list[cst.BaseExpression | None]] = {}
            for stmt in _flat_statements(self.rule.context.module.body):
                if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                    found.setdefault(stmt.name.value, []).append(None)
                    continue
                if not isinstance(stmt, cst.SimpleStatementLine):
                    continue
                for small in stmt.body:
                    if isinstance(small, cst.Assign):
                        for t in small.targets:
                            self._bind(found, t.target, small.value)
                    elif isinstance(small, cst.AnnAssign) and small.value is not None:
                        self._bind(found, small.target, small.value)
                    elif isinstance(small, cst.AugAssign):
                        self._bind(found, small.target, None)
            self._bindings = found
        return self._bindings

    @staticmethod
    def _bind(found: dict, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            found.setdefault(target.value, []).append(value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                EngineCalls._bind(found, el.value, None)

    def module_value(self, name: str) -> cst.BaseExpression | None:
        """The expression a module-level name is bound to, when it is bound exactly once."""
        values = self.bindings().get(name, [])
        return values[0] if len(values) == 1 else None

    def _same_module_name(self, expr: cst.BaseExpression) -> str | None:
        """`expr`'s name if it is a plain Name defined (not imported) at module level of this file."""
        if not isinstance(expr, cst.Name):
            return None
        names = self.rule.names
        if expr.value in names.imports or expr.value not in names.defined:
            return None
        return expr.value

    # -- engine calls ---------------------------------------------------------------------------
    def engine_call(self, call: cst.Call) -> EngineCall | None:
        """The analysis of a synchronous `create_engine(...)` call, None for anything else."""
        qn = self.rule.qualified_name(call.func)
        if qn not in CREATE_ENGINE:
            return None
        keywords: dict[str, cst.Arg] = {}
        positional: list[cst.Arg] = []
        splat = False
        for arg in call.args:
            if arg.star:
                splat = True
            elif arg.keyword is not None:
                keywords[arg.keyword.value] = arg
            else:
                positional.append(arg)
        url_arg = positional[0].value if positional else (keywords["url"].value if "url" in keywords else None)
        url = self.url(url_arg) if url_arg is not None else None
        return EngineCall(call, url_arg, url, keywords, splat)

    # -- URLs -----------------------------------------------------------------------------------
    def url(self, expr: cst.BaseExpression, depth: int = 0) -> DatabaseUrl | None:
        if depth > self.MAX_DEPTH:
            return None
        template = string_template(expr)
        if template is not None:
            return parse_url(template, "template" if INTERPOLATED in template else "literal")
        if isinstance(expr, (cst.Name, cst.Attribute)):
            local = self._same_module_name(expr)
            if local is not None:
                value = self.module_value(local)
                if value is None:
                    return None
                found = self.url(value, depth + 1)
                return found.with_source("constant") if found and found.source == "literal" else found
            qn = self.rule.qualified_name(expr)
            if qn is None:
                return None
            value = self.rule.index.constant(qn)
            return parse_url(value, "constant") if isinstance(value, str) else None
        if isinstance(expr, cst.Call):
            qn = self.rule.qualified_name(expr.func)
            if qn in known.URL_CREATE:
                return self._url_create(expr)
            if qn in ENV_LOOKUPS:
                default = _argument(expr, 1, "default")
                if default is None:
                    return None
                found = self.url(default, depth + 1)
                return found.with_source("env-default") if found else None
        return None

    def _url_create(self, call: cst.Call) -> DatabaseUrl | None:
        if any(a.star for a in call.args):
            return None
        driver_name = literal_value(_argument(call, 0, "drivername"))
        if not isinstance(driver_name, str):
            return None
        query_arg = _argument(call, 6, "query")
        query = {} if query_arg is None else literal_value(query_arg)
        if not isinstance(query, dict):
            return None
        query_text = "&".join(f"{k}={v}" for k, v in query.items())
        database_arg = _argument(call, 5, "database")
        database = None if database_arg is None else literal_value(database_arg)
        if database is None:
            location = "/"
        elif isinstance(database, str):
            location = "/" + database
        else:
            location = "/" + INTERPOLATED  # a database given at run time: a path
        found = parse_url(f"{driver_name}://{location}" + (f"?{query_text}" if query_text else ""), "URL.create")
        return found

    # -- connect_args ---------------------------------------------------------------------------
    def thread_flag(self, engine: EngineCall) -> ThreadFlag:
        """`check_same_thread` as the URL query or `connect_args` set it (the query wins)."""
        if engine.url is not None:
            from_query = thread_check_from_query(engine.url)
            if from_query is not None:
                return ThreadFlag("set", from_query)
        arg = engine.keywords.get("connect_args")
        if arg is None:
            return ThreadFlag("unknown") if engine.splat else ThreadFlag("absent")
        return self.connect_args(arg.value)

    def connect_args(self, expr: cst.BaseExpression, bound_to: str | None = None, depth: int = 0) -> ThreadFlag:
        if isinstance(expr, cst.Dict):
            for el in expr.elements:
                if isinstance(el, cst.StarredDictElement):
                    return ThreadFlag("unknown")
                if literal_value(el.key) == "check_same_thread":
                    return ThreadFlag("set", literal_value(el.value))
            return ThreadFlag("missing", target=expr, bound_to=bound_to)
        if isinstance(expr, cst.Call) and self.rule.qualified_name(expr.func) == "builtins.dict":
            for arg in expr.args:
                if arg.star or arg.keyword is None:
                    return ThreadFlag("unknown")
                if arg.keyword.value == "check_same_thread":
                    return ThreadFlag("set", literal_value(arg.value))
            return ThreadFlag("missing", target=expr, bound_to=bound_to)
        local = self._same_module_name(expr)
        if local is not None and depth < self.MAX_DEPTH:
            value = self.module_value(local)
            if value is not None:
                return self.connect_args(value, local, depth + 1)
            return ThreadFlag("unknown")
        if _mentions_check_same_thread(expr):
            # conditional forms: `{"check_same_thread": False} if url.startswith("sqlite") else {}`
            return ThreadFlag("set", UNKNOWN)
        return ThreadFlag("unknown")

    # -- pool -----------------------------------------------------------------------------------
    def pool_class(self, engine: EngineCall) -> str:
        """"static" (`poolclass=StaticPool`), "other" (another SQLAlchemy pool), "absent", or "unknown"."""
        if "pool" in engine.keywords or "creator" in engine.keywords:
            return "unknown"
        arg = engine.keywords.get("poolclass")
        if arg is None:
            return "unknown" if engine.splat else "absent"
        qn = self.rule.qualified_name(arg.value)
        if qn is None:
            return "unknown"
        if qn in known.STATIC_POOL:
            return "static"
        if qn.startswith(("sqlalchemy.", "sqlmodel.")) and qn.endswith("Pool"):
            return "other"
        return "unknown"

    def static_pool_name(self) -> tuple[str, tuple[str, str] | None]:
        """The local name for StaticPool, and the import to add for it (None when already imported)."""
        for local, qn in self.rule.names.imports.items():
            if self.rule.index.canonical(qn) in known.STATIC_POOL:
                return local, None
        module = "sqlmodel" if self.rule.names.imports_module("sqlmodel") else "sqlalchemy.pool"
        return "StaticPool", (module, "StaticPool")


def _argument(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    positional = [a for a in call.args if a.keyword is None and not a.star]
    for a in call.args:
        if a.keyword is not None and a.keyword.value == keyword:
            return a.value
    return positional[position].value if len(positional) > position else None


class _MentionFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if literal_value(node) == "check_same_thread":
            self.found = True

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None and node.keyword.value == "check_same_thread":
            self.found = True


def _mentions_check_same_thread(expr: cst.BaseExpression) -> bool:
    finder = _MentionFinder()
    expr.visit(finder)
    return finder.found


# -- editing ------------------------------------------------------------------------------------
NO_SPACE_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


def _reflow(
    sep: cst.BaseParenthesizableWhitespace, closing: cst.BaseParenthesizableWhitespace
) -> tuple[cst.BaseParenthesizableWhitespace, cst.BaseParenthesizableWhitespace]:
    """Whitespace after the old last item and before the closing bracket once an item is appended.

    `sep` is the separator style between items; a comment at the end of the old last line stays there.
    """
    if not isinstance(sep, cst.ParenthesizedWhitespace):
        return sep, closing
    if isinstance(closing, cst.ParenthesizedWhitespace):
        return (
            sep.with_changes(first_line=closing.first_line, empty_lines=()),
            closing.with_changes(first_line=cst.TrailingWhitespace()),
        )
    return sep.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=()), closing


def with_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """`call` with `name=value` appended (or replacing the value of an existing `name=` argument)."""
    args = list(call.args)
    for i, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == name:
            args[i] = arg.with_changes(value=value)
            return call.with_changes(args=args)
    new = cst.Arg(value=value, keyword=cst.Name(name), equal=NO_SPACE_EQUAL)
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma):
        sep = args[-2].comma.whitespace_after
    elif isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        sep = call.whitespace_before_args
    else:
        sep = cst.SimpleWhitespace(" ")
    if isinstance(last.comma, cst.Comma):
        sep, closing = _reflow(sep, last.comma.whitespace_after)
        args[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=sep))
        new = new.with_changes(comma=last.comma.with_changes(whitespace_after=closing))
    else:
        sep, closing = _reflow(sep, last.whitespace_after_arg)
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=sep), whitespace_after_arg=cst.SimpleWhitespace(""))
        new = new.with_changes(whitespace_after_arg=closing)
    args.append(new)
    return call.with_changes(args=args)


def with_dict_item(node: cst.Dict, key: str, value: cst.BaseExpression) -> cst.Dict:
    """`node` with `"key": value` appended, quoted like the dict's other string keys."""
    elements = list(node.elements)
    quotes = {e.key.value[0] for e in elements if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)}
    quote = "'" if quotes == {"'"} else '"'
    new = cst.DictElement(key=cst.SimpleString(f"{quote}{key}{quote}"), value=value)
    if not elements:
        return node.with_changes(elements=[new])
    last = elements[-1]
    if len(elements) >= 2 and isinstance(elements[-2].comma, cst.Comma):
        sep = elements[-2].comma.whitespace_after
    elif isinstance(node.lbrace.whitespace_after, cst.ParenthesizedWhitespace):
        sep = node.lbrace.whitespace_after
    else:
        sep = cst.SimpleWhitespace(" ")
    closing_ws = node.rbrace.whitespace_before
    sep, closing = _reflow(sep, closing_ws)
    had_comma = isinstance(last.comma, cst.Comma)
    elements[-1] = last.with_changes(comma=cst.Comma(whitespace_after=sep))
    if had_comma:
        new = new.with_changes(comma=cst.Comma())
    elements.append(new)
    return node.with_changes(elements=elements, rbrace=node.rbrace.with_changes(whitespace_before=closing))


def with_dict_keyword(node: cst.Dict | cst.Call, key: str, value: cst.BaseExpression) -> cst.Dict | cst.Call:
    """Add `key` to a dict literal or a `dict(...)` call."""
    if isinstance(node, cst.Dict):
        return with_dict_item(node, key, value)
    return with_keyword(node, key, value)
