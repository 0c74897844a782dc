"""Parts of the check pipeline on their own: the import scan, the parse set, fingerprints and recording."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from fastsqla_lint.prefilter import import_targets, parse_set, scan, scan_imports
from fastsqla_lint.recording import RecordingIndex, fingerprint, replay

SOURCE = b'''\
"""Docs: import nothing here."""
import os, sys as system
import a.b.c as abc
from . import models, schemas as s
from ..pkg.mod import (
    one,  # a comment (with a parenthesis)
    two as deux,
)
from x.y \\
    import z
if True: import inline
x = 1; import after_semicolon
def f():
    from .local import thing
    import importlib
    return importlib.import_module("dynamic")
'''


def test_import_scan_finds_every_statement():
    specs = set(scan_imports(SOURCE))
    assert specs == {
        (0, "os", ()),
        (0, "sys", ()),
        (0, "a.b.c", ()),
        (1, "", ("models", "schemas")),
        (2, "pkg.mod", ("one", "two")),
        (0, "x.y", ("z",)),
        (0, "after_semicolon", ()),
        (1, "local", ("thing",)),
        (0, "importlib", ()),
    } | ({(0, "inline", ())} & specs)  # `if True: import inline` is not at a line start: not needed
    expected = set()
    for node in ast.walk(ast.parse(SOURCE)):
        if isinstance(node, ast.Import):
            expected.update((0, a.name, ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            expected.add((node.level, node.module or "", tuple(a.name for a in node.names)))
    assert expected - specs <= {(0, "inline", ())}


def test_import_scan_of_real_code_matches_python():
    """Every import of the linter's own source, as Python's parser sees it."""
    package = Path(__file__).resolve().parent.parent / "fastsqla_lint"
    for path in package.rglob("*.py"):
        data = path.read_bytes()
        expected = set()
        for node in ast.walk(ast.parse(data)):
            if isinstance(node, ast.Import):
                expected.update((0, a.name, ()) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                expected.add((node.level, node.module or "", tuple(a.name for a in node.names)))
        assert expected <= set(scan_imports(data)), path


def test_a_file_is_relevant_by_its_imports_not_its_words():
    assert scan(b"import sqlalchemy as sa\n").hit
    assert scan(b"from fastapi.routing import APIRouter\n").hit
    assert not scan(b'"""Works with sqlalchemy and fastapi."""\nimport os\n').hit
    assert not scan(b"from .sqlalchemy_helpers import x\n").hit  # a project module of that name
    assert scan(b"conn.exec_driver_sql(q)\n", (b"exec_driver_sql",)).hit


def test_import_targets_resolve_relative_imports():
    specs = ((1, "", ("models",)), (2, "db", ("engine",)), (0, "app.core.config", ()))
    assert import_targets(specs, "app.api.routes", False) == {
        "app.api", "app.api.models", "app", "app.db", "app.db.engine", "app.core", "app.core.config",
    }
    assert import_targets(((1, "", ("x",)),), "pkg", True) == {"pkg", "pkg.x"}


def test_parse_set_follows_imports_both_ways():
    def m(name, is_package, *imports, hit=False) -> tuple:
        return (name, hit, import_targets(imports, name, is_package))

    modules = {
        "db": m("app.db", False, (0, "sqlalchemy", ()), (0, "app.settings", ()), hit=True),
        "settings": m("app.settings", False, (0, "os", ())),  # imported by a relevant file
        "init": m("app", True, (1, "", ("db",))),  # re-exports: imports a relevant module
        "script": m("scripts.init_db", False, (0, "app", ("engine",))),  # imports the package
        "unrelated": m("libs.text", False, (0, "os", ())),
        "uses_unrelated": m("libs.other", False, (0, "libs.text", ())),
    }
    assert parse_set(modules) == {"db", "settings", "init", "script"}
    assert parse_set(modules, always=["unrelated"]) == {"db", "settings", "init", "script", "unrelated"}
    # two files of one module name (`settings.py` beside a `settings/` package): both support `db`
    modules["settings_package"] = m("app.settings", True, (0, "os", ()))
    assert parse_set(modules) == {"db", "settings", "settings_package", "init", "script"}
    # a relevant file among them makes its importers relevant, whichever of the two it is
    modules["settings_package"] = m("app.settings", True, (0, "sqlalchemy", ()), hit=True)
    modules["uses_settings"] = m("libs.config", False, (0, "app.settings", ()))
    assert parse_set(modules) == {"db", "settings", "settings_package", "init", "script", "uses_settings"}


def test_fingerprints_do_not_depend_on_hash_order():
    code = (
        "from fastsqla_lint.recording import fingerprint\n"
        "print(fingerprint({'b': frozenset({'x', 'y', 'z'}), 'a': {('k', 1): [1.5, None]}}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    seen = {
        subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONHASHSEED": seed}, capture_output=True,
                       text=True, check=True).stdout
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1
    assert fingerprint("x") == "x" and fingerprint(None) is None
    assert fingerprint((1, 2)) != fingerprint((2, 1)) and fingerprint({1: 2}) != fingerprint({1: 3})


class _Index:
    uses_fastapi = True

    def __init__(self, deps):
        self.deps = deps

    def is_dependency(self, qn):
        return qn in self.deps


def test_recorded_queries_replay_against_another_index():
    recorder = RecordingIndex(_Index({"app.get_db"}))
    assert recorder.is_dependency("app.get_db") and recorder.uses_fastapi
    assert recorder.records == {("is_dependency", ("app.get_db",), ()): True, ("uses_fastapi", None, ()): True}
    assert replay(_Index({"app.get_db", "other"}), recorder.records)
    assert not replay(_Index(set()), recorder.records)


def test_module_names_per_folder_match_module_name_for(tmp_path):
    """`project.ModuleNames` places each folder under the roots once; every answer must be
    `index.module_name_for`'s, whatever the file and folder names."""
    from fastsqla_lint.index import module_name_for
    from fastsqla_lint.project import ModuleNames

    files = [
        "src/app/__init__.py", "src/app/main.py", "src/app/api/v1/routes.py", "src/app/api/__init__.py",
        "src/__init__.py", "src/setup.py", "src/my-pkg/mod.py", "src/my-pkg/__init__.py", "src/app/my-file.py",
        "src/app/two.dots.py", "scripts/init_db.py", "scripts/__init__.py", "conftest.py", "__init__.py",
        "tests/unit/test_x.py", "src/app/stubs.pyi", "odd name/x.py", "src/app/__init__.pyi",
    ]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    (tmp_path / "linked").symlink_to(tmp_path / "src" / "app")
    (tmp_path / "src" / "app" / "api" / "back").symlink_to(tmp_path / "scripts")
    linked = [tmp_path / "linked" / f for f in ("main.py", "api/v1/routes.py", "api/back/init_db.py")]
    paths = [tmp_path / f for f in files] + linked + [tmp_path / "src/app/api/back/init_db.py"]
    for roots in [(tmp_path / "src", tmp_path), (tmp_path,), (tmp_path / "src",), (tmp_path / "scripts", tmp_path)]:
        names = ModuleNames(roots)
        for path in paths:
            assert names(path) == module_name_for(path, roots), (roots, path)


