"""The language server end to end: pytest-lsp drives `python -m fastsqla_lint lsp` as a real subprocess,
once with VS Code's recorded capabilities (UTF-16 positions, versioned `documentChanges`) and once with
Neovim's (which negotiates UTF-8 positions and plain `changes`)."""

from __future__ import annotations

import asyncio
from lsprotocol import types

from conftest import FIXTURES
from fastsqla_lint import fix_source, lint_source
from lsp_support import (  # noqa: F401  (client is a fixture)
    apply_edits,
    change_doc,
    client,
    open_doc,
    published,
    start,
    workspace_edits,
    write,
)

FILE_DB = 'engine = create_engine("sqlite:///./app.db")\n'
MEMORY_DB = 'memory = create_engine("sqlite://")\n'
HEADER = "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\napp = FastAPI()\n"


def units(text: str, encoding: str) -> int:
    """The length of `text` in the code units of the negotiated position encoding."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-16":
        return len(text.encode("utf-16-le")) // 2
    return len(text)


async def code_actions(client, uri: str, diagnostics=(), only=None, range_=None) -> list[types.CodeAction]:
    rng = range_ or (diagnostics[0].range if diagnostics else types.Range(types.Position(0, 0), types.Position(0, 0)))
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=types.CodeActionContext(diagnostics=list(diagnostics), only=only),
        )
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


def check_versioned(client, action: types.CodeAction, uri: str, version: int) -> None:
    """Clients that accept `documentChanges` get the document version with the edit."""
    assert action.edit is not None
    if client.editor == "visual-studio-code":
        [change] = action.edit.document_changes
        assert change.text_document.uri == uri and change.text_document.version == version
    else:
        assert uri in action.edit.changes


async def test_diagnostics_on_open_change_and_close(client, tmp_path):
    write(tmp_path, {"app.py": HEADER + FILE_DB})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")

    opened = await published(client, uri)
    assert opened.version == 1
    [diag] = opened.diagnostics
    assert diag.code == "FSL005"
    assert diag.source == "fastsqla-lint"
    assert diag.severity == types.DiagnosticSeverity.Warning  # SQLAlchemy version unknown
    assert diag.code_description.href.endswith("FSL005.md")
    assert diag.range.start.line == 4
    assert diag.data["version"] == 1 and diag.data["fix"]["applicability"] == "safe"

    fixed = HEADER + 'engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})\n'
    change_doc(client, uri, fixed, version=2)
    changed = await published(client, uri)
    assert changed.version == 2
    assert len(changed.diagnostics) == 0

    change_doc(client, uri, HEADER + MEMORY_DB, version=3)
    again = await published(client, uri)
    assert again.version == 3
    assert [d.code for d in again.diagnostics] == ["FSL005"]
    assert again.diagnostics[0].severity == types.DiagnosticSeverity.Error

    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    closed = await published(client, uri)
    assert len(closed.diagnostics) == 0


async def test_fast_typing_is_published_once_for_the_latest_version(client, tmp_path):
    write(tmp_path, {"app.py": HEADER})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    assert len((await published(client, uri, version=1)).diagnostics) == 0
    for version in range(2, 7):  # typing faster than the debounce
        change_doc(client, uri, HEADER + FILE_DB * (version - 1), version=version)
    seen = [await published(client, uri)]
    while seen[-1].version != 6:
        seen.append(await published(client, uri))
    # Each publish matches the text of the version it names, and versions only go forward. (On a machine
    # slower than the debounce an intermediate version may be published before the next change arrives.)
    assert [len(p.diagnostics) for p in seen] == [p.version - 1 for p in seen]
    assert [p.version for p in seen] == sorted({p.version for p in seen})


async def test_columns_are_in_the_negotiated_encoding(client, tmp_path):
    line = 'label = "🙂 café"; engine = create_engine("sqlite:///./app.db")\n'
    text = HEADER + line
    write(tmp_path, {"app.py": text})
    result = await start(client, tmp_path)
    expected = {"visual-studio-code": "utf-16", "neovim": "utf-8"}[client.editor]
    assert client.encoding == expected
    assert result.capabilities.position_encoding == expected

    uri = open_doc(client, tmp_path / "app.py")
    [diag] = (await published(client, uri)).diagnostics
    [engine_diag] = lint_source(text, "app.py").diagnostics  # code point columns
    start_col, end_col = engine_diag.start.column, engine_diag.end.column
    assert diag.range.start.character == units(line[:start_col], client.encoding)
    assert diag.range.end.character == units(line[:end_col], client.encoding)
    assert diag.range.start.character != start_col  # the emoji and the é are wider than one unit

    [fix] = [a for a in await code_actions(client, uri, [diag]) if a.title.startswith("FSL005:")]
    fixed = apply_edits(text, workspace_edits(fix.edit, uri), client.encoding)
    assert fixed == fix_source(text, "app.py").text
    assert fixed.endswith('"🙂 café"; engine = create_engine("sqlite:///./app.db", connect_args={"check_same_thread": False})\n')


def _overlap(a: types.Range, b: types.Range) -> bool:
    a0, a1 = (a.start.line, a.start.character), (a.end.line, a.end.character)
    b0, b1 = (b.start.line, b.start.character), (b.end.line, b.end.character)
    if a0 == a1 == b0 == b1:
        return True  # two insertions at one point: their order would be ambiguous
    return a0 < b1 and b0 < a1 or (a0 == a1 and b0 < a0 < b1) or (b0 == b1 and a0 < b0 < a1)


async def test_quick_fixes_reproduce_the_fixture(client, tmp_path):
    """Apply every quick fix offered (unsafe ones too) round after round, as a user would, until none is
    left: the buffer must end up as the fixture's after.py."""
    before = (FIXTURES / "FSL005" / "before.py").read_text(encoding="utf-8")
    after = (FIXTURES / "FSL005" / "after.py").read_text(encoding="utf-8")
    write(tmp_path, {"app/before.py": before})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app" / "before.py")
    text, version = before, 1
    diagnostics = (await published(client, uri, version=1)).diagnostics
    titles = set()
    for _ in range(10):
        actions = await code_actions(client, uri, [d for d in diagnostics if d.data.get("fix")])
        fixes = [a for a in actions if a.kind == types.CodeActionKind.QuickFix and not a.title.startswith("Ignore")]
        if not fixes:
            break
        for action in fixes:
            check_versioned(client, action, uri, version)
            titles.add(action.title)
        chosen: list[types.TextEdit] = []
        for action in fixes:
            edits = workspace_edits(action.edit, uri)
            if not any(_overlap(e.range, t.range) for e in edits for t in chosen):
                chosen.extend(edits)
        text = apply_edits(text, chosen, client.encoding)
        version += 1
        change_doc(client, uri, text, version)
        diagnostics = (await published(client, uri, version=version)).diagnostics
    assert text == after
    assert any(t.endswith("(unsafe fix)") for t in titles)
    assert any(not t.endswith("(unsafe fix)") for t in titles)


