"""Version ranges, specifiers, and inference from a project's own declarations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fastsqla_lint.versions import (
    VersionRange,
    Versions,
    declarations_root,
    exact,
    from_specifier,
    infer_versions,
    parse_version,
)


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


# -- parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("2.0.30", (2, 0, 30)), ("v1.4", (1, 4)), ("2.0.0rc1", (2, 0, 0)), ("0.115.2", (0, 115, 2)), ("dev", None)],
)
def test_parse_version(text, expected):
    assert parse_version(text) == expected


def test_exact_release_is_one_version():
    r = exact("2.0.30")
    assert (r.low, r.high) == ((2, 0, 30), (2, 0, 31))
    assert r.is_exact
    assert r.at_least("2.0.30") is True
    assert r.at_least("2.0.31") is False
    assert r.below("2.1") is True
    assert str(r) == "==2.0.30"


def test_exact_series_from_target_versions():
    r = exact("2.0")
    assert (r.low, r.high) == ((2, 0), (2, 1))
    assert not r.is_exact
    assert r.at_least("2.0") is True
    assert r.at_least("2.0.5") is None  # somewhere in 2.0.x
    assert r.at_least("2.1") is False
    assert r.below("1.4") is False
    assert exact("2").high == (3,)
    assert not exact("not a version").known


@pytest.mark.parametrize(
    "spec, low, high",
    [
        (">=1.4,<2.0", (1, 4), (2, 0)),
        (" >= 1.4 , < 2 ", (1, 4), (2,)),
        ("<2", None, (2,)),
        (">2.0", (2, 0), None),
        ("==2.0.30", (2, 0, 30), (2, 0, 31)),
        ("==2.0", (2, 0, 0), (2, 0, 1)),
        ("===2.0.30", (2, 0, 30), (2, 0, 31)),
        ("==2.0.*", (2, 0), (2, 1)),
        ("==2.*", (2,), (3,)),
        ("~=2.0", (2, 0), (3,)),
        ("~=2.0.1", (2, 0, 1), (2, 1)),
        ("~=1.4.2", (1, 4, 2), (1, 5)),
        ("~1", (1,), (2,)),
        ("~1.4", (1, 4), (1, 5)),
        ("~1.4.2", (1, 4, 2), (1, 5)),
        ("^2.0", (2, 0), (3,)),
        ("^0.115", (0, 115), (0, 116)),
        ("^0.0.3", (0, 0, 3), (0, 0, 4)),
        ("^0", (0,), (1,)),
        ("^1.4 || ^2.0", (1, 4), (3,)),
        (">=1.4,!=1.4.5", (1, 4), None),
        ("!=2.0.*", None, None),
        ("2.0.1", (2, 0, 1), (2, 0, 2)),  # Poetry's bare version means ==
        ("*", None, None),
        ("", None, None),
        (">=1.3,>=1.4,<3,<2.1", (1, 4), (2, 1)),  # the tightest of repeated bounds
        (">=2.0; python_version >= '3.8'", (2, 0), None),
    ],
)
def test_from_specifier(spec, low, high):
    r = from_specifier(spec)
    assert (r.low, r.high) == (low, high)


def test_at_most_includes_its_version():
    r = from_specifier("<=1.4.41")
    assert r.low is None
    assert r.at_least("1.4.41") is None
    assert r.at_least("1.4.42") is False
    assert r.below("1.5") is True


@pytest.mark.parametrize(
    "spec, question, answer",
    [
        ("<2", "2.0", False),
        ("<2", "1.4", None),
        (">=1.4,<2.0", "1.4", True),
        (">=1.4,<2.0", "2.0", False),
        ("==2.0.*", "2.0", True),
        ("==2.0.*", "2.1", False),
        ("^0.115", "0.100", True),
        ("^0.115", "0.116", False),
        ("~=2.0", "3.0", False),
        (">=2.0.0", "2.0", True),
        (">=2.0", "2.0.0", True),
    ],
)
def test_at_least(spec, question, answer):
    assert from_specifier(spec).at_least(question) is answer


def test_within_and_below():
    r = from_specifier(">=1.4,<2.0")
    assert r.within("1.4", "2.0") is True
    assert r.within("2.0", "3.0") is False
    assert r.within("1.3", "1.5") is None
    assert r.below("2.0") is True
    assert VersionRange().below("2.0") is None


def test_union_intersect_and_str():
    a, b = from_specifier(">=1.4,<2.0", "a"), from_specifier(">=2.0,<2.1", "b")
    u = a.union(b)
    assert (u.low, u.high, u.source) == ((1, 4), (2, 1), "a; b")
    i = a.intersect(b)
    assert i.empty
    assert from_specifier(">=1.4").union(from_specifier("<3")).known is False  # each side unbounded somewhere
    assert str(from_specifier(">=1.4,<2.0")) == ">=1.4,<2.0"
    assert str(from_specifier("<2")) == "<2"
    assert str(VersionRange()) == "unknown"


def test_versions_lookup_normalises_names():
    v = Versions({"sqlalchemy": exact("2.0")})
    assert v.at_least("SQLAlchemy", "2.0") is True
    assert v.within("sqlalchemy", "2.0", "2.1") is True
    assert v.at_least("fastapi", "0.100") is None
    assert v.with_ranges({"FastAPI": exact("0.115")}).at_least("fastapi", "0.100") is True


# -- inference ---------------------------------------------------------------------------------------


def test_nothing_declared_is_unknown(tmp_path):
    versions = infer_versions(tmp_path)
    assert versions.ranges == {}
    assert versions.at_least("sqlalchemy", "2.0") is None


def test_pyproject_dependencies_extras_and_markers(tmp_path):
    write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        name = "app"
        dependencies = [
            "SQLAlchemy[asyncio] >=2.0,<2.1 ; python_version >= '3.8'",
            "requests>=2",
            "fastapi",
        ]
        [project.optional-dependencies]
        models = ["sqlmodel (>=0.0.14)"]
        [dependency-groups]
        dev = ["pydantic>=2.5", {include-group = "other"}]
        """,
    )
    v = infer_versions(tmp_path)
    assert (v.get("sqlalchemy").low, v.get("sqlalchemy").high) == ((2, 0), (2, 1))
    assert "pyproject.toml [project] dependencies" in v.get("sqlalchemy").source
    assert v.get("sqlmodel").low == (0, 0, 14)
    assert v.get("pydantic").low == (2, 5)
    assert not v.get("fastapi").known  # declared without a version: unknown
    assert "requests" not in v.ranges


