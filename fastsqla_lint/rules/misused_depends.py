"""## What it does
Checks for dependencies wired the wrong way:
- `Depends(get_db())`: the dependency is called, so FastAPI receives a generator (or coroutine) object;
- `Depends(SessionLocal)` or `Depends(SessionLocal())`: a session factory, or a session, given as a
  dependency;
- `db: Depends(get_db)`: `Depends()` written as the type annotation;
- `next(get_db())`, `for db in get_db():`, `async for db in get_db():`: a dependency driven by hand.

## Why is this bad?
- `Depends(get_db())` raises `TypeError: <generator object get_db ...> is not a callable object` when
  the module is imported.
- `Depends(SessionLocal)` makes FastAPI read the signature of `sessionmaker.__call__(**local_kw)`: every
  request answers 422 `missing query param local_kw`, and nothing would close the session anyway.
  `Depends(SessionLocal())` passes a session object and fails at import like the first case.
- `db: Depends(get_db)` raises an `AttributeError` when the route is declared.
- A dependency generator driven by hand runs its cleanup (`finally: db.close()`, the end of its `with`)
  only when the generator is garbage-collected: an exception in between leaks the connection.

A call whose result is itself callable is a valid dependency and is left alone: `Depends(Checker("admin"))`
where `Checker` defines `__call__`, or `Depends(require_role("admin"))` returning an inner function. Only
calls of project functions that cannot return a dependency (generators, coroutine functions, functions
that take dependencies themselves) are reported.

## Example
    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine("sqlite:///./app.db")
    SessionLocal = sessionmaker(bind=engine)

    def get_db():
        with SessionLocal() as db:
            yield db

    app = FastAPI()

    @app.get("/items")
    def list_items(db: Session = Depends(get_db())):
        return db.execute(text("SELECT 1")).all()

## Use instead
    from fastapi import Depends, FastAPI
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine("sqlite:///./app.db")
    SessionLocal = sessionmaker(bind=engine)

    def get_db():
        with SessionLocal() as db:
            yield db

    app = FastAPI()

    @app.get("/items")
    def list_items(db: Session = Depends(get_db)):
        return db.execute(text("SELECT 1")).all()

## Fix safety
- `Depends(get_db())` -> `Depends(get_db)`: safe (the code could not be imported). Display-only when the
  call passes arguments, which the dependency would no longer receive.
- `Depends(SessionLocal)` / `Depends(SessionLocal())` -> `Depends(get_db)`, using the yield dependency that
  wraps the same factory (imported when it lives in another module), or a `get_db` generated after the
  factory in the form FSL002 asks for (the session closed in `finally`): safe, since every request failed
  before. Display-only when importing the dependency could be circular; no fix for a `scoped_session`
  registry that no dependency wraps.
- `db: Depends(get_db)` -> `db=Depends(get_db)`: safe. Where a default is not allowed (a parameter without
  default follows), `db: Annotated[<type>, Depends(get_db)]` instead, also safe.
- `db = next(get_db())` -> `with contextmanager(get_db)() as db:` around the rest of the block, and
  `for`/`async for` loops -> `with`/`async with`: unsafe, because the session now closes at the end of the
  block (objects loaded from it are detached afterwards). Display-only when the session escapes the block
  (returned, yielded or stored) or the loop has `break`, `continue` or `else`.

## References
- FastAPI docs, "Dependencies" and "Dependencies with yield"
- https://github.com/fastapi/fastapi/issues/3096, https://github.com/fastapi/fastapi/issues/1128
"""

from __future__ import annotations

import libcst as cst

from fastsqla_lint import known
from fastsqla_lint.diagnostics import Applicability, FixAvailability
from fastsqla_lint.rule import FixRequest, Rule
from fastsqla_lint.rules import _handles, _sessions
from fastsqla_lint.walk import children

NEXT = frozenset({"builtins.next"})
ANY = frozenset({"typing.Any", "typing_extensions.Any"})
ANEXT = frozenset({"builtins.anext"})


