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
