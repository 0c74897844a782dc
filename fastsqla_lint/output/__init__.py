"""Output formats. Each module renders a list of diagnostics to text; `FORMATS` maps names to them.

Formatters are pure: diagnostics and a `RenderContext` (source texts, fix threshold, colour) in, text out.
"""

from __future__ import annotations

from typing import Callable

from fastsqla_lint.diagnostics import Diagnostic
from fastsqla_lint.output import concise, full, github, json, sarif
from fastsqla_lint.output.base import RenderContext, RuleMeta, fixable, rule_metadata

Formatter = Callable[[list[Diagnostic], RenderContext], str]

FORMATS: dict[str, Formatter] = {
    "full": full.render,
    "concise": concise.render,
    "json": json.render,
    "sarif": sarif.render,
    "github": github.render,
}

FORMAT_NAMES = tuple(FORMATS)

# the formats that show a fix's text edits (full: as a diff); the others need only to know that a fix exists
EDIT_FORMATS = frozenset({"full", "json", "sarif"})


def render(fmt: str, diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    return FORMATS[fmt](diagnostics, ctx)


__all__ = ["EDIT_FORMATS", "FORMATS", "FORMAT_NAMES", "RenderContext", "RuleMeta", "fixable", "render", "rule_metadata"]
