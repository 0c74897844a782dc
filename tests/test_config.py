"""Finding, reading and validating `[tool.fastsqla-lint]`; versions in the resulting Config; debug-config."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from fastsqla_lint import registry
from fastsqla_lint.config import (
    DEFAULT_EXCLUDE,
    Config,
    ConfigError,
    ConfigResolver,
    find_config_file,
    format_config,
    load_config,
    parse_table,
)
from fastsqla_lint.rule import Rule

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


class OptionsRule(Rule):
    code = "FSL998"
    name = "options-rule"
    message = "a rule with options"
    options = {"allowed-urls": [], "strict": False, "limit": 3}


@pytest.fixture
def with_options_rule(monkeypatch):
    rules = (*registry.all_rules(), OptionsRule)
    monkeypatch.setattr(registry, "all_rules", lambda: rules)


# -- finding the file -------------------------------------------------------------------------------------


def test_nearest_pyproject_with_the_table_wins(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\nignore = ['FSL900']\n")
    write(tmp_path, "pkg/pyproject.toml", "[project]\nname = 'pkg'\n")  # no table: the search goes on
    write(tmp_path, "pkg/mod.py", "")
    assert find_config_file(tmp_path / "pkg" / "mod.py") == tmp_path / "pyproject.toml"
    config = load_config(tmp_path / "pkg" / "mod.py")
    assert config.path == tmp_path / "pyproject.toml"
    assert config.root == tmp_path
    assert config.ignore == ("FSL900",)


def test_an_empty_table_stops_the_search(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\nignore = ['FSL900']\n")
    write(tmp_path, "nested/pyproject.toml", "[tool.fastsqla-lint]\n")
    config = load_config(tmp_path / "nested")
    assert config.path == tmp_path / "nested" / "pyproject.toml"
    assert config.ignore == ()


def test_standalone_file_is_found_and_wins_in_its_folder(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\nignore = ['FSL900']\n")
    write(tmp_path, "fastsqla-lint.toml", "extend-select = ['FSL9']\n")
    config = load_config(tmp_path)
    assert config.path == tmp_path / "fastsqla-lint.toml"
    assert (config.extend_select, config.ignore) == (("FSL9",), ())


def test_no_config_uses_defaults_rooted_at_the_project(tmp_path):
    (tmp_path / ".git").mkdir()
    write(tmp_path, "app/main.py", "")
    config = load_config(tmp_path / "app" / "main.py")
    assert config.path is None
    assert config.root == tmp_path
    assert config.exclude == DEFAULT_EXCLUDE
    assert config.select is None


def test_explicit_pyproject_and_standalone(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\nignore = ['FSL900']\n")
    other = write(tmp_path, "conf/pyproject.toml", "[tool.fastsqla-lint]\nfix = true\n")
    standalone = write(tmp_path, "conf/lint.toml", "unsafe-fixes = true\n")
    c1 = load_config(tmp_path, explicit=other)
    assert (c1.fix, c1.ignore, c1.root) == (True, (), tmp_path / "conf")
    c2 = load_config(tmp_path, explicit=standalone)
    assert (c2.unsafe_fixes, c2.path) == (True, standalone)


def test_explicit_pyproject_without_the_table_means_defaults(tmp_path):
    path = write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n")
    config = load_config(tmp_path, explicit=path)
    assert config.path == path
    assert config.select is None


def test_explicit_file_missing(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: configuration file not found"):
        load_config(tmp_path, explicit=tmp_path / "nope.toml")


# -- reading every key ----------------------------------------------------------------------------------


def test_every_key(tmp_path, with_options_rule):
    write(
        tmp_path,
        "pyproject.toml",
        """
        [tool.fastsqla-lint]
        select = ["fsl9"]
        extend-select = ["FSL998"]
        ignore = ["FSL900"]
        per-file-ignores = {"tests/*.py" = ["FSL9"], "migrations/**" = ["ALL"]}
        exclude = ["generated"]
        extend-exclude = ["legacy/*.py"]
        fix = true
        unsafe-fixes = true
        output-format = "json"
        src = ["src", "/abs/lib"]
        target-versions = {sqlalchemy = "2.0", FastAPI = ">=0.100,<0.200"}

        [tool.fastsqla-lint.rules.FSL998]
        allowed-urls = ["sqlite://"]
        strict = true
        limit = 5
        """,
    )
    c = load_config(tmp_path)
    assert c.select == ("FSL9",)
    assert c.extend_select == ("FSL998",)
    assert c.ignore == ("FSL900",)
    assert c.per_file_ignores == (("tests/*.py", ("FSL9",)), ("migrations/**", ("ALL",)))
    assert c.exclude == ("generated",)  # replaces the defaults
    assert c.extend_exclude == ("legacy/*.py",)
    assert (c.fix, c.unsafe_fixes, c.output_format) == (True, True, "json")
    assert c.src == (str(tmp_path / "src"), str(Path("/abs/lib")))
    assert c.target_versions == (("sqlalchemy", "2.0"), ("fastapi", ">=0.100,<0.200"))
    assert c.options_for("FSL998") == {"allowed-urls": ["sqlite://"], "strict": True, "limit": 5}
    assert c.options_for("FSL900") == {}
    assert c.versions.within("sqlalchemy", "2.0", "2.1") is True
    assert c.versions.at_least("fastapi", "0.100") is True
    assert c.versions.get("sqlalchemy").source == "target-versions.sqlalchemy"


def test_explicit_target_versions_win_per_package(tmp_path):
    write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        dependencies = ["sqlalchemy<2", "fastapi>=0.110"]
        [tool.fastsqla-lint]
        target-versions = {sqlalchemy = "2.0.30"}
        """,
    )
    c = load_config(tmp_path)
    assert str(c.versions.get("sqlalchemy")) == "==2.0.30"
    assert c.versions.at_least("fastapi", "0.110") is True  # still inferred