def test_several_declarations_combine_as_a_union(tmp_path):
    write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        dependencies = ["sqlalchemy>=1.4"]
        [project.optional-dependencies]
        new = ["sqlalchemy>=2.0"]
        """,
    )
    # the project claims to work with 1.4 too, so 2.0 is not known
    assert infer_versions(tmp_path).at_least("sqlalchemy", "2.0") is None


def test_poetry_dependencies(tmp_path):
    write(
        tmp_path,
        "pyproject.toml",
        """
        [tool.poetry.dependencies]
        python = "^3.10"
        SQLAlchemy = "^1.4"
        fastapi = {version = "^0.110", extras = ["all"]}
        pydantic = [
            {version = "^1.10", python = "<3.8"},
            {version = "^2.0", python = ">=3.8"},
        ]
        starlette = {git = "https://example.invalid/starlette.git"}
        [tool.poetry.group.dev.dependencies]
        sqlmodel = "0.0.8"
        """,
    )
    v = infer_versions(tmp_path)
    assert (v.get("sqlalchemy").low, v.get("sqlalchemy").high) == ((1, 4), (2,))
    assert (v.get("fastapi").low, v.get("fastapi").high) == ((0, 110), (0, 111))
    assert (v.get("pydantic").low, v.get("pydantic").high) == ((1, 10), (3,))
    assert not v.get("starlette").known
    assert v.get("sqlmodel").is_exact


def test_requirements_files_with_includes_comments_and_options(tmp_path):
    write(
        tmp_path,
        "requirements.txt",
        """
        # the app
        -r requirements/base.txt
        --index-url https://example.invalid/simple
        -e ./vendored
        fastapi>=0.100,<0.200  # web
        pydantic[email] >= 2.0 ; python_version >= "3.8"
        starlette==0.37.2 \\
            --hash=sha256:0000
        sqlmodel @ https://example.invalid/sqlmodel.whl
        """,
    )
    write(
        tmp_path,
        "requirements/base.txt",
        """
        -r ../requirements.txt
        SQLAlchemy~=1.4.40
        """,
    )
    v = infer_versions(tmp_path)
    assert (v.get("fastapi").low, v.get("fastapi").high) == ((0, 100), (0, 200))
    assert v.get("pydantic").low == (2, 0)
    assert str(v.get("starlette")) == "==0.37.2"
    assert (v.get("sqlalchemy").low, v.get("sqlalchemy").high) == ((1, 4, 40), (1, 5))
    assert v.get("sqlalchemy").source == "requirements/base.txt"
    assert not v.get("sqlmodel").known  # a URL says nothing about the version


def test_requirements_dev_file_is_read(tmp_path):
    write(tmp_path, "requirements-dev.txt", "sqlalchemy<2\n")
    assert infer_versions(tmp_path).at_least("sqlalchemy", "2.0") is False


def test_exact_pin_wins_over_ranges(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\ndependencies = ["sqlalchemy>=1.4"]\n')
    write(tmp_path, "requirements.txt", "sqlalchemy==2.0.30\n")
    v = infer_versions(tmp_path)
    assert str(v.get("sqlalchemy")) == "==2.0.30"
    assert v.at_least("sqlalchemy", "2.0") is True


def test_uv_lock_wins(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\ndependencies = ["sqlalchemy>=1.4", "fastapi>=0.100"]\n')
    write(tmp_path, "requirements.txt", "sqlalchemy==2.0.1\n")
    write(
        tmp_path,
        "uv.lock",
        """
        version = 1
        [[package]]
        name = "sqlalchemy"
        version = "2.0.36"
        [[package]]
        name = "fastapi"
        version = "0.115.6"
        [[package]]
        name = "anyio"
        version = "4.6.0"
        """,
    )
    v = infer_versions(tmp_path)
    assert str(v.get("sqlalchemy")) == "==2.0.36"
    assert v.get("sqlalchemy").source == "uv.lock"
    assert str(v.get("fastapi")) == "==0.115.6"


def test_poetry_lock(tmp_path):
    write(
        tmp_path,
        "poetry.lock",
        """
        [[package]]
        name = "SQLAlchemy"
        version = "1.4.52"
        description = ""
        """,
    )
    assert infer_versions(tmp_path).at_least("sqlalchemy", "2.0") is False


def test_setup_cfg(tmp_path):
    write(
        tmp_path,
        "setup.cfg",
        """
        [options]
        install_requires =
            sqlalchemy>=2.0
            fastapi
        """,
    )
    assert infer_versions(tmp_path).at_least("sqlalchemy", "2.0") is True


@pytest.mark.parametrize(
    "sqlmodel, sqlalchemy, answer",
    [
        ("sqlmodel>=0.0.14", None, True),
        ("sqlmodel==0.0.12", None, True),
        ("sqlmodel==0.0.8", None, False),
        ("sqlmodel<0.0.12", None, False),
        ("sqlmodel>=0.0.8", None, None),  # could be either side of 0.0.12
        ("sqlmodel>=0.0.16", "sqlalchemy>=1.4", True),  # the declared range narrowed by SQLModel's pin
        ("sqlmodel>=0.0.16", "sqlalchemy<1.4", False),  # contradiction: keep what the project says
    ],
)
def test_sqlmodel_implies_sqlalchemy(tmp_path, sqlmodel, sqlalchemy, answer):
    lines = [sqlmodel] + ([sqlalchemy] if sqlalchemy else [])
    write(tmp_path, "requirements.txt", "\n".join(lines) + "\n")
    v = infer_versions(tmp_path)
    assert v.at_least("sqlalchemy", "2.0") is answer
    if answer is not None and sqlalchemy is None:
        assert "sqlmodel" in v.get("sqlalchemy").source


def test_broken_declaration_files_are_skipped(tmp_path):
    write(tmp_path, "pyproject.toml", "[project\n")
    write(tmp_path, "uv.lock", "not toml = [\n")
    write(tmp_path, "requirements.txt", "sqlalchemy>=2.0\n")
    assert infer_versions(tmp_path).at_least("sqlalchemy", "2.0") is True


def test_declarations_root_is_the_nearest_declaring_folder(tmp_path):
    write(tmp_path, "pyproject.toml", "[project]\nname = 'outer'\n")
    app = tmp_path / "examples" / "app"
    write(app, "requirements.txt", "sqlalchemy<2\n")
    write(app, "pkg/main.py", "")
    assert declarations_root(app / "pkg" / "main.py") == app
    assert declarations_root(tmp_path / "examples") == tmp_path
