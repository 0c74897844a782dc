"""The on-disk cache: `.fastsqla-lint-cache/` under the project root (a `.gitignore` inside ignores it).

Everything lives under a folder named for the linter's code (its version plus the size and time of each of
its modules, so that an upgrade or a local edit never reads an older entry), in four kinds of entries:

- `files/`: one per parsed file, keyed by config + reported path + module name + content hash: the
  file's `ModuleSummary`, and when it was linted its diagnostics with the index queries the lint made and
  their answers (`recording.py`). A cached result is used only when the project index of the run answers
  every recorded query the same way, so a change in `models.py` re-checks exactly the files whose
  answers changed.
- `stats/`: per project (root + config), each file's `os.stat` signature and content hash: a file whose
  signature is unchanged, and was not modified within `RACY_SECONDS` of the entry being written, is not
  read again (the racy-timestamp rule git uses for its index).
- `scans/`: per project, the prefilter's scan of each content hash (`prefilter.Scan`).
- `runs/`: per run (working folder + projects + requested files), the hash of every file's content and
  the diagnostics of the requested files: when nothing changed, a run reads this and stats the files,
  and imports neither LibCST nor the rules.

Entries are pickles read back through an unpickler that only builds the linter's own plain data classes
(no function is ever called, so a planted cache file cannot run code). Writes go to a temporary file
renamed into place, so concurrent runs never see half an entry; an entry that cannot be read is a miss.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from pathlib import Path

FOLDER = ".fastsqla-lint-cache"
RACY_SECONDS = 2.0
_KINDS = ("files", "stats", "scans", "runs")

_ALLOWED_MODULES = frozenset(
    {
        "fastsqla_lint.facts",
        "fastsqla_lint.index",
        "fastsqla_lint.diagnostics",
        "fastsqla_lint.prefilter",
    }
)
_ALLOWED_BUILTINS = frozenset({"set", "frozenset", "complex", "slice"})


def code_stamp() -> str:
    """The linter's version and the size and modification time of each of its modules."""
    from fastsqla_lint import __version__

    package = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{__version__}|{sys.version_info[:2]}|".encode())
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                h.update(f"{os.path.relpath(os.path.join(folder, name), package)}:{st.st_size}:{st.st_mtime_ns}|".encode())
    return f"{__version__}-{h.hexdigest()}"


def digest(*parts: object) -> str:
    """A short hash of strings and bytes (the key of an entry)."""
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "builtins" and name in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module in _ALLOWED_MODULES:
            obj = super().find_class(module, name)
            if isinstance(obj, type) and ("__dataclass_fields__" in vars(obj) or _is_enum(obj)):
                return obj
        raise pickle.UnpicklingError(f"not allowed in a cache entry: {module}.{name}")


def _is_enum(cls: type) -> bool:
    import enum

    return issubclass(cls, enum.Enum)


def loads(data: bytes) -> object:
    return _SafeUnpickler(io.BytesIO(data)).load()


class Cache:
    """One cache folder (see the module docstring). Never raises for I/O problems: a miss instead."""

    def __init__(self, root: Path, stamp: str | None = None) -> None:
        self.root = root
        self.stamp = stamp or code_stamp()
        self.base = root / self.stamp
        self._made: set[str] = set()
        self.writable = True

    def _path(self, kind: str, key: str) -> Path:
        return self.base / kind / key[:2] / key

    def load(self, kind: str, key: str) -> object | None:
        try:
            with open(self._path(kind, key), "rb") as fh:
                data = fh.read()
        except OSError:
            return None
        try:
            return loads(data)
        except Exception:  # a corrupt or foreign entry is a miss
            return None

    def store(self, kind: str, key: str, value: object) -> None:
        if not self.writable:
            return
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return
        import tempfile

        path = self._path(kind, key)
        try:
            self._prepare(path.parent)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except OSError:
            self.writable = False  # a read-only tree: stop trying for this run

    def _prepare(self, folder: Path) -> None:
        key = str(folder)
        if key in self._made:
            return
        if not self.root.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            _write_small(ignore, "# Automatically created by fastsqla-lint.\n*\n")
            _write_small(
                self.root / "CACHEDIR.TAG",
                "Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by fastsqla-lint.\n",
            )
        if not self.base.is_dir():
            prune_other_versions(self.root, keep=self.stamp)
        folder.mkdir(parents=True, exist_ok=True)
        self._made.add(key)


def _write_small(path: Path, text: str) -> None:
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        pass


def prune_other_versions(root: Path, keep: str) -> None:
    """Delete the folders of other code stamps (their entries can never be read again)."""
    import shutil

    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and entry.name != keep and not entry.name.startswith("."):
            shutil.rmtree(entry.path, ignore_errors=True)
