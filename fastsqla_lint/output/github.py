"""GitHub Actions workflow commands, one annotation per diagnostic:

    ::error file=app/db.py,line=3,col=10,endLine=3,endColumn=45,title=FSL005 (sqlite-same-thread)::message

Escaping follows GitHub's toolkit: `%`, `\\r` and `\\n` everywhere, and `:` and `,` in property values too.
"""

from __future__ import annotations

from fastsqla_lint.diagnostics import Diagnostic, Severity
from fastsqla_lint.output.base import RenderContext

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def line(d: Diagnostic) -> str:
    props = [
        ("file", d.path),
        ("line", str(d.start.line)),
        ("col", str(d.start.column + 1)),
        ("endLine", str(d.end.line)),
        ("endColumn", str(d.end.column + 1)),
        ("title", f"{d.code} ({d.name})" if d.name else d.code),
    ]
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{COMMANDS[d.severity]} {joined}::{escape_data(d.message)}"


def render(diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    return "".join(line(d) + "\n" for d in diagnostics)
