"""## What it does
Checks for `<Base>.metadata.create_all` (called, or passed to `run_sync`) at a point where the import graph
says that no module registering models on that base has run yet, or only some of them. What counts as
having run depends on where the call is:

- at module level: the statements above the call and everything they import, transitively (importing
  `app.models.user` also runs `app/__init__.py` and `app/models/__init__.py`); for a test module, the
  `conftest.py` files pytest imports first;
- inside a lifespan or startup handler: everything the app module imports;
- inside any other function: everything its module and the modules importing the function import (only
  definite emptiness is reported there).

The same check applies to Alembic's `target_metadata = Base.metadata` in `env.py`, where an empty
metadata makes autogenerate emit `DROP TABLE` for every table. It also reports the circular case:
`create_all` at the bottom of `database.py` while `models.py` imports `database`, which runs before the
models exist whichever module is imported first; and `create_all` bound to an `AsyncEngine` (an indexed
engine, a parameter annotated `AsyncEngine`, or a local made by `create_async_engine`).
`automap_base()`, `create_all(tables=[...])`, modules calling `metadata.reflect()`, and modules with
dynamic imports (`importlib.import_module`, `__import__`, `pkgutil.walk_packages`) are not reported.

## Why is this bad?
A declarative base's metadata only knows the tables of the model classes that have been defined, that is,
whose modules have been imported. `create_all` on an empty metadata creates nothing, silently; the first
request then fails with `no such table`. Tools make it worse: ruff's F401 autofix deletes an unused
`import app.models`, which is exactly the import that registers the tables.

With an `AsyncEngine`, `create_all(engine)` raises
`AttributeError: 'AsyncEngine' object has no attribute '_run_ddl_visitor'`.

## Example
    from sqlalchemy import create_engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    class Base(DeclarativeBase):
        pass

    engine = create_engine("sqlite:///./app.db")
    Base.metadata.create_all(bind=engine)

    class Note(Base):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)

## Use instead
    from sqlalchemy import create_engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    class Base(DeclarativeBase):
        pass

    engine = create_engine("sqlite:///./app.db")

    class Note(Base):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)

    Base.metadata.create_all(bind=engine)

## Options
- `import-time-ddl` (bool, default false): also report, as info, a module-level `create_all` in the module
  that creates the FastAPI app. It runs the DDL at import time in every worker process, which can fail with
  `duplicate key value violates unique constraint "pg_type_typname_nsp_index"` on PostgreSQL.

## Fix safety
Safe when one module or package registers every missing model: the fix inserts
`import app.models  # noqa: F401` (or `from . import models  # noqa: F401` in a module that uses relative
imports) right before the call, inside the function when the call is in one; `Base` is already bound
there, which keeps the risk of a circular import low. The `# noqa: F401` keeps ruff from deleting the
import again. Unsafe when several modules have to be imported (one line each).

When the models are defined in the same module below the call, the fix moves the call below the last
model class (unsafe: statements between the old and the new place now run before the tables are
created). In the circular case no import
helps; a display-only fix shows the call moved into a function, to be called from the app's lifespan.

The `import-time-ddl` finding has the same display-only fix.

For an `AsyncEngine` inside an `async def`, the fix is safe:
`async with engine.begin() as conn: await conn.run_sync(Base.metadata.create_all)`. Outside an
`async def` there is no fix.

## References
- SQLAlchemy docs, "Describing Databases with MetaData" and "Emitting DDL to the Database"
- https://github.com/fastapi/sqlmodel/issues/136
- https://github.com/Valtora/Nojoin/pull/29 (F401 autofix deleting model imports)
- https://github.com/fastapi/full-stack-fastapi-template/issues/627 (AsyncEngine)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability, Severity
from fastsqla_lint.literals import literal_value
from fastsqla_lint.names import dotted_name, resolve_relative
from fastsqla_lint.rule import Rule


class CreateAllEmptyMetadata(Rule):
    code = "FSL004"
    name = "create-all-empty-metadata"
    message = "`create_all` runs before any model is registered on the metadata"
    fix_title = "Run `create_all` once the models are imported, on a sync connection"
    fix_availability = FixAvailability.SOMETIMES
    needles = (b"create_all", b"target_metadata")
    options = {"import-time-ddl": False}

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value != "create_all" or not isinstance(node.value, cst.Attribute):
            return
        if node.value.attr.value != "metadata":
            return
        parents = self.context.parents
        if not parents:
            return
        parent = parents[-1]
        if isinstance(parent, cst.Call) and parent.func is node:
            call = parent
            if any(a.keyword is not None and a.keyword.value == "tables" for a in call.args):
                return
        elif (
            isinstance(parent, cst.Arg)
            and len(parents) >= 2
            and isinstance(parents[-2], cst.Call)
            and isinstance(parents[-2].func, cst.Attribute)
            and parents[-2].func.attr.value == "run_sync"
        ):
            call = None
        else:
            return
        base = base_of(self.index, self.qualified_name(node.value.value))
        if base is None:
            return
        statement = _innermost_statement(parents)
        if statement is None:
            return
        self._check_registrations(node, base, statement)
        if call is not None:
            self._check_async_bind(call, statement)
            self._check_import_time_ddl(call, statement)

    # -- 4a: registrations --------------------------------------------------------------------------
    def visit_Assign(self, node: cst.Assign) -> None:
        """Alembic's `target_metadata = Base.metadata` in `env.py`: autogenerate compares against it."""
        if not self.at_module_level or len(node.targets) != 1:
            return
        target, value = node.targets[0].target, node.value
        if not (isinstance(target, cst.Name) and target.value == "target_metadata"):
            return
        if not (isinstance(value, cst.Attribute) and value.attr.value == "metadata"):
            return
        base = base_of(self.index, self.qualified_name(value.value))
        statement = _innermost_statement(self.context.parents)
        if base is not None and statement is not None:
            self._check_registrations(value, base, statement, alembic=True)

    def _check_registrations(
        self, node: cst.BaseExpression, base: str, statement: cst.BaseStatement, alembic: bool = False
    ) -> None:
        ctx = self.context
        if self._reflects():
            return
        where = Where(
            module=ctx.module,
            text=ctx.text,
            module_name=ctx.module_name,
            path=ctx.path,
            functions=tuple(ctx.functions),
            classes=tuple(ctx.classes),
            parents=tuple(ctx.parents),
            names=ctx.names,
        )
        verdict = registrations_before(self.index, base, where, self.context.line_of(node))
        if verdict is None or not verdict.missing:
            return
        base_name = base.rsplit(".", 1)[-1]
        target = f"`{base_name}.metadata.create_all`"
        runs = "runs"
        if alembic:
            target, runs = f"Alembic's `target_metadata = {base_name}.metadata`", "is set"
        shown = [
            "the models defined below the call" if m == ctx.module_name else f"`{m}`" for m in verdict.missing
        ]
        if len(shown) > 4:
            shown = shown[:3] + [f"{len(shown) - 3} more modules"]
        missing = ", ".join(shown)
        if verdict.circular:
            message = (
                f"{target} {runs} before {missing} (which imports this module) "
                f"{'has' if len(verdict.missing) == 1 else 'have'} defined its models, "
                "whichever module is imported first"
            )
            severity = Severity.ERROR
        elif verdict.same_module:
            message = f"{target} {runs} before any model is registered on `{base_name}`: they are defined below"
            severity = Severity.ERROR
        elif not verdict.reached:
            message = (
                f"{target} {runs} before any model is registered on `{base_name}`: {missing} "
                f"{'has' if len(verdict.missing) == 1 else 'have'} not been imported yet, so "
                + ("autogenerate sees no table and would drop them all" if alembic else "no table is created")
            )
            severity = Severity.ERROR
        else:
            message = (
                f"{target} {runs} before {missing} {'is' if len(verdict.missing) == 1 else 'are'} imported: "
                + ("autogenerate would drop those tables" if alembic else "those tables are not created")
            )
            severity = Severity.WARNING
        fix = registration_fix(self, verdict, statement, where, base, "target_metadata" if alembic else "create_all")
        self.report(node, message, severity=severity, fix=fix)

    def _local_async_engine(self, bind: cst.BaseExpression) -> bool:
        """`bind` is a parameter annotated `AsyncEngine`, or a local bound to `create_async_engine(...)`."""
        func = self.current_function
        if func is None or not isinstance(bind, cst.Name):
            return False
        params = func.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.name.value == bind.value and param.annotation is not None:
                return self.qualified_name(param.annotation.annotation) in ASYNC_ENGINE_CLASSES
        found = False
        resolves = self.resolves_to

        class _Assigned(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                nonlocal found
                if (
                    isinstance(node.value, cst.Call)
                    and resolves(node.value.func, known.ASYNC_ENGINES)
                    and any(isinstance(t.target, cst.Name) and t.target.value == bind.value for t in node.targets)
                ):
                    found = True

        func.body.visit(_Assigned())
        return found

    def _reflects(self) -> bool:
        """`metadata.reflect(...)` in the module: the metadata is filled from the database instead."""
        return ".metadata.reflect(" in self.context.text

    # -- 4c: DDL at import time (opt-in) -----------------------------------------------------------
    def _check_import_time_ddl(self, call: cst.Call, statement: cst.BaseStatement) -> None:
        """A module-level `create_all` in the module creating the FastAPI app runs in every worker."""
        if not self.context.options.get("import-time-ddl", self.options["import-time-ddl"]):
            return
        ctx = self.context
        if ctx.functions or ctx.classes or not ctx.module_name:
            return
        if any(_is_main_guard(p) for p in ctx.parents):
            return
        if not any(app.kind == "app" for app in self.index.apps(module=ctx.module_name)):
            return
        where = Where(ctx.module, ctx.module_name, ctx.path, (), (), tuple(ctx.parents), ctx.names, ctx.text)
        top_level = len(ctx.parents) > 1 and ctx.parents[1] is statement
        title = "Move `create_all` into a function called from the app's lifespan (or use Alembic)"
        fix = _circular_fix(self, statement, where, title) if top_level else None
        self.report(
            call,
            "`create_all` runs at import time in the app module: every worker process runs the DDL at once, "
            "which can fail with duplicate-object errors; run it once, in the lifespan or with Alembic",
            severity=Severity.INFO,
            fix=fix,
        )

    # -- 4b: AsyncEngine bind ----------------------------------------------------------------------
    def _check_async_bind(self, call: cst.Call, statement: cst.BaseStatement) -> None:
        bind = None
        for i, arg in enumerate(call.args):
            if (arg.keyword is None and i == 0 and not arg.star) or (arg.keyword is not None and arg.keyword.value == "bind"):
                bind = arg.value
                break
        if bind is None:
            return
        if not is_async_engine(self.index, self.qualified_name(bind)) and not self._local_async_engine(bind):
            return
        engine_src = self.context.module.code_for_node(bind)
        message = (
            f"`create_all` needs a sync connection, but `{engine_src}` is an `AsyncEngine`: it raises "
            "`AttributeError: 'AsyncEngine' object has no attribute '_run_ddl_visitor'`"
        )
        fix = None
        func = self.current_function
        only_bind = len(call.args) == 1 and (call.args[0].keyword is None or call.args[0].keyword.value == "bind")
        if (
            func is not None
            and func.asynchronous is not None
            and only_bind
            and isinstance(statement, cst.SimpleStatementLine)
            and len(statement.body) == 1
            and isinstance(statement.body[0], cst.Expr)
            and statement.body[0].value is call
        ):
            conn = free_name(func, ("conn", "connection", "ddl_conn"))
            target = self.context.module.code_for_node(call.func)
            code = f"async with {engine_src}.begin() as {conn}:\n    await {conn}.run_sync({target})\n"
            new = cst.parse_statement(code, config=self.context.module.config_for_parsing)
            new = new.with_changes(leading_lines=statement.leading_lines)
            fix = self.fix(
                statement,
                new,
                applicability=Applicability.SAFE,
                title="Run `create_all` through `conn.run_sync` on `engine.begin()`",
            )
        self.report(call, message, severity=Severity.ERROR, fix=fix)


ASYNC_ENGINE_CLASSES = frozenset({"sqlalchemy.ext.asyncio.AsyncEngine", "sqlalchemy.ext.asyncio.engine.AsyncEngine"})


def _is_main_guard(node: cst.CSTNode) -> bool:
    """`if __name__ == "__main__":`."""
    if not isinstance(node, cst.If) or not isinstance(node.test, cst.Comparison):
        return False
    test = node.test
    sides = [test.left, *(c.comparator for c in test.comparisons)]
    return any(isinstance(x, cst.Name) and x.value == "__name__" for x in sides) and any(
        literal_value(x) == "__main__" for x in sides
    )


def _innermost_statement(parents) -> cst.BaseStatement | None:
    for node in reversed(parents):
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            return node
    return None



# -- where the call runs, and what has run before it ------------------------------------------------


@dataclass(frozen=True)
class Where:
    """The place of a `create_all` in the checked module."""

    module: cst.Module
    module_name: str | None
    path: str
    functions: tuple[cst.FunctionDef, ...]
    classes: tuple[cst.ClassDef, ...]
    parents: tuple[cst.CSTNode, ...]
    names: object = None
    text: str = ""  # the module's source text


@dataclass(frozen=True)
class Verdict:
    """Which modules registering models on the base have run before the call, and which have not."""

    reached: tuple[str, ...]
    missing: tuple[str, ...]
    context: str  # "module", "lifespan" or "function"
    circular: bool = False  # a missing module imports the call's module (module-level call)
    same_module: bool = False  # the call's own module defines its models below the call


def base_of(index, qualname: str | None) -> str | None:
    """The qualified name of the declarative base (or registry, or `sqlmodel.SQLModel`) `qualname` names."""
    if qualname is None:
        return None
    base = index.declarative_base(qualname)
    return base.qualname if base is not None else None


def _closure(index, module_name: str) -> set[str]:
    return set(index.import_closure(module_name)) | {module_name}


def _is_test_module(module_name: str) -> bool:
    last = module_name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last.endswith("_test") or last == "conftest"


def _package(module_name: str) -> str:
    return module_name.rpartition(".")[0]


def _within(package: str, module_name: str) -> bool:
    return not package or module_name == package or module_name.startswith(package + ".")


def _pytest_preloaded(index, module_name: str) -> set[str]:
    """For a test module: the `conftest` modules pytest imports before it (its package and parents)."""
    if not _is_test_module(module_name) or module_name.endswith("conftest"):
        return set()
    out: set[str] = set()
    parts = module_name.split(".")
    for i in range(len(parts) + 1):  # `conftest` of each package holding the module, the root's too
        name = ".".join([*parts[:i], "conftest"])
        if index.module(name) is not None:
            out |= _closure(index, name)
    return out


def _pytest_session(index, module_name: str) -> set[str]:
    """For a test or fixture function: every test module and conftest of the same test tree has run."""
    top = module_name.split(".")[0] if "." in module_name else ""
    out: set[str] = set()
    for name in index.module_names(top):
        if _is_test_module(name):
            out |= _closure(index, name)
    return out


def _imported_modules(node: cst.CSTNode, names) -> list[str]:
    """The modules an `import` / `from ... import` statement names (project or not)."""
    if isinstance(node, cst.Import):
        return [dotted_name(alias.name) or "" for alias in node.names]
    if not isinstance(node, cst.ImportFrom):
        return []
    target = dotted_name(node.module) if node.module is not None else ""
    base = resolve_relative(getattr(names, "module_name", None), getattr(names, "is_package", False), len(node.relative), target or "")
    if not base:
        return []
    out = [base]
    if not isinstance(node.names, cst.ImportStar):
        out += [f"{base}.{alias.name.value}" for alias in node.names if isinstance(alias.name, cst.Name)]
    return out


def _imports_in(stmt: cst.CSTNode, names, out: list[str]) -> None:
    """Imports a statement runs when it runs (function bodies and `if TYPE_CHECKING:` blocks excluded)."""
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            out.extend(_imported_modules(small, names))
    elif isinstance(stmt, cst.FunctionDef):
        return
    elif isinstance(stmt, cst.If):
        test = dotted_name(stmt.test)
        if test is not None and test.rsplit(".", 1)[-1] == "TYPE_CHECKING":
            return
        for inner in stmt.body.body:
            _imports_in(inner, names, out)
        if stmt.orelse is not None:
            _imports_in(stmt.orelse, names, out)
    elif isinstance(stmt, cst.Else):
        for inner in stmt.body.body:
            _imports_in(inner, names, out)
    elif isinstance(stmt, cst.BaseCompoundStatement):
        body = getattr(stmt, "body", None)
        for inner in getattr(body, "body", ()):
            if isinstance(inner, cst.CSTNode):
                _imports_in(inner, names, out)


def _imports_above(where: Where) -> list[str]:
    """Modules imported by the statements that run before the call, read from the checked module itself.

    The project index was built from the files as they were before any fix: an import inserted by an
    earlier fix pass is only seen here.
    """
    out: list[str] = []
    path = list(where.parents)
    for i, node in enumerate(path[:-1]):
        child = path[i + 1]
        body = node.body if isinstance(node, (cst.Module, cst.IndentedBlock, cst.SimpleStatementSuite)) else None
        if body is None:
            continue
        for stmt in body:
            if stmt is child:
                break
            _imports_in(stmt, where.names, out)
    return out


def _dynamic(index, modules: Iterable[str]) -> bool:
    return any(index.dynamic_imports(name) for name in modules)


def _registration_lines(index, base: str, module_name: str) -> list[int]:
    """Lines of the checked module where models (or `Table`s) are registered on `base`."""
    return [line for mod, line, _ in index.registrations(base) if mod == module_name]


def _lifespan_apps(index, where: Where, func: cst.FunctionDef) -> set[str] | None:
    """The modules creating the app when `func` is a lifespan or startup handler, else None."""
    module_name = where.module_name or ""
    qualname = f"{module_name}.{func.name.value}"
    names = where.names
    for dec in func.decorators:
        d = dec.decorator
        if (
            isinstance(d, cst.Call)
            and isinstance(d.func, cst.Attribute)
            and d.func.attr.value == "on_event"
            and d.args
            and literal_value(d.args[0].value) == "startup"
        ):
            owner = names.qualified_name(d.func.value) if names is not None else None
            app = index.app(owner) if owner else None
            return {app.module} if app is not None else None
    apps = set(_apps_with_lifespan(index, qualname))
    if _creates_app_with_lifespan(where, func.name.value):
        apps.add(module_name)
    if apps:
        return apps
    return None


def _apps_with_lifespan(index, qualname: str) -> Iterable[str]:
    """Modules creating a FastAPI app with `lifespan=<qualname>`."""
    for app in index.apps(lifespan=qualname):
        yield app.module


def _creates_app_with_lifespan(where: Where, func_name: str) -> bool:
    """`FastAPI(..., lifespan=<func_name>)` somewhere in the checked module."""
    names = where.names
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> bool:
            nonlocal found
            if names is not None and names.qualified_name(node.func) in known.FASTAPI_APP:
                for arg in node.args:
                    if (
                        arg.keyword is not None
                        and arg.keyword.value == "lifespan"
                        and isinstance(arg.value, cst.Name)
                        and arg.value.value == func_name
                    ):
                        found = True
            return not found

    if f"lifespan={func_name}" in where.text.replace(" ", ""):
        where.module.visit(_Find())
    return found


def _callers(index, qualname: str) -> set[str]:
    """What may have run when a function is called: the closures of the modules importing it (at any
    level, function-local imports included), and what those modules import inside functions."""
    module_name = qualname.rpartition(".")[0]
    out: set[str] = set()
    candidates = {*index.importers(qualname), *index.importing_modules(qualname), *index.importing_modules(module_name)}
    for name in sorted(candidates):
        summary = index.module(name)
        if name == module_name or summary is None:
            continue
        statements = summary.import_statements
        hit = any(index.canonical(v) == qualname for v in summary.imports.values()) or any(
            qualname in fact.modules
            # the module itself (`import app.db`, `from app import db`), not other names from it
            or (module_name in fact.modules and not any(m.startswith(module_name + ".") for m in fact.modules))
            for fact in statements
        )
        if not hit:
            continue
        out |= _closure(index, name)
        for fact in statements:
            for target in fact.modules:
                if index.module(target) is not None:
                    out |= _closure(index, target)
    return out


def registrations_before(index, base: str, where: Where, line: int) -> Verdict | None:
    """Which registering modules of `base` have run when the call at `line` runs.

    None when the answer is unknown: no registering module is known, or dynamic imports are involved.
    """
    module_name = where.module_name
    if not module_name or index.module(module_name) is None:
        return None
    regs = set(index.registering_modules(base))
    if not regs:
        return None
    same_module = False
    if not where.functions:
        context = "module"
        ran = set(index.modules_run_before(module_name, line))
        ran |= _pytest_preloaded(index, module_name)
        if module_name in regs and any(r < line for r in _registration_lines(index, base, module_name)):
            ran.add(module_name)
        elif module_name in regs:
            same_module = True
    else:
        outer = where.functions[0]
        local = ".".join(p.name.value for p in where.parents if isinstance(p, (cst.FunctionDef, cst.ClassDef)))
        ran = set(index.modules_run_before(module_name, line, function=local)) | {module_name}
        apps = None
        for func in reversed(where.functions):
            apps = _lifespan_apps(index, where, func)
            if apps is not None:
                break
        if apps is not None:
            context = "lifespan"
            for app_module in apps:
                ran |= _closure(index, app_module)
        else:
            context = "function"
            ran |= _callers(index, f"{module_name}.{outer.name.value}")
            if _is_test_module(module_name):
                ran |= _pytest_session(index, module_name)
    for imported in _imports_above(where):
        if index.module(imported) is not None:
            ran |= _closure(index, imported)
    if _dynamic(index, ran | {module_name}):
        return None
    reached = tuple(sorted(regs & ran))
    missing = tuple(sorted(regs - ran))
    if not missing:
        return Verdict(reached, missing, context)
    if context == "function" and reached:
        return None  # only definite emptiness is reported inside ordinary functions
    circular = context == "module" and any(
        module_name in index.import_closure(m) for m in missing if m != module_name
    )
    return Verdict(reached, missing, context, circular, same_module and missing == (module_name,))


# -- fixes ------------------------------------------------------------------------------------------


def _covering_imports(index, missing: Sequence[str], module_name: str) -> list[str]:
    """A few modules whose import runs every missing one (a package re-exporting them is preferred)."""
    todo = set(missing)
    candidates: set[str] = set()
    for m in missing:
        parts = m.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if index.module(name) is not None:
                candidates.add(name)
    ancestors = {".".join(module_name.split(".")[:i]) for i in range(1, module_name.count(".") + 2)}
    candidates -= ancestors
    coverage = {}
    for c in candidates:
        closure = _closure(index, c)
        if module_name in closure:
            continue
        coverage[c] = closure & todo
    chosen: list[str] = []
    while todo:
        best = max(
            (c for c in coverage if coverage[c] & todo),
            key=lambda c: (
                len(coverage[c] & todo),
                c in missing or any(_package(m) == c for m in missing),
                -c.count("."),
            ),
            default=None,
        )
        if best is None:
            return []
        chosen.append(best)
        todo -= coverage[best]
    return sorted(chosen)


def _uses_relative_imports(module: cst.Module) -> bool:
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.ImportFrom) and small.relative:
                    return True
    return False


