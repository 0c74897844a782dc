"""The project index: facts about every module of the project, keyed by qualified name.

Built once per run from one `ModuleSummary` per file, then frozen; rules read it, never write it.
A summary is plain data (picklable, cacheable), made from the same parse the rules use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import libcst as cst

from fastsqla_lint.literals import literal_value
from fastsqla_lint.names import NameResolver


@dataclass
class ModuleSummary:
    name: str
    path: str
    is_package: bool = False
    # local name -> qualified name, as the module's import table has it
    imports: dict[str, str] = field(default_factory=dict)
    # module-level NAME = <literal> (str, number, bool, None, dict/list/tuple of literals)
    constants: dict[str, object] = field(default_factory=dict)
    # names the module defines at module level (assignments, functions, classes)
    defined: frozenset[str] = frozenset()


def summarize(module: cst.Module, names: NameResolver, path: str) -> ModuleSummary:
    """Module-level facts of one parsed file."""
    constants: dict[str, object] = {}
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            value = None
            targets: list[cst.BaseExpression] = []
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
                value = small.value
            elif isinstance(small, cst.AnnAssign) and small.value is not None:
                targets = [small.target]
                value = small.value
            if value is None:
                continue
            lit = literal_value(value)
            for t in targets:
                if isinstance(t, cst.Name):
                    if lit is not literal_value.UNKNOWN:
                        constants[t.value] = lit
                    else:
                        constants.pop(t.value, None)
    return ModuleSummary(
        name=names.module_name or "",
        path=path,
        is_package=names.is_package,
        imports=dict(names.imports),
        constants=constants,
        defined=frozenset(names.defined),
    )


class ProjectIndex:
    """Cross-file facts. Names that cannot be resolved are unknown, and rules stay silent on them."""

    def __init__(
        self,
        modules: Iterable[ModuleSummary] = (),
        root: Path | None = None,
        src_roots: tuple[Path, ...] = (),
    ) -> None:
        self.root = root
        self.src_roots = src_roots
        self.modules: dict[str, ModuleSummary] = {m.name: m for m in modules if m.name}
        self._canonical: dict[str, str] = {}

    def module(self, name: str) -> ModuleSummary | None:
        return self.modules.get(name)

    def split(self, qualname: str) -> tuple[ModuleSummary, str] | None:
        """The indexed module a qualified name lives in, and the rest of the name."""
        parts = qualname.split(".")
        for i in range(len(parts) - 1, 0, -1):
            mod = self.modules.get(".".join(parts[:i]))
            if mod is not None:
                return mod, ".".join(parts[i:])
        return None

    def canonical(self, qualname: str) -> str:
        """Follow project re-exports: `app.db.SessionLocal` -> `app.db.session.SessionLocal`."""
        cached = self._canonical.get(qualname)
        if cached is not None:
            return cached
        current = qualname
        seen = {current}
        for _ in range(20):
            hit = self.split(current)
            if hit is None:
                break
            mod, rest = hit
            head, _, tail = rest.partition(".")
            if head in mod.defined:
                break
            target = mod.imports.get(head)
            if target is None:
                break
            nxt = f"{target}.{tail}" if tail else target
            if nxt in seen:
                break
            seen.add(nxt)
            current = nxt
        self._canonical[qualname] = current
        return current

    def constant(self, qualname: str) -> object:
        """The literal value of a module-level constant, or `literal_value.UNKNOWN`."""
        hit = self.split(self.canonical(qualname))
        if hit is None:
            return literal_value.UNKNOWN
        mod, rest = hit
        return mod.constants.get(rest, literal_value.UNKNOWN)


EMPTY_INDEX = ProjectIndex()


def module_name_for(path: Path, roots: Iterable[Path]) -> tuple[str | None, bool]:
    """The dotted module name of `path` under the first import root containing it, and is-package."""
    path = path.resolve() if path.is_absolute() else path.absolute()
    is_package = path.stem == "__init__"
    for root in roots:
        try:
            rel = path.relative_to(root.resolve())
        except ValueError:
            continue
        parts = list(rel.with_suffix("").parts)
        if is_package:
            parts = parts[:-1]
        if parts and all(p.isidentifier() for p in parts):
            return ".".join(parts), is_package
    return (path.stem if not is_package else path.parent.name) or None, is_package
