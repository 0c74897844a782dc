"""Light name resolution: which qualified name does an expression refer to?

LibCST's ScopeProvider and QualifiedNameProvider are exact but cost several times a parse. Rules only need
to know whether `sa.create_engine`, `ce` or `database.SessionLocal` stands for a name we track, so this
module keeps one import table per module and resolves dotted expressions through it:

- `import sqlalchemy as sa`            -> `sa`           stands for `sqlalchemy`
- `from sqlalchemy.orm import Session` -> `Session`      stands for `sqlalchemy.orm.Session`
- `from .database import SessionLocal` in `app.main` -> `app.database.SessionLocal`
- a name defined in the module itself  -> `<module>.<name>` (so the project index can look it up)
- a builtin (`next`, `dict`)           -> `builtins.<name>`

Imports anywhere in the file count (function-local ones included); shadowing by a local variable of the
same name is not modelled. Re-exports inside the project (`app/db/__init__.py` importing from
`.session`) are followed by the project index, not here.
"""

from __future__ import annotations

import builtins
from typing import Iterable

import libcst as cst

BUILTINS = frozenset(dir(builtins))


def dotted_name(expr: cst.BaseExpression | None) -> str | None:
    """`a.b.c` for a chain of Attribute/Name nodes, else None."""
    # exact type checks: both classes are concrete, and `isinstance` against LibCST's node classes goes
    # through ABCMeta (slow when it fails, which is most calls here)
    node = expr
    if type(node) is cst.Name:
        return node.value
    parts: list[str] = []
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is cst.Name:
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def _module_dotted(node: cst.BaseExpression) -> str:
    name = dotted_name(node)
    return name or ""


def resolve_relative(module_name: str | None, is_package: bool, level: int, target: str) -> str | None:
    """Resolve `from ..x import y` inside `module_name` to an absolute module path."""
    if level == 0:
        return target
    if not module_name:
        return None
    parts = module_name.split(".")
    package = parts if is_package else parts[:-1]
    if level - 1 > len(package):
        return None
    base = package[: len(package) - (level - 1)]
    if target:
        base = base + target.split(".")
    return ".".join(base) if base else None


class NameResolver:
    """Per-module import table plus the names the module defines itself."""

    def __init__(self, module_name: str | None = None, is_package: bool = False) -> None:
        self.module_name = module_name
        self.is_package = is_package
        self.imports: dict[str, str] = {}
        self.defined: set[str] = set()
        # bumped whenever an import changes what a name stands for (memoised lookups check it)
        self.generation = 0

    # -- building -------------------------------------------------------------------------------
    def add_import(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = _module_dotted(alias.name)
                if not full:
                    continue
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self._bind(alias.asname.name.value, full)
                else:
                    # `import a.b.c` binds `a`, and `a.b.c` resolves through it
                    head = full.split(".")[0]
                    if head not in self.imports:
                        self._bind(head, head)
            return
        level = len(node.relative)
        target = _module_dotted(node.module) if node.module is not None else ""
        base = resolve_relative(self.module_name, self.is_package, level, target)
        if base is None or isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = _module_dotted(alias.name)
            if not name:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self._bind(local, f"{base}.{name}")

    def _bind(self, local: str, target: str) -> None:
        if self.imports.get(local) != target:
            self.imports[local] = target
            self.generation += 1

    def add_definition(self, name: str) -> None:
        self.defined.add(name)

    def collect_module_level(self, module: cst.Module) -> None:
        """Imports and definitions at module level, including inside `if`/`try` blocks."""
        for stmt in _flat_statements(module.body):
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        self.add_import(small)
                    elif isinstance(small, cst.Assign):
                        for t in small.targets:
                            for n in _bound_names(t.target):
                                self.defined.add(n)
                    elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                        for n in _bound_names(small.target):
                            self.defined.add(n)
            elif isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                self.defined.add(stmt.name.value)

    # -- querying -------------------------------------------------------------------------------
    def qualified_name(self, expr: cst.BaseExpression | None) -> str | None:
        name = dotted_name(expr)
        if name is None:
            return None
        return self.qualify(name)

    def qualify(self, dotted: str) -> str | None:
        head, _, rest = dotted.partition(".")
        target = self.imports.get(head)
        if target is not None:
            return f"{target}.{rest}" if rest else target
        if head in self.defined:
            if self.module_name:
                return f"{self.module_name}.{dotted}"
            return dotted
        if head in BUILTINS:
            return f"builtins.{dotted}"
        return None

    def resolves_to(self, expr: cst.BaseExpression | None, names: Iterable[str] | str) -> bool:
        qn = self.qualified_name(expr)
        if qn is None:
            return False
        if isinstance(names, str):
            return qn == names
        return qn in names

    def imports_module(self, prefix: str) -> bool:
        """Whether any import of this module comes from `prefix` (a top-level package name)."""
        return any(v == prefix or v.startswith(prefix + ".") for v in self.imports.values())


def _flat_statements(body: Iterable[cst.CSTNode]) -> Iterable[cst.CSTNode]:
    for stmt in body:
        if isinstance(stmt, cst.If):
            yield from _flat_statements(stmt.body.body)
            orelse = stmt.orelse
            while orelse is not None:
                yield from _flat_statements(orelse.body.body)
                orelse = orelse.orelse if isinstance(orelse, cst.If) else None
        elif isinstance(stmt, cst.Try):
            yield from _flat_statements(stmt.body.body)
            for h in stmt.handlers:
                yield from _flat_statements(h.body.body)
            if stmt.orelse is not None:
                yield from _flat_statements(stmt.orelse.body.body)
            if stmt.finalbody is not None:
                yield from _flat_statements(stmt.finalbody.body.body)
        else:
            yield stmt


def _bound_names(target: cst.BaseExpression) -> Iterable[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for el in target.elements:
            yield from _bound_names(el.value)
    elif isinstance(target, cst.StarredElement):
        yield from _bound_names(target.value)
