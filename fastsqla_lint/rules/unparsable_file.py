"""## What it does
Reports a file that cannot be decoded or parsed as Python.

## Why is this bad?
Nothing in the file can be checked, and the interpreter will refuse it too.

## Example
    def broken(:
        pass

## Use instead
    def fixed():
        pass

## Fix safety
No fix: the linter cannot know what the code was meant to be. The diagnostic points at the error.

## References
- Python language reference, "Lexical analysis" and "Encoding declarations"
"""

from __future__ import annotations

from fastsqla_lint.diagnostics import FixAvailability
from fastsqla_lint.rule import Rule


class UnparsableFile(Rule):
    code = "FSL900"
    name = "unparsable-file"
    message = "The file cannot be decoded or parsed"
    fix_availability = FixAvailability.NONE
    # Emitted by the engine, not by a traversal.
