"""Which files of a project must be parsed: the cheap text pass that runs before any LibCST parse.

A file can hold a finding, or contribute a fact some finding depends on, only if it is connected to the
libraries the rules know (SQLAlchemy, SQLModel, FastAPI, Starlette, Pydantic):

- every qualified name a rule or the index recognises starts with one of `LIBRARIES`, and names are
  resolved through import tables only, so a file reaches such a name by importing the library or by
  importing a project module that reaches it (a re-export, `SessionLocal` from `app.database`);
- a fact about a name in another module (a constant, a function used as a dependency, a re-export) is
  only ever asked for by a file that imports that module, directly or through re-exports;
- a few rules match by attribute name alone (`conn.exec_driver_sql(...)`): their `standalone_needles`
  make a file relevant by themselves.

So a file is parsed when it is *relevant*: its text holds one of those needles, or it imports (at any
level, in any scope) a relevant project module; or when it *supports* a relevant file: it is imported by
one (transitively: re-exports are followed), or it is the package of one. Everything else is read and
scanned for its imports, never parsed; it cannot change a finding. One exception is documented:
FSL900 (a file that cannot be parsed) is only reported for the files that are parsed.

The import scan is a regular expression over the bytes: it finds every `import` / `from ... import`
statement at the start of a line or after `;`, in any block, with parenthesised or backslash-continued
name lists. Text that only looks like an import (inside a string) adds edges, which can only make more
files relevant, never fewer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

# The top-level packages of every library name the rules and the index recognise (`known.py`).
LIBRARIES = frozenset({"sqlalchemy", "sqlmodel", "fastapi", "starlette", "pydantic"})

_IMPORT = re.compile(rb"import")
_NAME_CHARS = rb"[\w.\x80-\xff]"
_STATEMENT = re.compile(
    rb"[ \t]*(?:"
    rb"from(?:[ \t]|\\\r?\n)+(?P<module>" + _NAME_CHARS + rb"+)(?:[ \t]|\\\r?\n)+import[ \t]*"
    # a comment runs to the end of its line (`(?![^\n])`): one way to match it, no exponential backtracking
    # over an unclosed name list followed by `###` banners
    rb"(?P<names>\((?:[^)#]|#[^\n]*(?![^\n]))*\)|(?:[^\n;\\]|\\\r?\n|\\)*)"
    rb"|import(?:[ \t]|\\\r?\n)+(?P<modules>(?:[^\n;\\]|\\\r?\n|\\)*)"
    rb")"
)
_COMMENT = re.compile(rb"#[^\n]*")
_SPLIT = re.compile(rb"[(),\\]|\r?\n")  # name list separators; `x as y` stays one part

# (level, module, names): `import a.b` -> (0, "a.b", ()); `from ..x import y, z` -> (2, "x", ("y", "z"))
ImportSpec = tuple[int, str, tuple[str, ...]]


@dataclass(frozen=True)
class Scan:
    """What the prefilter knows about one file without parsing it."""

    hit: bool  # it imports a library the rules know, or holds a selected rule's standalone needle
    imports: tuple[ImportSpec, ...]


def standalone_needles(rules: Iterable[type]) -> tuple[bytes, ...]:
    """The standalone needles of the selected rules."""
    return tuple(dict.fromkeys(n for r in rules for n in getattr(r, "standalone_needles", ())))


def scan(data: bytes, needles: tuple[bytes, ...] = ()) -> Scan:
    """The imports of a file, and whether it is relevant by itself (`needles`: standalone needles)."""
    imports = scan_imports(data)
    hit = any(not level and module.partition(".")[0] in LIBRARIES for level, module, _ in imports) or any(
        n in data for n in needles
    )
    return Scan(hit, imports)


def scan_imports(data: bytes) -> tuple[ImportSpec, ...]:
    """Every import statement of a file, as `ImportSpec`s, in order (duplicates removed)."""
    found: dict[ImportSpec, None] = {}
    done = -1  # end of the last statement read: an `import` inside it is not another statement
    match = _STATEMENT.match
    for m in _IMPORT.finditer(data):
        pos = m.start()
        if pos < done:
            continue
        line_start = data.rfind(b"\n", 0, pos) + 1
        while line_start > 1 and (data[line_start - 2] == 92 or data[line_start - 3 : line_start - 1] == b"\\\r"):
            line_start = data.rfind(b"\n", 0, line_start - 2) + 1  # a continued line: its statement's start
        st = match(data, line_start)
        if st is None or st.end() < pos:
            semi = data.rfind(b";", line_start, pos)
            if semi < 0:
                continue
            st = match(data, semi + 1)
            if st is None or st.end() < pos:
                continue
        done = st.end()
        module, names, modules = st.groups()
        if module is not None:
            stripped = module.lstrip(b".")
            found[(len(module) - len(stripped), stripped.decode("utf-8", "replace"), _names(names))] = None
        else:
            for name in _names(modules):
                found[(0, name, ())] = None
    return tuple(found)


def _names(raw: bytes) -> tuple[str, ...]:
    """`a, b as c` / `(a,\\n b)  # x` -> ("a", "b"): the names before any `as`."""
    if b"#" in raw:
        raw = _COMMENT.sub(b"", raw)
    out = []
    for part in _SPLIT.split(raw):
        words = part.split()
        if words:
            out.append(words[0].decode("utf-8", "replace"))
    return tuple(out)


def import_targets(imports: Iterable[ImportSpec], module_name: str | None, is_package: bool) -> set[str]:
    """Every module name an import statement may run or bind: the module, its parent packages, and
    `module.name` for each imported name (a submodule, as in `from . import models`)."""
    out: set[str] = set()
    package = None
    if module_name:
        parts = module_name.split(".")
        package = parts if is_package else parts[:-1]
    for level, module, names in imports:
        if level:
            if package is None or level - 1 > len(package):
                continue
            base = package[: len(package) - (level - 1)]
            full = ".".join([*base, *module.split(".")] if module else base)
        else:
            full = module
        if not full:
            continue
        parts = full.split(".")
        for i in range(1, len(parts) + 1):
            out.add(".".join(parts[:i]))
        for n in names:
            if n != "*":
                out.add(f"{full}.{n}")
    return out


def parents_of(module_name: str) -> list[str]:
    parts = module_name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


_NONE = object()


class _Keys(list):
    """The keys of the files that share a module name (`parse_set`): told apart from a key by its type."""


def parse_set(
    modules: Mapping[object, tuple[str | None, bool, Iterable[str]]], always: Iterable[object] = ()
) -> set[object]:
    """The keys of the files to parse: relevant ones and those supporting them (see the module docstring).

    `modules` maps a file key to (module name, relevant by itself (`Scan.hit`), the module names its
    imports may run (`import_targets`)); `always` are keys parsed in any case (files named on the command
    line, editor buffers). It may be a view that makes each tuple as it is read: nothing here is held per
    file but a key per module name and, for the project modules some file imports, a list of importers.
    """
    by_name: dict[str, object] = {}  # module name -> its file's key (a list of keys when several share it)
    for key, (name, _, _) in modules.items():
        if name:
            held = by_name.get(name, _NONE)
            if held is _NONE:
                by_name[name] = key
            elif type(held) is _Keys:
                held.append(key)
            else:
                by_name[name] = _Keys((held, key))
    importers: dict[str, list[object]] = {}
    relevant = set()
    for key, (_, hit, names) in modules.items():
        if hit:
            relevant.add(key)
        for m in names:
            if m in by_name:
                importers.setdefault(m, []).append(key)
    stack = list(relevant)
    while stack:  # importers of relevant modules are relevant
        key = stack.pop()
        name = modules[key][0]
        for imp in importers.get(name, ()) if name else ():
            if imp not in relevant:
                relevant.add(imp)
                stack.append(imp)
    chosen = set(relevant)
    stack = list(relevant)
    while stack:  # what relevant files import, and their packages
        key = stack.pop()
        name, _, names = modules[key]
        wanted = {m for m in names if m in by_name}
        if name:
            wanted.update(p for p in parents_of(name) if p in by_name)
        for m in wanted:
            held = by_name[m]
            for k in held if type(held) is _Keys else (held,):
                if k not in chosen:
                    chosen.add(k)
                    stack.append(k)
    chosen.update(k for k in always if k in modules)
    return chosen
