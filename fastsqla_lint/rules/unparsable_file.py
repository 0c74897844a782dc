"""## What it does
Reports a file that cannot be decoded or parsed as Python.

## Why is this bad?
Nothing in the file can be checked, and the interpreter will refuse it too.

## Known problems
Only the files the linter parses are reported. A file that imports none of the libraries the rules know
(SQLAlchemy, SQLModel, FastAPI, Starlette, Pydantic), directly or through the project's own modules,
and that no such file imports, cannot hold a finding and is not parsed at all (see
docs/performance.md); a file named on the command line always is.

Also reported, before parsing, for code nested deeper than the parser can take safely: brackets nested
more than 200 deep (CPython's own limit), more than 5,000 operators nested in one expression, or more
than 5,000 `elif` branches in one `if`; and, after parsing, for a tree deeper than LibCST's recursive
code can walk (a few hundred levels, such as 2,000 `elif`s or implicitly concatenated strings), which
CPython may still accept.

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
