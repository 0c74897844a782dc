"""One batched, read-only traversal of a LibCST tree for every selected rule.

LibCST's own `visit` rebuilds every node on the way up and walks every whitespace token, which costs
about three quarters of a parse. Rules only look at syntax, so this walker visits the same nodes in the
same order as LibCST (the order of each node type's `_visit_and_replace_children`), skips whitespace,
comments and punctuation, and dispatches `visit_<Type>` / `leave_<Type>` of every rule in one pass.
Rules must therefore not define visitors for those skipped node types (a registry test checks). A leaf
(a name, a number, an operator) that no visitor asks for is not visited either.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import libcst as cst

from fastsqla_lint.rule import RuleContext

SKIPPED_TYPES: tuple[type, ...] = (
    cst.BaseParenthesizableWhitespace,
    cst.EmptyLine,
    cst.TrailingWhitespace,
    cst.Newline,
    cst.Comment,
    cst.Comma,
    cst.Dot,
    cst.Colon,
    cst.Semicolon,
    cst.AssignEqual,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.ImportStar,
)

_ORDER: dict[type, tuple[str, ...]] = {}


def child_fields(tp: type) -> tuple[str, ...]:
    """The fields of a node type that hold child nodes, in source order (found once per type).

    The order is that of LibCST's `_visit_and_replace_children`, which passes each field's name as a
    string to a `visit_*` helper: the names of the type's fields among the function's string constants,
    which Python keeps in the order they first occur in the source (a test compares them with the source
    text; reading and tokenizing the source took about 20 ms a process)."""
    order = _ORDER.get(tp)
    if order is None:
        import dataclasses

        fields = tuple(f.name for f in dataclasses.fields(tp)) if dataclasses.is_dataclass(tp) else ()
        code = getattr(getattr(tp, "_visit_and_replace_children", None), "__code__", None)
        if code is not None:
            names = set(fields)
            order = tuple(dict.fromkeys(c for c in _string_constants(code) if c in names))
        else:  # pragma: no cover - LibCST's nodes are Python classes
            order = fields
        order = tuple(
            f
            for f in order
            if not f.startswith("whitespace")
            and f not in ("leading_lines", "lines_after_decorators", "lpar", "rpar", "comma", "semicolon")
        )
        _ORDER[tp] = order
    return order


def _string_constants(code) -> Iterator[str]:
    """The string constants of a code object and of those nested in it (a comprehension), in order."""
    for c in code.co_consts:
        if type(c) is str:
            yield c
        elif hasattr(c, "co_consts"):
            yield from _string_constants(c)


def children(
    node: cst.CSTNode,
    fields: tuple[str, ...] | None = None,
    kept: dict[type, bool] | None = None,
    keep: Callable[[type], bool] | None = None,
) -> list[cst.CSTNode]:
    """The child nodes the walker visits, in order (whitespace, comments and punctuation skipped).

    Much cheaper than LibCST's `node.children`, which runs a visitor over the node to collect them; for
    the walk, and for rules and helpers that search a subtree by hand. `fields`: the node type's
    `child_fields`, when the caller has them. Whether a child is visited is decided once per type
    (LibCST's node classes are ABCs, and an `isinstance` against them costs more than a whole visit):
    `keep` decides, `kept` holds its answers (by default, every node type but the skipped ones).
    """
    out: list[cst.CSTNode] = []
    if kept is None or keep is None:
        kept, keep = _VISITED, _is_visited
    for name in fields if fields is not None else child_fields(type(node)):
        value = getattr(node, name)
        vt = type(value)
        if vt is tuple or vt is list:
            for v in value:
                ok = kept.get(type(v))
                if ok is None:
                    ok = keep(type(v))
                if ok:
                    out.append(v)
            continue
        ok = kept.get(vt)
        if ok is None:
            ok = keep(vt)
        if ok:
            out.append(value)
        elif isinstance(value, (tuple, list)):
            out.extend(item for item in value if keep(type(item)))
    return out


_VISITED: dict[type, bool] = {}


_SKIPPED = frozenset(SKIPPED_TYPES)


def _is_visited(tp: type) -> bool:
    hit = _VISITED.get(tp)
    if hit is None:
        # Read from the type's own bases: `issubclass` against LibCST's abstract node classes searches
        # every subclass they have the first time it answers no (about 20 ms a process for the walk's
        # types). LibCST registers no virtual subclasses, so both give the same answer.
        mro = tp.__mro__
        hit = _VISITED[tp] = cst.CSTNode in mro and _SKIPPED.isdisjoint(mro)
    return hit


Dispatch = dict[str, list[Callable[[cst.CSTNode], object]]]


_METHODS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _methods(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The `visit_X` / `leave_X` methods a visitor class really defines (found once per class)."""
    hit = _METHODS.get(cls)
    if hit is None:
        visits, leaves = [], []
        # LibCST's visitor base classes define a no-op for every node type: only real visitors count, so
        # only the names the other classes define are looked at (`dir` would list LibCST's 500 no-ops too).
        own = {attr for klass in cls.__mro__ if not klass.__module__.startswith("libcst.") for attr in vars(klass)}
        for attr in sorted(own):
            if getattr(cls, attr) is getattr(cst.BatchableCSTVisitor, attr, None):
                continue
            if attr.startswith("visit_") and attr.count("_") == 1:
                visits.append(attr)
            elif attr.startswith("leave_") and attr.count("_") == 1:
                leaves.append(attr)
        hit = _METHODS[cls] = (tuple(visits), tuple(leaves))
    return hit


def dispatch_table(visitors: Iterable[object]) -> tuple[Dispatch, Dispatch]:
    visit: Dispatch = {}
    leave: Dispatch = {}
    for v in visitors:
        visits, leaves = _methods(type(v))
        for attr in visits:
            visit.setdefault(attr[6:], []).append(getattr(v, attr))
        for attr in leaves:
            leave.setdefault(attr[6:], []).append(getattr(v, attr))
    return visit, leave


_LEAVE = object()


def walk(module: cst.Module, visitors: Iterable[object], context: RuleContext) -> None:
    """Visit `module` once, calling every visitor's `visit_X` before and `leave_X` after X's children.

    The context's `functions`, `classes` and `parents` stacks are kept current: during `visit_X` and
    `leave_X` they hold X's ancestors, not X itself.
    """
    visit, leave = dispatch_table(visitors)
    # per node type, found once: its visitors, its leavers, the fields holding its children
    plans: dict[type, tuple] = {}
    functions = context.functions
    classes = context.classes
    parents = context.parents
    function_def, class_def = cst.FunctionDef, cst.ClassDef
    # per node type, found once: whether the walk goes there at all. A leaf (no child fields) that no
    # visitor asks for is left out: visiting it would do nothing (about two fifths of the nodes are such
    # names, numbers and operators).
    pushed: dict[type, bool] = {}

    def wanted(tp: type) -> bool:
        hit = pushed.get(tp)
        if hit is None:
            name = tp.__name__
            hit = pushed[tp] = _is_visited(tp) and bool(child_fields(tp) or name in visit or name in leave)
        return hit

    stack: list[object] = [module]
    while stack:
        node = stack.pop()
        if node is _LEAVE:
            done = parents.pop()
            tp = type(done)
            if tp is function_def:
                functions.pop()
            elif tp is class_def:
                classes.pop()
            for fn in plans[tp][1]:
                fn(done)
            continue
        tp = type(node)
        plan = plans.get(tp)
        if plan is None:
            name = tp.__name__
            plan = plans[tp] = (tuple(visit.get(name, ())), tuple(leave.get(name, ())), child_fields(tp))
        visits, leaves, fields = plan
        if len(parents) == 1:
            context.top = node
        descend = True
        for fn in visits:
            if fn(node) is False:
                descend = False
        if not fields:
            # a leaf (a name, a number, a string): no children to push, leave it at once
            for fn in leaves:
                fn(node)
            continue
        if tp is function_def:
            functions.append(node)
        elif tp is class_def:
            classes.append(node)
        parents.append(node)
        stack.append(_LEAVE)
        if not descend:
            continue
        kids = children(node, fields, pushed, wanted)
        kids.reverse()
        stack.extend(kids)
