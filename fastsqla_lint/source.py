"""Source files as bytes on disk and as text for the engine: encoding, BOM and newlines kept."""

from __future__ import annotations

import codecs
import io
import re
import tokenize
from dataclasses import dataclass

_NEWLINE_STYLE = re.compile(r"\r\n|\r|\n")


class DecodeError(Exception):
    """The bytes are not text in the encoding the file declares."""

    def __init__(self, message: str, line: int = 1, column: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class SourceText:
    text: str
    encoding: str
    bom: bool

    def encode(self, text: str | None = None) -> bytes:
        body = (self.text if text is None else text).encode(self.encoding)
        return (codecs.BOM_UTF8 + body) if self.bom else body


def newline_of(text: str) -> str:
    m = _NEWLINE_STYLE.search(text)
    return m.group(0) if m else "\n"


def decode(data: bytes) -> SourceText:
    """Decode Python source bytes the way the interpreter does (BOM, PEP 263 cookie)."""
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise DecodeError(f"cannot detect the encoding: {exc}") from None
    body = data[3:] if bom else data
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        prefix = body[: exc.start]
        line = prefix.count(b"\n") + 1
        column = len(prefix) - (prefix.rfind(b"\n") + 1)
        raise DecodeError(
            f"invalid {encoding} byte sequence: {exc.reason}", line, column
        ) from None
    except LookupError:
        raise DecodeError(f"unknown encoding {encoding!r}") from None
    return SourceText(text=text, encoding=encoding, bom=bom)