def test_versions_come_from_the_declarations_nearest_the_path(tmp_path):
    # a nested example project without its own settings: settings from above, versions from its own files
    write(tmp_path, "pyproject.toml", '[project]\ndependencies = ["sqlalchemy>=2.0"]\n[tool.fastsqla-lint]\n')
    write(tmp_path, "examples/app/requirements.txt", "sqlalchemy==1.4.52\n")
    write(tmp_path, "examples/app/main.py", "")
    c = load_config(tmp_path / "examples" / "app" / "main.py")
    assert c.path == tmp_path / "pyproject.toml"
    assert c.versions.at_least("sqlalchemy", "2.0") is False
    assert load_config(tmp_path).versions.at_least("sqlalchemy", "2.0") is True


def test_unknown_versions_stay_unknown(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\n")
    assert load_config(tmp_path).versions.at_least("sqlalchemy", "2.0") is None


# -- errors -------------------------------------------------------------------------------------------------


def error_for(tmp_path: Path, body: str) -> str:
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\n" + textwrap.dedent(body))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert "pyproject.toml" in message
    return message


def test_invalid_toml(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint\nselect = [\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: invalid TOML: .*line 1"):
        load_config(tmp_path)


def test_unknown_key_names_the_file_the_key_and_the_valid_keys(tmp_path):
    message = error_for(tmp_path, "extend_select = ['FSL9']\n")
    assert "[tool.fastsqla-lint]" in message
    assert "unknown key 'extend_select'" in message
    assert "did you mean 'extend-select'?" in message
    assert "valid keys: select, extend-select, ignore, per-file-ignores, exclude, extend-exclude, fix," in message


def test_unknown_key_in_standalone_file(tmp_path):
    write(tmp_path, "fastsqla-lint.toml", "root = true\n")
    with pytest.raises(ConfigError, match=r"fastsqla-lint.toml: unknown key 'root'; valid keys: select"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("select = 'FSL005'\n", "`select` must be an array of strings, not a string"),
        ("ignore = [1]\n", "`ignore` must be an array of strings, not an array"),
        ("fix = 'yes'\n", "`fix` must be true or false, not a string ('yes')"),
        ("unsafe-fixes = 1\n", "`unsafe-fixes` must be true or false, not an integer"),
        ("output-format = 'xml'\n", "`output-format` must be one of full, concise, json, sarif, github, not 'xml'"),
        ("exclude = 'build'\n", "`exclude` must be an array of strings"),
        ("src = [['src']]\n", "`src` must be an array of strings"),
        ("per-file-ignores = ['x']\n", "`per-file-ignores` must be a table of glob = [codes]"),
        ("per-file-ignores = {'x.py' = 'FSL900'}\n", "`per-file-ignores.'x.py'` must be an array of strings"),
        ("target-versions = '2.0'\n", "`target-versions` must be a table"),
        ("target-versions = {flask = '2.0'}\n", "unknown package 'flask'; valid packages: sqlalchemy, fastapi"),
        ("target-versions = {sqlalchemy = 2.0}\n", "`target-versions.sqlalchemy` must be a version string"),
        ("target-versions = {sqlalchemy = 'latest'}\n", "`target-versions.sqlalchemy` must be a version string"),
        ("rules = ['FSL900']\n", "`rules` must be a table of rule tables"),
    ],
)
def test_wrong_types(tmp_path, body, fragment):
    assert fragment in error_for(tmp_path, body)


@pytest.mark.parametrize(
    "body, key, selector",
    [
        ("select = ['FSL999']\n", "select", "FSL999"),
        ("extend-select = ['XYZ']\n", "extend-select", "XYZ"),
        ("ignore = ['']\n", "ignore", ""),
        ("per-file-ignores = {'t.py' = ['FSL12']}\n", "per-file-ignores.'t.py'", "FSL12"),
    ],
)
def test_unknown_rule_selectors(tmp_path, body, key, selector):
    message = error_for(tmp_path, body)
    assert f"`{key}`: unknown rule selector {selector!r}" in message
    codes = ", ".join(r.code for r in registry.all_rules())
    assert f"valid codes: ALL, {codes} or a prefix of them" in message


def test_unknown_rule_code_in_rules_table(tmp_path):
    message = error_for(tmp_path, "[tool.fastsqla-lint.rules.FSL999]\nx = 1\n")
    assert "`rules.FSL999`: unknown rule code" in message


def test_rule_without_options(tmp_path):
    message = error_for(tmp_path, "[tool.fastsqla-lint.rules.FSL900]\nx = 1\n")
    assert "unknown option 'x'; valid options: none" in message


def test_unknown_and_mistyped_rule_options(tmp_path, with_options_rule):
    message = error_for(tmp_path, "[tool.fastsqla-lint.rules.FSL998]\nstrikt = true\n")
    assert "unknown option 'strikt' (did you mean 'strict'?); valid options: allowed-urls, limit, strict" in message
    message = error_for(tmp_path, "[tool.fastsqla-lint.rules.FSL998]\nstrict = 1\n")
    assert "`rules.FSL998.strict` must be a boolean, not an integer (1)" in message
    message = error_for(tmp_path, "[tool.fastsqla-lint.rules.FSL998]\nlimit = true\n")
    assert "`rules.FSL998.limit` must be an integer, not a boolean" in message
    message = error_for(tmp_path, "[tool.fastsqla-lint.rules.FSL998]\nallowed-urls = 'x'\n")
    assert "must be an array, not a string" in message


def test_table_that_is_not_a_table(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool]\nfastsqla-lint = 1\n")
    with pytest.raises(ConfigError, match=r"\[tool.fastsqla-lint\] must be a table, not an integer"):
        load_config(tmp_path)


def test_invalid_pyproject_on_the_way_up_is_an_error(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\n")
    write(tmp_path, "sub/pyproject.toml", "not toml\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(tmp_path / "sub")


# -- resolver and debug-config -------------------------------------------------------------------------------


def test_resolver_reads_each_folder_once(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.fastsqla-lint]\nfix = true\n")
    a = write(tmp_path, "pkg/a.py", "")
    b = write(tmp_path, "pkg/b.py", "")
    resolver = ConfigResolver()
    assert resolver.for_path(a) is resolver.for_path(b)
    assert resolver.for_path(a).fix is True
    assert resolver.for_path(tmp_path).path == tmp_path / "pyproject.toml"


def test_format_config_is_toml_that_reads_back_to_the_same_settings(tmp_path, with_options_rule):
    write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        dependencies = ["fastapi>=0.110"]
        [tool.fastsqla-lint]
        select = ["FSL9"]
        ignore = ["FSL900"]
        per-file-ignores = {"tests/*.py" = ["FSL998"]}
        extend-exclude = ["legacy"]
        output-format = "concise"
        src = ["src"]
        target-versions = {sqlalchemy = "2.0"}
        [tool.fastsqla-lint.rules.FSL998]
        strict = true
        """,
    )
    config = load_config(tmp_path)
    text = format_config(config)
    table = tomllib.loads(text)["tool"]["fastsqla-lint"]
    again = parse_table(table, "debug-config", tmp_path)
    for name in ("select", "extend_select", "ignore", "per_file_ignores", "exclude", "extend_exclude", "fix",
                 "unsafe_fixes", "output_format", "src", "target_versions", "rule_options"):
        assert getattr(again, name) == getattr(config, name), name
    assert f"# settings: {tmp_path / 'pyproject.toml'}" in text
    assert "# selected rules: FSL998" in text
    assert "#   sqlalchemy >=2.0,<2.1 (from target-versions.sqlalchemy)" in text
    assert "#   fastapi >=0.110 (from pyproject.toml [project] dependencies)" in text
    assert "#   pydantic unknown" in text


def test_format_config_of_defaults():
    text = format_config(Config())
    assert "# settings: defaults (no configuration file found)" in text
    assert "# select: the rules that are on by default" in text
    assert tomllib.loads(text)["tool"]["fastsqla-lint"]["fix"] is False


def test_resolver_infers_each_project_once(tmp_path, monkeypatch):
    from fastsqla_lint import config as config_module

    write(tmp_path, "pyproject.toml", '[project]\ndependencies = ["sqlalchemy<2"]\n[tool.fastsqla-lint]\n')
    write(tmp_path, "a/x.py", "")
    write(tmp_path, "b/y.py", "")
    calls = []
    real = config_module.infer_versions
    monkeypatch.setattr(config_module, "infer_versions", lambda root: calls.append(root) or real(root))
    resolver = ConfigResolver()
    ca, cb = resolver.for_path(tmp_path / "a" / "x.py"), resolver.for_path(tmp_path / "b" / "y.py")
    assert ca is not cb
    assert ca.versions.at_least("sqlalchemy", "2.0") is cb.versions.at_least("sqlalchemy", "2.0") is False
    assert calls == [tmp_path]
    assert {ca: "cached"}[ca] == "cached"  # a Config can key a cache (hashing raises if it cannot)
