"""A JSON array shaped like ruff's JSON output; rows and columns are 1-based (columns count code points)."""

from __future__ import annotations

import json

from fastsqla_lint.diagnostics import Diagnostic, Position
from fastsqla_lint.output.base import RenderContext


def location(pos: Position) -> dict:
    return {"row": pos.line, "column": pos.column + 1}


def to_dict(d: Diagnostic) -> dict:
    fix = None
    if d.fix is not None:
        fix = {
            "applicability": d.fix.applicability.label,
            "message": d.fix.title,
            "edits": [
                {"content": e.content, "location": location(e.start_pos), "end_location": location(e.end_pos)}
                for e in d.fix.edits
            ],
        }
    return {
        "code": d.code,
        "message": d.message,
        "filename": d.path,
        "location": location(d.start),
        "end_location": location(d.end),
        "fix": fix,
        "noqa_row": d.noqa_row,
        "url": d.url,
    }


def render(diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    return json.dumps([to_dict(d) for d in diagnostics], indent=2, sort_keys=True, ensure_ascii=False) + "\n"
