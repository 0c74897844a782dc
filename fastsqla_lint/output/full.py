"""The default format on a terminal: the concise line, a source excerpt with the range underlined, the fix
title, and the fix as a diff under a note that names its applicability:

    app/db.py:3:10: FSL005 [*] SQLite engine shared across threads
      |
    1 | from sqlalchemy import create_engine
    2 |
    3 | engine = create_engine("sqlite:///./app.db")
      |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ FSL005
      |
      = help: Pass `connect_args={"check_same_thread": False}`

    Safe fix
    1 1 | from sqlalchemy import create_engine
    2 2 |
    3   |-engine = create_engine("sqlite:///./app.db")
      3 |+engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})
"""

from __future__ import annotations

import difflib
import unicodedata

from fastsqla_lint.diagnostics import Applicability, Diagnostic
from fastsqla_lint.output import ansi
from fastsqla_lint.output.base import RenderContext, split_lines
from fastsqla_lint.output.concise import line as concise_line

CONTEXT = 2  # lines shown around the range and around each changed block
MAX_SPAN = 6  # a longer range shows its first and last lines with `...` between
TAB = "    "

NOTES = {
    Applicability.SAFE: "Safe fix",
    Applicability.UNSAFE: "Unsafe fix",
    Applicability.DISPLAY_ONLY: "Display-only fix",
}


def render(diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    return "".join(_block(d, ctx) + "\n" for d in diagnostics)


def _block(d: Diagnostic, ctx: RenderContext) -> str:
    paint = ansi.painter(ctx.color)
    out = [concise_line(d, ctx)]
    text = ctx.sources.get(d.path)
    lines = split_lines(text) if text is not None else []
    gutter = 1
    if 0 < d.start.line <= len(lines):
        excerpt, gutter = _excerpt(d, lines, paint)
        out.extend(excerpt)
    title = d.fix.title if d.fix is not None else d.fix_title
    if title:
        out.append(f"{' ' * gutter} {paint('= help', ansi.BOLD, ansi.CYAN)}: {title}")
    if d.fix is not None and text is not None:
        from fastsqla_lint.fixes import apply_fixes  # LibCST: only when a fix is shown

        diff = _diff(text, apply_fixes(text, [d.fix])[0], paint)
        if diff:
            style = ansi.CYAN if d.fix.applicability == Applicability.SAFE else ansi.YELLOW
            out += ["", paint(NOTES[d.fix.applicability], ansi.BOLD, style), *diff]
    return "\n".join(s.rstrip() for s in out) + "\n"


# -- excerpt ---------------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Columns `text` takes on a terminal (tabs as four, wide characters as two, combining marks as none)."""
    width = 0
    for ch in text:
        if ch == "\t":
            width += len(TAB)
        elif unicodedata.combining(ch):
            continue
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            width += 2
        else:
            width += 1
    return width


def _span(d: Diagnostic, lines: list[str]) -> tuple[int, int, int, int]:
    """(first line, first column, last line, end column) of the range, clamped to the text.

    A range ending at column 0 of a later line ends at the end of the line before it.
    """
    first, col = d.start.line, d.start.column
    last, end = d.end.line, d.end.column
    if last > first and end == 0:
        last -= 1
        end = len(lines[last - 1]) if last <= len(lines) else 0
    last = min(max(last, first), len(lines))
    if last == first:
        end = max(end, col)
    return first, col, last, end


def _excerpt(d: Diagnostic, lines: list[str], paint) -> tuple[list[str], int]:
    """The lines around the range, each line of the range underlined; and the width of the gutter."""
    first, col, last, end = _span(d, lines)
    top, bottom = max(1, first - CONTEXT), min(len(lines), last + CONTEXT)
    width = len(str(bottom))
    bar = paint(" " * width + " |", ansi.BOLD, ansi.BLUE)
    shown = list(range(top, bottom + 1))
    if last - first + 1 > MAX_SPAN:
        keep = set(range(top, first + 2)) | set(range(last - 1, bottom + 1))
        shown = [n for n in shown if n in keep]
    out = [bar]
    previous = None
    for n in shown:
        if previous is not None and n != previous + 1:
            out.append(paint(f"{'...':>{width}}", ansi.BOLD, ansi.BLUE))
        previous = n
        src = lines[n - 1]
        out.append(paint(f"{n:>{width}} |", ansi.BOLD, ansi.BLUE) + " " + src.replace("\t", TAB))
        if first <= n <= last:
            a = col if n == first else len(src) - len(src.lstrip())
            b = end if n == last else len(src)
            a, b = min(a, len(src)), min(b, len(src))
            carets = "^" * max(_width(src[a:b]), 1)
            label = f" {d.code}" if n == last else ""
            out.append(bar + " " + " " * _width(src[:a]) + paint(carets + label, ansi.BOLD, ansi.RED))
    out.append(bar)
    return out, width


# -- fix diff --------------------------------------------------------------------------------------


def _diff(old: str, new: str, paint) -> list[str]:
    """The change as numbered lines: `old new |` then ` ` / `-` / `+` and the text."""
    a, b = split_lines(old), split_lines(new)
    groups = list(difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_grouped_opcodes(CONTEXT))
    if not groups:
        return []
    width = len(str(max(max(g[-1][2], g[-1][4]) for g in groups)))
    blank = " " * width
    out: list[str] = []
    for gi, group in enumerate(groups):
        if gi:
            out.append(paint(f"{'...':>{2 * width + 1}}", ansi.BOLD, ansi.BLUE))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for k in range(i2 - i1):
                    nums = f"{i1 + k + 1:>{width}} {j1 + k + 1:>{width}} |"
                    out.append(paint(nums, ansi.BOLD, ansi.BLUE) + " " + a[i1 + k].replace("\t", TAB))
                continue
            for k in range(i1, i2):
                nums = paint(f"{k + 1:>{width}} {blank} |", ansi.BOLD, ansi.BLUE)
                out.append(nums + paint("-" + a[k].replace("\t", TAB), ansi.RED))
            for k in range(j1, j2):
                nums = paint(f"{blank} {k + 1:>{width}} |", ansi.BOLD, ansi.BLUE)
                out.append(nums + paint("+" + b[k].replace("\t", TAB), ansi.GREEN))
    return out
