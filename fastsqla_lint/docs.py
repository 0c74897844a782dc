"""The rule table of README.md, generated from the registry.

    python -m fastsqla_lint.docs            print the table
    python -m fastsqla_lint.docs --write    rewrite it in README.md, between the markers
    python -m fastsqla_lint.docs --check    exit 1 if README.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

START = "<!-- rules-table:start -->"
END = "<!-- rules-table:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"

_FIX = {"always": "always", "sometimes": "sometimes", "none": "none"}


def rules_table() -> str:
    """A Markdown table of every rule: code, name, what it reports, fix availability, default."""
    from fastsqla_lint.registry import all_rules

    rows = [
        "| Code | Name | What it reports | Fix | Default |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in all_rules():
        message = rule.message.replace("|", "\\|")
        rows.append(
            f"| {rule.code} | `{rule.name}` | {message} | {_FIX[rule.fix_availability.value]} | "
            f"{'on' if rule.default_enabled else 'off'} |"
        )
    return "\n".join(rows) + "\n"


def with_table(text: str) -> str:
    """`text` with the part between the markers replaced by the current table."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {START} ... {END} section")
    return text[: start + len(START)] + "\n" + rules_table() + text[end:]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.stdout.write(rules_table())
        return 0
    current = README.read_text(encoding="utf-8")
    wanted = with_table(current)
    if args == ["--check"]:
        if wanted != current:
            sys.stderr.write("README.md's rule table is out of date: run `python -m fastsqla_lint.docs --write`\n")
            return 1
        return 0
    if args == ["--write"]:
        if wanted != current:
            README.write_text(wanted, encoding="utf-8")
        return 0
    sys.stderr.write("usage: python -m fastsqla_lint.docs [--write | --check]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
