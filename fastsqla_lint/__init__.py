"""fastsqla-lint: a linter with autofixes for FastAPI + SQLAlchemy (and SQLModel) pitfalls."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "lint_source", "fix_source"]


def lint_source(source, path="<stdin>", config=None, index=None):
    """Lint one source text (str or bytes); returns the engine's `FileResult`."""
    from fastsqla_lint import engine
    from fastsqla_lint.config import DEFAULT
    from fastsqla_lint.index import EMPTY_INDEX
    from fastsqla_lint.source import decode

    text = decode(source).text if isinstance(source, bytes) else source
    return engine.lint_text(text, path, config or DEFAULT, index or EMPTY_INDEX)


def fix_source(source, path="<stdin>", config=None, index=None, unsafe=False):
    """Fix one source text; returns the engine's `FixOutcome` (fixed text, count, what is left)."""
    from fastsqla_lint import engine
    from fastsqla_lint.config import DEFAULT
    from fastsqla_lint.diagnostics import Applicability
    from fastsqla_lint.index import EMPTY_INDEX
    from fastsqla_lint.source import decode

    text = decode(source).text if isinstance(source, bytes) else source
    threshold = Applicability.UNSAFE if unsafe else Applicability.SAFE
    return engine.fix_text(text, path, config or DEFAULT, index or EMPTY_INDEX, threshold)
