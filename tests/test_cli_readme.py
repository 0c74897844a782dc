"""README.md stays true: the rule table, the quick start, the documented options and the sample output."""

from __future__ import annotations

import re

from conftest import ROOT, run_cli
from fastsqla_lint import docs

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def test_rule_table_is_up_to_date():
    assert docs.with_table(README) == README, "run `python -m fastsqla_lint.docs --write`"


def test_docs_check_command():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "fastsqla_lint.docs", "--check"], cwd=ROOT, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_quick_start_has_the_two_commands():
    block = re.search(r"```console\n(.*?)```", _section("Quick start"), re.S).group(1)
    assert block.splitlines() == [
        "pip install . && fastsqla-lint check examples/",
        'pip install -e ".[test]" && pytest',
    ]


def test_quick_start_sample_output_is_what_check_prints():
    section = _section("Quick start")
    sample = re.search(r"```console\n\$ fastsqla-lint (check [^\n]*)\n(.*?)```", section, re.S)
    proc = run_cli(*sample.group(1).split()[0:], cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stdout == sample.group(2)


def test_every_check_option_is_documented():
    proc = run_cli("check", "--help")
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", proc.stdout)) - {"--help"}
    table = _section("Usage")
    documented = set(re.findall(r"`(--[a-z][a-z-]+)", table))
    assert options == documented


def test_every_config_key_is_documented():
    from fastsqla_lint.config import KEYS

    table = _section("Configuration")
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", table, re.M))
    assert documented == set(KEYS)


def test_every_output_format_is_documented():
    from fastsqla_lint.output import FORMAT_NAMES

    section = _section("Output formats")
    assert [f for f in FORMAT_NAMES if f"- `{f}`" not in section] == []


def test_integrations_section_exists():
    assert _section("Integrations").strip()
