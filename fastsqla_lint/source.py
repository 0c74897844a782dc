"""Source files as bytes on disk and as text for the engine: encoding, BOM and newlines kept."""

from __future__ import annotations

import ast
import codecs
import io
import keyword
import re
import tokenize
import warnings
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


MAX_BRACKET_DEPTH = 200  # CPython refuses more ("too many nested parentheses")
MAX_NESTING = 5000  # operators nested in one expression, or `elif`s in one chain


def nesting_problem(text: str) -> tuple[str, int] | None:
    """Why the text is nested too deeply to hand to the parser, with the line; None if it is not.

    LibCST's native parser recurses once per nesting level and overflows the C stack (a crash, not an
    exception) on a few thousand levels, and takes time that grows with the square of the depth. This is
    a cheap token scan that bounds the depth from above: brackets deeper than CPython allows, or more
    than `MAX_NESTING` operators and keywords in one expression (counted per bracket level and between
    commas, since only these can nest) or `elif`s in one chain. Real code stays far below both.
    """
    if _surely_shallow(text):
        return None
    return _token_scan(text)


def _token_scan(text: str) -> tuple[str, int] | None:
    counts = [0]  # operators since the last comma, per open bracket (and the statement's own level)
    lambdas = [0]  # lambdas whose parameter list is not closed yet (their commas do not separate)
    total = 0
    elifs = [0]  # `elif`s in the current chain, per indentation level
    line_start = True
    previous = None
    try:
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        for tok in tokens:
            kind, string = tok.type, tok.string
            if kind == tokenize.INDENT:
                elifs.append(0)
                continue
            if kind == tokenize.DEDENT:
                if len(elifs) > 1:
                    elifs.pop()
                continue
            if kind in _NOT_NESTING:
                continue
            if kind == tokenize.NEWLINE or (string == ";" and len(counts) == 1):
                counts, lambdas, total, line_start, previous = [0], [0], 0, True, None
                continue
            if line_start:
                line_start = False
                if string == "elif":
                    elifs[-1] += 1
                    if elifs[-1] > MAX_NESTING:
                        return f"more than {MAX_NESTING} `elif` branches in one `if` statement", tok.start[0]
                elif string != "else":
                    elifs[-1] = 0
            if kind == tokenize.OP and string in "([{":
                if len(counts) > MAX_BRACKET_DEPTH:
                    return "too many nested parentheses", tok.start[0]
                counts[-1] += 1
                total += 1
                counts.append(0)
                lambdas.append(0)
            elif kind == tokenize.OP and string in ")]}":
                if len(counts) > 1:  # an unbalanced closer is the parser's to report
                    total -= counts.pop()
                    lambdas.pop()
            elif kind == tokenize.OP and string == ",":
                if not lambdas[-1]:
                    total -= counts[-1]
                    counts[-1] = 0
            elif kind == tokenize.OP or (kind == tokenize.NAME and keyword.iskeyword(string)) or (
                kind == tokenize.STRING and previous == tokenize.STRING
            ):
                if string == "lambda":
                    lambdas[-1] += 1
                elif string == ":" and lambdas[-1]:
                    lambdas[-1] -= 1
                counts[-1] += 1
                total += 1
                if total > MAX_NESTING:
                    return f"more than {MAX_NESTING} nested operators in one expression", tok.start[0]
            previous = kind
    except tokenize.TokenError as exc:
        if exc.args[:1] == ("too many nested parentheses",):  # Python 3.12+'s tokenizer stops there itself
            where = exc.args[1] if len(exc.args) > 1 else None
            return "too many nested parentheses", where[0] if isinstance(where, tuple) and where else 1
    except SyntaxError:
        pass  # the parser reports what is wrong with the tokens
    return None


# every token the scan counts is or holds one of these: an operator or a bracket (and a string's quote),
# or a keyword
_COUNTED = re.compile(r"[^\w\s]|\b(?:" + "|".join(keyword.kwlist) + r")\b")


