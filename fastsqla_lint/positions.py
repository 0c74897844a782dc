"""Node ranges as text offsets, computed only for files that have something to report.

LibCST's PositionProvider tracks line and column for every token of every node, which costs about twice
a parse. Here one code generation pass records each node's syntactic start and end as code point offsets
into the generated text (which is the parsed text, byte for byte); `LineIndex` turns an offset into a
line and column only for the few nodes that are reported.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import libcst as cst
from libcst._nodes.internal import CodegenState


class _OffsetState(CodegenState):
    def __init__(self, default_indent: str, default_newline: str) -> None:
        super().__init__(default_indent=default_indent, default_newline=default_newline)
        self.pos = 0
        self.ranges: dict[int, tuple[int, int]] = {}
        self._starts: list[int] = []

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._starts.append(self.pos)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._starts.pop()
        # nodes without a syntactic range of their own get their whitespace-inclusive one
        self.ranges.setdefault(id(node), (start, self.pos))

    def add_indent_tokens(self) -> None:
        for tok in self.indent_tokens:
            self.tokens.append(tok)
            self.pos += len(tok)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self.pos += len(value)

    def pop_trailing_newline(self) -> None:
        if self.tokens:
            self.pos -= len(self.tokens.pop())

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Iterator[None]:
        start = self.pos
        try:
            yield
        finally:
            end = self.pos
            if start_node is not None and id(start_node) in self.ranges:
                start = self.ranges[id(start_node)][0]
            if end_node is not None and id(end_node) in self.ranges:
                end = self.ranges[id(end_node)][1]
            self.ranges[id(node)] = (start, end)


def node_offsets(module: cst.Module) -> dict[int, tuple[int, int]]:
    """Map `id(node)` to `(start, end)` code point offsets for every node of `module`."""
    state = _OffsetState(module.default_indent, module.default_newline)
    module._codegen(state)
    return state.ranges


class Locator:
    """Offsets of nodes, paying for position tracking only inside the top-level statements that need it.

    A recording pass runs over a top-level statement only when a node inside it is asked for. Its offset
    in the file comes from the text when the statement's code occurs there exactly once (its true place
    is one of the occurrences, so a single one is it); otherwise one plain code generation pass over
    the whole module gives every top-level statement its span (leading blank and comment lines
    included). Callers pass a `hint`, the top-level statement they believe holds the node (a rule knows
    it from the walk); a wrong or missing hint falls back to recording the whole module once.
    """

    def __init__(self, module: cst.Module, text: str | None = None) -> None:
        self.module = module
        # The parsed text is the module's code, except for a byte order mark LibCST drops.
        self.text = text if text and not text.startswith("\ufeff") else None
        self._top = {id(stmt) for stmt in module.body}
        self._spans: dict[int, tuple[int, int]] | None = None
        self._found: dict[int, tuple[int, int]] = {}  # statements placed by their text
        self._inner: dict[int, tuple[int, dict[int, tuple[int, int]]]] = {}  # stmt -> (offset, ranges)
        self._all: dict[int, tuple[int, int]] | None = None

    @property
    def spans(self) -> dict[int, tuple[int, int]]:
        """The span of every top-level statement (one plain code generation pass, done once)."""
        if self._spans is None:
            module = self.module
            state = CodegenState(default_indent=module.default_indent, default_newline=module.default_newline)
            for h in module.header:
                h._codegen(state)
            pos = sum(len(t) for t in state.tokens)
            spans: dict[int, tuple[int, int]] = {}
            for stmt in module.body:
                n0 = len(state.tokens)
                stmt._codegen(state)
                length = sum(len(t) for t in state.tokens[n0:])
                spans[id(stmt)] = (pos, pos + length)
                pos += length
            self._spans = spans
        return self._spans

    def statement_span(self, stmt: cst.CSTNode) -> tuple[int, int] | None:
        if id(stmt) not in self._top:
            return None
        self._ranges_in(stmt)
        found = self._found.get(id(stmt))
        return found if found is not None else self.spans.get(id(stmt))

    def _ranges_in(self, stmt: cst.CSTNode) -> tuple[int, dict[int, tuple[int, int]]]:
        """The ranges recorded inside a top-level statement, relative to it, and its offset."""
        hit = self._inner.get(id(stmt))
        if hit is not None:
            return hit
        state = _OffsetState(self.module.default_indent, self.module.default_newline)
        stmt._codegen(state)
        offset = -1
        if self._spans is None and self.text is not None:
            piece = "".join(state.tokens)
            offset = self.text.find(piece)
            if offset >= 0 and self.text.find(piece, offset + 1) >= 0:
                offset = -1  # more than one place: ask the code generation pass
            if offset >= 0:
                self._found[id(stmt)] = (offset, offset + len(piece))
        if offset < 0:
            offset = self.spans[id(stmt)][0]
        hit = self._inner[id(stmt)] = (offset, state.ranges)
        return hit

    def _range_in(self, stmt: cst.CSTNode, node: cst.CSTNode) -> tuple[int, int] | None:
        offset, ranges = self._ranges_in(stmt)
        found = ranges.get(id(node))
        return (found[0] + offset, found[1] + offset) if found is not None else None

    def statement_of(self, node: cst.CSTNode, hint: cst.CSTNode | None = None) -> cst.CSTNode | None:
        """The top-level statement containing `node` (or being it), or None if it is not in the module."""
        if id(node) in self._top:
            return node
        if hint is not None and id(hint) in self._top and self._range_in(hint, node) is not None:
            return hint
        span = self.range_of(node)
        if span is None:
            return None
        for stmt in self.module.body:
            s, e = self.spans[id(stmt)]
            if s <= span[0] and span[1] <= e and self._range_in(stmt, node) is not None:
                return stmt
        return None

    def range_of(self, node: cst.CSTNode, hint: cst.CSTNode | None = None) -> tuple[int, int] | None:
        if id(node) in self._top:
            hint = node  # a top-level statement is recorded with itself
        if hint is not None and id(hint) in self._top:
            found = self._range_in(hint, node)
            if found is not None:
                return found
        if self._all is None:
            self._all = node_offsets(self.module)
        return self._all.get(id(node))
