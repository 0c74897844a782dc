"""The pure core: source text + config + project index in, diagnostics (and fixed text) out.

Nothing here reads or writes files; `cli.py` and `lsp.py` do the I/O and call these functions.
"""

from __future__ import annotations

import gc
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import libcst as cst

from fastsqla_lint.config import DEFAULT, Config
from fastsqla_lint.diagnostics import (
    Applicability,
    Diagnostic,
    FileResult,
    Fix,
    LineIndex,
    Position,
    Severity,
)
from fastsqla_lint.fixes import apply_fixes, materialize
from fastsqla_lint.index import EMPTY_INDEX, ModuleSummary, ProjectIndex, summarize
from fastsqla_lint.names import NameResolver
from fastsqla_lint.noqa import parse_noqa
from fastsqla_lint.positions import Locator
from fastsqla_lint.registry import selected_rules
from fastsqla_lint.rule import Rule, RuleContext, end_lint
from fastsqla_lint.source import nesting_problem
from fastsqla_lint.walk import walk

SYNTAX_CODE = "FSL900"
MAX_FIX_PASSES = 10
PARSER_STACK_SIZE = 512 * 1024 * 1024  # address space only: pages are used as the parser reaches them
TOO_DEEP = "The file is nested too deeply to be analysed"


@dataclass
class Parsed:
    """One parse of one file: the tree (or the error that stopped it) and its name table."""

    path: str
    text: str
    module: cst.Module | None
    names: NameResolver
    error: Diagnostic | None = None
    internal_errors: list[str] = field(default_factory=list)  # from gathering the file's facts


@dataclass
class FixOutcome:
    text: str  # the fixed text (the original when nothing applied or the result would not parse)
    fixed: int  # how many fixes were applied
    result: FileResult  # diagnostics left in the fixed text
    warnings: list[str] = field(default_factory=list)


def syntax_diagnostic(path: str, message: str, line: int = 1, column: int = 0) -> Diagnostic:
    pos = Position(max(line, 1), max(column, 0))
    return Diagnostic(
        path=path,
        code=SYNTAX_CODE,
        name="unparsable-file",
        message=message,
        severity=Severity.ERROR,
        start=pos,
        end=pos,
        url=None,
    )


def parse(text: str, path: str, module_name: str | None = None, is_package: bool = False) -> Parsed:
    names = NameResolver(module_name, is_package)
    problem = nesting_problem(text)
    if problem is not None:
        return Parsed(path, text, None, names, syntax_diagnostic(path, f"SyntaxError: {problem[0]}", problem[1]))
    try:
        module = _parse_module(text)
    except cst.ParserSyntaxError as exc:
        msg = str(exc.message) if hasattr(exc, "message") else str(exc)
        return Parsed(path, text, None, names, syntax_diagnostic(path, f"SyntaxError: {msg}", exc.raw_line, exc.raw_column))
    except RecursionError:
        return Parsed(path, text, None, names, syntax_diagnostic(path, TOO_DEEP))
    except Exception as exc:  # the native parser can raise other errors on hostile input
        return Parsed(path, text, None, names, syntax_diagnostic(path, f"The file cannot be parsed: {exc}"))
    if "\f" in module.default_indent:
        module = _indents_made_explicit(module)
    names.collect_module_level(module)
    return Parsed(path, text, module, names)


class _ExplicitIndents(cst.CSTTransformer):
    def __init__(self, indent: str) -> None:
        super().__init__()
        self.indent = indent

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        return updated_node.with_changes(indent=self.indent) if updated_node.indent is None else updated_node


def _indents_made_explicit(module: cst.Module) -> cst.Module:
    """The same code, for a module whose first indented line starts with a form feed, which LibCST keeps
    in `default_indent`: every block that used that default gets it as its own indentation, and the
    default loses the form feed. With it, `config_for_parsing` (which fixes parse their snippets
    against) refuses the module, and new blocks nested in each other repeat the form feed, which
    resets the column: code that does not parse."""
    indent = module.default_indent
    try:
        new = module.visit(_ExplicitIndents(indent)).with_changes(default_indent=indent.replace("\f", "") or "    ")
        return new if new.code == module.code else module
    except RecursionError:  # deeper than LibCST's recursive visit goes: the module as parsed
        return module