def _surely_shallow(text: str) -> bool:
    """Bounds found at C speed (or nearly), each sparing the scan when it cannot find a problem:
    no more operator characters and keywords than the nesting limit in the file, or in any one statement;
    no more openers than the bracket limit, or brackets nested no deeper than it (strings and comments
    left out), or a text CPython compiles (its tokenizer refuses brackets nested deeper than the limit)."""
    skeleton = None
    if len(text) > MAX_NESTING and len(_COUNTED.findall(text)) > MAX_NESTING:
        if text.count("elif") > MAX_NESTING:
            return False
        skeleton = code_skeleton(text)
        if skeleton is None or _longest_statement(skeleton) > MAX_NESTING:
            return False
    if text.count("(") + text.count("[") + text.count("{") <= MAX_BRACKET_DEPTH:
        return True
    skeleton = skeleton if skeleton is not None else code_skeleton(text)
    depth = bracket_depth(skeleton) if skeleton is not None else None
    if depth is not None:
        return depth <= MAX_BRACKET_DEPTH
    try:
        with warnings.catch_warnings():  # an invalid escape in a string warns: not ours to print
            warnings.simplefilter("ignore")
            compile(text, "<nesting bound>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except Exception:  # refused for any reason (a syntax error, a null byte, recursion): the scan decides
        return False
    return True


# What the tokenizer reads as one string or comment, for well-formed tokens: a quote or `#` met outside
# them starts one. A backslash escapes the next character in every kind of string (a raw string too, as
# far as finding its end goes).
_STRING_OR_COMMENT = re.compile(
    r"#[^\r\n]*"
    r"|(?:(?<!\w)(?P<prefix>[rRbBuUfFtT]{1,2}))?(?P<string>"
    r"'''(?:[^'\\]|\\(?:\r\n|.)|'(?!''))*'''"
    r'|"""(?:[^"\\]|\\(?:\r\n|.)|"(?!""))*"""'
    r"|'(?:[^'\\\r\n]|\\(?:\r\n|.))*'"
    r'|"(?:[^"\\\r\n]|\\(?:\r\n|.))*")',
    re.DOTALL,
)
_NOT_BRACKET = re.compile(r"[^()\[\]{}]+")
_INNERMOST = re.compile(r"\(\)|\[\]|\{\}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Unsure(Exception):
    pass


def _skeleton_of(m: re.Match) -> str:
    """A comment: blank. A string: `~`, one counted character, on no line of its own. An f-string (or
    t-string): that, and the code inside, when it is simple enough to be sure where it ends: no quote or
    doubled brace inside, braces that balance. (From Python 3.12 on, code inside may use the string's own
    quote: such a string seems to end early, inside a replacement field, so its braces do not balance.)"""
    prefix = m.group("prefix")
    if prefix is None:
        return " " if m.group("string") is None else " ~ "
    if not ("f" in prefix or "F" in prefix or "t" in prefix or "T" in prefix):
        return " ~ "
    string = m.group("string")
    quotes = 3 if string[:3] in ("'''", '"""') else 1
    body = string[quotes:-quotes]
    if "'" in body or '"' in body or "{{" in body or "}}" in body or body.count("{") != body.count("}"):
        raise _Unsure
    return " ~ " + _LINE_BREAK.sub(" ", body) + " "


def code_skeleton(text: str) -> str | None:
    """`text` with each comment blanked and each string made one `~` (the code inside an f-string kept):
    what is left are the tokens that nest, on the lines they end on. None when a string is not simple
    enough to be sure of (see `_skeleton_of`) or a quote does not close."""
    try:
        skeleton = _STRING_OR_COMMENT.sub(_skeleton_of, text)
    except _Unsure:
        return None
    if "'" in skeleton or '"' in skeleton:
        return None
    return skeleton


def bracket_depth(skeleton: str) -> int | None:
    """How deep brackets nest in a `code_skeleton`, at C speed: each round removes the innermost pairs.
    None when they do not match; more than `MAX_BRACKET_DEPTH` stops early. The brackets of an
    f-string's code count as nested where the string is (Python 3.12+ counts them so; before, apart: this
    bounds the depth from above)."""
    brackets = _NOT_BRACKET.sub("", skeleton)
    depth = 0
    while brackets:
        if depth > MAX_BRACKET_DEPTH:
            return depth
        fewer = _INNERMOST.sub("", brackets)
        if len(fewer) == len(brackets):
            return None
        brackets = fewer
        depth += 1
    return depth


def _longest_statement(skeleton: str) -> int:
    """A bound on the operators and keywords the scan counts in one expression: the most counted
    characters in one logical line of a `code_skeleton` (lines joined while brackets are open or a line
    ends with a backslash; a `;` or a comma does not end the count here)."""
    most = count = depth = 0
    for line in _LINE_BREAK.split(skeleton):
        count += len(_COUNTED.findall(line))
        depth += line.count("(") + line.count("[") + line.count("{")
        depth -= line.count(")") + line.count("]") + line.count("}")
        if depth <= 0 and not line.rstrip().endswith("\\"):
            most = max(most, count)
            count = depth = 0
    return max(most, count)


_NOT_NESTING = frozenset(
    {tokenize.NL, tokenize.COMMENT, tokenize.ENCODING, tokenize.ENDMARKER, tokenize.ERRORTOKEN}
)