class MisusedDepends(Rule):
    code = "FSL006"
    name = "misused-depends"
    message = "Dependency wired the wrong way"
    fix_title = "Pass the dependency itself to `Depends()`"
    fix_availability = FixAvailability.SOMETIMES
    needles = (b"Depends", b"Security", b"next(", b"for ")

    def __init__(self, context) -> None:
        super().__init__(context)
        _sessions.start_pass(context)

    # -- Depends(...) arguments -----------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        target = _handles.depends_target(self, node)
        if target is not None:
            self._check_depends(target)
            return
        if self.resolves_to(node.func, NEXT | ANEXT) and node.args:
            self._check_driven(node, node.args[0].value)

    def _check_depends(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Call):
            if self._factory(target.func) is not None:
                message = (
                    "`Depends()` receives a session object, not a dependency: FastAPI raises "
                    "`TypeError: ... is not a callable object` at import"
                )
                self.report(target, message, fix=self._factory_fix(target, target))
                return
            why = self._not_a_dependency_factory(target.func)
            if why is None:
                return
            callee = _source(target.func)
            message = (
                f"`Depends({callee}())` calls the dependency: FastAPI receives {why} and raises "
                "`TypeError: ... is not a callable object` at import"
            )
            applicability = Applicability.SAFE if not target.args else Applicability.DISPLAY_ONLY
            title = "Pass the dependency itself to `Depends()`"
            if target.args:
                title += " (the call's arguments are dropped)"
            self.report(
                target, message, fix=self.fix(target, target.func, applicability=applicability, title=title)
            )
            return
        factory = self._factory(target)
        if factory is None:
            return
        if factory == "registry":
            message = (
                f"`Depends({_source(target)})` passes a `scoped_session` registry: its `**kw` becomes a "
                "required query parameter, so every request answers 422"
            )
            self.report(target, message, fix=self._factory_fix(target, cst.Call(func=target)))
            return
        message = (
            f"`Depends({_source(target)})` passes the session factory: its `**local_kw` becomes a required "
            "query parameter, so every request answers 422, and nothing closes the session"
        )
        self.report(target, message, fix=self._factory_fix(target, cst.Call(func=target)))

    def _factory(self, expr: cst.BaseExpression) -> str | None:
        """"factory" for a session factory name (`SessionLocal`), "registry" for a scoped_session one."""
        qn = self.qualified_name(expr)
        fact = self.index.session_factory(qn) if qn is not None else None
        if fact is None:
            return None
        return "registry" if fact.is_registry else "factory"

    def _not_a_dependency_factory(self, func: cst.BaseExpression) -> str | None:
        """What calling `func` gives, when it is surely not a callable (None when it may be one)."""
        qn = self.qualified_name(func)
        fact = self.index.function(qn) if qn is not None else None
        if fact is None:
            return None  # a class (`Checker("admin")`) or something the index does not know
        if fact.is_generator:
            return "an async generator object" if fact.is_async else "a generator object"
        if fact.is_async:
            return "a coroutine object"
        body = _sessions.module_facts(self.context).functions.get(fact.qualname)
        returns_callable = body is None or _returns_callable(body)
        if self.index.dependencies_of(fact.qualname) and not returns_callable:
            return "the dependency's return value"
        return None

    # -- the dependency wrapping a factory ------------------------------------------------------------
    def _factory_fix(self, node: cst.BaseExpression, call: cst.Call) -> FixRequest | None:
        """`Depends(<node>)` -> `Depends(get_db)`: the project's yield dependency for the session source
        `call` (`SessionLocal()`), imported when it lives elsewhere, or a generated one."""
        ctx = self.context
        source = _sessions.session_source(ctx, call)
        plan = _sessions.session_dependency(ctx, source, before=node) if source is not None else None
        if plan is None or (plan.generated and plan.anchor is None):
            return None
        imported = [module for module, *_ in plan.add_imports]
        safe = not any(self._imports_back(module) for module in imported)
        if plan.generated:
            title = f"Depend on a generated `{plan.expr}` that closes the session it yields"
        else:
            title = f"Depend on `{plan.expr}`, the yield dependency that wraps the factory"
        fix = self.fix(
            node,
            cst.parse_expression(plan.expr),
            applicability=Applicability.SAFE if safe else Applicability.DISPLAY_ONLY,
            title=title,
            add_imports=plan.add_imports,
            remove_imports=self._factory_import(call.func),
        )
        if plan.generated:
            assert plan.anchor is not None and plan.new_function is not None
            fix.also(plan.anchor, _sessions.insert_after(ctx, plan.anchor, plan.new_function))
        return _sessions.share_generated(ctx, plan, fix)

    def _factory_import(self, factory: cst.BaseExpression) -> list[tuple]:
        """The `from x import SessionLocal` that may become unused (removed only if nothing else uses it)."""
        if not isinstance(factory, cst.Name):
            return []
        target = self.context.names.imports.get(factory.value)
        if target is None or "." not in target:
            return []
        module, _, obj = target.rpartition(".")
        return [(module, obj, factory.value if factory.value != obj else None)]

    def _imports_back(self, module: str) -> bool:
        """Whether `module` imports the checked module (importing from it could be circular)."""
        here = self.context.module_name
        return bool(here) and here in self.index.import_closure(module)

    # -- Depends() as an annotation -------------------------------------------------------------------
    def visit_Param(self, node: cst.Param) -> None:
        annotation = node.annotation.annotation if node.annotation is not None else None
        target = _handles.depends_target(self, annotation)
        if target is None or annotation is None:
            return
        message = (
            f"`{_source(annotation)}` used as the type annotation of `{node.name.value}`: FastAPI raises "
            "`AttributeError` when the route is declared"
        )
        self.report(annotation, message, fix=self._annotation_fix(node, annotation, target))

    def _annotation_fix(self, param: cst.Param, depends: cst.BaseExpression, target: cst.BaseExpression):
        if param.default is not None:
            return None
        func = self.current_function
        if func is None or self._default_allowed(func, param):
            new = param.with_changes(
                annotation=None,
                default=depends,
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
                ),
            )
            return self.fix(
                param, new, applicability=Applicability.SAFE, title="Make `Depends()` the parameter's default"
            )
        made = _handles.dependency_handle(self, target)
        type_name, type_imports = None, ()
        if made is not None and not made.connection:
            type_name, type_imports = _sessions.session_type(self.context, made.is_async)
        if type_name is None:
            type_name, type_imports = self._local_or_import(ANY, "typing", "Any")
        annotated_name, annotated_imports = self._local_or_import(known.ANNOTATED, "typing", "Annotated")
        imports = [*annotated_imports, *type_imports]
        annotated = cst.Subscript(
            value=cst.parse_expression(annotated_name),
            slice=[
                cst.SubscriptElement(
                    cst.Index(cst.parse_expression(type_name)),
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                ),
                cst.SubscriptElement(cst.Index(depends)),
            ],
        )
        return self.fix(
            depends,
            annotated,
            applicability=Applicability.SAFE,
            title="Move `Depends()` into `Annotated[...]`",
            add_imports=imports,
        )

    def _local_or_import(self, names: frozenset[str], module: str, name: str) -> tuple[str, tuple]:
        """How the module already names one of `names`, else `name` with the import it needs."""
        local = _sessions.local_name_for(self.context, names)
        return (local, ()) if local is not None else (name, ((module, name),))

    @staticmethod
    def _default_allowed(func: cst.FunctionDef, param: cst.Param) -> bool:
        """Whether `param` may take a default: keyword-only, or every later positional parameter has one."""
        params = func.params
        if param in params.kwonly_params:
            return True
        positional = [*params.posonly_params, *params.params]
        if param not in positional:
            return False
        later = positional[positional.index(param) + 1 :]
        return all(p.default is not None for p in later)

    # -- dependencies driven by hand ------------------------------------------------------------------
    def _is_dependency_generator(self, call: cst.BaseExpression) -> bool:
        """A call of a generator function that is a dependency, or that makes a session to yield."""
        if not isinstance(call, cst.Call):
            return False
        qn = self.qualified_name(call.func)
        fact = self.index.function(qn) if qn is not None else None
        if fact is None or not fact.is_generator:
            return False
        return self.index.is_dependency(fact.qualname) or _handles.generator_handle(self, fact.qualname) is not None

    def _check_driven(self, call: cst.Call, generator: cst.BaseExpression) -> None:
        if not self._is_dependency_generator(generator):
            return
        assert isinstance(generator, cst.Call)
        dep = _source(generator.func)
        driver = _source(call.func)
        message = (
            f"`{driver}({dep}())` drives a dependency by hand: its cleanup runs only when the generator "
            "is garbage-collected, so an exception leaks the session"
        )
        self.report(call, message, fix=self._with_fix_for_assignment(call, generator))

    def visit_For(self, node: cst.For) -> None:
        if not self._is_dependency_generator(node.iter):
            return
        assert isinstance(node.iter, cst.Call)
        dep = _source(node.iter.func)
        loop = "async for" if node.asynchronous is not None else "for"
        message = (
            f"`{loop}` over `{dep}()` drives a dependency by hand: its cleanup is skipped when the body "
            "raises or breaks"
        )
        self.report(node.iter, message, fix=self._with_fix_for_loop(node))

    def _context_manager(self, generator: cst.Call, is_async: bool) -> tuple[cst.Call, tuple]:
        helper = "asynccontextmanager" if is_async else "contextmanager"
        wrapped = cst.Call(func=cst.Call(func=cst.Name(helper), args=[cst.Arg(generator.func)]), args=generator.args)
        return wrapped, ("contextlib", helper)

    def _with_fix_for_loop(self, loop: cst.For) -> FixRequest | None:
        if loop.orelse is not None or not isinstance(loop.target, cst.Name):
            return None
        assert isinstance(loop.iter, cst.Call)
        is_async = loop.asynchronous is not None
        manager, imp = self._context_manager(loop.iter, is_async)
        new = cst.With(
            items=[cst.WithItem(manager, asname=cst.AsName(loop.target))],
            body=loop.body,
            asynchronous=loop.asynchronous,
            leading_lines=loop.leading_lines,
        )
        escapes = _breaks_loop(loop.body) or _escapes(loop.target.value, [loop.body])
        return self.fix(
            loop,
            new,
            applicability=Applicability.DISPLAY_ONLY if escapes else Applicability.UNSAFE,
            title=f"Enter the dependency with `{'async with' if is_async else 'with'}` so its cleanup always runs",
            add_imports=[imp],
        )

    def _with_fix_for_assignment(self, call: cst.Call, generator: cst.Call) -> FixRequest | None:
        """`db = next(get_db())` as a statement of a function body -> `with` around the rest of the block."""
        parents = self.context.parents
        if len(parents) < 3 or self.current_function is None:
            return None
        assign, line, block = parents[-1], parents[-2], parents[-3]
        if not (
            isinstance(assign, cst.Assign)
            and assign.value is call
            and len(assign.targets) == 1
            and isinstance(assign.targets[0].target, cst.Name)
            and isinstance(line, cst.SimpleStatementLine)
            and len(line.body) == 1
            and isinstance(block, cst.IndentedBlock)
        ):
            return None
        is_async = self.resolves_to(call.func, ANEXT)
        if is_async and self.current_function.asynchronous is None:
            return None
        name = assign.targets[0].target
        statements = list(block.body)
        at = statements.index(line)
        rest = statements[at + 1 :]
        if not rest:
            return None
        manager, imp = self._context_manager(generator, is_async)
        new_with = cst.With(
            items=[cst.WithItem(manager, asname=cst.AsName(name))],
            body=cst.IndentedBlock(body=rest),
            asynchronous=cst.Asynchronous() if is_async else None,
            leading_lines=line.leading_lines,
        )
        escapes = _escapes(name.value, rest)
        return self.fix(
            block,
            block.with_changes(body=[*statements[:at], new_with]),
            applicability=Applicability.DISPLAY_ONLY if escapes else Applicability.UNSAFE,
            title=f"Enter the dependency with `{'async with' if is_async else 'with'}` so its cleanup always runs",
            add_imports=[imp],
        )


