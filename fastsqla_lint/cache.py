"""The on-disk cache: `.fastsqla-lint-cache/` under the project root (a `.gitignore` inside ignores it).

Everything lives under a folder named for the linter's code (its version plus the size and time of each of
its modules, so that an upgrade or a local edit never reads an older entry), in four kinds of entries:

- `files/`: one per parsed file, keyed by config + reported path + module name + content hash: the
  file's `ModuleSummary`, and when it was linted its diagnostics with the index queries the lint made and
  their answers (`recording.py`). A cached result is used only when the project index of the run answers
  every recorded query the same way, so a change in `models.py` re-checks exactly the files whose
  answers changed. The entries a worker writes for one chunk are one file, hard-linked under each
  entry's key (`Cache.store_many`): creating a file costs far more than linking one.
- `stats/`: per project (root + config), each file's `os.stat` signature, content hash, and what the
  prefilter found in it (module name, relevance, import targets): a file whose signature is unchanged,
  and was not modified within `RACY_SECONDS` of the entry being written, is not read again (the
  racy-timestamp rule git uses for its index).
- `runs/`: per run (working folder + projects + requested files), the hash of every file's content and
  the diagnostics of the requested files.
- `checks/`: per `check` command (options, working folder, environment), its findings and what they
  depend on (`take_snapshot`): with nothing changed, a command is answered after listing the folders it
  walked and stating the files, without reading settings, walking with exclusions, importing LibCST or
  the rules.

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
from collections.abc import Iterable, Iterator
from pathlib import Path

FOLDER = ".fastsqla-lint-cache"
RACY_SECONDS = 2.0

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
    """The linter's version and the size and modification time of each of its modules, as this process
    first saw them: the code it runs (a long-lived language server keeps running the code it imported,
    even once the files change)."""
    global _STAMP
    if _STAMP is None:
        _STAMP = _read_code_stamp()
    return _STAMP


_STAMP: str | None = None


def _read_code_stamp() -> str:
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


def stat_signature(st: os.stat_result) -> bytes:
    """What tells that a file may have changed: `size:mtime:ctime:inode` (times in nanoseconds), as one
    small object, since there is one per file of every project (a tuple of four integers took about 140
    bytes more). Text, not fixed-width fields: a timestamp past the year 2262 does not fit 64 bits."""
    return b"%d:%d:%d:%d" % (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def signature_size(sig: bytes) -> int:
    return int(sig.split(b":", 1)[0])


def signature_ctime(sig: bytes) -> int:
    """The last status change, in nanoseconds (what git's racy-timestamp rule compares)."""
    return int(sig.split(b":", 3)[2])


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module == "builtins" and name in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module in _ALLOWED_MODULES:
            obj = super().find_class(module, name)
            if isinstance(obj, type) and issubclass(type(obj), type) and (  # a class, not a generic alias
                "__dataclass_fields__" in vars(obj) or _is_enum(obj)
            ):
                return obj
        raise pickle.UnpicklingError(f"not allowed in a cache entry: {module}.{name}")


def _is_enum(cls: type) -> bool:
    import enum

    return issubclass(cls, enum.Enum)


def loads(data: bytes) -> object:
    return _SafeUnpickler(io.BytesIO(data)).load()


_ENTRIES = "entries"  # the key of a file holding several entries: {_ENTRIES: {key: entry}}


class Cache:
    """One cache folder (see the module docstring). Never raises for I/O problems: a miss instead."""

    def __init__(self, root: Path, stamp: str | None = None) -> None:
        self.root = root
        self.stamp = stamp or code_stamp()
        self.base = root / self.stamp
        self._made: set[str] = set()
        self.writable = True
        self._shared: dict[tuple, dict] = {}  # files of several entries read so far, by identity
        self._links = 0

    def _path(self, kind: str, key: str) -> Path:
        return self.base / kind / key[:2] / key

    def holds(self, kind: str, key: str) -> bool:
        """Whether an entry is there (without reading it: it may still be damaged, a miss for `load`)."""
        return os.path.isfile(self._path(kind, key))

    def load(self, kind: str, key: str) -> object | None:
        try:
            with open(self._path(kind, key), "rb") as fh:
                st = os.fstat(fh.fileno())
                ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                shared = self._shared.get(ident)
                if shared is not None:
                    return shared.get(key)
                data = fh.read()
        except OSError:
            return None
        try:
            value = loads(data)
        except Exception:  # a corrupt or foreign entry is a miss
            return None
        if type(value) is dict and set(value) == {_ENTRIES}:
            shared = value[_ENTRIES]
            if type(shared) is not dict:
                return None
            self._shared[ident] = shared  # the file is never written again: a new one replaces it
            return shared.get(key)
        return value

    def store_many(self, kind: str, entries: dict[str, object]) -> None:
        """Store several entries (a chunk's files) as one file linked under each entry's key.

        Creating a file is what storing an entry costs (measured on a cold run: about 0.5 ms a file for
        the kernel under the run's load, against 0.05 ms to pickle an entry); a hard link to an existing
        file costs a directory entry. Each link is made under a temporary name and renamed into place,
        so a reader sees a whole file or none. Where links cannot be made, each entry is stored alone."""
        if not self.writable or not entries:
            return
        if len(entries) == 1:
            key, value = next(iter(entries.items()))
            self.store(kind, key, value)
            return
        folder = self.base / kind
        try:
            self._prepare(folder)
        except OSError:
            self.writable = False
            return
        whole = self._write_temporary(folder, {_ENTRIES: entries})
        if whole is None:
            return
        keys = list(entries)
        done = 0
        try:
            for key in keys:
                path = self._path(kind, key)
                self._prepare(path.parent)
                self._links += 1
                link = path.parent / f".tmp-{os.getpid()}-{id(self)}-{self._links}"
                os.link(whole, link)
                os.replace(link, path)
                done += 1
        except OSError:
            for key in keys[done:]:  # no links here (or a name taken): one file per entry
                self.store(kind, key, entries[key])
        finally:
            _unlink(whole)

    def _write_temporary(self, folder: Path, value: object) -> Path | None:
        """`value` pickled into a new temporary file of `folder` (None if it cannot be). The pickle is
        written as it is made, never held whole: a project's stat entry has a row per file."""
        import tempfile

        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        except OSError:
            self.writable = False
            return None
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # no half-written temporary file is left behind
            _unlink(Path(tmp))
            if isinstance(exc, OSError):
                self.writable = False
                return None
            if isinstance(exc, Exception):  # the value cannot be pickled: no entry
                return None
            raise
        return Path(tmp)

    def store(self, kind: str, key: str, value: object) -> None:
        if not self.writable:
            return
        path = self._path(kind, key)
        try:
            self._prepare(path.parent)
        except OSError:
            self.writable = False  # a read-only tree: stop trying for this run
            return
        tmp = self._write_temporary(path.parent, value)
        if tmp is None:
            return
        try:
            os.replace(tmp, path)
        except OSError:
            _unlink(tmp)
            self.writable = False

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


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


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


# --------------------------------------------------------------------------------------------------
# Saved checks: a whole command answered without discovery, settings or any parse.
#
# A `check` run (not fixing) saves what it found with everything its answer depends on: the listing of
# every folder it walked (sub-folders, Python files and settings files), the signature of every settings
# file (pyproject.toml, fastsqla-lint.toml, setup.cfg, .gitignore, .git/info/exclude, lock and
# requirements files, pyvenv.cfg) in those folders and in every folder above the paths given and the
# working folder, and the stat signature and hash of every file of the projects. The same command
# (same options, working folder, environment and linter code) with all of that unchanged prints the saved
# findings; anything else runs the pipeline (which has its own entries).

SETTINGS_NAMES = frozenset(
    {
        "pyproject.toml", "fastsqla-lint.toml", "setup.cfg", "setup.py", ".gitignore", ".git", "pyvenv.cfg",
        "uv.lock", "poetry.lock", "pdm.lock", "requirements",
    }
)
_PY_SUFFIXES = (".py", ".pyi")


def _settings_name(name: str) -> bool:
    return name in SETTINGS_NAMES or (name.startswith("requirements") and name.endswith(".txt"))


def _listing(folder: str) -> tuple[str, list[str]] | None:
    """(digest of what discovery sees in a folder, the settings files in it), or None if it is gone."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    seen, settings = [], []
    for e in entries:
        name = e.name
        if _settings_name(name):
            settings.append(name)
            seen.append(name)
        elif name.endswith(_PY_SUFFIXES) or (name != "__pycache__" and e.is_dir(follow_symlinks=False)):
            seen.append(name)
    seen.sort()
    return digest("listing", *seen), sorted(settings)


def _above(folder: str) -> list[str]:
    """The settings files a folder above the walked ones holds (nothing else there matters)."""
    try:
        return sorted(n for n in os.listdir(folder) if _settings_name(n))
    except OSError:
        return []


def _watched(folder: str, names: list[str]) -> list[str]:
    """The files whose content settings come from, for the settings names present in a folder."""
    out = []
    for name in names:
        path = os.path.join(folder, name)
        if name == ".git":
            out.append(os.path.join(path, "info", "exclude"))
        elif name == "requirements":
            try:
                out.extend(os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(".txt"))
            except OSError:
                pass
            out.append(path)
        else:
            out.append(path)
    return out


def _signature(path: str) -> bytes | None:
    try:
        return stat_signature(os.stat(path))
    except OSError:
        return None


def pack_files(paths: list[str], sigs: list[bytes], hashes: list[str]) -> tuple[str, bytes, str]:
    """The paths, stat signatures and content hashes of files as three strings, each joined by a NUL
    (which no path holds): three objects in all rather than three per file, since a run over many files
    keeps them until its end, and a saved check pickles them (`take_snapshot`)."""
    return "\0".join(paths), b"\0".join(sigs), "\0".join(hashes)


def join_packs(packs: Iterable[tuple[str, bytes, str]]) -> tuple[str, bytes, str]:
    """`pack_files` of several packs' files, in turn."""
    packs = [p for p in packs if p[0]]  # a pack of no file holds empty strings
    return "\0".join(p[0] for p in packs), b"\0".join(p[1] for p in packs), "\0".join(p[2] for p in packs)


def unpack_files(packed: tuple[str, bytes, str]) -> Iterator[tuple[str, bytes, str]]:
    """(path, stat signature, content hash) of each file of a pack."""
    paths, sigs, hashes = packed
    if not paths:
        return iter(())
    return zip(paths.split("\0"), sigs.split(b"\0"), hashes.split("\0"), strict=True)


def take_snapshot(folders: list[str], above: list[str], extra_files: list[str], files: tuple[str, bytes, str]) -> dict:
    """What a saved check depends on. `files`: the checked files' paths, stat signatures and content
    hashes (`pack_files`)."""
    import time

    listings = []
    watch: dict[str, bytes | None] = {}
    for folder in dict.fromkeys(folders):
        found = _listing(folder)
        if found is None:
            continue
        listings.append((folder, found[0]))
        for path in _watched(folder, found[1]):
            watch[path] = _signature(path)
    tops = []
    for folder in dict.fromkeys(above):
        names = _above(folder)
        tops.append((folder, tuple(names)))
        for path in _watched(folder, names):
            watch[path] = _signature(path)
    for path in extra_files:
        watch[path] = _signature(path)
    return {"written": time.time(), "listings": listings, "above": tops, "watch": watch, "files": files}


def snapshot_holds(snap: dict) -> bool:
    """Whether nothing a saved check depends on has changed (a recently written file is hashed again)."""
    clean_before = int((snap["written"] - RACY_SECONDS) * 1e9)
    for folder, seen in snap["listings"]:
        found = _listing(folder)
        if found is None or found[0] != seen:
            return False
    for folder, names in snap["above"]:
        if tuple(_above(folder)) != names:
            return False
    for path, sig in snap["watch"].items():
        now = _signature(path)
        if now != sig or (now is not None and signature_ctime(now) >= clean_before):
            return False
    for path, sig, content in unpack_files(snap["files"]):
        now = _signature(path)
        if now is None:
            return False
        if now != sig or signature_ctime(now) >= clean_before:
            try:
                with open(path, "rb") as fh:
                    if content_hash(fh.read()) != content:
                        return False
            except OSError:
                return False
    return True
