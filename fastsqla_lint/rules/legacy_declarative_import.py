"""## What it does
Checks for `declarative_base`, `as_declarative`, `declared_attr`, `has_inherited_table`, `synonym_for` and
`DeclarativeMeta` imported from (or used through) `sqlalchemy.ext.declarative`. Off by default: select
`FSL101` (or `FSL1`) to enable it.

## Why is this bad?
They moved to `sqlalchemy.orm` in SQLAlchemy 1.4. The old names still work but emit `MovedIn20Warning`
(`The declarative_base() function is now available as sqlalchemy.orm.declarative_base()`), which test
suites running with warnings as errors turn into failures, and they may be removed in a later release.
`ConcreteBase`, `AbstractConcreteBase` and `DeferredReflection` still live in `sqlalchemy.ext.declarative`
and are left alone. Not reported when the project targets SQLAlchemy before 1.4.

## Example
    from sqlalchemy.ext.declarative import declarative_base

    Base = declarative_base()

## Use instead
    from sqlalchemy.orm import declarative_base

    Base = declarative_base()

## Fix safety
Safe: the same objects are imported from their new module. An import that also names something that did
not move is split: the moved names are imported from `sqlalchemy.orm`. A use through the module
(`sqlalchemy.ext.declarative.declarative_base()`) is rewritten to the `sqlalchemy.orm` name, imported if
needed.

## References
- SQLAlchemy 2.0 migration guide, "Declarative is integrated into the ORM with new features"
- SQLAlchemy docs, `sqlalchemy.orm.declarative_base` ("Changed in version 1.4")
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.names import dotted_name
from fastsqla_lint.rule import Rule
from fastsqla_lint.rules import _sessions
from fastsqla_lint.rules._edits import has_comment

LEGACY = "sqlalchemy.ext.declarative"
MOVED = frozenset({"declarative_base", "as_declarative", "declared_attr", "has_inherited_table", "synonym_for",
                   "DeclarativeMeta"})


class LegacyDeclarativeImport(Rule):
    code = "FSL101"
    name = "legacy-declarative-import"
    message = "Declarative helper imported from `sqlalchemy.ext.declarative`: it moved to `sqlalchemy.orm` in 1.4"
    fix_title = "Import it from `sqlalchemy.orm`"
    fix_availability = FixAvailability.ALWAYS
    severity = Severity.WARNING
    default_enabled = False
    needles = (b"sqlalchemy.ext",)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None or dotted_name(node.module) != LEGACY:
            return
        if isinstance(node.names, cst.ImportStar) or self.versions.at_least("sqlalchemy", "1.4") is False:
            return
        moved = [a for a in node.names if dotted_name(a.name) in MOVED]
        if not moved:
            return
        listed = ", ".join(f"`{dotted_name(a.name)}`" for a in moved)
        message = f"{listed} imported from `{LEGACY}`: moved to `sqlalchemy.orm` in SQLAlchemy 1.4 (`MovedIn20Warning`)"
        kept = [a for a in node.names if a not in moved]
        if not kept:
            new = node.with_changes(module=cst.Attribute(value=cst.Name("sqlalchemy"), attr=cst.Name("orm")))
            self.report(node, message, fix=self.fix(node, new, applicability=Applicability.SAFE))
            return
        if any(has_comment(a) for a in moved):
            self.report(node, message)  # a comment next to a moved name would be lost
            return
        if node.names[-1] in moved:  # the new last name takes the old last one's comma (or none)
            kept[-1] = kept[-1].with_changes(comma=node.names[-1].comma)
        imports = [
            ("sqlalchemy.orm", dotted_name(a.name), a.asname.name.value if a.asname is not None else None)
            for a in moved
            if a.asname is None or isinstance(a.asname.name, cst.Name)
        ]
        new = node.with_changes(names=kept)
        fix = self.fix(node, new, applicability=Applicability.SAFE, add_imports=imports,
                       title="Import the moved names from `sqlalchemy.orm`")
        self.report(node, message, fix=fix)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        parents = self.context.parents
        if parents and isinstance(parents[-1], (cst.Attribute, cst.ImportFrom, cst.Import, cst.ImportAlias)):
            return
        qn = self.names.qualified_name(node)
        if qn is None or not qn.startswith(LEGACY + ".") or qn[len(LEGACY) + 1 :] not in MOVED:
            return
        if self.versions.at_least("sqlalchemy", "1.4") is False:
            return
        name = qn[len(LEGACY) + 1 :]
        message = f"`{name}` used from `{LEGACY}`: moved to `sqlalchemy.orm` in SQLAlchemy 1.4 (`MovedIn20Warning`)"
        target = f"sqlalchemy.orm.{name}"
        local = _sessions.local_name_for(self.context, [target])
        imports: list[tuple] = []
        if local is None:
            if name in self.names.defined or name in self.names.imports:
                self.report(node, message)
                return
            local, imports = name, [("sqlalchemy.orm", name)]
        new = cst.parse_expression(local, config=self.context.module.config_for_parsing)
        self.report(node, message, fix=self.fix(node, new, applicability=Applicability.SAFE, add_imports=imports,
                                                title=f"Use `{local}` from `sqlalchemy.orm`"))
