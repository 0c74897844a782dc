"""Evaluate literal expressions of the CST (strings, numbers, containers of them) without executing code."""

from __future__ import annotations

import ast
import warnings

import libcst as cst


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN = _Unknown()


def evaluate(text: str) -> object:
    """`ast.literal_eval` of a literal's source text (raises as it does), without printing the warnings
    its compilation gives: an invalid escape such as `"\\d+"` or `"C:\\data"` is a `SyntaxWarning` on stderr
    from Python 3.12 (a `DeprecationWarning` before), which is the checked code's business, not the
    linter's output. Only text with a backslash can hold one."""
    if "\\" not in text:
        return ast.literal_eval(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.literal_eval(text)


def literal_value(node: cst.BaseExpression | None) -> object:
    """The Python value of a literal expression, or `literal_value.UNKNOWN`."""
    if node is None:
        return UNKNOWN
    if isinstance(node, (cst.SimpleString, cst.Integer, cst.Float)):
        try:
            return evaluate(node.value)
        except (ValueError, SyntaxError):
            return UNKNOWN
    if isinstance(node, cst.ConcatenatedString):
        left = literal_value(node.left)
        right = literal_value(node.right)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        if isinstance(left, bytes) and isinstance(right, bytes):
            return left + right
        return UNKNOWN
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        v = literal_value(node.expression)
        return -v if isinstance(v, (int, float)) and not isinstance(v, bool) else UNKNOWN
    if isinstance(node, (cst.List, cst.Tuple)):
        items = []
        for el in node.elements:
            if not isinstance(el, cst.Element):
                return UNKNOWN
            v = literal_value(el.value)
            if v is UNKNOWN:
                return UNKNOWN
            items.append(v)
        return items if isinstance(node, cst.List) else tuple(items)
    if isinstance(node, cst.Dict):
        out = {}
        for el in node.elements:
            if not isinstance(el, cst.DictElement):
                return UNKNOWN
            k = literal_value(el.key)
            v = literal_value(el.value)
            if k is UNKNOWN or v is UNKNOWN:
                return UNKNOWN
            try:
                out[k] = v
            except TypeError:
                return UNKNOWN
        return out
    return UNKNOWN


def string_prefix(node: cst.BaseExpression | None) -> str | None:
    """The literal text an f-string (or string) starts with, before its first interpolation."""
    lit = literal_value(node)
    if isinstance(lit, str):
        return lit
    if isinstance(node, cst.FormattedString):
        out = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                out.append(part.value)
            else:
                break
        return "".join(out)
    if isinstance(node, cst.ConcatenatedString):
        return string_prefix(node.left)
    return None


literal_value.UNKNOWN = UNKNOWN  # type: ignore[attr-defined]