def test_the_walk_visits_what_libcst_visits_in_the_same_order():
    """The rules' walk (`walk.walk`) leaves out whitespace, punctuation and the leaves no visitor asks
    for: for the node types visitors do ask for, leaves among them, it calls `visit_X` / `leave_X` on the
    same nodes in the same order as LibCST's own traversal, with the node's ancestors as `parents`."""
    import libcst as cst

    from fastsqla_lint import engine
    from fastsqla_lint.config import DEFAULT
    from fastsqla_lint.index import EMPTY_INDEX
    from fastsqla_lint.rule import RuleContext
    from fastsqla_lint.versions import Versions
    from fastsqla_lint.walk import children, walk

    class Recorder:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str, int]] = []

        def visit_Name(self, node) -> None:
            self.seen.append(("visit", "Name", id(node)))

        def visit_Integer(self, node) -> None:
            self.seen.append(("visit", "Integer", id(node)))

        def visit_Call(self, node) -> None:
            self.seen.append(("visit", "Call", id(node)))

        def leave_Call(self, node) -> None:
            self.seen.append(("leave", "Call", id(node)))

        def leave_Return(self, node) -> None:
            self.seen.append(("leave", "Return", id(node)))

    class LibCSTRecorder(Recorder, cst.CSTVisitor):
        def leave_Call(self, original_node) -> None:
            self.seen.append(("leave", "Call", id(original_node)))

        def leave_Return(self, original_node) -> None:
            self.seen.append(("leave", "Return", id(original_node)))

    class Parents(Recorder):  # each name's parent is the last of `parents`
        def __init__(self, context) -> None:
            super().__init__()
            self.context = context

        def visit_Name(self, node) -> None:
            parent = self.context.parents[-1]
            assert any(n is node for n in children(parent)), type(parent)

    fixtures = sorted((Path(__file__).parent / "fixtures").glob("FSL*/*.py"))
    checked = 0
    for path in fixtures:
        parsed = engine.parse(path.read_text(encoding="utf-8"), str(path))
        if parsed.module is None:
            continue
        ours, theirs = Recorder(), LibCSTRecorder()
        ctx = RuleContext(str(path), parsed.module, None, parsed.names, EMPTY_INDEX, DEFAULT, Versions({}))
        walk(parsed.module, [ours, Parents(ctx)], ctx)
        parsed.module.visit(theirs)
        assert ours.seen == theirs.seen, path
        checked += len(ours.seen)
    assert checked > 5000


def test_the_walk_reads_each_node_types_child_fields_in_libcsts_source_order():
    """`walk.child_fields` takes a node type's fields from the string constants of its
    `_visit_and_replace_children`; that source passes them, in order, to LibCST's `visit_*` helpers."""
    import dataclasses
    import inspect
    import re

    import libcst as cst

    from fastsqla_lint.walk import child_fields

    visit_call = re.compile(r'visit_\w+\(\s*self,\s*"(\w+)"')
    skipped = ("leading_lines", "lines_after_decorators", "lpar", "rpar", "comma", "semicolon")
    found, stack = set(), [cst.CSTNode]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                stack.append(sub)
    checked = 0
    for tp in sorted(found, key=lambda t: t.__name__):
        if inspect.isabstract(tp) or not dataclasses.is_dataclass(tp) or tp.__module__.startswith("fastsqla_lint"):
            continue
        source = inspect.getsource(tp._visit_and_replace_children)
        expected = tuple(
            f for f in dict.fromkeys(visit_call.findall(source)) if not f.startswith("whitespace") and f not in skipped
        )
        assert child_fields(tp) == expected, tp
        checked += bool(expected)
    assert checked > 100


def test_the_walk_decides_which_types_it_visits_as_issubclass_would():
    """`walk._is_visited` reads a type's bases instead of asking LibCST's abstract classes: the same answer
    for every class LibCST exports (it registers no virtual subclass), and for values that are not nodes."""
    import libcst as cst

    from fastsqla_lint.walk import SKIPPED_TYPES, _is_visited

    types = [t for t in vars(cst).values() if isinstance(t, type)] + [str, int, type(None), tuple, list]
    assert len(types) > 200
    for tp in types:
        assert _is_visited(tp) == (issubclass(tp, cst.CSTNode) and not issubclass(tp, SKIPPED_TYPES)), tp
