"""The shared response-type and schema helpers (`fastsqla_lint.rules._schemas`), below the rule fixtures."""

from __future__ import annotations

import libcst as cst
import pytest

from fastsqla_lint.names import NameResolver
from fastsqla_lint.rules import _schemas as schemas

IMPORTS = """\
from typing import Annotated, Any, Optional, Union
from fastapi.responses import JSONResponse
from app.models import User
import app.models as models
"""


@pytest.fixture
def qualify():
    names = NameResolver("app.routes")
    names.collect_module_level(cst.parse_module(IMPORTS))
    return names.qualified_name


def code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


@pytest.mark.parametrize(
    ("annotation", "refs", "replaced"),
    [
        ("User", ["app.models.User"], "UserRead"),
        ("Optional[list[User]]", ["app.models.User"], "Optional[list[UserRead]]"),
        ("User | None", ["app.models.User"], "UserRead | None"),
        ("Union[User, int]", ["app.models.User", "builtins.int"], "Union[UserRead, int]"),
        ("dict[str, models.User]", ["app.models.User"], "dict[str, UserRead]"),
        ("tuple[User, ...]", ["app.models.User"], "tuple[UserRead, ...]"),
        ("Annotated[User, 'meta']", ["app.models.User"], "Annotated[UserRead, 'meta']"),
        ('"list[User]"', ["app.models.User"], "list[UserRead]"),
        ('list["User"]', ["app.models.User"], "list[UserRead]"),
        ("Page[User]", [], "Page[User]"),
    ],
)
def test_type_refs_and_replace(qualify, annotation, refs, replaced) -> None:
    expr = cst.parse_expression(annotation)
    found = list(schemas.type_refs(expr, qualify))
    assert [r.qualname for r in found] == refs
    new = {r: cst.Name("UserRead") for r in found if r.qualname == "app.models.User"}
    assert code(schemas.replace_refs(expr, new)) == replaced


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [("None", True), ("Any", True), ("JSONResponse", True), ('"Any"', True), ("User", False), ("dict", False)],
)
def test_no_model_annotations(qualify, annotation, expected) -> None:
    assert schemas.is_no_model_annotation(cst.parse_expression(annotation), qualify) is expected


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ('router.get("/x")', 'router.get("/x", response_model=UserRead)'),
        ('router.get("/x", status_code=201)', 'router.get("/x", status_code=201, response_model=UserRead)'),
        ('router.get("/x", response_model=User)', 'router.get("/x", response_model=UserRead)'),
        ('router.get(\n    "/x",\n)', 'router.get(\n    "/x",\n    response_model=UserRead,\n)'),
    ],
)
def test_with_keyword(call, expected) -> None:
    node = cst.parse_expression(call)
    assert code(schemas.with_keyword(node, "response_model", cst.Name("UserRead"))) == expected


def test_generated_schema_leaves_secrets_and_keeps_the_module_style() -> None:
    fields = [
        schemas.SchemaField("id", "int"),
        schemas.SchemaField("bio", "str", nullable=True),
        schemas.SchemaField("hashed_password", "str"),
        schemas.SchemaField("created_at", "datetime", imports=(("datetime", "datetime"),)),
    ]
    modern = schemas.generated_schema("User", fields)
    assert modern.source == (
        "class UserRead(BaseModel):\n"
        "    model_config = ConfigDict(from_attributes=True)\n"
        "\n"
        "    id: int\n"
        "    bio: str | None\n"
        "    # hashed_password is left out: its name looks secret\n"
        "    created_at: datetime\n"
    )
    assert set(modern.imports) == {("pydantic", "BaseModel"), ("pydantic", "ConfigDict"), ("datetime", "datetime")}
    old = schemas.generated_schema("User", fields, optional_style=True, pydantic_v1=True)
    assert "    bio: Optional[str]\n" in old.source
    assert old.source.endswith("    class Config:\n        orm_mode = True\n")
    assert ("typing", "Optional") in old.imports and ("pydantic", "ConfigDict") not in old.imports
    compile(modern.source, "<schema>", "exec")
    compile(old.source, "<schema>", "exec")


@pytest.mark.parametrize("name", ["password", "hashed_password", "api_key", "apikey", "refresh_token", "salt", "SECRET"])
def test_secret_names(name) -> None:
    assert schemas.looks_secret(name)


@pytest.mark.parametrize("name", ["id", "email", "full_name", "created_at", "title"])
def test_plain_names(name) -> None:
    assert not schemas.looks_secret(name)


def test_insertion_after_docstring_and_imports() -> None:
    module = cst.parse_module('"""Doc."""\nimport a\nfrom b import c\nif TYPE_CHECKING:\n    import d\nx = 1\n')
    assert schemas.schema_insertion_index(module) == 4


def test_with_keyword_keeps_one_argument_per_line() -> None:
    node = cst.parse_expression('router.get(\n    "/x",\n    status_code=201,\n)')
    assert code(schemas.with_keyword(node, "response_model", cst.Name("R"))) == (
        'router.get(\n    "/x",\n    status_code=201,\n    response_model=R,\n)'
    )


def test_insertion_leaves_an_import_with_the_statement_it_belongs_to() -> None:
    module = cst.parse_module("import a\nimport b\n\n# tables\nimport app.models  # noqa: F401\ncreate_all()\n")
    assert schemas.schema_insertion_index(module) == 2


def test_insertion_after_imports_written_against_code() -> None:
    module = cst.parse_module("import a\nimport b\nx = 1\n")
    assert schemas.schema_insertion_index(module) == 2