async def test_fix_all_applies_safe_fixes_only(client, tmp_path):
    text = HEADER + FILE_DB + MEMORY_DB
    write(tmp_path, {"app.py": text})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    diagnostics = (await published(client, uri)).diagnostics
    assert sorted(d.data["fix"]["applicability"] for d in diagnostics) == ["safe", "unsafe"]

    [action] = await code_actions(client, uri, only=["source.fixAll.fastsqla-lint"])
    assert action.kind == "source.fixAll.fastsqla-lint"
    check_versioned(client, action, uri, 1)
    fixed = apply_edits(text, workspace_edits(action.edit, uri), client.encoding)
    assert fixed == fix_source(text, "app.py").text
    assert MEMORY_DB in fixed and FILE_DB not in fixed

    # `source.fixAll` (the kind editors ask for on save) includes ours
    [same] = await code_actions(client, uri, only=[types.CodeActionKind.SourceFixAll])
    assert workspace_edits(same.edit, uri) == workspace_edits(action.edit, uri)

    change_doc(client, uri, fixed, version=2)
    left = (await published(client, uri, version=2)).diagnostics
    assert [d.data["fix"]["applicability"] for d in left] == ["unsafe"]


async def test_fix_all_with_unsafe_fixes_from_initialization_options(client, tmp_path):
    text = HEADER + FILE_DB + MEMORY_DB
    write(tmp_path, {"app.py": text})
    await start(client, tmp_path, options={"unsafe-fixes": True})
    uri = open_doc(client, tmp_path / "app.py")
    await published(client, uri)
    [action] = await code_actions(client, uri, only=["source.fixAll"])
    fixed = apply_edits(text, workspace_edits(action.edit, uri), client.encoding)
    assert fixed == fix_source(text, "app.py", unsafe=True).text
    assert MEMORY_DB not in fixed and FILE_DB not in fixed


