"""The default format: the concise line, a source excerpt with a caret, the fix title and its diff."""

from __future__ import annotations

import difflib

from fastsqla_lint.diagnostics import Diagnostic
from fastsqla_lint.fixes import apply_fixes
from fastsqla_lint.output import RenderContext
from fastsqla_lint.output.concise import line


def render(diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    out = []
    for d in diagnostics:
        out.append(line(d, ctx))
        text = ctx.sources.get(d.path)
        if text is not None:
            lines = text.splitlines()
            if 0 < d.start.line <= len(lines):
                src = lines[d.start.line - 1]
                out.append(f"  {d.start.line:>4} | {src}")
                width = max(1, (d.end.column - d.start.column) if d.end.line == d.start.line else len(src) - d.start.column)
                out.append(f"       | {' ' * d.start.column}{'^' * width}")
        if d.fix is not None:
            out.append(f"  = help: {d.fix.title} ({d.fix.applicability.label} fix)")
            if text is not None:
                new, _ = apply_fixes(text, [d.fix])
                diff = difflib.unified_diff(text.splitlines(), new.splitlines(), lineterm="", n=1)
                out.extend("    " + x for x in list(diff)[2:])
        elif d.fix_title:
            out.append(f"  = help: {d.fix_title}")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")
