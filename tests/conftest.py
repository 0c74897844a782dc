"""Shared test helpers: paths, files on disk, and running the command as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Fixture folders hold linted sample code (some of it named test_*.py), never tests to collect.
collect_ignore = ["fixtures"]


def run_cli(*args: str, cwd: Path | None = None, input: str | bytes | None = None, env: dict | None = None):
    """Run `python -m fastsqla_lint ARGS` in a subprocess; returns CompletedProcess (text mode unless bytes input)."""
    full_env = dict(os.environ)
    full_env.pop("FORCE_COLOR", None)
    full_env.pop("NO_COLOR", None)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    text = not isinstance(input, bytes)
    return subprocess.run(
        [sys.executable, "-m", "fastsqla_lint", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=text,
        env=full_env,
        timeout=300,
    )


def loaded_by_cli(*args: str, cwd: Path, prefixes: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run the CLI with ARGS in a fresh interpreter; returns its stdout and the loaded modules whose
    names start with one of `prefixes`."""
    code = (
        "import sys\n"
        "from fastsqla_lint.cli import main\n"
        "try:\n"
        "    main(sys.argv[2:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(repr(sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1].split(','))))), file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code, ",".join(prefixes), *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)
    return proc.stdout, eval(proc.stderr.strip().splitlines()[-1])


def token_bracket_depth(text: str) -> int | None:
    """How deep brackets nest in `text` as the running Python's tokenizer reads it (None: it refuses the
    text): the reference the nesting guard's cheap bounds are compared with."""
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    depth = most = 0
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
            most = max(most, depth)
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
    return most


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create `files` (relative path -> text or bytes) under `root`; returns `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return root


@pytest.fixture
def cli():
    return run_cli


def pytest_addoption(parser):
    parser.addoption(
        "--update-fixtures",
        action="store_true",
        default=False,
        help="rewrite the rule fixtures' expected*.txt and after*.py from the current output",
    )