_stack_size_lock = threading.Lock()
_parser_stack = threading.local()  # `.active` is set on the threads `on_parser_stack` starts


def _parse_module(text: str) -> cst.Module:
    """`cst.parse_module` on a thread with a large stack (see `on_parser_stack`), without validation."""
    return on_parser_stack(_parse_unvalidated, text)


class _Building(threading.local):
    checked = True  # whether the nodes this thread builds are validated: off while it parses


_building = _Building()
_inits_lock = threading.Lock()
_inits_installed = False


def _parse_unvalidated(text: str) -> cst.Module:
    """`cst.parse_module` without validating each node as it is built.

    LibCST validates every node in `__post_init__` (a bracket matches, a name is an identifier, ...), which
    is a sixth of a parse. What the parser builds from source it accepted is valid by construction, as a
    comment of LibCST's own says. Only the nodes this thread builds during the parse skip the check: the
    nodes a fix builds, here or on another thread, are validated as before.
    """
    if not _inits_installed:
        _install_node_inits()
    _building.checked = False
    try:
        return cst.parse_module(text)
    finally:
        _building.checked = True


def _install_node_inits() -> None:
    """Give every LibCST node class an `__init__` that stores the fields as its dataclass `__init__` does,
    then validates the node unless the thread is parsing (`_building`).

    A frozen dataclass's `__init__` stores each field with `object.__setattr__(self, name, value)`, which
    looks the field's slot up by name on every call; calling the slot's own descriptor makes the same
    store for less, and a parse builds about one node per four bytes of source. The new `__init__` has
    the dataclass's parameters and default values (a default factory is called for each node, as
    before). Its code is compiled once per shape (how many fields, which are keyword-only, which have a
    factory) and renamed for each class: installing costs a few milliseconds. A class of another layout
    (a field without a slot, or left out of `__init__`) keeps its own `__init__`, and so validates while
    parsing too: slower, not different.
    """
    global _inits_installed
    import builtins
    import dataclasses
    from types import FunctionType, MemberDescriptorType

    with _inits_lock:
        if _inits_installed:
            return
        shapes: dict[tuple, object] = {}
        seen: set[type] = set()
        todo = [cst.CSTNode]
        while todo:
            cls = todo.pop()
            if cls in seen:
                continue
            seen.add(cls)
            todo.extend(cls.__subclasses__())
            own = cls.__dict__.get("__init__")
            if own is None or not dataclasses.is_dataclass(cls) or cls.__dict__.get("__abstractmethods__"):
                continue
            code = own.__code__
            names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
            fields = dataclasses.fields(cls)
            if (
                code.co_flags & 0x0C  # *args or **kwargs
                or code.co_posonlyargcount
                or tuple(f.name for f in fields) != names
                or any(not f.init for f in fields)
            ):
                continue
            slots = [next((k.__dict__[n] for k in cls.__mro__ if n in k.__dict__), None) for n in names]
            if any(type(slot) is not MemberDescriptorType for slot in slots):
                continue
            factories = tuple(f.default_factory is not dataclasses.MISSING for f in fields)
            positional = names[: len(names) - code.co_kwonlyargcount]
            defaults = dict(zip(positional[len(positional) - len(own.__defaults__ or ()) :], own.__defaults__ or ()))
            defaults.update(own.__kwdefaults__ or {})
            # the dataclass's own marker for "not given": the default of every field with a factory
            markers = [defaults[f.name] for f, factory in zip(fields, factories) if factory and f.name in defaults]
            if len(markers) != sum(factories) or any(m is not markers[0] for m in markers):
                continue
            shape = (len(names), code.co_kwonlyargcount, factories)
            template = shapes.get(shape)
            if template is None:
                template = shapes[shape] = _node_init_template(*shape)
            namespace: dict = {"__builtins__": builtins, "_building": _building}
            for i, (slot, f) in enumerate(zip(slots, fields)):
                namespace[f"_set{i}"] = slot.__set__
                if factories[i]:
                    namespace[f"_factory{i}"] = f.default_factory
                    namespace["_NOT_GIVEN"] = markers[0]
            init = FunctionType(template.replace(co_varnames=("self", *names)), namespace, "__init__", own.__defaults__)
            init.__kwdefaults__ = dict(own.__kwdefaults__) if own.__kwdefaults__ else None
            init.__qualname__ = f"{cls.__qualname__}.__init__"
            init.__module__ = cls.__module__
            init.__wrapped__ = own  # the dataclass's own `__init__`: its signature, for `inspect`
            cls.__init__ = init
        _inits_installed = True


