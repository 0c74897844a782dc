"""Command line (minimal placeholder: `check` with --fix/--unsafe-fixes over explicit paths)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fastsqla_lint import __version__


@click.group()
@click.version_option(__version__, prog_name="fastsqla-lint")
def cli() -> None:
    """fastsqla-lint: FastAPI + SQLAlchemy pitfalls, found and fixed."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--fix", is_flag=True)
@click.option("--unsafe-fixes", is_flag=True)
def check(paths: tuple[Path, ...], fix: bool, unsafe_fixes: bool) -> None:
    from fastsqla_lint import project as proj
    from fastsqla_lint.config import DEFAULT
    from fastsqla_lint.diagnostics import Applicability

    paths = paths or (Path("."),)
    files = []
    for p in paths:
        if p.is_dir():
            files.extend((f.absolute(), str(f)) for f in sorted(p.rglob("*.py")))
        else:
            files.append((p.absolute(), str(p)))
    root = proj.find_root(paths[0])
    project = proj.build_project(root, DEFAULT, files)
    threshold = Applicability.UNSAFE if unsafe_fixes else Applicability.SAFE
    left = 0
    for path, _ in files:
        if fix:
            out = proj.fix_file(project, path, threshold)
            loaded = project.files[path]
            if out.fixed and loaded.source is not None:
                path.write_bytes(loaded.source.encode(out.text))
            diags = out.result.diagnostics
        else:
            diags = proj.lint_file(project, path).diagnostics
        for d in diags:
            click.echo(f"{d.path}:{d.start.line}:{d.start.column + 1}: {d.code} {d.message}")
        left += len(diags)
    sys.exit(1 if left else 0)


@cli.command()
def lsp() -> None:
    """Run the language server over stdio."""
    from fastsqla_lint.lsp import main as lsp_main

    lsp_main()


def main() -> None:
    cli()
