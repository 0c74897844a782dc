"""`path:line:col: CODE [*] message`, one line per diagnostic."""

from __future__ import annotations

from fastsqla_lint.diagnostics import Diagnostic
from fastsqla_lint.output import ansi
from fastsqla_lint.output.base import RenderContext, fixable


def line(d: Diagnostic, ctx: RenderContext) -> str:
    paint = ansi.painter(ctx.color)
    mark = " " + paint("[*]", ansi.CYAN) if fixable(d, ctx) else ""
    where = paint(f"{d.path}:{d.start.line}:{d.start.column + 1}:", ansi.BOLD)
    return f"{where} {paint(d.code, ansi.BOLD, ansi.RED)}{mark} {d.message}"


def render(diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    return "".join(line(d, ctx) + "\n" for d in diagnostics)
