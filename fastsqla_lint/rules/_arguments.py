"""Call arguments: finding a keyword argument and removing one while keeping the call's layout (a helper
module, not a rule)."""

from __future__ import annotations

import libcst as cst

from fastsqla_lint.literals import UNKNOWN, literal_value
from fastsqla_lint.rules._edits import has_comment as _has_comment


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    """The `name=...` argument of a call."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def keyword_literal(call: cst.Call, name: str) -> object:
    """The literal value of `name=...` (UNKNOWN when absent or not a literal)."""
    arg = keyword(call, name)
    return literal_value(arg.value) if arg is not None else UNKNOWN


def without_arg(call: cst.Call, arg: cst.Arg) -> cst.Call | None:
    """`call` without `arg`, the separators and line breaks of the others kept. A comment after the
    argument's comma moves to the separator before it; None when a comment would be lost."""
    args = list(call.args)
    i = next(n for n, a in enumerate(args) if a is arg)
    inside = (arg.keyword, arg.equal, arg.value, arg.whitespace_after_star, arg.whitespace_after_arg)
    if any(_has_comment(part) for part in inside if part is not None):
        return None
    after = arg.comma.whitespace_after if isinstance(arg.comma, cst.Comma) else None
    commented = after is not None and _has_comment(after)
    del args[i]
    if not args:
        if commented:
            return None
        return call.with_changes(args=[], whitespace_before_args=cst.SimpleWhitespace(""))
    if i == len(args):  # it was the last one: the new last one takes its comma and closing whitespace
        prev = args[-1]
        if _has_comment(prev.comma):
            return None
        args[-1] = prev.with_changes(comma=arg.comma, whitespace_after_arg=arg.whitespace_after_arg)
    elif commented and i == 0:
        if _has_comment(call.whitespace_before_args):
            return None
        call = call.with_changes(whitespace_before_args=after)
    elif commented:
        prev = args[i - 1]
        if not isinstance(prev.comma, cst.Comma) or _has_comment(prev.comma):
            return None
        args[i - 1] = prev.with_changes(comma=prev.comma.with_changes(whitespace_after=after))
    return call.with_changes(args=args)
