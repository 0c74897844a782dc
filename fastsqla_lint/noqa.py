"""Suppression comments: `# noqa`, `# noqa: FSL005, FSL001`, and file-level `# fastsqla-lint: noqa[: CODES]`.

- A `# noqa` comment applies to diagnostics that start on its line, or on any line of the same logical line
  (a statement spread over several lines can carry its noqa on any of them).
- Codes are separated by commas and/or spaces; codes of other tools (`# noqa: E501`) suppress nothing here.
- `# noqa:` followed by no valid code suppresses nothing and gives a warning (a blanket noqa is spelled
  without the colon). `# noqa FSL005` (no colon) suppresses the codes it names, with a warning.
- `# fastsqla-lint: noqa` must be a comment on its own line; after code it is ignored, with a warning.
- Only real comments count: `"# noqa"` inside a string does nothing.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field

ALL = "*"
_CODE = r"[A-Za-z]+[0-9]+"
_CODE_LIST = re.compile(rf"\s*(?P<codes>{_CODE}(?:(?:\s*,\s*|\s+){_CODE})*)(?![\w-])")
_NOQA = re.compile(r"#\s*noqa(?![\w-])", re.IGNORECASE)
_FILE_NOQA = re.compile(r"#\s*fastsqla-lint\s*:\s*noqa(?![\w-])", re.IGNORECASE)
_CODE_RE = re.compile(_CODE)


@dataclass(frozen=True)
class Directive:
    """One `# noqa` found in a comment; `codes` is None for a bare noqa, () for a malformed one."""

    start: int  # offset of its `#` within the comment
    end: int  # offset just past its last code (or past `noqa` for a bare one)
    codes: tuple[str, ...] | None
    warning: str | None = None


def parse_directive(comment: str, file_level: bool = False) -> Directive | None:
    """The first `# noqa` (or `# fastsqla-lint: noqa` with `file_level`) directive in a comment's text."""
    m = (_FILE_NOQA if file_level else _NOQA).search(comment)
    if m is None:
        return None
    rest = comment[m.end() :]
    colon = re.match(r"\s*:", rest)
    if colon:
        codes = _CODE_LIST.match(rest, colon.end())
        if codes is None:
            return Directive(m.start(), m.end() + colon.end(), (), "expected a list of codes after `noqa:` (such as `# noqa: FSL005`)")
        found = tuple(c.upper() for c in _CODE_RE.findall(codes.group("codes")))
        return Directive(m.start(), m.end() + codes.end(), found)
    codes = _CODE_LIST.match(rest)
    if codes is not None and re.match(r"\s+", rest):
        found = tuple(c.upper() for c in _CODE_RE.findall(codes.group("codes")))
        return Directive(m.start(), m.end() + codes.end(), found, "missing `:` between `noqa` and its codes")
    return Directive(m.start(), m.end(), None)


@dataclass
class NoqaMap:
    file_codes: set[str] = field(default_factory=set)  # ALL means the whole file
    line_codes: dict[int, set[str]] = field(default_factory=dict)  # line -> codes (ALL for bare noqa)
    logical: dict[int, tuple[int, int]] = field(default_factory=dict)  # line -> its logical line's span
    warnings: list[tuple[int, str]] = field(default_factory=list)  # (line, message) for malformed directives

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


def parse_noqa(text: str) -> NoqaMap:
    result = NoqaMap()
    if not re.search("noqa", text, re.IGNORECASE):
        return result
    try:
        comments = _tokenize_comments(text, result.logical)
    except (tokenize.TokenError, SyntaxError):
        result.logical.clear()
        comments = _scan_comments(text, result.logical)
    for line, own_line, comment in comments:
        fd = parse_directive(comment, file_level=True)
        if fd is not None:
            if not own_line:
                result.warnings.append((line, "`# fastsqla-lint: noqa` must be on its own line; ignored"))
            elif fd.warning:
                result.warnings.append((line, fd.warning))
            else:
                result.file_codes |= {ALL} if fd.codes is None else set(fd.codes)
            continue
        d = parse_directive(comment)
        if d is None:
            continue
        if d.warning:
            result.warnings.append((line, d.warning))
        if d.codes is None:
            result.line_codes.setdefault(line, set()).add(ALL)
        elif d.codes:
            result.line_codes.setdefault(line, set()).update(d.codes)
    return result


def _tokenize_comments(text: str, logical: dict[int, tuple[int, int]]) -> list[tuple[int, bool, str]]:
    """(line, alone on its line, text) of every comment; fills `logical` with multi-line statements."""
    comments: list[tuple[int, bool, str]] = []
    logical_start: int | None = None  # first line of the statement being read
    last_code_line = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            comments.append((tok.start[0], last_code_line != tok.start[0], tok.string))
        elif tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            end = tok.start[0]
            if logical_start is not None and end > logical_start:
                for ln in range(logical_start, end + 1):
                    logical[ln] = (logical_start, end)
            logical_start = None
        elif tok.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
            last_code_line = tok.end[0]
            if logical_start is None:
                logical_start = tok.start[0]
    return comments


_STRING_START = re.compile(r"'''|\"\"\"|'|\"")


def _scan_comments(text: str, logical: dict[int, tuple[int, int]]) -> list[tuple[int, bool, str]]:
    """A forgiving scanner for text that `tokenize` rejects: strings, comments, brackets, continuations."""
    comments: list[tuple[int, bool, str]] = []
    quote: str | None = None
    depth = 0
    start_line = 1
    lines = text.splitlines()
    for lineno, line in enumerate(lines, 1):
        i = 0
        code_seen = quote is not None
        continued = False
        while i < len(line):
            ch = line[i]
            if quote is not None:
                if ch == "\\":
                    i += 2
                    continue
                if line.startswith(quote, i):
                    i += len(quote)
                    quote = None
                    continue
                i += 1
                continue
            if ch == "#":
                comments.append((lineno, not code_seen, line[i:]))
                break
            m = _STRING_START.match(line, i)
            if m:
                quote = m.group(0)
                i = m.end()
                code_seen = True
                continue
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(depth - 1, 0)
            elif ch == "\\" and i == len(line) - 1:
                continued = True
            if not ch.isspace():
                code_seen = True
            i += 1
        if quote in ("'", '"'):
            quote = None  # an unterminated one-line string ends with its line
        if depth == 0 and quote is None and not continued:
            if lineno > start_line:
                for ln in range(start_line, lineno + 1):
                    logical[ln] = (start_line, lineno)
            start_line = lineno + 1
    return comments


def add_noqa(line_text: str, code: str) -> str:
    """`line_text` with `code` added to its `# noqa` comment (one is appended if there is none).

    A bare `# noqa` already covers every code and is left alone; the line ending is kept.
    """
    body = line_text.rstrip("\r\n")
    ending = line_text[len(body) :]
    code = code.upper()
    comment_at = _comment_start(body)
    if comment_at is not None:
        comment = body[comment_at:]
        d = parse_directive(comment)
        if d is not None and parse_directive(comment, file_level=True) is None:
            if d.codes is None:
                return line_text
            if code in d.codes:
                return line_text
            start, end = comment_at + d.start, comment_at + d.end
            codes = ", ".join((*d.codes, code))
            return body[:start] + f"# noqa: {codes}" + body[end:] + ending
    return body.rstrip() + f"  # noqa: {code}" + ending


def _comment_start(line: str) -> int | None:
    """Where the comment of one line of code starts (None if it has none)."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return tok.start[1]
    except (tokenize.TokenError, SyntaxError):
        pass
    found = _scan_comments(line, {})
    if found:
        return len(line) - len(found[0][2])
    return None
