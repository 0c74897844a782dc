"""Output formats. Each module renders a list of diagnostics to text; `FORMATS` maps names to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from fastsqla_lint.diagnostics import Applicability, Diagnostic


@dataclass
class RenderContext:
    """What a formatter may need besides the diagnostics."""

    sources: dict[str, str] = field(default_factory=dict)  # reported path -> text, for excerpts and diffs
    threshold: Applicability = Applicability.SAFE  # `[*]` marks fixes that apply at this level
    color: bool = False


def fixable(d: Diagnostic, ctx: RenderContext) -> bool:
    return d.fix is not None and d.fix.applies_at(ctx.threshold)


def _formats() -> dict[str, Callable[[list[Diagnostic], RenderContext], str]]:
    from fastsqla_lint.output import concise, full

    found = {"concise": concise.render, "full": full.render}
    try:
        from fastsqla_lint.output import github, json, sarif

        found.update({"json": json.render, "sarif": sarif.render, "github": github.render})
    except ImportError:
        pass
    return found


def render(fmt: str, diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    return _formats()[fmt](diagnostics, ctx)


FORMAT_NAMES = ("full", "concise", "json", "sarif", "github")
