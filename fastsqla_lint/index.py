"""The project index: facts about every module of the project, keyed by qualified name.

Built once per run from one `ModuleSummary` per file, then frozen; rules read it, never write it.
A summary is plain data (picklable, cacheable), made from the same parse the rules use
(`fastsqla_lint.facts` collects it). Every query takes qualified names (`app.models.User`) and follows
project re-exports itself; a name the index cannot resolve gives `None` / `False` / an empty answer, and
rules stay silent on unknowns.

Queries (see each docstring):

- names: `canonical`, `constant`, `module`, `split`, `class_`, `binding`
- models: `declarative_base`, `declarative_bases`, `mapped_class`, `mapped_classes`, `models_on`,
  `registrations`, `registering_modules`, `tables_on`
- schemas: `pydantic_model`, `pydantic_models`, `schemas_for`
- database: `engine`, `engines`, `session_factory`, `session_factories`, `session_instance`,
  `session_dependency_for`
- FastAPI: `app`, `apps`, `route`, `routes`, `routes_of`, `includes`, `function`, `functions`,
  `is_dependency`, `dependencies`, `dependency_refs`, `dependency_alias`, `alias`, `dependencies_of`,
  `uses_fastapi`, `module_uses_fastapi`
- import graph: `import_closure`, `modules_run_before`, `dynamic_imports`, `importers`,
  `importing_modules`, `module_names`

Rules read the project only through these methods (never `modules` itself): a lint's queries and their
answers are what decides whether its result still holds against another index (`recording.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.facts import (
    FUNCTION,
    MAIN,
    MODULE,
    TYPE_CHECKING,
    AliasFact,
    BindingFact,
    ClassFact,
    DependsFact,
    FieldFact,
    FunctionFact,
    ImportFact,
    IncludeFact,
    ParamFact,
    RouteFact,
    TableFact,
    Collected,
    collect,
)
from fastsqla_lint.literals import literal_value
from fastsqla_lint.names import NameResolver

__all__ = [
    "EMPTY_INDEX",
    "AliasFact",
    "App",
    "BindingFact",
    "ClassFact",
    "Column",
    "DeclarativeBase",
    "DependsFact",
    "Engine",
    "FieldFact",
    "FunctionFact",
    "ImportFact",
    "IncludeFact",
    "MappedClass",
    "ModuleSummary",
    "ParamFact",
    "ProjectIndex",
    "PydanticModel",
    "RouteFact",
    "SessionFactory",
    "SessionInstance",
    "TableFact",
    "module_name_for",
    "summarize",
]

SCHEMA_SUFFIXES = ("Read", "Out", "Public", "Response", "Schema")
PYTEST_FIXTURES = frozenset({"pytest.fixture", "pytest_asyncio.fixture"})


# --------------------------------------------------------------------------------------------------
# Per-module summary


@dataclass
class ModuleSummary:
    name: str
    path: str
    is_package: bool = False
    # local name -> qualified name, as the module's import table has it (module-level imports)
    imports: dict[str, str] = field(default_factory=dict)
    # module-level NAME = <literal> (str, number, bool, None, dict/list/tuple of literals)
    constants: dict[str, object] = field(default_factory=dict)
    # names the module defines at module level (assignments, functions, classes)
    defined: frozenset[str] = frozenset()
    # import statements in statement order (module level, in functions, under TYPE_CHECKING, ...)
    import_statements: tuple[ImportFact, ...] = ()
    # modules star-imported at module level (`from .models import *`)
    star_imports: tuple[str, ...] = ()
    # (line, qualified callee) of importlib.import_module / __import__ / pkgutil.walk_packages
    dynamic_imports: tuple[tuple[int, str], ...] = ()
    # keyed by the local qualname inside the module (`get_db`, `Repo.get`, `create_app.startup`)
    functions: dict[str, FunctionFact] = field(default_factory=dict)
    classes: dict[str, ClassFact] = field(default_factory=dict)
    # module-level NAME = <call>; a name bound several times keeps every binding, in order
    bindings: dict[str, tuple[BindingFact, ...]] = field(default_factory=dict)
    # module-level NAME = other.name (bound once): followed by `canonical`
    name_aliases: dict[str, str] = field(default_factory=dict)
    # module-level NAME = Annotated[T, Depends(f)]
    aliases: dict[str, AliasFact] = field(default_factory=dict)
    routes: tuple[RouteFact, ...] = ()
    includes: tuple[IncludeFact, ...] = ()
    depends: tuple[DependsFact, ...] = ()
    tables: tuple[TableFact, ...] = ()
    # imports fastapi / starlette anywhere in the file
    imports_fastapi: bool = False
    # set when fact collection failed on this file (an internal error): only the name table is known
    facts_error: str | None = None


def summarize(module: cst.Module, names: NameResolver, path: str, text: str | None = None) -> ModuleSummary:
    """The facts of one parsed file. `text` is the parsed source (regenerated from the tree if omitted)."""
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
    error = None
    try:
        got = collect(module, names, text)
    except Exception as exc:  # a bug in fact collection must not stop the run: the file's facts are unknown
        got = Collected()
        error = f"{type(exc).__name__}: {exc}"
    uses_fastapi = names.imports_module("fastapi") or names.imports_module("starlette") or any(
        m.split(".")[0] in known.FASTAPI_MODULE_PREFIXES for f in got.imports for m in f.modules[:1]
    )
    return ModuleSummary(
        name=names.module_name or "",
        path=path,
        is_package=names.is_package,
        imports=dict(names.imports),
        constants=constants,
        defined=frozenset(names.defined),
        import_statements=tuple(got.imports),
        star_imports=tuple(got.star_imports),
        dynamic_imports=tuple(got.dynamic_imports),
        functions=got.functions,
        classes=got.classes,
        bindings={k: tuple(v) for k, v in got.bindings.items()},
        name_aliases=got.name_aliases,
        aliases=got.aliases,
        routes=tuple(got.routes),
        includes=tuple(got.includes),
        depends=tuple(got.depends),
        tables=tuple(got.tables),
        imports_fastapi=uses_fastapi,
        facts_error=error,
    )


# --------------------------------------------------------------------------------------------------
# Answers of the index (resolved across modules)


@dataclass(frozen=True)
class DeclarativeBase:
    qualname: str
    module: str | None  # None for library bases (`sqlmodel.SQLModel`)
    line: int
    # "class" (subclass of DeclarativeBase/NoMeta) | "declarative_base" | "generate_base" |
    # "as_declarative" | "registry" (`reg = registry()`, for @reg.mapped) | "sqlmodel"
    kind: str
    dataclass: bool = False  # MappedAsDataclass is among its bases
    registry: str | None = None  # the registry a generate_base() base comes from
    metadata: str | None = None  # canonical qualname of a MetaData passed in (`declarative_base(metadata=m)`)


@dataclass(frozen=True)
class Column:
    name: str
    python_type: str | None  # "int", "datetime", 'list["Item"]'; None when unknown
    nullable: bool
    primary_key: bool = False
    relationship: bool = False
    annotation: str | None = None
    type_names: tuple[str, ...] = ()  # qualified names python_type needs (`datetime.datetime`)
    foreign_key: str | None = None
    owner: str = ""  # the class (or mixin/base) that declares it


@dataclass(frozen=True)
class MappedClass:
    qualname: str
    module: str
    line: int
    base: str  # qualname of its declarative base (or registry, or `sqlmodel.SQLModel`)
    kind: str  # "declarative" | "dataclass" | "sqlmodel"
    columns: tuple[Column, ...]  # inherited ones included, in declaration order
    tablename: str | None = None

    def column(self, name: str) -> Column | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


@dataclass(frozen=True)
class PydanticModel:
    qualname: str
    module: str
    line: int
    fields: tuple[tuple[str, str | None], ...]  # (name, annotation source), inherited ones included
    sqlmodel: bool = False
    from_attributes: bool | None = None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fields)


@dataclass(frozen=True)
class Engine:
    qualname: str
    module: str
    line: int
    is_async: bool
    # The URL as far as known, as `rules._engines.parse_url` reads it: a literal, a template (f-string,
    # `+`, `.format`, `%`; interpolated parts written as INTERPOLATED), a constant's value (also
    # imported from another module), the default of `os.getenv(...)`, or the drivername of `URL.create`.
    url: str | None
    url_kind: str | None  # "literal" | "template" | "constant" | "env-default" | "drivername" | None
    call: str = ""
    keywords: dict = field(default_factory=dict)  # keyword -> source
    literals: dict = field(default_factory=dict)  # keyword -> literal value

    @property
    def prefix(self) -> str | None:
        """The URL's literal text up to its first interpolated part."""
        if self.url is None or self.url_kind == "drivername":
            return None
        from fastsqla_lint.rules._engines import INTERPOLATED

        return self.url.split(INTERPOLATED, 1)[0]

    @property
    def drivername(self) -> str | None:
        """`sqlite+pysqlite` of `sqlite+pysqlite:///x.db` (None when the URL's scheme is unknown)."""
        if self.url is None:
            return None
        if self.url_kind == "drivername":
            return self.url
        head, sep, _ = (self.prefix or "").partition("://")
        return head if sep else None


