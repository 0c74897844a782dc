"""`positions.Locator` gives the offsets of one code generation pass over the whole module, whether a
statement is placed by its text or by that pass."""

from __future__ import annotations

import libcst as cst

from fastsqla_lint.positions import Locator, node_offsets
from fastsqla_lint.walk import children

TEXT = '''"""Doc."""
import os

x = 1  # twice below


def f(a):
    return a + 1

x = 1  # twice below
x = 1  # twice below

class C:
    def m(self):
        return "é🙂"
'''


def _nodes(module: cst.Module) -> list[cst.CSTNode]:
    out, stack = [], [module]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(children(node))
    return out


def _check(text: str) -> None:
    module = cst.parse_module(text)
    expected = node_offsets(module)
    for with_text in (True, False):
        for stmt in module.body:
            locator = Locator(module, text if with_text else None)
            assert locator.statement_span(stmt) == locator.spans[id(stmt)]
            for node in _nodes(stmt):
                assert locator.range_of(node, stmt) == expected[id(node)]
                assert locator.statement_of(node, stmt) is stmt
                assert Locator(module, text).statement_of(node) is stmt


def test_unique_and_repeated_statements_get_the_offsets_of_the_whole_module_pass():
    _check(TEXT)


def test_a_byte_order_mark_is_not_counted_in_the_offsets():
    text = "\ufeff" + TEXT
    module = cst.parse_module(text)
    expected = node_offsets(module)
    stmt = module.body[2]
    locator = Locator(module, text)
    assert locator.range_of(stmt, stmt) == expected[id(stmt)]


def test_a_wrong_hint_falls_back_to_the_whole_module():
    module = cst.parse_module(TEXT)
    expected = node_offsets(module)
    inner = module.body[-1].body.body[0]
    locator = Locator(module, TEXT)
    assert locator.range_of(inner, module.body[0]) == expected[id(inner)]


def test_a_statement_whose_code_occurs_once_is_placed_without_the_whole_module_pass():
    module = cst.parse_module(TEXT)
    expected = node_offsets(module)
    func = module.body[3]
    locator = Locator(module, TEXT)
    assert locator.range_of(func.body.body[0], func) == expected[id(func.body.body[0])]
    assert locator._spans is None  # the plain code generation of every statement was not needed
    repeated = module.body[5]
    assert locator.range_of(repeated, repeated) == expected[id(repeated)]
    assert locator._spans is not None