async def test_ignore_for_this_line(client, tmp_path):
    text = HEADER + FILE_DB + MEMORY_DB.replace("\n", "  # noqa: F401\n")
    write(tmp_path, {"app.py": text})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    diagnostics = (await published(client, uri)).diagnostics
    assert len(diagnostics) == 2
    for diag in diagnostics:
        [ignore] = [a for a in await code_actions(client, uri, [diag]) if a.title == "Ignore FSL005 for this line"]
        assert ignore.kind == types.CodeActionKind.QuickFix
        check_versioned(client, ignore, uri, 1)
        text = apply_edits(text, workspace_edits(ignore.edit, uri), client.encoding)
    lines = text.splitlines()
    assert lines[4] == FILE_DB.rstrip("\n") + "  # noqa: FSL005"
    assert lines[5] == MEMORY_DB.rstrip("\n") + "  # noqa: F401, FSL005"
    change_doc(client, uri, text, version=2)
    assert len((await published(client, uri, version=2)).diagnostics) == 0


async def test_noqa_goes_where_a_comment_can_go(client, tmp_path):
    """On the line the finding starts on, unless that line ends inside a string: then after the string."""
    call = 'engine = create_engine(\n    "sqlite:///./app.db",\n    echo=True,\n)\n'
    in_string = 'other = create_engine("sqlite:///./b.db", echo=bool("""\n"""))\n'
    text = HEADER + call + in_string
    write(tmp_path, {"app.py": text})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    diagnostics = (await published(client, uri)).diagnostics
    assert len(diagnostics) == 2
    for diag in diagnostics:
        [ignore] = [a for a in await code_actions(client, uri, [diag]) if a.title.startswith("Ignore")]
        text = apply_edits(text, workspace_edits(ignore.edit, uri), client.encoding)
    lines = text.splitlines()
    assert lines[4] == "engine = create_engine(  # noqa: FSL005"
    assert lines[8:10] == ['other = create_engine("sqlite:///./b.db", echo=bool("""', '"""))  # noqa: FSL005']
    change_doc(client, uri, text, version=2)
    assert len((await published(client, uri, version=2)).diagnostics) == 0


async def test_facts_from_other_workspace_files(client, tmp_path):
    """The URL constant lives in another module: the workspace index resolves it, from the saved file
    and from an open buffer's unsaved text."""
    write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/settings.py": 'DATABASE_URL = "sqlite:///./app.db"\n',
            "app/db.py": "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\n"
            "from app.settings import DATABASE_URL\n\nengine = create_engine(DATABASE_URL)\n",
        },
    )
    await start(client, tmp_path)
    db = tmp_path / "app" / "db.py"
    db_uri = open_doc(client, db)
    [diag] = (await published(client, db_uri, version=1)).diagnostics
    assert diag.code == "FSL005" and diag.range.start.line == 5

    # an unsaved edit of settings.py counts: the open buffer's facts replace the saved ones
    settings = tmp_path / "app" / "settings.py"
    settings_uri = open_doc(client, settings)
    await published(client, settings_uri, version=1)
    change_doc(client, settings_uri, 'DATABASE_URL = "postgresql://db/app"\n', version=2)
    await published(client, settings_uri, version=2)
    change_doc(client, db_uri, db.read_text(encoding="utf-8"), version=2)
    assert len((await published(client, db_uri, version=2)).diagnostics) == 0

    # closing the buffer unsaved brings the saved facts back, and db.py is linted again
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=settings_uri))
    )
    assert [d.code for d in (await published(client, db_uri)).diagnostics] == ["FSL005"]

    # a change saved on disk reaches db.py through didSave
    settings_uri = open_doc(client, settings)
    await published(client, settings_uri)
    settings.write_text('DATABASE_URL = "postgresql://db/app"\n', encoding="utf-8")
    change_doc(client, settings_uri, settings.read_text(encoding="utf-8"), version=2)
    await published(client, settings_uri, version=2)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=settings_uri)))
    assert len((await published(client, db_uri)).diagnostics) == 0


