"""Fixes: node replacements + import requests -> a LibCST transform -> minimal text edits; applying edits."""

from __future__ import annotations

import difflib
import re

import libcst as cst

from fastsqla_lint.diagnostics import Edit, Fix, LineIndex, make_edit
from fastsqla_lint.positions import Locator
from fastsqla_lint.rule import FixRequest


class _Replacer(cst.CSTTransformer):
    """Replace nodes by identity; never descend into a node that is being replaced."""

    def __init__(self, replacements: dict) -> None:
        super().__init__()
        self.replacements = replacements

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) not in self.replacements

    def on_leave(self, original_node, updated_node):  # type: ignore[override]
        hit = self.replacements.get(id(original_node))
        if hit is not None and hit[0] is original_node:
            return hit[1]
        return updated_node


def _codemod_context(request: FixRequest):
    """A codemod context naming the linted module, so that import requests merge into its relative
    imports (`from app.database import get_db` joins `from .database import SessionLocal`).
    LibCST's codemods (and the matchers they import) load here, when a fix first needs them: a run that
    computes no edits never pays for them."""
    from libcst.codemod import CodemodContext

    rule_ctx = request._context
    name = rule_ctx.module_name if rule_ctx is not None else None
    if not name:
        return CodemodContext()
    package = name if rule_ctx.names.is_package else name.rpartition(".")[0]
    return CodemodContext(full_module_name=name, full_package_name=package)


def transformed_code(module: cst.Module, request: FixRequest) -> str:
    """The full text of `module` with the request applied (imports included)."""
    new = module.visit(_Replacer(request.replacements)) if request.replacements else module
    return _with_imports(new, request).code


def _with_imports(module: cst.Module, request: FixRequest) -> cst.Module:
    """`module` with the request's imports added, then its imports to remove removed where unused."""
    if not (request.add_imports or request.remove_imports):
        return module
    from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

    ctx = _codemod_context(request)
    for mod, obj, asname in request.add_imports:
        AddImportsVisitor.add_needed_import(ctx, mod, obj, asname)
    for mod, obj, asname in request.remove_imports:
        RemoveImportsVisitor.remove_unused_import(ctx, mod, obj, asname)
    if request.add_imports:
        module = AddImportsVisitor(ctx).transform_module(module)
    if request.remove_imports:
        module = RemoveImportsVisitor(ctx).transform_module(module)
    return module


