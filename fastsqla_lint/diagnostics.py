"""Frozen value types that flow out of the engine: diagnostics, fixes and edits."""

from __future__ import annotations

import bisect
import enum
import re
from dataclasses import dataclass, field


_NEWLINE = re.compile(r"\r\n|\r|\n")


class Applicability(enum.IntEnum):
    """How far a fix can be trusted; ordered so that `>=` compares against a threshold."""

    DISPLAY_ONLY = 0
    UNSAFE = 1
    SAFE = 2

    @property
    def label(self) -> str:
        return {0: "display-only", 1: "unsafe", 2: "safe"}[int(self)]


class FixAvailability(enum.Enum):
    ALWAYS = "always"
    SOMETIMES = "sometimes"
    NONE = "none"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Position:
    """A place in a text: `line` is 1-based, `column` 0-based in code points."""

    line: int
    column: int


@dataclass(frozen=True)
class Edit:
    """Replace `text[start:end]` (code point offsets) by `content`."""

    start: int
    end: int
    content: str
    start_pos: Position
    end_pos: Position


@dataclass(frozen=True)
class Fix:
    """A rule's fix. `edits` is None when the run computed only that a fix exists (its output shows no
    edits: see `engine.lint_parsed(edits=False)`); the text edits are computed when they are needed."""

    applicability: Applicability
    title: str
    edits: tuple[Edit, ...] | None

    def applies_at(self, threshold: Applicability) -> bool:
        return self.applicability >= threshold and self.applicability > Applicability.DISPLAY_ONLY


@dataclass(frozen=True)
class Diagnostic:
    path: str
    code: str
    name: str
    message: str
    severity: Severity
    start: Position
    end: Position
    start_offset: int = 0
    end_offset: int = 0
    fix: Fix | None = None
    fix_title: str | None = None
    url: str | None = None
    noqa_row: int | None = None

    def sort_key(self) -> tuple:
        return (self.path, self.start.line, self.start.column, self.code, self.message)


@dataclass
class FileResult:
    """The engine's diagnostics for one file, and the internal errors met while linting it."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LintResult:
    """Everything the engine says about one file."""

    path: str
    diagnostics: tuple[Diagnostic, ...] = ()
    internal_errors: tuple[str, ...] = field(default=())


class LineIndex:
    """Converts code point offsets of a text to `Position`s and back."""

    def __init__(self, text: str) -> None:
        starts = [0]
        starts.extend(m.end() for m in _NEWLINE.finditer(text))
        self.starts = starts
        self.length = len(text)

    def position(self, offset: int) -> Position:
        line = bisect.bisect_right(self.starts, offset) - 1
        return Position(line + 1, offset - self.starts[line])

    def offset(self, pos: Position) -> int:
        idx = min(max(pos.line - 1, 0), len(self.starts) - 1)
        return min(self.starts[idx] + pos.column, self.length)

    def line_start(self, line: int) -> int:
        return self.starts[min(max(line - 1, 0), len(self.starts) - 1)]


def make_edit(index: LineIndex, start: int, end: int, content: str) -> Edit:
    return Edit(start, end, content, index.position(start), index.position(end))