def _node_init_template(count: int, keyword_only: int, factories: tuple[bool, ...]):
    """The code of a node `__init__` for one shape, its parameters named `p0`, `p1`, ... (renamed to the
    fields for each class): a factory is called for a field that was not given, each field is stored
    through its slot (`_set<i>`), and the node is validated unless the thread is parsing."""
    params = [f"p{i}" for i in range(count)]
    if keyword_only:
        params.insert(count - keyword_only, "*")
    body = []
    for i, factory in enumerate(factories):
        if factory:
            body.append(f"    if p{i} is _NOT_GIVEN:\n        p{i} = _factory{i}()")
        body.append(f"    _set{i}(self, p{i})")
    body.append("    if _building.checked:\n        self.__post_init__()")
    namespace: dict = {}
    exec(f"def _init({', '.join(['self', *params])}):\n" + "\n".join(body), namespace)  # text made just above
    return namespace["_init"].__code__


def on_parser_stack(fn, *args):
    """`fn(*args)` on a thread with a large stack, or right here when this thread is already one.

    LibCST's native parser recurses once per nesting level, and a C stack overflow kills the process; the
    main thread (8 MB on Linux, 1 MB on Windows) and pool threads (512 KB on macOS) differ too much to
    rely on. `nesting_problem` keeps the depth bounded; this stack leaves a wide margin above that bound.
    A caller about to parse many files runs its whole loop here, so that one thread serves them all.
    """
    if getattr(_parser_stack, "active", False):
        return fn(*args)
    outcome: list = []

    def run() -> None:
        _parser_stack.active = True
        try:
            outcome.append((True, fn(*args)))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    with _stack_size_lock:
        try:
            previous = threading.stack_size(PARSER_STACK_SIZE)
        except (ValueError, RuntimeError):  # the platform does not let us choose
            return fn(*args)
        try:
            worker = threading.Thread(target=run, name="fastsqla-lint-parse", daemon=True)
            worker.start()
        finally:
            threading.stack_size(previous)
    worker.join()
    done, value = outcome[0]
    if not done:
        raise value
    return value


def summary_of(parsed: Parsed) -> ModuleSummary | None:
    if parsed.module is None:
        return None
    try:
        return summarize(parsed.module, parsed.names, parsed.path, parsed.text)
    except RecursionError:
        parsed.module, parsed.error = None, syntax_diagnostic(parsed.path, TOO_DEEP)
    except Exception:
        tb = traceback.format_exc(limit=-3)
        parsed.internal_errors.append(f"{parsed.path}: internal error while indexing the file:\n{tb}")
    return None