def _bound_names(where: Where) -> set[str]:
    names = where.names
    bound = set(getattr(names, "defined", ())) | set(getattr(names, "imports", {}))
    for func in where.functions:
        class _Names(cst.CSTVisitor):
            def visit_Name(self, node: cst.Name) -> None:
                bound.add(node.value)

        func.visit(_Names())
    return bound


def _import_line(target: str, where: Where, relative: bool) -> str:
    """The import statement (without comment) that runs module `target`, without clobbering a name."""
    names = where.names
    module_name = where.module_name or ""
    bound = _bound_names(where)
    parent, _, last = target.rpartition(".")
    own_package = module_name.split(".")[:-1] if not getattr(names, "is_package", False) else module_name.split(".")

    def free(local: str, means: str) -> bool:
        return local not in bound or (names is not None and names.qualify(local) == means)

    def alias(local: str) -> str:
        if free(local, target):
            return ""
        for cand in (f"_{local}", f"_{local}_module"):
            if cand not in bound:
                return f" as {cand}"
        return " as _"

    if relative and own_package and target.split(".")[0] == own_package[0]:
        tparts = target.split(".")
        common = 0
        while common < min(len(own_package), len(tparts) - 1) and own_package[common] == tparts[common]:
            common += 1
        dots = "." * (len(own_package) - common + 1)
        middle = ".".join(tparts[common:-1])
        return f"from {dots}{middle} import {last}{alias(last)}"
    head = target.split(".")[0]
    if free(head, head):
        return f"import {target}"
    if parent:
        return f"from {parent} import {last}{alias(last)}"
    return f"import {target}{alias(target)}"