async def test_watched_file_changes_update_the_index(client, tmp_path):
    write(
        tmp_path,
        {
            "settings.py": 'DATABASE_URL = "postgresql://db/app"\n',
            "db.py": "import fastapi\nfrom sqlalchemy import create_engine\nfrom settings import DATABASE_URL\n"
            "engine = create_engine(DATABASE_URL)\n",
        },
    )
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "db.py")
    assert len((await published(client, uri)).diagnostics) == 0
    (tmp_path / "settings.py").write_text('DATABASE_URL = "sqlite://"\n', encoding="utf-8")
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=(tmp_path / "settings.py").as_uri(), type=types.FileChangeType.Changed)]
        )
    )
    [diag] = (await published(client, uri)).diagnostics
    assert diag.severity == types.DiagnosticSeverity.Error  # now an in-memory database

    (tmp_path / "settings.py").unlink()
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=(tmp_path / "settings.py").as_uri(), type=types.FileChangeType.Deleted)]
        )
    )
    assert len((await published(client, uri)).diagnostics) == 0  # the URL is unknown again


async def test_configuration_reloads_when_pyproject_changes(client, tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    write(tmp_path, {"pyproject.toml": '[tool.fastsqla-lint]\nselect = ["FSL"]\n', "app.py": HEADER + FILE_DB})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    assert [d.code for d in (await published(client, uri)).diagnostics] == ["FSL005"]

    pyproject.write_text('[tool.fastsqla-lint]\nselect = ["FSL"]\nignore = ["FSL005"]\n', encoding="utf-8")
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=pyproject.as_uri(), type=types.FileChangeType.Changed)]
        )
    )
    assert len((await published(client, uri)).diagnostics) == 0

    if client.editor == "visual-studio-code":  # it accepts dynamic registration of file watchers
        [registration] = client.registrations
        assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
        globs = {w["globPattern"] for w in registration.register_options["watchers"]}
        assert {"**/*.py", "**/pyproject.toml"} <= globs
    else:
        assert client.registrations == []


async def test_initialization_options_override_the_configuration(client, tmp_path):
    write(tmp_path, {"app.py": HEADER + FILE_DB})
    await start(client, tmp_path, options={"ignore": ["FSL005"]})
    uri = open_doc(client, tmp_path / "app.py")
    assert len((await published(client, uri)).diagnostics) == 0


async def test_bad_initialization_options_are_shown_and_ignored(client, tmp_path):
    write(tmp_path, {"app.py": HEADER + FILE_DB})
    await start(client, tmp_path, options={"select": ["NOPE1"], "unsafe-fixes": True})
    uri = open_doc(client, tmp_path / "app.py")
    assert [d.code for d in (await published(client, uri)).diagnostics] == ["FSL005"]
    assert any("NOPE1" in m.message for m in client.messages)


async def test_bad_configuration_is_shown_and_defaults_apply(client, tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.fastsqla-lint]\nselekt = []\n", "app.py": HEADER + FILE_DB})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    assert [d.code for d in (await published(client, uri)).diagnostics] == ["FSL005"]
    assert any("selekt" in m.message for m in client.messages)