def _source(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _returns_callable(func: cst.FunctionDef) -> bool:
    """Whether a function may return a callable: a lambda, a nested function, or the result of a call."""
    nested = {n.name.value for n in _handles.iter_own_nodes(func.body) if isinstance(n, cst.FunctionDef)}
    for node in _handles.iter_own_nodes(func.body):
        if isinstance(node, cst.Return) and node.value is not None:
            value = node.value
            if isinstance(value, (cst.Lambda, cst.Call)):
                return True
            if isinstance(value, cst.Name) and value.value in nested:
                return True
    return False


def _breaks_loop(body: cst.BaseSuite) -> bool:
    """Whether a loop body has a `break`/`continue` of its own (not of a nested loop)."""
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.Break, cst.Continue)):
            return True
        if isinstance(node, (cst.For, cst.While, cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        stack.extend(children(node))
    return False


def _escapes(name: str, statements: list[cst.BaseStatement]) -> bool:
    """Whether the session `name` leaves the block: returned, yielded, stored on an attribute or item."""
    for stmt in statements:
        for node in _walk(stmt):
            value = None
            if isinstance(node, (cst.Return, cst.Yield)):
                value = node.value
            elif isinstance(node, cst.Assign) and any(
                isinstance(t.target, (cst.Attribute, cst.Subscript)) for t in node.targets
            ):
                value = node.value
            if isinstance(value, cst.Name) and value.value == name:
                return True
    return False


def _walk(node: cst.CSTNode):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children(current))