def registration_fix(
    rule: Rule, verdict: Verdict, statement: cst.CSTNode, where: Where, base: str, what: str = "create_all"
):
    """The fix for missing registrations: an import, a move (same module), or a display-only suggestion."""
    top_level = not where.functions and not where.classes and len(where.parents) > 1 and where.parents[1] is statement
    if verdict.circular:
        return _circular_fix(rule, statement, where) if top_level else None
    if verdict.same_module:
        return _move_fix(rule, statement, where, base, what) if top_level else None
    return _import_fix(rule, verdict, statement, where, what)


def _circular_fix(
    rule: Rule,
    statement: cst.CSTNode,
    where: Where,
    title: str = "Move `create_all` into a function and call it from the app's lifespan",
):
    """Display-only: the call wrapped in a function, for the app's lifespan to call."""
    module = where.module
    if not isinstance(statement, cst.SimpleStatementLine):
        return None
    name = "create_tables" if "create_tables" not in _bound_names(where) else "create_all_tables"
    body = module.code_for_node(statement.with_changes(leading_lines=())).strip()
    code = (
        f"def {name}() -> None:\n"
        f'    """Call from the app\'s lifespan, once every model module is imported."""\n'
        f"    {body}\n"
    )
    new = cst.parse_statement(code, config=module.config_for_parsing)
    return rule.fix(
        statement,
        new.with_changes(leading_lines=statement.leading_lines),
        applicability=Applicability.DISPLAY_ONLY,
        title=title,
    )


