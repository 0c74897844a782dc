"""Writing fixed files back: atomic, faithful to the original bytes' form, and refusing when unsure.

- the new text is encoded the way the file was read (PEP 263 encoding, BOM); newlines are whatever the
  text carries (the engine keeps the file's own);
- nothing is written when the bytes would not change, when the text does not parse, when it cannot be
  encoded in the file's encoding, or when the file changed on disk since it was read (unless it changed
  into the very bytes to write);
- the write goes to a temporary file in the same folder, is flushed to disk, gets the original mode bits,
  then replaces the file in one rename;
- a symlink is written through to its target only when the target lies inside the project root.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from fastsqla_lint.source import SourceText, decode


class WriteError(Exception):
    """The file was left as it was; the message says why."""


def encoded(source: SourceText, new_text: str) -> bytes:
    """The bytes of `new_text` in the file's encoding (and BOM); WriteError if it cannot be encoded."""
    try:
        data = source.encode(new_text)
    except UnicodeEncodeError as exc:
        raise WriteError(
            f"the fixed text cannot be encoded in {source.encoding} ({exc.reason} at {exc.object[exc.start:exc.end]!r})"
        ) from None
    try:
        back = decode(data)
    except Exception as exc:
        raise WriteError(f"the fixed bytes would not decode: {exc}") from None
    if back.text != new_text:
        raise WriteError(f"the fixed text does not survive a round trip through {source.encoding}")
    return data


def _check_parses(text: str) -> None:
    import libcst as cst

    try:
        cst.parse_module(text)
    except Exception as exc:
        raise WriteError(f"the fixed text would not parse ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def write_target(path: Path, root: Path | None) -> Path:
    """The real file to write for `path`, refusing a symlink (of the file or a folder) leading out of `root`."""
    lexical = Path(os.path.abspath(path))
    real = path.resolve()
    bound = Path(os.path.abspath(root)) if root is not None else lexical.parent
    if _inside(real, bound.resolve()):
        return real
    if path.is_symlink() or _inside(lexical, bound):
        raise WriteError(f"it leads through a symlink to {real}, outside the project root {bound}")
    return real  # a file given outside any project, reached without symlinks


def write_fixed(
    path: Path,
    source: SourceText,
    new_text: str,
    original: bytes,
    root: Path | None = None,
) -> bool:
    """Write `new_text` over `path` if it differs from `original`; True if the file was written.

    `original` is the bytes the text was read from; if the file no longer holds them, nothing is written.
    Raises `WriteError` when the file is left unchanged for a reason the user must hear about.
    """
    data = encoded(source, new_text)
    if data == original:
        return False
    _check_parses(new_text)
    target = write_target(path, root)
    try:
        current = target.read_bytes()
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError as exc:
        raise WriteError(f"it cannot be read back: {exc.strerror or exc}") from None
    if current == data:
        return False  # it already holds the fixed bytes: the same file reached by another path, or another run
    if current != original:
        raise WriteError("it changed on disk while it was being checked")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(f"it cannot be written: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:  # an interrupt too: the temporary file never outlives the write
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise WriteError(f"it cannot be written: {exc.strerror or exc}") from None
        raise
    _sync_folder(target.parent)
    return True


def _sync_folder(folder: Path) -> None:
    """Make the rename durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
