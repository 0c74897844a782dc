"""SARIF 2.1.0: one run whose driver lists the rules that reported, and one result per diagnostic.

Lines and columns are 1-based, columns in Unicode code points (`columnKind`). Each fix becomes a SARIF fix
(`artifactChanges[].replacements[]`), its applicability in the fix's `properties`.
"""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from urllib.parse import quote

from fastsqla_lint import __version__
from fastsqla_lint.diagnostics import Diagnostic, Position, Severity
from fastsqla_lint.output.base import RenderContext, RuleMeta, rule_metadata

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/fastsqla-lint/fastsqla-lint"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def uri(path: str) -> str:
    """A relative path as a relative URI reference (forward slashes, percent-encoded); an absolute one as a file URI."""
    p = PurePath(path)
    if p.is_absolute():
        return "file://" + quote(os.fsencode(p.as_posix() if p.as_posix().startswith("/") else "/" + p.as_posix()))
    return quote(os.fsencode(path.replace("\\", "/")))  # the name's own bytes, even when they are not UTF-8


def region(start: Position, end: Position) -> dict:
    return {
        "startLine": start.line,
        "startColumn": start.column + 1,
        "endLine": end.line,
        "endColumn": end.column + 1,
    }


def _rule(meta: RuleMeta) -> dict:
    rule: dict = {
        "id": meta.code,
        "name": meta.name,
        "shortDescription": {"text": meta.summary},
        "defaultConfiguration": {"level": LEVELS[meta.severity]},
    }
    if meta.url:
        rule["helpUri"] = meta.url
    return rule


def _result(d: Diagnostic, rule_index: int) -> dict:
    location = {"artifactLocation": {"uri": uri(d.path)}, "region": region(d.start, d.end)}
    result: dict = {
        "ruleId": d.code,
        "ruleIndex": rule_index,
        "level": LEVELS[d.severity],
        "message": {"text": d.message},
        "locations": [{"physicalLocation": location}],
    }
    if d.fix is not None:
        result["fixes"] = [
            {
                "description": {"text": d.fix.title},
                "artifactChanges": [
                    {
                        "artifactLocation": {"uri": uri(d.path)},
                        "replacements": [
                            {"deletedRegion": region(e.start_pos, e.end_pos), "insertedContent": {"text": e.content}}
                            for e in d.fix.edits
                        ],
                    }
                ],
                "properties": {"applicability": d.fix.applicability.label},
            }
        ]
    return result


def render(diagnostics: list[Diagnostic], ctx: RenderContext) -> str:
    known = ctx.rules if ctx.rules is not None else rule_metadata()
    metas: dict[str, RuleMeta] = {}
    for d in diagnostics:
        if d.code not in metas:
            metas[d.code] = known.get(d.code) or RuleMeta(d.code, d.name, d.message, d.url, d.severity)
    order = sorted(metas)
    index = {code: i for i, code in enumerate(order)}
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "fastsqla-lint",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(metas[code]) for code in order],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(d, index[d.code]) for d in diagnostics],
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
