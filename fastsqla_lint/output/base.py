"""What every formatter shares: the render context, rule metadata, and small helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from fastsqla_lint.diagnostics import Applicability, Diagnostic, Severity

_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class RuleMeta:
    """What SARIF's rule table says about a rule."""

    code: str
    name: str
    summary: str
    url: str | None = None
    severity: Severity = Severity.ERROR


@dataclass
class RenderContext:
    """What a formatter may need besides the diagnostics."""

    sources: dict[str, str] = field(default_factory=dict)  # reported path -> text, for excerpts and diffs
    threshold: Applicability = Applicability.SAFE  # `[*]` marks fixes that apply at this level
    color: bool = False
    # code -> metadata for SARIF's rule table; None: read it from the rule registry
    rules: Mapping[str, RuleMeta] | None = None


def fixable(d: Diagnostic, ctx: RenderContext) -> bool:
    return d.fix is not None and d.fix.applies_at(ctx.threshold)


def split_lines(text: str) -> list[str]:
    """The lines of a text, split as `LineIndex` counts them (`\\r\\n`, `\\r`, `\\n` only)."""
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()
    return lines


def rule_metadata() -> dict[str, RuleMeta]:
    """Metadata of every registered rule."""
    from fastsqla_lint.registry import all_rules

    return {
        r.code: RuleMeta(r.code, r.name, r.message or r.name, r.url(), r.severity) for r in all_rules()
    }
