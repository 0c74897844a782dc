"""Writing fixed files: atomic, byte-faithful, and refusing when it cannot be sure."""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path

import pytest

from fastsqla_lint.source import decode
from fastsqla_lint.writer import WriteError, write_fixed


def _write(path: Path, data: bytes, root: Path | None = None, edit=lambda t: t.replace("old", "new")) -> bool:
    source = decode(data)
    return write_fixed(path, source, edit(source.text), data, root=root or path.parent)


def test_crlf_newlines_are_kept(tmp_path):
    path = tmp_path / "a.py"
    path.write_bytes(b"x = 'old'\r\ny = 2\r\n")
    assert _write(path, path.read_bytes())
    assert path.read_bytes() == b"x = 'new'\r\ny = 2\r\n"


def test_bom_is_kept(tmp_path):
    path = tmp_path / "a.py"
    data = codecs.BOM_UTF8 + "x = 'old \u00e9'\n".encode()
    path.write_bytes(data)
    assert _write(path, data)
    assert path.read_bytes() == codecs.BOM_UTF8 + "x = 'new \u00e9'\n".encode()


def test_latin1_cookie_is_kept(tmp_path):
    path = tmp_path / "a.py"
    data = b"# -*- coding: latin-1 -*-\nx = 'old \xe9'\n"
    path.write_bytes(data)
    assert _write(path, data)
    assert path.read_bytes() == b"# -*- coding: latin-1 -*-\nx = 'new \xe9'\n"


def test_text_that_the_encoding_cannot_hold_is_refused(tmp_path):
    path = tmp_path / "a.py"
    data = b"# -*- coding: latin-1 -*-\nx = 'old'\n"
    path.write_bytes(data)
    with pytest.raises(WriteError, match="cannot be encoded in iso-8859-1"):
        _write(path, data, edit=lambda t: t.replace("old", "\u2603"))
    assert path.read_bytes() == data


@pytest.mark.skipif(os.name == "nt", reason="POSIX mode bits")
def test_mode_bits_are_kept(tmp_path):
    path = tmp_path / "script.py"
    path.write_bytes(b"x = 'old'\n")
    path.chmod(0o751)
    assert _write(path, path.read_bytes())
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert path.read_bytes() == b"x = 'new'\n"


def test_unchanged_file_is_not_rewritten(tmp_path):
    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n")
    before = path.stat()
    assert not _write(path, path.read_bytes())
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_text_that_does_not_parse_is_refused(tmp_path):
    path = tmp_path / "a.py"
    data = b"x = 'old'\n"
    path.write_bytes(data)
    with pytest.raises(WriteError, match="parse"):
        _write(path, data, edit=lambda t: "x = (\n")
    assert path.read_bytes() == data


def test_file_changed_on_disk_is_not_overwritten(tmp_path):
    path = tmp_path / "a.py"
    data = b"x = 'old'\n"
    path.write_bytes(b"x = 'someone else'\n")
    with pytest.raises(WriteError, match="changed on disk"):
        _write(path, data)
    assert path.read_bytes() == b"x = 'someone else'\n"


def test_no_temporary_file_is_left(tmp_path):
    path = tmp_path / "a.py"
    path.write_bytes(b"x = 'old'\n")
    _write(path, path.read_bytes())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_inside_the_root_writes_its_target(tmp_path):
    target = tmp_path / "real.py"
    target.write_bytes(b"x = 'old'\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    assert _write(link, link.read_bytes(), root=tmp_path)
    assert link.is_symlink()
    assert target.read_bytes() == b"x = 'new'\n"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_out_of_the_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "real.py"
    target.write_bytes(b"x = 'old'\n")
    root = tmp_path / "proj"
    root.mkdir()
    link = root / "link.py"
    link.symlink_to(target)
    with pytest.raises(WriteError, match="symlink"):
        _write(link, link.read_bytes(), root=root)
    assert target.read_bytes() == b"x = 'old'\n"
    # a symlinked folder leading out of the root is refused as well
    (root / "vendor").symlink_to(outside, target_is_directory=True)
    with pytest.raises(WriteError, match="symlink"):
        _write(root / "vendor" / "real.py", target.read_bytes(), root=root)
    assert target.read_bytes() == b"x = 'old'\n"
