"""Which files a run checks: `*.py` / `*.pyi` under the given paths, minus what is excluded.

Excluded are the entries matched by `exclude` / `extend-exclude` (gitignore-style globs relative to the
folder of the config file that governs them: `venv` matches that name anywhere, `tests/fixtures` only
that folder), by a `.gitignore` (nested ones too, plus `.git/info/exclude`), and virtualenvs (folders with
a `pyvenv.cfg`). A path given explicitly is checked even when excluded, unless `force_exclude` is set.
Symlinked folders are not followed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pathspec

from fastsqla_lint.config import Config

PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass(frozen=True, slots=True)  # one per file found
class Target:
    """A file to check: `path` is absolute (symlinks not resolved), `display` is how it is reported.

    The path is a string, not a `Path`: a run holds one per file found, and a `Path` (its parts, its
    string and its hash) costs about three times its string."""

    path: str
    display: str
    explicit: bool = False


def display_path(path: str | Path, cwd: Path | None = None) -> str:
    """`path` relative to the working folder when it lies below it, else absolute."""
    base = str(cwd) if cwd is not None else os.getcwd()
    full = os.fspath(path)
    if full == base:
        return "."
    prefix = base if base.endswith(os.sep) else base + os.sep
    if not full.startswith(prefix):
        return full
    rel = full[len(prefix):]
    return rel if os.sep == "/" else Path(rel).as_posix()


def absolute(path: Path) -> Path:
    """An absolute, normalised path without resolving symlinks."""
    return Path(os.path.abspath(path))


class _Patterns:
    """Gitignore-style patterns anchored at `base` (None: matched against the entry's name only)."""

    def __init__(self, base: Path | None, lines: Iterable[str]) -> None:
        self.base = base
        self.patterns = [p for p in pathspec.GitIgnoreSpec.from_lines(lines).patterns if p.include is not None]
        prefix = str(base) if base is not None else ""
        self._prefix = prefix if prefix.endswith(os.sep) else prefix + os.sep
        self._live: dict[str, tuple] = {"": _live(self.patterns)}  # by folder (relative to `base`)

    def decide(self, full: str, name: str, is_dir: bool) -> bool | None:
        """True: excluded, False: re-included by a `!` pattern, None: no pattern applies, for the entry
        whose absolute path is `full` and whose name is `name`."""
        if not self.patterns:
            return None
        if self.base is None:
            rel = name
        else:
            if not full.startswith(self._prefix):
                return None
            rel = full[len(self._prefix):]
            if os.sep != "/":
                rel = rel.replace(os.sep, "/")
        entry = rel + "/" if is_dir else rel
        parent = rel.rpartition("/")[0]
        live = self._live.get(parent)
        if live is None:
            # A pattern that matches the parent folder too matches its entries only because they lie inside
            # that folder; the walk got into the folder, so the folder was given explicitly: ignore it. The
            # patterns left are found once per folder.
            live = self._live[parent] = _live([p for p in self.patterns if not p.match_file(parent + "/")])
        patterns, anything = live
        if anything is None or not anything.search(entry):
            return None
        decision = None
        for pattern in patterns:
            if pattern.match_file(entry):
                decision = pattern.include
        return decision


_SEARCHES: dict[tuple[str, ...], re.Pattern] = {}


def _live(patterns: list) -> tuple[list, re.Pattern | None]:
    """Patterns, and one search telling whether any of them can match (most entries match none; the
    search is compiled once per set of patterns, not per folder)."""
    if not patterns:
        return patterns, None
    key = tuple(p.regex.pattern for p in patterns)
    found = _SEARCHES.get(key)
    if found is None:
        found = _SEARCHES[key] = re.compile("|".join(k.replace("(?P<ps_d>", "(?:") for k in key))
    return patterns, found


class Excluder:
    """Decides whether a file or folder is excluded, under the config that governs its folder."""

    def __init__(self, config_for: Callable[[Path], Config], respect_gitignore: bool = True) -> None:
        self.config_for = config_for
        self.respect_gitignore = respect_gitignore
        self._globs: dict[tuple, _Patterns] = {}
        self._ignores: dict[Path, tuple[_Patterns, ...]] = {}
        self._in_folder: dict[Path, tuple[_Patterns, tuple[_Patterns, ...]]] = {}

    # -- exclude / extend-exclude ------------------------------------------------------------------
    def _glob_patterns(self, config: Config) -> _Patterns:
        key = (config.root, config.exclude, config.extend_exclude)
        found = self._globs.get(key)
        if found is None:
            found = _Patterns(config.root, (*config.exclude, *config.extend_exclude))
            self._globs[key] = found
        return found

    # -- .gitignore --------------------------------------------------------------------------------
    def _gitignores(self, folder: Path) -> tuple[_Patterns, ...]:
        """The .gitignore files that apply inside `folder`, outermost first (cached per folder)."""
        found = self._ignores.get(folder)
        if found is not None:
            return found
        own: list[_Patterns] = []
        if (folder / ".git").exists():
            inherited: tuple[_Patterns, ...] = ()  # the repository's top: nothing above applies
            own.append(_read_ignore(folder, folder / ".git" / "info" / "exclude"))
        elif folder.parent == folder:
            inherited = ()
        else:
            inherited = self._gitignores(folder.parent)
        own.append(_read_ignore(folder, folder / ".gitignore"))
        found = inherited + tuple(p for p in own if p.patterns)
        self._ignores[folder] = found
        return found

    def _patterns_in(self, folder: Path) -> tuple[_Patterns, tuple[_Patterns, ...]]:
        """The exclude patterns and the .gitignore files (innermost first) that apply to entries of `folder`."""
        found = self._in_folder.get(folder)
        if found is None:
            ignores = tuple(reversed(self._gitignores(folder))) if self.respect_gitignore else ()
            found = self._in_folder[folder] = (self._glob_patterns(self.config_for(folder)), ignores)
        return found

    def is_excluded(self, path: Path, is_dir: bool) -> bool:
        if is_dir and (path / "pyvenv.cfg").is_file():
            return True
        return self.entry_excluded(path.parent, path.name, str(path), is_dir)

    def entry_excluded(self, folder: Path, name: str, full: str, is_dir: bool) -> bool:
        """Whether the entry `name` of `folder` (`full`: its path as a string) is excluded by a pattern
        (`is_excluded` also excludes virtualenvs)."""
        globs, ignores = self._patterns_in(folder)
        if globs.decide(full, name, is_dir):
            return True
        if ignores and name != ".gitignore":
            for patterns in ignores:
                d = patterns.decide(full, name, is_dir)
                if d is not None:
                    return d
        return False

    def is_excluded_with_parents(self, path: Path, stop: Path | None = None) -> bool:
        """Whether `path` or a folder between it and `stop` (its project root) is excluded."""
        if self.is_excluded(path, path.is_dir()):
            return True
        if stop is None:
            return False
        for folder in path.parents:
            if folder == stop or stop not in folder.parents:
                break
            if self.is_excluded(folder, True):
                return True
        return False


def _read_ignore(base: Path, file: Path) -> _Patterns:
    try:
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    return _Patterns(base, lines)


def is_python_name(name: str) -> bool:
    """Whether a file name ends with a Python suffix, as `Path.suffix` reads it (`.py` alone does not)."""
    dot = name.rfind(".")
    return 0 < dot < len(name) - 1 and name[dot:] in PYTHON_SUFFIXES


def is_python_file(path: Path) -> bool:
    return is_python_name(path.name)


def walk(folder: Path, excluder: Excluder, folders: list[Path] | None = None) -> Iterator[str]:
    """The path (a string) of every Python file below `folder` that is not excluded, in a stable order.
    The folders looked into are appended to `folders` when given (what a saved run must find unchanged)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    if folders is not None:
        folders.append(folder)
    subfolders = []
    for entry in entries:
        name = entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                path = folder / name
                if not excluder.is_excluded(path, True):
                    subfolders.append(path)
            elif (
                is_python_name(name)
                and entry.is_file()
                and not excluder.entry_excluded(folder, name, entry.path, False)
            ):
                yield entry.path
        except OSError:
            continue
    for sub in subfolders:
        yield from walk(sub, excluder, folders)


def discover(
    paths: Iterable[Path],
    excluder: Excluder,
    force_exclude: bool = False,
    stop_for: Callable[[Path], Path | None] = lambda p: None,
    folders: list[Path] | None = None,
) -> list[Target]:
    """The files to check for the given paths (which must exist), without duplicates.

    `stop_for(path)` gives the folder above which exclusions of an explicit path are not looked for (its
    project root); `folders` collects the folders walked (see `walk`).
    """
    seen: dict[str, int] = {}
    targets: list[Target] = []
    for given in paths:
        path = absolute(given)
        if force_exclude and excluder.is_excluded_with_parents(path, stop_for(path)):
            continue
        if path.is_dir():
            for file in walk(path, excluder, folders):
                if file not in seen:
                    seen[file] = len(targets)
                    targets.append(Target(file, display_path(file)))
        elif (full := str(path)) not in seen:
            seen[full] = len(targets)
            targets.append(Target(full, display_path(path), explicit=True))
        else:
            # found in a folder given earlier, and named too: a named file counts as named
            i = seen[full]
            targets[i] = Target(targets[i].path, targets[i].display, explicit=True)
    return targets
