"""Suppression comments: `# noqa`, `# noqa: FSL005, FSL001`, and file-level `# fastsqla-lint: noqa[: CODES]`.

A `# noqa` comment applies to diagnostics that start on its line, or on any line of the same logical line
(a statement spread over several lines can carry its noqa on any of them).
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

ALL = "*"
_NOQA = re.compile(r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_FILE_NOQA = re.compile(
    r"#\s*fastsqla-lint\s*:\s*noqa(?::\s?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
_CODE = re.compile(r"[A-Z]+[0-9]+", re.IGNORECASE)


@dataclass
class NoqaMap:
    file_codes: set[str] = field(default_factory=set)  # ALL means the whole file
    line_codes: dict[int, set[str]] = field(default_factory=dict)  # line -> codes (ALL for bare noqa)
    logical: dict[int, tuple[int, int]] = field(default_factory=dict)  # line -> its logical line's span

    def suppresses(self, code: str, line: int) -> int | None:
        """The line of the noqa comment that suppresses `code` at `line`, 0 for file level, else None."""
        if ALL in self.file_codes or code in self.file_codes:
            return 0
        first, last = self.logical.get(line, (line, line))
        for ln in [line] + [n for n in range(first, last + 1) if n != line]:
            codes = self.line_codes.get(ln)
            if codes and (ALL in codes or code in codes):
                return ln
        return None


def _codes(text: str | None) -> set[str]:
    if not text:
        return {ALL}
    return {c.upper() for c in _CODE.findall(text)}


def parse_noqa(text: str) -> NoqaMap:
    result = NoqaMap()
    if "noqa" not in text and "NOQA" not in text.upper():
        return result
    comments: list[tuple[int, str]] = []
    logical_start = 1
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                comments.append((tok.start[0], tok.string))
            elif tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                end = tok.start[0]
                if end > logical_start:
                    for ln in range(logical_start, end + 1):
                        result.logical[ln] = (logical_start, end)
                logical_start = tok.end[0] + (0 if tok.type == tokenize.ENDMARKER else 1)
            elif tok.type == tokenize.NL and logical_start == tok.start[0]:
                logical_start = tok.end[0] + 1
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # fall back to a line scan: comments only, no logical lines
        comments = [(i, line[line.index("#") :]) for i, line in enumerate(text.splitlines(), 1) if "#" in line]
    for line, comment in comments:
        fm = _FILE_NOQA.search(comment)
        if fm:
            result.file_codes |= _codes(fm.group("codes"))
            continue
        m = _NOQA.search(comment)
        if m:
            result.line_codes.setdefault(line, set()).update(_codes(m.group("codes")))
    return result
