"""Tree edits that several fixes need (a helper module, not a rule).

- `replace_in(tree, mapping)`: `tree` with nodes replaced by identity, for a fix that must rebuild a
  statement holding other replacements (the engine's replacer does not descend into a replaced node).
- `insert_before(ctx, top, new, updated)`: a module-level statement added before the top-level statement
  `top` (which may itself be rebuilt as `updated`), with the blank lines PEP 8 asks for around it.
- `statement_of(parents)`: the statement holding the node being visited, and the block around it.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import libcst as cst

from fastsqla_lint.walk import children

Mapping = dict[int, tuple[cst.CSTNode, cst.CSTNode]]


class _Replacer(cst.CSTTransformer):
    def __init__(self, mapping: Mapping) -> None:
        super().__init__()
        self.mapping = mapping

    def on_visit(self, node: cst.CSTNode) -> bool:
        return id(node) not in self.mapping

    def on_leave(self, original_node, updated_node):  # type: ignore[override]
        hit = self.mapping.get(id(original_node))
        return hit[1] if hit is not None and hit[0] is original_node else updated_node


def replace_in(tree: cst.CSTNode, mapping: Mapping):
    """`tree` with every node of `mapping` (keyed by `id(old)`: `(old, new)`) replaced."""
    hit = mapping.get(id(tree))
    if hit is not None and hit[0] is tree:
        return hit[1]
    return tree.visit(_Replacer(mapping))


def walk(node: cst.CSTNode | None) -> Iterator[cst.CSTNode]:
    """`node` and everything under it, whitespace, comments and punctuation skipped (as the rule walker
    does); use `has_comment` to look for comments."""
    if node is None:
        return
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(children(n))


def has_comment(node: cst.CSTNode | cst.MaybeSentinel | None) -> bool:
    """Whether a comment sits anywhere in `node` (its whitespace included)."""
    if not isinstance(node, cst.CSTNode):
        return False
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Comment):
            return True
        stack.extend(n.children)
    return False


def contains(tree: cst.CSTNode, node: cst.CSTNode) -> bool:
    return any(n is node for n in walk(tree))


def _split_blanks(lines: Sequence[cst.EmptyLine]) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """The blank lines a statement starts with, and the rest (its comments and what follows them)."""
    lines = list(lines)
    n = 0
    while n < len(lines) and lines[n].comment is None:
        n += 1
    return lines[:n], lines[n:]


def insert_before(
    top: cst.BaseStatement,
    new: cst.BaseStatement,
    updated: cst.BaseStatement | None = None,
    carried: Sequence[cst.EmptyLine] = (),
) -> cst.FlattenSentinel:
    """Replacement for the top-level statement `top`: `new` then `updated` (default `top`). The blank lines
    before `top` now come before `new`, `carried` comment lines follow them, and two blank lines separate
    `new` from a function or class."""
    updated = top if updated is None else updated
    blanks, rest = _split_blanks(top.leading_lines)
    new = new.with_changes(leading_lines=[*blanks, *carried])
    if isinstance(new, (cst.FunctionDef, cst.ClassDef)) or isinstance(updated, (cst.FunctionDef, cst.ClassDef)):
        gap = 2
    else:
        gap = len(blanks)
    updated = updated.with_changes(leading_lines=[*[cst.EmptyLine(indent=False)] * gap, *rest])
    return cst.FlattenSentinel([new, updated])


def comment_lines(stmt: cst.BaseStatement) -> list[cst.EmptyLine]:
    """The comment lines directly above a statement (after its leading blank lines)."""
    return _split_blanks(stmt.leading_lines)[1]


def statement_of(parents: Sequence[cst.CSTNode]) -> tuple[cst.BaseStatement, cst.IndentedBlock] | None:
    """The innermost statement among `parents` (ancestors, innermost last) that sits directly in an
    indented block, and that block."""
    for i in range(len(parents) - 1, 0, -1):
        if isinstance(parents[i], cst.BaseStatement) and isinstance(parents[i - 1], cst.IndentedBlock):
            return parents[i], parents[i - 1]  # type: ignore[return-value]
    return None