@dataclass(frozen=True)
class SessionFactory:
    qualname: str
    module: str
    line: int
    kind: str  # "sessionmaker" | "async_sessionmaker" | "scoped_session" | "async_scoped_session"
    is_async: bool
    bind: str | None  # canonical qualname of the engine (or other bind) it is given
    class_: str | None = None  # `class_=` qualname
    literals: dict = field(default_factory=dict)  # literal keyword arguments (expire_on_commit=...)
    keywords: dict = field(default_factory=dict)  # keyword -> source
    wraps: str | None = None  # scoped_session(SessionLocal): the factory it wraps

    @property
    def is_registry(self) -> bool:
        return self.kind in ("scoped_session", "async_scoped_session")


@dataclass(frozen=True)
class SessionInstance:
    """A module-level session: `db = SessionLocal()`, `s = Session(engine)`, `sessionmaker(...)()`."""

    qualname: str
    module: str
    line: int
    source: str  # canonical qualname of the factory / session class / registry it comes from
    via: str  # "factory" | "class" | "chain" | "registry"
    is_async: bool = False


@dataclass(frozen=True)
class App:
    qualname: str
    module: str
    line: int
    kind: str  # "app" | "router"
    prefix: str | None = None
    dependencies: tuple[str | None, ...] = ()  # canonical qualnames from dependencies=[...]
    lifespan: str | None = None
    keywords: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# The index


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
        self._closures: dict[tuple[str, bool], frozenset[str]] = {}
        self._memo: dict[tuple, object] = {}  # answers of the costlier queries, computed on first use
        self._build()

    # ---------------------------------------------------------------------------------- names ---
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
        """Follow project re-exports: `app.db.SessionLocal` -> `app.db.session.SessionLocal`.

        Follows `from x import y` / `import x.y as z` re-exports, star imports, and module-level
        `name = other.name` assignments; stops at a definition, at an unknown module, or on a cycle.
        """
        cached = self._canonical.get(qualname)
        if cached is not None:
            return cached
        current = qualname
        seen = {current}
        for _ in range(50):
            nxt = self._step(current)
            if nxt is None or nxt in seen:
                break
            seen.add(nxt)
            current = nxt
        self._canonical[qualname] = current
        return current

    def _step(self, qualname: str) -> str | None:
        hit = self.split(qualname)
        if hit is None:
            return None
        mod, rest = hit
        head, _, tail = rest.partition(".")
        target = None
        if head in mod.name_aliases:
            target = mod.name_aliases[head]
        elif head in mod.defined:
            return None
        elif head in mod.imports:
            target = mod.imports[head]
        else:
            # a submodule of a package wins over star imports: `app.models.user`
            if f"{mod.name}.{head}" in self.modules:
                return None
            for star in mod.star_imports:
                smod = self.modules.get(star)
                if smod is not None and self._star_has(smod, head, set()):
                    target = f"{star}.{head}"
                    break
            if target is None:
                return None
        return f"{target}.{tail}" if tail else target

    def _star_has(self, mod: ModuleSummary, head: str, seen: set[str]) -> bool:
        """Whether `from <mod> import *` provides `head` (directly or through its own star imports)."""
        if mod.name in seen:
            return False
        seen.add(mod.name)
        if head in mod.defined or head in mod.imports or head in mod.name_aliases:
            return True
        return any(
            (s := self.modules.get(star)) is not None and self._star_has(s, head, seen) for star in mod.star_imports
        )

    def constant(self, qualname: str) -> object:
        """The literal value of a module-level constant, or `literal_value.UNKNOWN`."""
        hit = self.split(self.canonical(qualname))
        if hit is None:
            return literal_value.UNKNOWN
        mod, rest = hit
        return mod.constants.get(rest, literal_value.UNKNOWN)

    def _get(self, table: dict, qualname: str | None):
        if not qualname:
            return None
        hit = table.get(qualname)
        if hit is None:
            hit = table.get(self.canonical(qualname))
        return hit

    def class_(self, qualname: str) -> ClassFact | None:
        """The `ClassFact` of a project class."""
        return self._get(self._classes, qualname)

    def binding(self, qualname: str) -> BindingFact | None:
        """The (first) module-level `NAME = <call>` binding of a name."""
        return self._get(self._bindings, qualname)

    # ------------------------------------------------------------------------------ building ---
    def _build(self) -> None:
        self._classes: dict[str, ClassFact] = {}
        self._functions: dict[str, FunctionFact] = {}
        self._bindings: dict[str, BindingFact] = {}
        self._aliases: dict[str, AliasFact] = {}
        for mod in self.modules.values():
            for c in mod.classes.values():
                self._classes[c.qualname] = c
            for f in mod.functions.values():
                self._functions[f.qualname] = f
            for bs in mod.bindings.values():
                if bs:
                    self._bindings[bs[0].qualname] = bs[0]
            for a in mod.aliases.values():
                self._aliases[a.qualname] = a
        self._generators = {q: f for q, f in self._functions.items() if f.is_generator}
        self._build_bases()
        self._build_models()
        self._build_database()
        self._build_fastapi()

    def _callee(self, b: BindingFact) -> str | None:
        return self.canonical(b.call) if b.call else None

    # ------------------------------------------------------------------------------- models ---
    def _build_bases(self) -> None:
        bases: dict[str, DeclarativeBase] = {}
        registries: dict[str, str] = {}
        for qn, b in self._bindings.items():
            callee = self._callee(b)
            mod = qn.rsplit(".", 1)[0]
            meta = b.keyword_names.get("metadata")
            meta = self.canonical(meta) if meta else None
            if callee in known.DECLARATIVE_BASE_FUNCTIONS:
                bases[qn] = DeclarativeBase(qn, mod, b.line, "declarative_base", metadata=meta)
            elif callee in known.REGISTRY:
                bases[qn] = DeclarativeBase(qn, mod, b.line, "registry", metadata=meta)
                registries[qn] = qn
        for qn, b in self._bindings.items():
            callee = self._callee(b)
            if callee and callee.endswith("().generate_base"):  # registry().generate_base()
                if callee[: -len("().generate_base")] in known.REGISTRY:
                    bases[qn] = DeclarativeBase(qn, qn.rsplit(".", 1)[0], b.line, "generate_base")
            elif callee and callee.endswith(".generate_base"):
                reg = self.canonical(callee[: -len(".generate_base")])
                if reg in registries:
                    reg_base = bases.get(reg)
                    bases[qn] = DeclarativeBase(
                        qn, qn.rsplit(".", 1)[0], b.line, "generate_base", registry=reg,
                        metadata=reg_base.metadata if reg_base is not None else None,
                    )
        for qn, c in self._classes.items():
            resolved = [self.canonical(x) for x in c.bases]
            decos = [self.canonical(d) for d in c.decorators]
            if any(r in known.DECLARATIVE_BASE_CLASSES for r in resolved):
                bases[qn] = DeclarativeBase(
                    qn, c.module, c.line, "class", dataclass=any(r in known.MAPPED_AS_DATACLASS for r in resolved)
                )
            elif any(d in known.AS_DECLARATIVE for d in decos):
                bases[qn] = DeclarativeBase(qn, c.module, c.line, "as_declarative")
        self._bases = bases

    def _lineage(self, qn: str, seen: set[str] | None = None) -> Iterator[tuple[str, ClassFact | None]]:
        """Depth-first over a class and its ancestors: (canonical qualname, ClassFact or None)."""
        seen = set() if seen is None else seen
        if qn in seen:
            return
        seen.add(qn)
        c = self._classes.get(qn)
        yield qn, c
        if c is None:
            return
        for b in c.bases:
            yield from self._lineage(self.canonical(b), seen)

    def _mro(self, qn: str) -> list[tuple[str, ClassFact | None]]:
        """A simple MRO: the class first, then ancestors (first occurrence wins)."""
        return list(self._lineage(qn))

    def _root_base(self, qn: str) -> str | None:
        """The declarative base whose metadata a class (or intermediate base) uses, if any."""
        for anc, fact in self._mro(qn):
            if anc in self._bases and self._bases[anc].kind != "registry":
                return anc
            if fact is not None:
                for d in fact.decorators:
                    dq = self.canonical(d)
                    for suffix in (".mapped", ".mapped_as_dataclass"):
                        if dq.endswith(suffix) and dq[: -len(suffix)] in self._bases:
                            return dq[: -len(suffix)]
        return None

    def _build_models(self) -> None:
        mapped: dict[str, MappedClass] = {}
        pyd: dict[str, PydanticModel] = {}
        for qn, c in self._classes.items():
            mro = self._mro(qn)
            ancestors = [a for a, _ in mro]
            if c.keywords.get("table") is True and any(a in known.SQLMODEL for a in ancestors):
                mapped[qn] = MappedClass(
                    qn, c.module, c.line, "sqlmodel.SQLModel", "sqlmodel", self._columns(mro, "sqlmodel"),
                    c.tablename or c.name.lower(),
                )
                continue
            if qn in self._bases:
                continue
            base = self._root_base(qn)
            if base is not None:
                if c.abstract:
                    continue
                reg_mapped = any(self.canonical(d).endswith((".mapped", ".mapped_as_dataclass")) for d in c.decorators)
                if not reg_mapped and not self._descends_from(mro, base):
                    continue
                dataclass = any(a in known.MAPPED_AS_DATACLASS for a in ancestors) or any(
                    self.canonical(d).endswith(".mapped_as_dataclass") for d in c.decorators
                ) or self._bases[base].dataclass
                mapped[qn] = MappedClass(
                    qn, c.module, c.line, base, "dataclass" if dataclass else "declarative",
                    self._columns(mro, "declarative"), c.tablename,
                )
                continue
            if any(a in known.PYDANTIC_BASE_MODEL or a in known.SQLMODEL for a in ancestors):
                fields: dict[str, str | None] = {}
                from_attr = None
                for _, fact in reversed(mro):
                    if fact is None:
                        continue
                    if fact.from_attributes is not None:
                        from_attr = fact.from_attributes
                    for f in fact.fields:
                        if f.classvar or f.annotation is None:
                            continue
                        fields[f.name] = f.annotation
                pyd[qn] = PydanticModel(
                    qn, c.module, c.line, tuple(fields.items()),
                    sqlmodel=any(a in known.SQLMODEL for a in ancestors), from_attributes=from_attr,
                )
        self._mapped = mapped
        self._pydantic = pyd
        by_base: dict[str, list[MappedClass]] = {}
        for m in mapped.values():
            by_base.setdefault(m.base, []).append(m)
        self._by_base = by_base

    def _descends_from(self, mro, base: str) -> bool:
        return any(a == base for a, _ in mro[1:])

    def _columns(self, mro, kind: str) -> tuple[Column, ...]:
        cols: dict[str, Column] = {}
        for anc, fact in reversed(mro):
            if fact is None:
                continue
            for f in fact.fields:
                col = _column(f, kind, anc)
                if col is not None:
                    cols[f.name] = col
                elif f.name in cols and f.has_value:
                    cols.pop(f.name)
        return tuple(cols.values())

    def declarative_base(self, qualname: str) -> DeclarativeBase | None:
        """The declarative base `qualname` names, or whose metadata it shares (an abstract subclass or
        a mapped class of it). `sqlmodel.SQLModel` (and its project subclasses) give the SQLModel base."""
        if not qualname:
            return None
        qn = self.canonical(qualname)
        if qn in known.SQLMODEL:
            return DeclarativeBase("sqlmodel.SQLModel", None, 0, "sqlmodel")
        hit = self._bases.get(qn)
        if hit is not None:
            return hit
        for b in self._bases.values():  # a MetaData object given to a base
            if b.metadata == qn:
                return b
        m = self._mapped.get(qn)
        if m is not None:
            return self.declarative_base(m.base)
        if qn in self._classes:
            root = self._root_base(qn)
            if root is not None:
                return self._bases[root]
            if any(a in known.SQLMODEL for a, _ in self._mro(qn)):
                return DeclarativeBase("sqlmodel.SQLModel", None, 0, "sqlmodel")
        return None

    def declarative_bases(self) -> tuple[DeclarativeBase, ...]:
        return tuple(self._bases.values())

    def mapped_class(self, qualname: str) -> MappedClass | None:
        """The mapped (ORM) class `qualname` names: declarative, MappedAsDataclass or SQLModel table."""
        return self._get(self._mapped, qualname)

    def mapped_classes(self) -> tuple[MappedClass, ...]:
        return tuple(self._mapped.values())

    def _same_metadata(self, base_qn: str) -> set[str]:
        """Bases that share one MetaData: a registry and the bases generated from it."""
        base = self._bases.get(base_qn)
        out = {base_qn}
        if base is None:
            return out
        reg = base.registry if base.kind == "generate_base" else base_qn if base.kind == "registry" else None
        if reg is not None:
            out.add(reg)
            out.update(q for q, b in self._bases.items() if b.registry == reg)
        return out

    def models_on(self, base_qn: str) -> tuple[MappedClass, ...]:
        """The mapped classes registered on a declarative base (or registry, or `sqlmodel.SQLModel`)."""
        base = self.declarative_base(base_qn)
        if base is None:
            return ()
        out: list[MappedClass] = []
        for b in sorted(self._same_metadata(base.qualname)):
            out.extend(self._by_base.get(b, ()))
        return tuple(out)

    def tables_on(self, base_qn: str) -> tuple[TableFact, ...]:
        """`Table(..., <base>.metadata)` registrations on a base."""
        base = self.declarative_base(base_qn)
        if base is None:
            return ()
        keys = self._same_metadata(base.qualname)
        metas = {self._bases[k].metadata for k in keys if k in self._bases} - {None}
        out = []
        for mod in self.modules.values():
            for t in mod.tables:
                if not t.metadata:
                    continue
                meta = self.canonical(t.metadata)
                owner = None
                if meta in metas:
                    out.append(t)
                    continue
                if meta.endswith(".metadata"):
                    owner = self.declarative_base(meta[: -len(".metadata")])
                if owner is not None and owner.qualname in keys:
                    out.append(t)
        return tuple(out)

    def registrations(self, base_qn: str) -> tuple[tuple[str, int, str], ...]:
        """(module, line, what) of everything that registers a table on the base's metadata:
        mapped classes (`what` = their qualname) and `Table(...)` calls (`what` = the table name)."""
        out = [(m.module, m.line, m.qualname) for m in self.models_on(base_qn)]
        out += [(t.module, t.line, t.name or "") for t in self.tables_on(base_qn)]
        return tuple(sorted(out))

    def registering_modules(self, base_qn: str) -> frozenset[str]:
        """The modules that register tables on a base's metadata."""
        return frozenset(m for m, _, _ in self.registrations(base_qn))

    # ------------------------------------------------------------------------------ schemas ---
    def pydantic_model(self, qualname: str) -> PydanticModel | None:
        """A Pydantic model of the project (BaseModel subclass, SQLModel without table=True)."""
        return self._get(self._pydantic, qualname)

    def pydantic_models(self, name_prefix: str = "") -> tuple[PydanticModel, ...]:
        """Pydantic models (SQLModel non-table models too); only those whose class name starts with
        `name_prefix`, when given."""
        if not name_prefix:
            return tuple(self._pydantic.values())
        return tuple(p for q, p in self._pydantic.items() if q.rsplit(".", 1)[-1].startswith(name_prefix))

    def schemas_for(self, model_qn: str) -> tuple[PydanticModel, ...]:
        """Candidate response schemas for an ORM class, best first: `<Model>Read`, `...Out`, `...Public`,
        `...Response`, `...Schema`, then a same-named class in a `schemas` module; only schemas with at
        least one field whose fields are all columns (not relationships) of the model."""
        model = self.mapped_class(model_qn)
        if model is None:
            return ()
        columns = {c.name for c in model.columns if not c.relationship}
        short = model.qualname.rsplit(".", 1)[-1]
        ranked: list[tuple[int, str, PydanticModel]] = []
        for p in self._pydantic.values():
            name = p.qualname.rsplit(".", 1)[-1]
            rank = None
            for i, suffix in enumerate(SCHEMA_SUFFIXES):
                if name == short + suffix:
                    rank = i
                    break
            if rank is None and name == short and "schemas" in p.module.split("."):
                rank = len(SCHEMA_SUFFIXES)
            if rank is None:
                continue
            names = p.field_names
            if not names or not set(names) <= columns:
                continue
            ranked.append((rank, p.qualname, p))
        ranked.sort(key=lambda t: (t[0], t[1]))
        return tuple(p for _, _, p in ranked)

    # ----------------------------------------------------------------------------- database ---
    def _build_database(self) -> None:
        engines: dict[str, Engine] = {}
        factories: dict[str, SessionFactory] = {}
        sessions: dict[str, SessionInstance] = {}
        for qn, b in self._bindings.items():
            callee = self._callee(b)
            mod = qn.rsplit(".", 1)[0]
            if callee is None:
                continue
            if b.chained:
                if callee in known.SESSION_FACTORIES or callee in known.ALL_SESSION_CLASSES:
                    sessions[qn] = SessionInstance(qn, mod, b.line, callee, "chain",
                                                   is_async=callee in known.ASYNC_SESSIONMAKERS)
                continue
            if callee in known.ENGINES:
                url, kind = self._url(b)
                engines[qn] = Engine(
                    qn, mod, b.line, callee in known.ASYNC_ENGINES, url, kind, callee,
                    dict(b.keywords), dict(b.literals),
                )
            elif callee in known.SESSION_FACTORIES or callee in known.SESSION_REGISTRIES:
                factories[qn] = self._factory(qn, mod, b, callee)
        # a second pass: sessions made by calling a project factory / registry / Session class
        self._engines = engines
        self._factories = factories
        for qn, b in self._bindings.items():
            if b.chained or not b.call:
                continue
            callee = self._callee(b)
            mod = qn.rsplit(".", 1)[0]
            if callee in known.ALL_SESSION_CLASSES:
                sessions[qn] = SessionInstance(qn, mod, b.line, callee, "class",
                                               is_async=callee in known.ASYNC_SESSION_CLASSES)
            elif callee in factories:
                f = factories[callee]
                sessions[qn] = SessionInstance(qn, mod, b.line, callee, "registry" if f.is_registry else "factory",
                                               is_async=f.is_async)
        self._sessions = sessions

    def _url(self, b: BindingFact) -> tuple[str | None, str | None]:
        if b.url is None:
            return None, None
        kind, value = b.url
        if kind in ("literal", "template", "env-default", "drivername"):
            return value, kind
        if kind in ("ref", "drivername_ref"):
            lit = self.constant(value)
            if isinstance(lit, str):
                return lit, "constant" if kind == "ref" else "drivername"
        return None, None

    def _factory(self, qn: str, mod: str, b: BindingFact, callee: str) -> SessionFactory:
        if callee in known.ASYNC_SESSIONMAKERS:
            kind = "async_sessionmaker"
        elif callee in known.SESSIONMAKERS:
            kind = "sessionmaker"
        elif callee in known.ASYNC_SCOPED_SESSIONS:
            kind = "async_scoped_session"
        else:
            kind = "scoped_session"
        bind = b.keyword_names.get("bind") or (b.args[0] if b.args else None)
        class_ = b.keyword_names.get("class_")
        literals = dict(b.literals)
        wraps = None
        is_async = kind in ("async_sessionmaker", "async_scoped_session")
        if kind in ("scoped_session", "async_scoped_session"):
            bind = None
            first = b.args[0] if b.args else b.keyword_names.get("session_factory")
            if first is not None:
                wraps = self.canonical(first)
                inner_b = self._bindings.get(wraps)
                if inner_b is not None and self._callee(inner_b) in known.SESSION_FACTORIES:
                    if self._callee(inner_b) in known.ASYNC_SESSIONMAKERS:
                        is_async = True
                    bind = inner_b.keyword_names.get("bind") or (inner_b.args[0] if inner_b.args else None)
                    class_ = inner_b.keyword_names.get("class_") or class_
                    literals = {**inner_b.literals, **literals}
            elif b.inner_call is not None:
                if self.canonical(b.inner_call) in known.ASYNC_SESSIONMAKERS:
                    is_async = True
                bind = b.inner_bind
                lits = dict(b.inner_literals)
                if isinstance(lits.get("class_"), str):
                    class_ = lits.pop("class_")
                literals = {**lits, **literals}
        if class_ is not None:
            class_ = self.canonical(class_)
            if class_ in known.ASYNC_SESSION_CLASSES:
                is_async = True
        return SessionFactory(
            qn, mod, b.line, kind, is_async, self.canonical(bind) if bind else None, class_, literals,
            dict(b.keywords), wraps,
        )

    def engine(self, qualname: str) -> Engine | None:
        """An engine bound at module level (`engine = create_engine(URL)`), with its URL as known."""
        return self._get(self._engines, qualname)

    def engines(self) -> tuple[Engine, ...]:
        return tuple(self._engines.values())

    def session_factory(self, qualname: str) -> SessionFactory | None:
        """A module-level session factory or scoped registry (`SessionLocal = sessionmaker(...)`)."""
        return self._get(self._factories, qualname)

    def session_factories(self) -> tuple[SessionFactory, ...]:
        return tuple(self._factories.values())

    def session_instance(self, qualname: str) -> SessionInstance | None:
        """A module-level session object (`db = SessionLocal()`, `sessionmaker(...)()`, `Session(engine)`)."""
        return self._get(self._sessions, qualname)

    def session_instances(self) -> tuple[SessionInstance, ...]:
        return tuple(self._sessions.values())

    def session_dependency_for(self, factory_qn: str) -> str | None:
        """The qualname of the generator function that creates a session from this factory (or, given
        an engine, a `Session(engine)`); pytest fixtures excluded. Preference: used as a dependency, then
        a plain function over a method, then the factory's own module, then by name."""
        key = ("session_dependency_for", factory_qn)
        if key not in self._memo:
            self._memo[key] = self._session_dependency_for(factory_qn)
        return self._memo[key]  # type: ignore[return-value]

    def _session_dependency_for(self, factory_qn: str) -> str | None:
        target = self.canonical(factory_qn)
        candidates: list[tuple[int, int, int, str]] = []
        home = self.split(target)
        home_module = home[0].name if home is not None else None
        for qn, f in self._generators.items():
            if any(self.canonical(d) in PYTEST_FIXTURES for d in f.decorators):
                continue
            hit = False
            for callee, bind in f.calls:
                c = self.canonical(callee)
                if c == target or c == f"{target}.begin":
                    hit = True
                elif c in known.ALL_SESSION_CLASSES and bind is not None and self.canonical(bind) == target:
                    hit = True
                if hit:
                    break
            if hit:
                candidates.append((
                    0 if self.is_dependency(qn) else 1,
                    1 if f.class_name or f.nested else 0,
                    0 if f.module == home_module else 1,
                    qn,
                ))
        if not candidates:
            return None
        candidates.sort()
        return candidates[0][-1]

    # ------------------------------------------------------------------------------ FastAPI ---
    def _build_fastapi(self) -> None:
        apps: dict[str, App] = {}
        for qn, b in self._bindings.items():
            callee = self._callee(b)
            if b.chained or callee is None:
                continue
            kind = "app" if callee in known.FASTAPI_APP else "router" if callee in known.API_ROUTER else None
            if kind is None:
                continue
            prefix = b.literals.get("prefix")
            apps[qn] = App(
                qn, qn.rsplit(".", 1)[0], b.line, kind,
                prefix if isinstance(prefix, str) else None,
                tuple(self._dep_target(d) for d in b.dependencies),
                self.canonical(b.keyword_names["lifespan"]) if "lifespan" in b.keyword_names else None,
                dict(b.keywords),
            )
        self._apps = apps
        routes: list[RouteFact] = []
        for mod in self.modules.values():
            for r in mod.routes:
                owner = self.canonical(r.owner) if r.owner else None
                known_owner = owner is not None and (
                    owner in apps or (owner.endswith(".router") and owner[: -len(".router")] in apps)
                )
                # otherwise: a local app/router (inside a factory function) or one the index cannot see,
                # accepted in modules that import FastAPI (`@app.get` of a Flask app is not a route)
                if not known_owner and not mod.imports_fastapi:
                    continue
                function = self.canonical(r.function) if r.function else None
                if owner != r.owner or function != r.function:  # `replace` is slow: most names are canonical
                    r = replace(r, owner=owner, function=function)
                routes.append(r)
        self._routes = tuple(routes)
        self._route_modules = frozenset(r.module for r in routes)
        by_fn: dict[str, list[RouteFact]] = {}
        for r in routes:
            if r.function:
                by_fn.setdefault(r.function, []).append(r)
        self._routes_by_fn = by_fn
        includes = []
        for mod in self.modules.values():
            for inc in mod.includes:
                owner = self.canonical(inc.owner) if inc.owner else None
                router = self.canonical(inc.router) if inc.router else None
                if owner != inc.owner or router != inc.router:
                    inc = replace(inc, owner=owner, router=router)
                includes.append(inc)
        self._includes = tuple(includes)
        deps: set[str] = set()
        for mod in self.modules.values():
            for d in mod.depends:
                t = self._dep_target(d)
                if t is not None:
                    deps.add(t)
            for f in mod.functions.values():
                for p in f.params:
                    if p.depends is None and p.annotation_qn:
                        a = self._alias_target(p.annotation_qn)
                        if a is not None:
                            deps.add(a)
        # callable instances: Depends(checker) with checker = RoleChecker(...) -> RoleChecker.__call__
        for t in list(deps):
            b = self._bindings.get(t)
            if b is not None and b.call and not b.chained:
                cls = self.canonical(b.call)
                c = self._classes.get(cls)
                if c is not None and "__call__" in c.methods:
                    deps.add(f"{cls}.__call__")
            # bound methods of module-level instances: Depends(db.session) -> Database.session
            head, _, attr = t.rpartition(".")
            if head and head in self._bindings:
                hb = self._bindings[head]
                if hb.call and not hb.chained:
                    cls = self.canonical(hb.call)
                    if cls in self._classes:
                        deps.add(f"{cls}.{attr}")
        self._deps = frozenset(deps)

    def _dep_target(self, d: DependsFact) -> str | None:
        if d.target is None:
            return None
        return self.canonical(d.target)

    def _alias_target(self, qn: str) -> str | None:
        a = self._get(self._aliases, qn)
        if a is None:
            return None
        return self._dep_target(a.depends)

    def app(self, qualname: str) -> App | None:
        """A FastAPI app or APIRouter bound at module level."""
        return self._get(self._apps, qualname)

    def apps(self, module: str | None = None, lifespan: str | None = None) -> tuple[App, ...]:
        """FastAPI apps and APIRouters; only those bound in `module`, or created with `lifespan=` naming
        `lifespan` (canonical), when given."""
        found = tuple(self._apps.values())
        if module is not None:
            found = tuple(a for a in found if a.module == module)
        if lifespan is not None:
            found = tuple(a for a in found if a.lifespan is not None and self.canonical(a.lifespan) == lifespan)
        return found

    def routes(self) -> tuple[RouteFact, ...]:
        """Every path operation (decorators of every HTTP method and api_route, add_api_route)."""
        return self._routes

    def routes_of(self, function_qn: str) -> tuple[RouteFact, ...]:
        """The path operations served by a function."""
        return tuple(self._get(self._routes_by_fn, function_qn) or ())

    def route(self, function_qn: str) -> RouteFact | None:
        """The (first) path operation served by a function, or None if it is not an endpoint."""
        hit = self.routes_of(function_qn)
        return hit[0] if hit else None

    def includes(self) -> tuple[IncludeFact, ...]:
        """`include_router` edges (owner and router canonical)."""
        return self._includes

    def function(self, qualname: str) -> FunctionFact | None:
        """A function or method of the project (`app.deps.get_db`, `app.repo.Repo.get`)."""
        return self._get(self._functions, qualname)

    def functions(self) -> tuple[FunctionFact, ...]:
        return tuple(self._functions.values())

    def is_dependency(self, qualname: str) -> bool:
        """Whether a callable is used as a FastAPI dependency anywhere in the project: passed to
        Depends/Security (defaults, Annotated, aliases, bodies), listed in `dependencies=[...]`, or
        assigned in `dependency_overrides` (as key or value)."""
        if not qualname:
            return False
        return qualname in self._deps or self.canonical(qualname) in self._deps

    def dependencies(self) -> frozenset[str]:
        """The canonical qualnames of every dependency callable."""
        return self._deps

    def dependency_refs(self, qualname: str | None = None) -> tuple[DependsFact, ...]:
        """Every `Depends`/`Security`/override fact (of one dependency, when given)."""
        target = self.canonical(qualname) if qualname else None
        out = []
        for mod in self.modules.values():
            for d in mod.depends:
                if target is None or (d.target is not None and self.canonical(d.target) == target):
                    out.append(d)
        return tuple(out)

    def alias(self, qualname: str) -> AliasFact | None:
        """The `Annotated[T, Depends(f)]` alias a name refers to."""
        return self._get(self._aliases, qualname)

    def dependency_alias(self, qualname: str) -> str | None:
        """`SessionDep = Annotated[Session, Depends(get_db)]` -> `get_db`'s canonical qualname."""
        return self._alias_target(qualname) if qualname else None

    def dependencies_of(self, function_qn: str) -> tuple[tuple[str, str | None], ...]:
        """(parameter, canonical dependency qualname or None) for each parameter of a function that is
        a dependency (default, Annotated or alias)."""
        f = self.function(function_qn)
        if f is None:
            return ()
        out = []
        for p in f.params:
            if p.depends is not None:
                out.append((p.name, self._dep_target(p.depends)))
            elif p.annotation_qn and self.alias(p.annotation_qn) is not None:
                out.append((p.name, self._alias_target(p.annotation_qn)))
        return tuple(out)

    @property
    def uses_fastapi(self) -> bool:
        """Whether any project module imports fastapi or starlette."""
        return any(m.imports_fastapi for m in self.modules.values())

    def module_uses_fastapi(self, name: str) -> bool:
        """Whether a module imports fastapi/starlette, or defines path operations or dependencies."""
        mod = self.modules.get(name)
        if mod is None:
            return False
        if mod.imports_fastapi:
            return True
        return name in self._route_modules or any(
            self.is_dependency(f.qualname) for f in mod.functions.values()
        )

    # ------------------------------------------------------------------------- import graph ---
    def _targets(self, fact: ImportFact) -> list[str]:
        """Project modules an import statement runs, parents first."""
        out: list[str] = []
        for name in fact.modules:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                m = ".".join(parts[:i])
                if m in self.modules and m not in out:
                    out.append(m)
        return out

    def _parents(self, name: str) -> list[str]:
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in self.modules]

    def import_closure(self, name: str, conditional: bool = True) -> frozenset[str]:
        """The project modules that have run once `import <name>` completes: the module itself, its
        parent packages, and, transitively, what their module-level imports run (imports in functions,
        under `if TYPE_CHECKING:` or `if __name__ == "__main__":` excluded; imports inside if/try
        included unless `conditional=False`)."""
        key = (name, conditional)
        hit = self._closures.get(key)
        if hit is None:
            hit = self._reach([name], frozenset(), conditional)
            self._closures[key] = hit
        return hit

    def _reach(self, starts: Iterable[str], exclude: frozenset[str], conditional: bool) -> frozenset[str]:
        """Modules reachable from `starts` over parent-package and module-level import edges, never
        entering `exclude` (modules still running)."""
        seen: set[str] = set()
        stack = list(starts)
        while stack:
            m = stack.pop()
            if m in seen or m in exclude or m not in self.modules:
                continue
            seen.add(m)
            stack.extend(self._parents(m))
            for fact in self._runs(m, conditional):
                stack.extend(self._targets(fact))
        return frozenset(seen)

    def _runs(self, name: str, conditional: bool) -> Iterator[ImportFact]:
        """The import statements that run when module `name` is imported, in order."""
        for fact in self.modules[name].import_statements:
            if fact.scope == MODULE and (conditional or not fact.conditional):
                yield fact

    def _first_reaching_line(self, parent: str, name: str, conditional: bool) -> int | None:
        """The line of the first import in package `parent` that (transitively) imports `name`."""
        for fact in self._runs(parent, conditional):
            targets = self._targets(fact)
            if name in targets or name in self._reach(targets, frozenset({parent}), conditional):
                return fact.line
        return None

    def modules_run_before(
        self, name: str, line: int, function: str | None = None, conditional: bool = True
    ) -> frozenset[str]:
        """The project modules that have completely run before line `line` of module `name` runs.

        Module level: `name` itself is running, and so is every parent package whose `__init__`
        (transitively) imports `name`: such a parent contributes what it imported before that import,
        the other parents have completed. Add what the imports above `line` run (module level and, for a
        line inside `if __name__ == "__main__":`, the script block's), never counting a running module.
        Inside a function (`function` = its local or full qualname): the module's whole closure plus
        what the function's own imports above `line` run.
        """
        key = ("modules_run_before", name, line, function, conditional)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._modules_run_before(name, line, function, conditional)
        return hit  # type: ignore[return-value]

    def _modules_run_before(self, name: str, line: int, function: str | None, conditional: bool) -> frozenset[str]:
        mod = self.modules.get(name)
        if mod is None:
            return frozenset()
        starts: list[str] = []
        if function is not None:
            local = function[len(name) + 1:] if function.startswith(name + ".") else function
            starts.append(name)
            for fact in mod.import_statements:
                if fact.scope == FUNCTION and fact.line < line and fact.function is not None and (
                    fact.function == local or local.startswith(fact.function + ".")
                ):
                    starts.extend(self._targets(fact))
            return self._reach(starts, frozenset(), conditional) - {name}
        running = {name}
        for parent in self._parents(name):
            first = self._first_reaching_line(parent, name, conditional)
            if first is None:
                starts.append(parent)
                continue
            running.add(parent)
            for fact in self._runs(parent, conditional):
                if fact.line >= first:
                    break
                starts.extend(self._targets(fact))
        for fact in mod.import_statements:
            if fact.line < line and fact.scope in (MODULE, MAIN) and (conditional or not fact.conditional):
                starts.extend(self._targets(fact))
        return self._reach(starts, frozenset(running), conditional)

    def importers(self, qualname: str) -> tuple[str, ...]:
        """The modules whose module-level import table binds `qualname` (as written, or after following
        re-exports), sorted."""
        table = self._memo.get(("importers",))
        if table is None:
            table = {}
            for mod in self.modules.values():
                for target in set(mod.imports.values()):
                    table.setdefault(target, set()).add(mod.name)
                    table.setdefault(self.canonical(target), set()).add(mod.name)
            self._memo[("importers",)] = table
        return tuple(sorted(table.get(qualname, ())))  # type: ignore[union-attr]

    def importing_modules(self, name: str) -> tuple[str, ...]:
        """The modules with an import statement (any scope) that names module or object `name` among the
        modules it may run (`ImportFact.modules`), sorted."""
        table = self._memo.get(("importing_modules",))
        if table is None:
            table = {}
            for mod in self.modules.values():
                for fact in mod.import_statements:
                    for m in fact.modules:
                        table.setdefault(m, set()).add(mod.name)
            self._memo[("importing_modules",)] = table
        return tuple(sorted(table.get(name, ())))  # type: ignore[union-attr]

    def module_names(self, package: str = "") -> tuple[str, ...]:
        """The names of the indexed modules, sorted: all of them, or `package` and the modules under it."""
        if not package:
            return tuple(sorted(self.modules))
        return tuple(sorted(n for n in self.modules if n == package or n.startswith(package + ".")))

    def dynamic_imports(self, name: str) -> tuple[tuple[int, str], ...]:
        """(line, callee) of `importlib.import_module` / `__import__` / `pkgutil.walk_packages` calls."""
        mod = self.modules.get(name)
        return mod.dynamic_imports if mod is not None else ()

    def namespace_packages(self) -> frozenset[str]:
        """Packages without an `__init__.py` that hold project modules."""
        out = set()
        for name in self.modules:
            parts = name.split(".")
            for i in range(1, len(parts)):
                p = ".".join(parts[:i])
                if p not in self.modules:
                    out.add(p)
        return frozenset(out)

    # ------------------------------------------------------------------------------- pickling ---
    def __getstate__(self) -> dict:
        return {"root": self.root, "src_roots": self.src_roots, "modules": self.modules}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["modules"].values(), root=state["root"], src_roots=state["src_roots"])


