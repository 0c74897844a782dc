"""Fixes: node replacements + import requests -> a LibCST transform -> minimal text edits; applying edits."""

from __future__ import annotations

import difflib

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from fastsqla_lint.diagnostics import Edit, Fix, LineIndex, make_edit
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


def transformed_code(module: cst.Module, request: FixRequest) -> str:
    """The full text of `module` with the request applied (imports included)."""
    new = module.visit(_Replacer(request.replacements)) if request.replacements else module
    if request.add_imports or request.remove_imports:
        ctx = CodemodContext(full_module_name=request.module_name, full_package_name=request.package_name)
        for mod, obj, asname in request.add_imports:
            AddImportsVisitor.add_needed_import(ctx, mod, obj, asname)
        for mod, obj, asname in request.remove_imports:
            RemoveImportsVisitor.remove_unused_import(ctx, mod, obj, asname)
        if request.add_imports:
            new = AddImportsVisitor(ctx).transform_module(new)
        if request.remove_imports:
            new = RemoveImportsVisitor(ctx).transform_module(new)
    return new.code


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
        a_text, b_text = old[a0:a1], new[b0:b1]
        # trim the common prefix and suffix inside the block
        p = 0
        limit = min(len(a_text), len(b_text))
        while p < limit and a_text[p] == b_text[p]:
            p += 1
        s = 0
        while s < limit - p and a_text[len(a_text) - 1 - s] == b_text[len(b_text) - 1 - s]:
            s += 1
        edits.append(make_edit(index, a0 + p, a1 - s, b_text[p : len(b_text) - s]))
    return tuple(edits)


def materialize(module: cst.Module, request: FixRequest, title: str, index: LineIndex) -> Fix | None:
    """Turn a rule's fix request into text edits against the module's text (None if nothing changes)."""
    try:
        new_code = transformed_code(module, request)
    except Exception:  # a request that LibCST cannot apply is dropped, never half-applied
        return None
    edits = text_edits(module.code, new_code, index)
    if not edits:
        return None
    return Fix(applicability=request.applicability, title=request.title or title, edits=edits)


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