async def test_syntax_error_then_good_version(client, tmp_path):
    write(tmp_path, {"app.py": HEADER + FILE_DB})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    assert [d.code for d in (await published(client, uri)).diagnostics] == ["FSL005"]

    change_doc(client, uri, HEADER + "def broken(:\n    pass\n", version=2)
    broken = await published(client, uri, version=2)
    [diag] = broken.diagnostics
    assert diag.code == "FSL900"
    assert diag.source == "fastsqla-lint"
    assert diag.severity == types.DiagnosticSeverity.Error
    assert diag.code_description.href.endswith("FSL900.md")
    assert diag.message.startswith("SyntaxError")
    assert not [a for a in await code_actions(client, uri, [diag]) if a.title.startswith("Ignore")]

    change_doc(client, uri, HEADER + FILE_DB, version=3)
    assert [d.code for d in (await published(client, uri, version=3)).diagnostics] == ["FSL005"]


async def test_documents_that_are_not_python_are_left_alone(client, tmp_path):
    write(tmp_path, {"notes.md": "create_engine('sqlite://')\n", "app.py": HEADER + MEMORY_DB})
    await start(client, tmp_path)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=(tmp_path / "notes.md").as_uri(), language_id="markdown", version=1, text="x"
            )
        )
    )
    uri = open_doc(client, tmp_path / "app.py")
    first = await published(client)
    assert first.uri == uri


MONOREPO_DB = (
    "from sqlalchemy import create_engine\nfrom sqlalchemy.orm import DeclarativeBase\n\n"
    'engine = create_engine("sqlite:///./app.db")\n\n\nclass Base(DeclarativeBase):\n    pass\n'
)
MONOREPO_MODELS = (
    "from sqlalchemy.orm import Mapped, mapped_column\n\nfrom app.database import Base\n\n\n"
    "class Item(Base):\n    __tablename__ = \"items\"\n    id: Mapped[int] = mapped_column(primary_key=True)\n"
)
MONOREPO_INIT_DB = "from app.database import Base, engine\n\nBase.metadata.create_all(bind=engine)\n"
MONOREPO_MAIN = "from fastapi import FastAPI\n\nfrom app import models\n\napp = FastAPI()\n"