def text_edits(old: str, new: str, index: LineIndex | None = None) -> tuple[Edit, ...]:
    """Minimal edits turning `old` into `new`: changed line blocks, trimmed to the changed characters."""
    if old == new:
        return ()
    index = index or LineIndex(old)
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    old_starts = [0]
    for line in old_lines:
        old_starts.append(old_starts[-1] + len(line))
    new_starts = [0]
    for line in new_lines:
        new_starts.append(new_starts[-1] + len(line))
    # Lines common to both ends are left out of the comparison, which is quadratic in the worst case.
    head = 0
    while head < min(len(old_lines), len(new_lines)) and old_lines[head] == new_lines[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(old_lines), len(new_lines)) - head
        and old_lines[len(old_lines) - 1 - tail] == new_lines[len(new_lines) - 1 - tail]
    ):
        tail += 1
    edits = []
    matcher = difflib.SequenceMatcher(
        a=old_lines[head : len(old_lines) - tail], b=new_lines[head : len(new_lines) - tail], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        i1, i2, j1, j2 = i1 + head, i2 + head, j1 + head, j2 + head
        a0, a1 = old_starts[i1], old_starts[i2]
        b0, b1 = new_starts[j1], new_starts[j2]
        # the changed block, trimmed to the characters that differ
        edit = _trimmed(index, a0, old[a0:a1], new[b0:b1])
        if edit is not None:
            edits.append(edit)
    return tuple(edits)


def materialize(
    module: cst.Module,
    request: FixRequest,
    title: str,
    index: LineIndex,
    locator: Locator | None = None,
    text: str | None = None,
) -> Fix | None:
    """Turn a rule's fix request into text edits against the module's text (None if nothing changes).

    With a `locator` (and the module's `text`), only the top-level statements that hold a replaced node
    are transformed and regenerated, and import requests run on the module's leading import block; any
    case that path cannot prove equivalent falls back to transforming the whole module.
    """
    try:
        edits = None
        if locator is not None and text is not None:
            edits = _local_edits(module, request, index, locator, text)
        if edits is None:
            new_code = transformed_code(module, request)
            edits = text_edits(text if text is not None else module.code, new_code, index)
    except Exception:  # a request that LibCST cannot apply is dropped, never half-applied
        return None
    if not edits:
        return None
    edits = sorted(edits, key=lambda e: (e.start, e.end))  # in text order, whichever path made them
    return Fix(applicability=request.applicability, title=request.title or title, edits=tuple(edits))


def _local_edits(
    module: cst.Module, request: FixRequest, index: LineIndex, locator: Locator, text: str
) -> list[Edit] | None:
    groups: dict[int, tuple[cst.CSTNode, dict]] = {}
    for key, (node, new) in request.replacements.items():
        stmt = locator.statement_of(node, request.hints.get(key))
        if stmt is None:
            return None
        groups.setdefault(id(stmt), (stmt, {}))[1][key] = (node, new)
    imports = bool(request.add_imports or request.remove_imports)
    prefix_len = _import_block_length(module) if imports else 0
    if imports and prefix_len is None:
        return None
    edits: list[Edit] = []
    replaced: list[tuple[int, int, str]] = []  # (start, end, new text) of each statement transformed
    for stmt, repl in groups.values():
        span = locator.statement_span(stmt)
        assert span is not None
        start, end = span
        old = text[start:end]
        if imports and start < prefix_len:
            return None  # the import block itself is edited: let the whole-module path order both
        if old != module.code_for_node(stmt):
            return None
        if id(stmt) in repl:
            if len(repl) > 1:
                return None
            new = repl[id(stmt)][1]
            if isinstance(new, cst.RemovalSentinel):
                new_text = ""
            elif isinstance(new, cst.FlattenSentinel):
                new_text = "".join(module.code_for_node(n) for n in new.nodes)
            else:
                new_text = module.code_for_node(new)
        else:
            new_stmt = stmt.visit(_Replacer(repl))
            if not isinstance(new_stmt, cst.CSTNode):
                return None
            new_text = module.code_for_node(new_stmt)
        replaced.append((start, end, new_text))
        edit = _trimmed(index, start, old, new_text)
        if edit is not None:
            edits.append(edit)
    if imports:
        prefix = module.with_changes(body=module.body[: _import_block_end(module) + 1], footer=())
        old_prefix = prefix.code
        if not text.startswith(old_prefix):
            return None
        if request.remove_imports and _named_after(text, len(old_prefix), replaced, request.remove_imports):
            return None
        edits.extend(text_edits(old_prefix, _with_imports(prefix, request).code, index))
    return edits


def _named_after(text: str, start: int, replaced: list[tuple[int, int, str]], specs) -> bool:
    """Whether a name bound by one of the imports `specs` occurs in the fixed text after `start`.

    When none does, no import of it can stand there and no code there can use it: whether the import is
    unused, and how its statement is rewritten, is then decided by the statements up to `start` alone,
    and LibCST's `RemoveImportsVisitor` (a scope analysis of the whole module) can run on those only.
    Any occurrence, even in a comment or a string, leaves the decision to the whole module."""
    parts, at = [], start
    for begin, end, new_text in sorted(replaced):
        parts += [text[at:begin], new_text]
        at = end
    parts.append(text[at:])
    after = "".join(parts)
    for mod, obj, asname in specs:
        name = asname or obj or mod.partition(".")[0]
        if re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", after):
            return True
    return False


def _import_block_end(module: cst.Module) -> int:
    """Index of the first statement after the leading docstring and import block (AddImportsVisitor's spot)."""
    body = module.body

    def only(stmt: cst.CSTNode, kinds: tuple) -> cst.CSTNode | None:
        if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], kinds):
            return stmt.body[0]
        return None

    i = 0
    doc = only(body[0], (cst.Expr,)) if body else None
    if doc is not None and isinstance(doc.value, (cst.SimpleString, cst.ConcatenatedString)):
        i = 1
    while i < len(body) and only(body[i], (cst.ImportFrom, cst.Import)) is not None:
        i += 1
    return i


def _import_block_length(module: cst.Module) -> int | None:
    """Text length of the statements an import request may touch (None when the module has none)."""
    end = _import_block_end(module)
    if end >= len(module.body):
        return None
    return len(module.with_changes(body=module.body[: end + 1], footer=()).code)


def _trimmed(index: LineIndex, start: int, old: str, new: str) -> Edit | None:
    if old == new:
        return None
    p = 0
    limit = min(len(old), len(new))
    while p < limit and old[p] == new[p]:
        p += 1
    q = 0
    while q < limit - p and old[len(old) - 1 - q] == new[len(new) - 1 - q]:
        q += 1
    return make_edit(index, start + p, start + len(old) - q, new[p : len(new) - q])


def apply_fixes(text: str, fixes: list[Fix]) -> tuple[str, int]:
    """Apply fixes in order of their first edit, skipping any that overlaps one already taken.

    Returns the new text and how many fixes were applied.
    """
    chosen: list[Edit] = []
    taken: list[tuple[int, int]] = []
    applied = 0
    for fix in sorted(fixes, key=lambda f: (min(e.start for e in f.edits), max(e.end for e in f.edits))):
        spans = [(e.start, e.end) for e in fix.edits]
        if any(_overlaps(s, t) for s in spans for t in taken):
            continue
        taken.extend(spans)
        chosen.extend(fix.edits)
        applied += 1
    out = []
    pos = 0
    for e in sorted(chosen, key=lambda e: (e.start, e.end)):
        out.append(text[pos : e.start])
        out.append(e.content)
        pos = e.end
    out.append(text[pos:])
    return "".join(out), applied


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    # Two insertions at the same point overlap too (their order would be ambiguous).
    if a[0] == a[1] == b[0] == b[1]:
        return True
    return a[0] < b[1] and b[0] < a[1] or (a[0] == a[1] and b[0] < a[0] < b[1]) or (
        b[0] == b[1] and a[0] < b[0] < a[1]
    )
