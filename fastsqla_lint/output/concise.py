"""`path:line:col: CODE [*] message`, one line per diagnostic."""

from __future__ import annotations

from fastsqla_lint.diagnostics import Diagnostic
from fastsqla_lint.output import RenderContext, fixable


def line(d: Diagnostic, ctx: RenderContext) -> str:
    mark = " [*]" if fixable(d, ctx) else ""
    return f"{d.path}:{d.start.line}:{d.start.column + 1}: {d.code}{mark} {d.message}"


def render(diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    return "".join(line(d, ctx) + "\n" for d in diagnostics)
