"""The command line end to end: a real subprocess per case, checking output and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import run_cli, write_files

GOOD = "import os\n\n\ndef f():\n    return os.sep\n"
BAD_SYNTAX = "def broken(:\n    pass\n"
# A file found by walking a folder is parsed (and reported unparsable) when it imports a library the rules
# know; a file named on the command line is always parsed.
BAD_SYNTAX_FOUND = "import sqlalchemy\n" + BAD_SYNTAX


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_files(tmp_path, {"pyproject.toml": '[project]\nname = "demo"\n'})


def assert_no_traceback(proc) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr


# -- basics ---------------------------------------------------------------------------------------


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    from fastsqla_lint import __version__

    assert __version__ in proc.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / ("fastsqla-lint.exe" if os.name == "nt" else "fastsqla-lint")
    if not script.exists():
        script = shutil.which("fastsqla-lint")
        if script is None:
            pytest.skip("the package is not installed in this environment")
    import subprocess

    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "fastsqla-lint" in proc.stdout


def test_help_lists_every_command():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("check", "rule", "rules", "lsp", "debug-config"):
        assert command in proc.stdout


def test_clean_files_exit_0(project):
    write_files(project, {"app/main.py": GOOD, "app/__init__.py": ""})
    proc = run_cli("check", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "All checks passed!\n"
    assert proc.stderr == ""


def test_default_path_is_current_folder(project):
    write_files(project, {"sub/broken.py": BAD_SYNTAX_FOUND})
    proc = run_cli("check", cwd=project / "sub")
    assert proc.returncode == 1
    assert proc.stdout.startswith("broken.py:3:1: FSL900 ")  # LibCST places this error on line 3


def test_unknown_option_is_a_usage_error(project):
    proc = run_cli("check", "--no-such-option", cwd=project)
    assert proc.returncode == 2
    assert "--no-such-option" in proc.stderr


# -- bad input --------------------------------------------------------------------------------------


def test_syntax_error_among_good_files(project):
    write_files(
        project,
        {
            "a_good.py": GOOD,
            "b_broken.py": BAD_SYNTAX_FOUND,
            "c_good.py": GOOD,
            "d_broken.py": "x = (\nimport sqlalchemy\n",
        },
    )
    proc = run_cli("check", "--output-format", "concise", cwd=project)
    assert proc.returncode == 1
    assert_no_traceback(proc)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("b_broken.py:") and " FSL900 " in lines[0]
    assert lines[1].startswith("d_broken.py:") and " FSL900 " in lines[1]
    assert lines[2:] == ["Found 2 errors."]


def test_undecodable_file_is_reported(project):
    write_files(project, {"latin.py": b"# no cookie\nname = '\xe9t\xe9'\nimport sqlalchemy\n", "ok.py": GOOD})
    proc = run_cli("check", cwd=project)
    assert proc.returncode == 1
    assert_no_traceback(proc)
    assert proc.stdout.startswith("latin.py:1:1: FSL900 ")
    assert "cannot be decoded" in proc.stdout


def test_unknown_encoding_cookie_is_reported(project):
    write_files(project, {"weird.py": b"# -*- coding: no-such-codec -*-\nx = 1\nimport sqlalchemy\n"})
    proc = run_cli("check", cwd=project)
    assert proc.returncode == 1
    assert_no_traceback(proc)
    assert "weird.py:1:1: FSL900" in proc.stdout


def test_missing_path_exits_2_naming_it(project):
    write_files(project, {"ok.py": GOOD})
    proc = run_cli("check", "ok.py", "nowhere/missing.py", cwd=project)
    assert proc.returncode == 2
    assert_no_traceback(proc)
    assert "missing.py" in proc.stderr
    assert proc.stdout == ""


def test_stdin_dash_cannot_be_mixed_with_paths(project):
    write_files(project, {"ok.py": GOOD})
    proc = run_cli("check", "-", "ok.py", cwd=project, input=GOOD)
    assert proc.returncode == 2
    assert "stdin" in proc.stderr


def test_unreadable_file_is_reported(project):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root can read any file")
    path = write_files(project, {"secret.py": GOOD}) / "secret.py"
    path.chmod(0)
    try:
        proc = run_cli("check", cwd=project)
    finally:
        path.chmod(0o644)
    assert proc.returncode == 1
    assert "secret.py:1:1: FSL900" in proc.stdout and "cannot be read" in proc.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly(project):
    """`fastsqla-lint check | head -0`: the command stops without a word on stderr (click ends it with
    status 1 when a write fails; `cli.console` gives 2 when only its last flush does)."""
    import subprocess

    write_files(project, {f"app/m{i}.py": BAD_SYNTAX_FOUND for i in range(40)})
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    for args in (["check", "."], ["rules"]):
        proc = subprocess.Popen([sys.executable, "-m", "fastsqla_lint", *args], cwd=project, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # before the interpreter has even started: every write fails
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=300) in (1, 2), (args, stderr)
        assert stderr == "", (args, stderr)


def test_unexpected_error_is_reported_without_traceback(project):
    # Fault injection: make file discovery itself fail, as a bug in the linter would.
    write_files(project, {"ok.py": GOOD})
    code = (
        "import fastsqla_lint.discovery as d\n"
        "def boom(*a, **k): raise RuntimeError('simulated bug')\n"
        "d.discover = boom\n"
        "from fastsqla_lint.cli import main\n"
        "main(['check', '.'])\n"
    )
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert "internal error" in proc.stderr and "simulated bug" in proc.stderr
    assert_no_traceback(proc)


# -- selection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--select", "--extend-select", "--ignore"])
def test_unknown_selector_exits_2_naming_it(project, option):
    write_files(project, {"ok.py": GOOD})
    proc = run_cli("check", option, "FSL900,NOPE12", cwd=project)
    assert proc.returncode == 2
    assert "NOPE12" in proc.stderr and option in proc.stderr
    assert_no_traceback(proc)


def test_unparsable_files_are_reported_whatever_the_selection(project):
    write_files(project, {"broken.py": BAD_SYNTAX_FOUND})
    for args in (("--ignore", "FSL9"), ("--select", "FSL9"), ("--select", "FSL900")):
        proc = run_cli("check", *args, cwd=project)
        assert proc.returncode == 1 and "FSL900" in proc.stdout, args


# -- exit codes and summaries ---------------------------------------------------------------------


def test_exit_zero(project):
    write_files(project, {"broken.py": BAD_SYNTAX_FOUND})
    proc = run_cli("check", "--exit-zero", cwd=project)
    assert proc.returncode == 0
    assert "FSL900" in proc.stdout and "Found 1 error." in proc.stdout


def test_statistics(project):
    write_files(project, {"a.py": BAD_SYNTAX_FOUND, "b.py": BAD_SYNTAX_FOUND, "c.py": GOOD})
    proc = run_cli("check", "--statistics", cwd=project)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "2\tFSL900\t[ ] unparsable-file"
    assert "Found 2 errors." in lines


def test_statistics_as_json(project):
    write_files(project, {"a.py": BAD_SYNTAX_FOUND})
    proc = run_cli("check", "--statistics", "--output-format", "json", cwd=project)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == [{"code": "FSL900", "name": "unparsable-file", "count": 1, "fixable": False}]


def test_no_cache_is_accepted(project):
    write_files(project, {"ok.py": GOOD})
    proc = run_cli("check", "--no-cache", cwd=project)
    assert proc.returncode == 0


def test_no_python_files(project):
    proc = run_cli("check", cwd=project)
    assert proc.returncode == 0
    assert "No Python files found" in proc.stderr


# -- stdin ------------------------------------------------------------------------------------------------


def test_stdin_reports_under_the_given_name(project):
    proc = run_cli("check", "--stdin-filename", "pkg/app.py", "-", cwd=project, input=BAD_SYNTAX)
    assert proc.returncode == 1
    assert proc.stdout.startswith("pkg/app.py:2:1: FSL900 ")


def test_stdin_clean(project):
    proc = run_cli("check", "--stdin-filename", "app.py", "-", cwd=project, input=GOOD)
    assert proc.returncode == 0
    assert proc.stdout == "All checks passed!\n"


def test_stdin_without_a_name(project):
    proc = run_cli("check", "-", cwd=project, input=BAD_SYNTAX)
    assert proc.returncode == 1
    assert proc.stdout.startswith("-:2:1: FSL900 ")


def test_stdin_fix_echoes_unfixable_source(project):
    data = b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\r\nx = (\n"
    proc = run_cli("check", "--fix", "--stdin-filename", "app.py", "-", cwd=project, input=data)
    assert proc.returncode == 1
    assert proc.stdout == data  # the source comes back byte for byte on stdout
    assert b"app.py:3:" in proc.stderr and b"FSL900" in proc.stderr


def test_stdin_filename_without_dash_is_ignored_with_a_warning(project):
    write_files(project, {"ok.py": GOOD})
    proc = run_cli("check", "--stdin-filename", "x.py", "ok.py", cwd=project, input=BAD_SYNTAX)
    assert proc.returncode == 0
    assert "--stdin-filename is ignored" in proc.stderr


def test_stdin_force_exclude(project):
    write_files(project, {".gitignore": "generated/\n"})
    args = ("check", "--force-exclude", "--stdin-filename", "generated/app.py", "-")
    proc = run_cli(*args, cwd=project, input=BAD_SYNTAX)
    assert proc.returncode == 0 and proc.stdout == ""
    proc = run_cli("check", "--stdin-filename", "generated/app.py", "-", cwd=project, input=BAD_SYNTAX)
    assert proc.returncode == 1  # without --force-exclude, stdin is checked


# -- output formats and colour ----------------------------------------------------------------------------


def test_concise_is_the_default_when_not_a_terminal(project):
    write_files(project, {"broken.py": BAD_SYNTAX_FOUND})
    proc = run_cli("check", cwd=project)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("broken.py:3:1: FSL900 ")
    assert "|" not in proc.stdout  # no source excerpt
    assert "\x1b[" not in proc.stdout


def test_full_format_shows_the_source(project):
    write_files(project, {"broken.py": "x = 1\ny = (\nimport sqlalchemy\n"})
    proc = run_cli("check", "--output-format", "full", cwd=project)
    assert proc.returncode == 1
    assert "| y = (" in proc.stdout or "| x = 1" in proc.stdout


def _run_on_tty(args, cwd, env=None):
    """Run the command with stdout on a pseudo-terminal; returns (exit code, output)."""
    pty = pytest.importorskip("pty")
    import subprocess

    master, slave = pty.openpty()
    full_env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    full_env.pop("NO_COLOR", None)
    full_env.pop("FORCE_COLOR", None)
    full_env.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastsqla_lint", *args], cwd=cwd, stdout=slave, stderr=subprocess.PIPE, env=full_env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = proc.wait(timeout=300)
    proc.stderr.close()
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_terminal_gets_full_format_and_colour(project):
    write_files(project, {"broken.py": "x = 1\ny = (\nimport sqlalchemy\n"})
    code, out = _run_on_tty(["check"], project)
    assert code == 1
    assert "|" in out  # the full format's excerpt
    assert "\x1b[" in out  # colour


def test_no_color_on_a_terminal(project):
    write_files(project, {"broken.py": "x = 1\ny = (\nimport sqlalchemy\n"})
    code, out = _run_on_tty(["check"], project, env={"NO_COLOR": "1"})
    assert code == 1
    assert "|" in out and "\x1b[" not in out


# -- rule, rules, debug-config, lsp ------------------------------------------------------------------------


def test_rule_prints_documentation():
    proc = run_cli("rule", "FSL900")
    assert proc.returncode == 0
    assert proc.stdout.startswith("# unparsable-file (FSL900)")
    assert "## What it does" in proc.stdout


def test_rule_as_json():
    proc = run_cli("rule", "FSL005", "--output-format", "json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert (data["code"], data["name"], data["fix"], data["default"]) == ("FSL005", "sqlite-same-thread", "sometimes", True)
    assert data["documentation"].startswith("## What it does")


def test_rule_code_is_case_insensitive():
    assert run_cli("rule", "fsl900").returncode == 0


def test_unknown_rule_exits_2():
    proc = run_cli("rule", "FSL999")
    assert proc.returncode == 2
    assert "FSL999" in proc.stderr
    assert_no_traceback(proc)


def test_rules_lists_every_rule():
    from fastsqla_lint.registry import all_rules

    proc = run_cli("rules")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["code", "name", "fix", "default"]
    assert [line.split()[0] for line in lines[1:]] == [r.code for r in all_rules()]
    for line, rule in zip(lines[1:], all_rules()):
        code, name, fix, default = line.split()
        assert (name, fix, default) == (rule.name, rule.fix_availability.value, "on" if rule.default_enabled else "off")


def test_rules_as_json():
    from fastsqla_lint.registry import all_rules

    proc = run_cli("rules", "--output-format", "json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert [r["code"] for r in data] == [r.code for r in all_rules()]
    assert set(data[0]) == {"code", "name", "summary", "fix", "default", "url"}


def test_lsp_command_is_registered():
    proc = run_cli("lsp", "--help")
    assert proc.returncode == 0
    assert "language server" in proc.stdout


def test_debug_config(project):
    proc = run_cli("debug-config", ".", cwd=project)
    assert proc.returncode == 0
    assert "exclude" in proc.stdout


def test_debug_config_missing_path(project):
    proc = run_cli("debug-config", "nowhere", cwd=project)
    assert proc.returncode == 2
    assert "nowhere" in proc.stderr


# -- lazy imports --------------------------------------------------------------------------------------------


def _modules_after(args: list[str], cwd: Path) -> set[str]:
    import subprocess

    code = (
        "import sys\n"
        "from fastsqla_lint.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('\\n'.join(sorted(sys.modules)))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env)
    return set(proc.stderr.split())


def test_version_imports_nothing_heavy(tmp_path):
    modules = _modules_after(["--version"], tmp_path)
    assert "click" in modules
    assert not {m for m in modules if m.split(".")[0] in ("libcst", "pathspec", "pygls", "lsprotocol")}
    assert "fastsqla_lint.engine" not in modules


def test_check_one_file_imports_no_server_and_no_unused_format(project):
    write_files(project, {"ok.py": GOOD})
    modules = _modules_after(["check", "ok.py", "--output-format", "concise"], project)
    assert "fastsqla_lint.engine" in modules  # it did lint
    assert not {m for m in modules if m.split(".")[0] in ("pygls", "lsprotocol")}
    assert "fastsqla_lint.lsp" not in modules
    assert "fastsqla_lint.writer" not in modules  # nothing to write without --fix
