"""What a lint of one file asked the project index, so that its result can be checked against another index.

A rule reads the project only through the index's query methods. `RecordingIndex` wraps an index, answers
every query from it, and records each query (method name and arguments) with a fingerprint of its answer.
A file's diagnostics depend only on its text, the config and those answers, so a result computed against
one index (a provisional one, made of the summaries seen so far, or the one a cached result was made with)
is the result against another index exactly when `replay` finds every recorded answer unchanged.

Fingerprints are plain values for small answers (strings, numbers, booleans, None) and a digest of a
canonical form for the rest (dataclasses, dicts, sets: sorted, so that they do not depend on hash order),
which makes them comparable across processes and runs.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from pathlib import PurePath

Records = dict  # (method, args) -> fingerprint
FINGERPRINT = "_fingerprint"

_PLAIN = (str, int, float, bool, type(None))


def fingerprint(value: object, memo: dict | None = None) -> object:
    """A value that is equal for equal answers, the same in every process."""
    if type(value) in _PLAIN:
        return value
    if memo is not None:
        hit = memo.get(id(value))
        if hit is not None:
            return hit[1]
    h = hashlib.blake2b(digest_size=16)
    _canonical(value, h.update)
    digest = h.hexdigest()
    if memo is not None:
        memo[id(value)] = (value, digest)  # the value is kept alive, so its id is not reused
    return digest


def _canonical(value: object, out) -> None:
    t = type(value)
    if t in _PLAIN or t is bytes:
        out(b"%s:%r;" % (t.__name__.encode(), value))
    elif t is tuple or t is list:
        out(b"(")
        for v in value:
            _canonical(v, out)
        out(b")")
    elif t is dict:
        items = sorted((_key(k), v) for k, v in value.items())
        out(b"{")
        for k, v in items:
            out(k.encode("utf-8", "surrogatepass"))
            _canonical(v, out)
        out(b"}")
    elif t is frozenset or t is set:
        out(b"<" + ",".join(sorted(_key(v) for v in value)).encode("utf-8", "surrogatepass") + b">")
    elif isinstance(value, enum.Enum):
        out(f"{t.__qualname__}.{value.name};".encode())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        known = getattr(value, "__dict__", {}).get(FINGERPRINT)
        if known is not None:  # a file's summary: named by its file and content (see `mark`)
            out(b"fp:" + known.encode() + b";")
            return
        out(t.__qualname__.encode() + b"[")
        for f in dataclasses.fields(value):
            _canonical(getattr(value, f.name), out)
        out(b"]")
    elif isinstance(value, PurePath):
        out(b"path:" + str(value).encode("utf-8", "surrogatepass") + b";")
    else:  # sentinels (`literal_value.UNKNOWN`) and other singletons: their repr, never an address
        r = repr(value)
        if " at 0x" in r:
            r = t.__qualname__
        out(f"{t.__qualname__}:{r};".encode("utf-8", "surrogatepass"))


def mark(summary: object, key: str) -> None:
    """Name a file's summary by `key` (its file and content hash): fingerprinting it is then instant. The
    pipeline marks every summary as soon as it exists, so a summary is never fingerprinted both ways."""
    if summary is not None:
        summary.__dict__[FINGERPRINT] = key


def _key(value: object) -> str:
    """A sortable canonical string of a dict key or set element."""
    if type(value) is str:
        return "s" + value
    parts: list[bytes] = []
    _canonical(value, parts.append)
    return "o" + b"".join(parts).decode("utf-8", "surrogatepass")


def _query_key(name: str, args: tuple, kwargs: dict) -> tuple:
    key = (name, args, tuple(sorted(kwargs.items())) if kwargs else ())
    try:
        hash(key)
    except TypeError:
        key = (name, fingerprint(args), fingerprint(kwargs) if kwargs else ())
    return key


class RecordingIndex:
    """A project index that records every query made through it (see the module docstring)."""

    def __init__(self, index, memo: dict | None = None) -> None:
        self._index = index
        self.records: Records = {}
        self._memo: dict = memo if memo is not None else {}  # fingerprints, shared by lints of one index

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._index, name)
        if not callable(value):
            self.records.setdefault((name, None, ()), fingerprint(value, self._memo))
            return value
        records, memo = self.records, self._memo

        def query(*args, **kwargs):
            answer = value(*args, **kwargs)
            key = _query_key(name, args, kwargs)
            if key not in records:
                records[key] = fingerprint(answer, memo)
            return answer

        query.__name__ = name
        self.__dict__[name] = query  # later lookups skip __getattr__
        return query


def answer(index, key: tuple, memo: dict | None = None) -> object:
    """The fingerprint of what `index` answers to one recorded query."""
    name, args, kwargs = key
    value = getattr(index, name)
    if args is None:
        return fingerprint(value, memo)
    if not isinstance(args, tuple):  # arguments stored as a fingerprint: cannot be asked again
        raise LookupError(name)
    return fingerprint(value(*args, **dict(kwargs)), memo)


def replay(index, records: Records, memo: dict | None = None) -> bool:
    """Whether `index` answers every recorded query the way it was answered when recorded."""
    for key, recorded in records.items():
        try:
            if answer(index, key, memo) != recorded:
                return False
        except Exception:
            return False
    return True