def _move_fix(rule: Rule, statement: cst.CSTNode, where: Where, base: str, what_moves: str):
    """Unsafe: the module-level call moved below the module's last registration."""
    module = where.module
    lines = _registration_lines(rule.index, base, where.module_name or "")
    if not isinstance(statement, cst.SimpleStatementLine) or not lines:
        return None
    body = list(module.body)
    last = None
    for stmt in body:
        if rule.context.line_of(stmt) > max(lines):
            break
        last = stmt
    if last is None or body.index(last) <= body.index(statement):
        return None
    blank = cst.EmptyLine(indent=False, whitespace=cst.SimpleWhitespace(""))
    comments = [line for line in statement.leading_lines if line.comment is not None]
    moved = statement.with_changes(leading_lines=[blank, blank, *comments])
    # the statement after the removed one keeps the blank lines that separated the call from what is above
    following = body[body.index(statement) + 1]
    gap = _leading_blanks(statement.leading_lines)
    padded = following
    if _leading_blanks(following.leading_lines) < gap:
        padded = following.with_changes(leading_lines=[blank] * gap + list(following.leading_lines))
    what = f"`{last.name.value}`" if isinstance(last, cst.ClassDef) else "the last model"
    fix = rule.fix(
        statement,
        cst.RemovalSentinel.REMOVE,
        applicability=Applicability.UNSAFE,
        title=f"Move `{what_moves}` below {what}",
    )
    if following is last:
        return fix.also(last, cst.FlattenSentinel([padded, moved]))
    if padded is not following:
        fix.also(following, padded)
    return fix.also(last, cst.FlattenSentinel([last, moved]))