class _ImportTracker:
    """Adds function-local imports to the name table as the walk reaches them."""

    def __init__(self, names: NameResolver) -> None:
        self.names = names

    def visit_Import(self, node: cst.Import) -> None:
        self.names.add_import(node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.names.add_import(node)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while files are parsed and linted.

    Parsing allocates millions of objects, so collections run often, and each full one walks every tree
    still held (measured on a 10,000-file corpus: more than a third of the parse time). LibCST trees hold
    no reference cycles, and the linter breaks its own that would hold one (a rule instance is emptied
    after its lint; the session facts let go of their collector), so a tree is freed by reference
    counting as soon as it is dropped. The little cyclic garbage left (closures) is collected once the
    collector runs again."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


# frozen when this module was imported: what the interpreter froze itself (none before Python 3.12)
_FROZEN_AT_START = gc.get_freeze_count()


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Exempt every object alive now from the cyclic garbage collector, until the block ends.

    Before its files are parsed, a run holds what lives to its end (the state of every file of the
    projects, their paths and import scans); every later collection would walk all of it again and find
    nothing to free, and a forked worker's collections would write to every page holding it, copying
    them (Python's documentation recommends `gc.freeze()` before forking for this). Objects exempted
    are still freed by reference counting. Objects frozen before are left frozen, unless all of them
    were frozen by the interpreter itself (Python 3.12 starts with a few hundred)."""
    fresh = gc.get_freeze_count() <= _FROZEN_AT_START
    gc.freeze()
    try:
        yield
    finally:
        if fresh:  # objects someone else froze stay frozen
            gc.unfreeze()


def lint_parsed(
    parsed: Parsed,
    config: Config = DEFAULT,
    index: ProjectIndex = EMPTY_INDEX,
    rules: Sequence[type[Rule]] | None = None,
    threshold: Applicability = Applicability.SAFE,
    edits: bool = True,
) -> FileResult:
    """The diagnostics of one parsed file. With `edits=False` a fixable diagnostic's fix holds its
    applicability and title but no text edits (`Fix.edits` is None): computing edits regenerates code,
    which is most of a lint's cost when nothing will show or apply them."""
    try:
        return _lint_parsed(parsed, config, index, rules, edits)
    except RecursionError:  # deeper than LibCST's (and this module's) recursive code can go
        return FileResult(parsed.path, [syntax_diagnostic(parsed.path, TOO_DEEP)], list(parsed.internal_errors))


def _lint_parsed(
    parsed: Parsed, config: Config, index: ProjectIndex, rules: Sequence[type[Rule]] | None, edits: bool = True
) -> FileResult:
    result = FileResult(parsed.path, internal_errors=list(parsed.internal_errors))
    if parsed.error is not None:
        result.diagnostics.append(parsed.error)
        return result
    module = parsed.module
    assert module is not None
    rule_classes = selected_rules(config) if rules is None else rules
    rule_classes = [r for r in rule_classes if r.code != SYNTAX_CODE and _per_file_enabled(r.code, parsed.path, config)]
    if not rule_classes:
        return result
    data = parsed.text.encode("utf-8", "surrogatepass") if any(r.needles for r in rule_classes) else b""
    rule_classes = [r for r in rule_classes if not r.needles or any(n in data for n in r.needles)]
    ctx = RuleContext(
        path=parsed.path,
        module=module,
        module_name=parsed.names.module_name,
        names=parsed.names,
        index=index,
        config=config,
        versions=config.versions,
        text=parsed.text,
    )
    instances: list[Rule] = []
    for cls in rule_classes:
        inst = cls(ctx)
        inst.context.options = config.options_for(cls.code)
        instances.append(inst)
    try:
        return _run_rules(parsed, ctx, instances, result, edits)
    finally:
        # A rule instance lives for one lint. What it kept (often in a reference cycle with a helper
        # object) must not hold the tree until the next full collection (see `collector_paused`).
        for inst in instances:
            vars(inst).clear()
        end_lint()


def _run_rules(
    parsed: Parsed, ctx: RuleContext, instances: list[Rule], result: FileResult, edits: bool
) -> FileResult:
    module = ctx.module
    try:
        walk(module, [_ImportTracker(parsed.names), *instances], ctx)
    except RecursionError:
        raise
    except Exception:
        # Find the rule at fault by running each alone, so the others still report.
        instances = _isolate(module, parsed, ctx, instances, result)
    reports = [(inst, rep) for inst in instances for rep in inst.reports]
    if not reports:
        return result
    locator = ctx.locator
    index_ = LineIndex(parsed.text)
    noqa = parse_noqa(parsed.text)
    seen: set[tuple] = set()
    for inst, rep in reports:
        span = locator.range_of(rep.node, rep.hint)
        if span is None:
            continue
        start, end = span
        start_pos = index_.position(start)
        if noqa.suppresses(inst.code, start_pos.line) is not None:
            continue
        key = (inst.code, start, end, rep.message)
        if key in seen:
            continue
        seen.add(key)
        fix: Fix | None = None
        if rep.fix is not None and not edits:
            fix = Fix(rep.fix.applicability, rep.fix.title or inst.fix_title or rep.message, None)
        elif rep.fix is not None:
            try:
                fix = materialize(module, rep.fix, inst.fix_title or rep.message, index_, locator, parsed.text)
            except RecursionError:
                raise
            except Exception as exc:
                result.internal_errors.append(f"{parsed.path}: {inst.code} fix failed: {exc!r}")
        result.diagnostics.append(
            Diagnostic(
                path=parsed.path,
                code=inst.code,
                name=inst.name,
                message=rep.message,
                severity=rep.severity,
                start=start_pos,
                end=index_.position(end),
                start_offset=start,
                end_offset=end,
                fix=fix,
                fix_title=(fix.title if fix else inst.fix_title),
                url=inst.url(),
                noqa_row=start_pos.line,
            )
        )
    result.diagnostics.sort(key=Diagnostic.sort_key)
    return result


def _isolate(module, parsed: Parsed, ctx: RuleContext, instances: list[Rule], result: FileResult) -> list[Rule]:
    good = []
    for inst in instances:
        inst.reports.clear()
        ctx.functions.clear()
        ctx.classes.clear()
        ctx.parents.clear()
        try:
            walk(module, [_ImportTracker(parsed.names), inst], ctx)
            good.append(inst)
        except Exception:
            tb = traceback.format_exc(limit=-3)
            result.internal_errors.append(
                f"{parsed.path}: internal error in rule {inst.code} ({inst.name}):\n{tb}"
            )
    return good


def _per_file_enabled(code: str, path: str, config: Config) -> bool:
    if not config.per_file_ignores:
        return True
    from fnmatch import fnmatch

    norm = path.replace("\\", "/")
    for pattern, codes in config.per_file_ignores:
        if fnmatch(norm, pattern) or fnmatch(norm, f"*/{pattern}") or norm.endswith("/" + pattern):
            if any(code.startswith(c) or c == "ALL" for c in codes):
                return False
    return True


def lint_text(
    text: str,
    path: str = "<stdin>",
    config: Config = DEFAULT,
    index: ProjectIndex = EMPTY_INDEX,
    module_name: str | None = None,
    is_package: bool = False,
    rules: Sequence[type[Rule]] | None = None,
) -> FileResult:
    return lint_parsed(parse(text, path, module_name, is_package), config, index, rules)


def fix_text(
    text: str,
    path: str = "<stdin>",
    config: Config = DEFAULT,
    index: ProjectIndex = EMPTY_INDEX,
    threshold: Applicability = Applicability.SAFE,
    module_name: str | None = None,
    is_package: bool = False,
    rules: Sequence[type[Rule]] | None = None,
    parsed: Parsed | None = None,
) -> FixOutcome:
    """Apply fixes at or above `threshold` until nothing changes (10 passes at most)."""
    current = text
    fixed = 0
    warnings: list[str] = []
    p = parsed if parsed is not None and parsed.text == text else parse(text, path, module_name, is_package)
    result = lint_parsed(p, config, index, rules)
    for _ in range(MAX_FIX_PASSES):
        fixes = [d.fix for d in result.diagnostics if d.fix is not None and d.fix.applies_at(threshold)]
        if not fixes:
            break
        new_text, applied = apply_fixes(current, fixes)
        if applied == 0 or new_text == current:
            break
        new_parsed = parse(new_text, path, module_name, is_package)
        if new_parsed.error is not None:
            warnings.append(f"{path}: the fixes would not parse ({new_parsed.error.message}); file left unchanged")
            return FixOutcome(text, 0, lint_parsed(parse(text, path, module_name, is_package), config, index, rules), warnings)
        fixed += applied
        current = new_text
        result = lint_parsed(new_parsed, config, index, rules)
    else:
        warnings.append(f"{path}: fixes did not converge after {MAX_FIX_PASSES} passes")
    return FixOutcome(current, fixed, result, warnings)