async def test_each_project_of_a_monorepo_has_its_own_settings_and_index(client, tmp_path):
    """A workspace holding several projects is indexed as `check` groups them: each service resolves
    `app.database` to its own module and has its own settings, and the diagnostics are `check`'s."""
    import json
    import subprocess
    import sys

    files = {"pyproject.toml": "[tool.fastsqla-lint]\n"}
    for service, settings in (("billing", ""), ("search", '\n[tool.fastsqla-lint]\nignore = ["FSL005"]\n')):
        files[f"services/{service}/pyproject.toml"] = f'[project]\nname = "{service}"\n{settings}'
        files[f"services/{service}/app/__init__.py"] = ""
        files[f"services/{service}/app/database.py"] = MONOREPO_DB
        files[f"services/{service}/app/main.py"] = MONOREPO_MAIN
        files[f"services/{service}/app/models.py"] = MONOREPO_MODELS
        files[f"services/{service}/scripts/init_db.py"] = MONOREPO_INIT_DB
    write(tmp_path, files)
    check = subprocess.run(
        [sys.executable, "-m", "fastsqla_lint", "check", ".", "--output-format", "json", "--no-cache"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    expected = {(d["filename"], d["code"], d["location"]["row"] - 1) for d in json.loads(check.stdout)}
    assert {(f, c) for f, c, _ in expected} == {
        ("services/billing/app/database.py", "FSL005"),
        ("services/billing/scripts/init_db.py", "FSL004"),
        ("services/search/scripts/init_db.py", "FSL004"),
    }
    await start(client, tmp_path)
    found = set()
    for name in sorted(n for n in files if n.endswith(".py")):
        uri = open_doc(client, tmp_path / name)
        found.update((name, d.code, d.range.start.line) for d in (await published(client, uri)).diagnostics)
    assert found == expected
    assert (tmp_path / ".fastsqla-lint-cache").is_dir()  # what it parsed is there for `check` and the next start


async def test_indexing_a_project_shows_progress(client, tmp_path):
    """Indexing is shown as work in progress where the client supports it (both recorded editors do):
    a token created by the server, then one begin and one end (pytest-lsp fails on a misuse)."""
    write(tmp_path, {"pyproject.toml": "[tool.fastsqla-lint]\n", "app.py": HEADER + FILE_DB})
    await start(client, tmp_path, options={"cache": False})
    uri = open_doc(client, tmp_path / "app.py")
    assert [d.code for d in (await published(client, uri)).diagnostics] == ["FSL005"]
    for _ in range(100):  # the end is sent right after the index, the diagnostics after the lint: no race, but
        if any(len(r) == 2 for r in client.progress_reports.values()):  # the two travel separately
            break
        await asyncio.sleep(0.05)
    [reports] = client.progress_reports.values()
    begin, end = reports
    assert begin.kind == "begin" and begin.title == "fastsqla-lint: indexing ."
    assert end.kind == "end" and end.message == "1 file, 1 summarised, 1 parsed"


async def test_the_cache_can_be_turned_off(client, tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.fastsqla-lint]\n", "app.py": HEADER + FILE_DB})
    await start(client, tmp_path, options={"cache": False})
    uri = open_doc(client, tmp_path / "app.py")
    assert [d.code for d in (await published(client, uri)).diagnostics] == ["FSL005"]
    assert not (tmp_path / ".fastsqla-lint-cache").exists()


async def test_the_workspace_index_comes_from_the_check_cache(client, tmp_path):
    """After `fastsqla-lint check`, the server parses nothing to index the workspace: the summaries
    come from the cache the run wrote (and a file no rule can concern is not even read for them)."""
    import subprocess
    import sys

    write(
        tmp_path,
        {
            "pyproject.toml": "[tool.fastsqla-lint]\n",
            "app/__init__.py": "",
            "app/settings.py": 'DATABASE_URL = "sqlite://"\n',
            "app/db.py": "from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\n"
            "from app.settings import DATABASE_URL\n\nengine = create_engine(DATABASE_URL)\n",
            "app/unrelated.py": "import json\n\nVALUE = json.dumps({})\n",
        },
    )
    subprocess.run([sys.executable, "-m", "fastsqla_lint", "check", "."], cwd=tmp_path, capture_output=True)
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app" / "db.py")
    [diag] = (await published(client, uri)).diagnostics
    assert diag.code == "FSL005" and diag.severity == types.DiagnosticSeverity.Error  # the URL is known
    [indexed] = [m.message for m in client.log_messages if "indexed" in m.message]
    assert indexed.startswith("fastsqla-lint: indexed . in ") and indexed.endswith("(4 files, 3 summarised, 0 parsed)")


async def test_a_buffer_that_starts_using_sqlalchemy_brings_in_the_modules_it_imports(client, tmp_path):
    """`settings.py` is not needed while nothing relevant imports it, so it is not parsed at start; once
    the open buffer imports SQLAlchemy, its constant is, and the finding knows the URL."""
    write(
        tmp_path,
        {
            "settings.py": 'DATABASE_URL = "sqlite://"\n',
            "db.py": "from settings import DATABASE_URL\n",
        },
    )
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "db.py")
    assert len((await published(client, uri)).diagnostics) == 0
    [indexed] = [m.message for m in client.log_messages if "indexed" in m.message]
    assert indexed.endswith("(2 files, 0 summarised, 0 parsed)")
    text = (
        "import fastapi\nfrom sqlalchemy import create_engine\nfrom settings import DATABASE_URL\n\n"
        "engine = create_engine(DATABASE_URL)\n"
    )
    change_doc(client, uri, text, version=2)
    [diag] = (await published(client, uri, version=2)).diagnostics
    assert diag.code == "FSL005" and diag.severity == types.DiagnosticSeverity.Error  # in memory: from settings.py


def test_the_server_exits_cleanly_after_shutdown_and_exit(tmp_path):
    """`shutdown` then `exit`, the way every client ends a session: exit status 0, nothing on stderr (the
    server's output is closed by then, and flushing it must not raise)."""
    import json
    import subprocess

    from lsp_support import SERVER, _env

    def frame(message: dict) -> bytes:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    messages = [
        {"id": 1, "method": "initialize",
         "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}},
        {"method": "initialized", "params": {}},
        {"id": 2, "method": "shutdown"},
        {"method": "exit"},
    ]
    done = subprocess.run(SERVER, input=b"".join(map(frame, messages)), capture_output=True, env=_env, timeout=60)
    assert done.returncode == 0 and done.stderr == b""
    assert b'"id": 2' in done.stdout or b'"id":2' in done.stdout  # shutdown was answered


def test_open_buffers_keep_their_facts_when_the_workspace_is_indexed_again(tmp_path):
    """A settings change indexes the workspace again: the unsaved text of an open buffer still counts."""
    from fastsqla_lint.lsp import DocState, FastsqlaLanguageServer

    write(
        tmp_path,
        {
            "settings.py": 'DATABASE_URL = "postgresql://db/app"\n',
            "db.py": "import fastapi\nfrom sqlalchemy import create_engine\nfrom settings import DATABASE_URL\n"
            "engine = create_engine(DATABASE_URL)\n",
        },
    )
    ls = FastsqlaLanguageServer()
    ls.root = tmp_path
    ls.options = {"cache": False}
    ls.load_workspace()
    docs = {
        name: DocState(uri=(tmp_path / name).as_uri(), path=tmp_path / name, display=name)
        for name in ("settings.py", "db.py")
    }
    db_text = (tmp_path / "db.py").read_text(encoding="utf-8")
    assert ls.lint_buffer(docs["db.py"], db_text).diagnostics == []
    ls.lint_buffer(docs["settings.py"], 'DATABASE_URL = "sqlite://"\n')  # unsaved
    assert [d.code for d in ls.lint_buffer(docs["db.py"], db_text).diagnostics] == ["FSL005"]
    ls.load_workspace()
    assert ls.projects and all(proj.buffers for proj in ls.projects.values())
    _, index, _, _ = ls.settings_of(docs["db.py"])
    assert index.constant("settings.DATABASE_URL") == "sqlite://"


def test_file_events_update_indexed_projects_only(tmp_path):
    """A file changed in a project no document has opened yet is read when the project is indexed, not
    before; a file created in an indexed project joins its index (here: the URL a route module needs)."""
    from fastsqla_lint.lsp import DocState, FastsqlaLanguageServer

    write(
        tmp_path,
        {
            "billing/pyproject.toml": "[project]\nname = 'billing'\n",
            "billing/db.py": "import fastapi\nfrom sqlalchemy import create_engine\nfrom settings import DATABASE_URL\n"
            "engine = create_engine(DATABASE_URL)\n",
            "search/pyproject.toml": "[project]\nname = 'search'\n",
            "search/db.py": "import fastapi\n",
        },
    )
    ls = FastsqlaLanguageServer()
    ls.root = tmp_path
    ls.options = {"cache": False}
    ls.load_workspace()
    ls.reload_file(tmp_path / "search" / "db.py")
    assert ls.projects == {}
    db = tmp_path / "billing" / "db.py"
    state = DocState(uri=db.as_uri(), path=db, display="billing/db.py")
    assert ls.lint_buffer(state, db.read_text(encoding="utf-8")).diagnostics == []  # the URL is unknown
    assert len(ls.projects) == 1
    write(tmp_path, {"billing/settings.py": 'DATABASE_URL = "sqlite://"\n'})
    ls.reload_file(tmp_path / "billing" / "settings.py")
    assert [d.code for d in ls.lint_buffer(state, db.read_text(encoding="utf-8")).diagnostics] == ["FSL005"]
    assert len(ls.projects) == 1