def _leading_blanks(lines: Sequence[cst.EmptyLine]) -> int:
    count = 0
    for line in lines:
        if line.comment is not None:
            break
        count += 1
    return count


def _import_fix(rule: Rule, verdict: Verdict, statement: cst.CSTNode, where: Where, what: str):
    """`import <models>  # noqa: F401` right before the call (safe when one import covers every model)."""
    module = where.module
    targets = _covering_imports(rule.index, verdict.missing, where.module_name or "")
    if not targets:
        return None
    relative = _uses_relative_imports(module)
    lines = []
    for t in targets:
        line = _import_line(t, where, relative)
        lines.append(cst.parse_statement(f"{line}  # noqa: F401\n", config=module.config_for_parsing))
    lines[0] = lines[0].with_changes(leading_lines=statement.leading_lines)
    moved = statement.with_changes(leading_lines=())
    shown = ", ".join(f"`{t}`" for t in targets)
    return rule.fix(
        statement,
        cst.FlattenSentinel([*lines, moved]),
        applicability=Applicability.SAFE if len(lines) == 1 else Applicability.UNSAFE,
        title=f"Import {shown} before `{what}`",
    )


def is_async_engine(index, qualname: str | None) -> bool:
    engine = index.engine(qualname) if qualname is not None else None
    return engine is not None and engine.is_async


def free_name(func: cst.FunctionDef, candidates: Sequence[str]) -> str:
    used: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            used.add(node.value)

    func.visit(_Names())
    for c in candidates:
        if c not in used:
            return c
    return candidates[-1] + "_"