def _column(f: FieldFact, kind: str, owner: str) -> Column | None:
    """The column (or relationship) a class attribute declares, for a class of `kind`."""
    if f.classvar or f.name.startswith("__"):
        return None
    relationship = f.value_call in known.RELATIONSHIP
    if kind == "sqlmodel":
        if f.annotation is None or f.name == "model_config":
            return None
        nullable = f.nullable if f.nullable is not None else (False if f.primary_key else f.optional)
        return Column(
            f.name, f.python_type, nullable, f.primary_key, relationship, f.annotation, f.type_names,
            f.foreign_key, owner,
        )
    column_call = f.value_call in known.COLUMN or f.value_call in known.MAPPED_COLUMN
    if not (f.mapped or column_call or relationship):
        return None
    if relationship:
        return Column(f.name, f.python_type, True, False, True, f.annotation, f.type_names, None, owner)
    if f.mapped:
        python_type, names = f.python_type, f.type_names
        nullable = f.optional
    else:
        python_type, names = f.column_type, f.column_type_names
        nullable = True
    if f.nullable is not None:
        nullable = f.nullable
    elif f.primary_key:
        nullable = False
    if python_type is None and f.column_type is not None:
        python_type, names = f.column_type, f.column_type_names
    return Column(f.name, python_type, nullable, f.primary_key, False, f.annotation, names, f.foreign_key, owner)


EMPTY_INDEX = ProjectIndex()


def module_name_for(path: Path, roots: Iterable[Path], resolved: bool = False) -> tuple[str | None, bool]:
    """The dotted module name of `path` under the first import root containing it, and is-package.
    `resolved`: `path` and `roots` are already resolved (symlinks followed), as a caller naming many
    files of the same folders can do once per folder."""
    if not resolved:
        try:
            path = path.resolve() if path.is_absolute() else path.absolute()
        except (OSError, RuntimeError):  # a symlink loop: name the file by its own path
            path = path.absolute()
    is_package = path.stem == "__init__"
    for root in roots:
        try:
            rel = path.relative_to(root if resolved else root.resolve())
        except ValueError:
            continue
        parts = list(rel.with_suffix("").parts)
        if is_package:
            parts = parts[:-1]
        if parts and all(p.isidentifier() for p in parts):
            return ".".join(parts), is_package
    return (path.stem if not is_package else path.parent.name) or None, is_package
