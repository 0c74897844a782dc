"""The rule base class: what a rule declares, and the only ways it speaks (`report`, `fix`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Optional, Sequence, Union

import libcst as cst

from fastsqla_lint.diagnostics import Applicability, FixAvailability, LineIndex, Severity
from fastsqla_lint.names import NameResolver
from fastsqla_lint.positions import Locator

if TYPE_CHECKING:
    from fastsqla_lint.config import Config
    from fastsqla_lint.index import ProjectIndex
    from fastsqla_lint.versions import Versions

DOCS_URL = "https://github.com/fastsqla-lint/fastsqla-lint/blob/main/docs/rules/{code}.md"

Replacement = Union[cst.CSTNode, cst.RemovalSentinel, cst.FlattenSentinel]
ImportSpec = tuple  # (module, obj or None, asname or None)


_LINT_CACHES: list[tuple[dict, Optional[Callable[[dict], None]]]] = []


def lint_cache(release: Callable[[dict], None] | None = None) -> dict:
    """A dict for a rule helper's answers during one lint (keyed by `id(node)`, say: keep the node in the
    value and check it is the same one). The engine empties every such dict when a lint ends
    (`end_lint`), so no tree outlives its lint: a tree still held when the lint ends lives on until the
    next garbage collection, which has to walk all of it. `release(cache)` runs first, for entries that
    hold a reference cycle."""
    cache: dict = {}
    _LINT_CACHES.append((cache, release))
    return cache


def end_lint() -> None:
    """Empty every `lint_cache` (the engine calls it when a lint ends)."""
    for cache, release in _LINT_CACHES:
        if cache:
            if release is not None:
                release(cache)
            cache.clear()


@dataclass
class FixRequest:
    """What a rule wants changed; the engine turns it into text edits."""

    applicability: Applicability
    title: str | None = None
    replacements: dict[int, tuple[cst.CSTNode, Replacement]] = field(default_factory=dict)
    add_imports: tuple[ImportSpec, ...] = ()
    remove_imports: tuple[ImportSpec, ...] = ()
    # id(node) -> the top-level statement the walk was in when the replacement was asked for
    hints: dict[int, cst.CSTNode] = field(default_factory=dict)
    _context: "RuleContext | None" = field(default=None, repr=False, compare=False)

    def also(self, node: cst.CSTNode, new: Replacement) -> "FixRequest":
        """Add one more node replacement to the same fix."""
        self.replacements[id(node)] = (node, new)
        if self._context is not None and self._context.top is not None:
            self.hints[id(node)] = self._context.top
        return self


@dataclass
class Report:
    node: cst.CSTNode
    message: str
    severity: Severity
    fix: FixRequest | None
    hint: cst.CSTNode | None = None  # the top-level statement being walked when the report was made


@dataclass
class RuleContext:
    """What a rule may read about the file it checks. Filled and maintained by the engine."""

    path: str
    module: cst.Module
    module_name: str | None
    names: NameResolver
    index: "ProjectIndex"
    config: "Config"
    versions: "Versions"
    options: dict = field(default_factory=dict)
    # Enclosing definitions of the node being visited, innermost last.
    functions: list[cst.FunctionDef] = field(default_factory=list)
    classes: list[cst.ClassDef] = field(default_factory=list)
    # Statements and expressions being visited, innermost last (every node, not only definitions).
    parents: list[cst.CSTNode] = field(default_factory=list)
    # The top-level statement being walked (None while at the module itself).
    top: cst.CSTNode | None = None
    # Rule.qualified_name's answers: id(expr) -> (expr, names.generation, qualified name)
    qualified: dict[int, tuple] = field(default_factory=dict)
    # The text the module was parsed from: search it instead of generating the module's code.
    text: str = ""
    _locator: Locator | None = field(default=None, repr=False)
    _lines: LineIndex | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.text:  # a context made without its text: the module's code is that text
            self.text = self.module.code

    @property
    def locator(self) -> Locator:
        """Node offsets in `text` (shared with the engine, which places the reports with it)."""
        if self._locator is None:
            self._locator = Locator(self.module, self.text)
        return self._locator

    def line_of(self, node: cst.CSTNode) -> int:
        """The 1-based line where `node` starts (1 if it is not in the module)."""
        span = self.locator.range_of(node, self.top)
        if span is None:
            return 1
        if self._lines is None:
            self._lines = LineIndex(self.text)
        return self._lines.position(span[0]).line

    def qualified_name(self, expr: cst.BaseExpression | None) -> str | None:
        """The project-canonical qualified name of a dotted expression (re-exports followed). Memoised per
        node for the lint: rules ask about the same callee many times."""
        names = self.names
        hit = self.qualified.get(id(expr))
        if hit is not None and hit[0] is expr and hit[1] == names.generation:
            return hit[2]
        qn = names.qualified_name(expr)
        if qn is not None:
            qn = self.index.canonical(qn)
        self.qualified[id(expr)] = (expr, names.generation, qn)
        return qn


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class Rule(cst.BatchableCSTVisitor):
    """Base class for every rule. Subclasses define `visit_<Node>` / `leave_<Node>` methods.

    Rules read the file through `self.context` and the project through `self.index`; they never write to
    either, and never do I/O. Their only output is `self.report(...)`.
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    message: ClassVar[str] = ""
    fix_title: ClassVar[str | None] = None
    fix_availability: ClassVar[FixAvailability] = FixAvailability.NONE
    severity: ClassVar[Severity] = Severity.ERROR
    default_enabled: ClassVar[bool] = True
    # Byte strings one of which a file must contain for this rule to possibly report in it (empty: always).
    needles: ClassVar[tuple[bytes, ...]] = ()
    # Byte strings that let the rule report in a file importing no library it knows, directly or through
    # the project (a pattern matched by attribute name alone): the prefilter parses files holding one.
    standalone_needles: ClassVar[tuple[bytes, ...]] = ()

    def __init__(self, context: RuleContext) -> None:
        super().__init__()
        self.context = context
        self.reports: list[Report] = []

    # -- identity -------------------------------------------------------------------------------
    @classmethod
    def url(cls) -> str:
        return DOCS_URL.format(code=cls.code)

    @classmethod
    def documentation(cls) -> str:
        """The rule's documentation: its module's docstring (or the class docstring, if it has one)."""
        import inspect
        import sys

        # The documentation is the rule module's docstring (one rule per module); a class docstring wins.
        doc = cls.__doc__ or getattr(sys.modules.get(cls.__module__), "__doc__", None)
        return inspect.cleandoc(doc or "")

    # -- shortcuts ------------------------------------------------------------------------------
    @property
    def names(self) -> NameResolver:
        return self.context.names

    @property
    def index(self) -> "ProjectIndex":
        return self.context.index

    @property
    def versions(self) -> "Versions":
        return self.context.versions

    def qualified_name(self, expr: cst.BaseExpression | None) -> str | None:
        """The project-canonical qualified name of a dotted expression (re-exports followed)."""
        return self.context.qualified_name(expr)

    def resolves_to(self, expr: cst.BaseExpression | None, names: Iterable[str] | str) -> bool:
        qn = self.qualified_name(expr)
        if qn is None:
            return False
        return qn == names if isinstance(names, str) else qn in names

    @property
    def current_function(self) -> cst.FunctionDef | None:
        return self.context.functions[-1] if self.context.functions else None

    @property
    def at_module_level(self) -> bool:
        return not self.context.functions and not self.context.classes

    # -- output ---------------------------------------------------------------------------------
    def fix(
        self,
        node: cst.CSTNode | None = None,
        new: Replacement | None = None,
        *,
        applicability: Applicability,
        title: str | None = None,
        add_imports: Sequence[ImportSpec] = (),
        remove_imports: Sequence[ImportSpec] = (),
    ) -> FixRequest:
        """A fix replacing `node` by `new` (more replacements with `.also()`), plus import requests.

        `add_imports` items are `(module, name)` for `from module import name`, or `(module, None)` for
        `import module`; a third item gives an alias. They go through LibCST's AddImportsVisitor, which
        skips imports that already exist.
        """
        req = FixRequest(
            applicability=applicability,
            title=title,
            add_imports=tuple(_import_spec(i) for i in add_imports),
            remove_imports=tuple(_import_spec(i) for i in remove_imports),
            _context=self.context,
        )
        if node is not None and new is not None:
            req.also(node, new)
        return req

    def report(
        self,
        node: cst.CSTNode,
        message: str | None = None,
        *,
        fix: FixRequest | None = None,
        severity: Severity | None = None,
    ) -> None:
        self.reports.append(
            Report(
                node=node,
                message=message or self.message,
                severity=severity or self.severity,
                fix=fix,
                hint=self.context.top,
            )
        )


def _import_spec(spec: Sequence) -> ImportSpec:
    items = tuple(spec) + (None,) * (3 - len(spec))
    return items[:3]


def kebab(name: str) -> str:
    return _CAMEL.sub("-", name).lower()
