"""Driving `fastsqla-lint lsp` from pytest-lsp: the server command, the client fixture, small helpers.

The server runs as a real subprocess (`python -m fastsqla_lint lsp`). Tests start a session on a
workspace folder of their own with `start()`, then await what the server publishes.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-m", "fastsqla_lint", "lsp"]
CLIENTS = ["visual-studio-code", "neovim"]
TIMEOUT = 60  # seconds; only reached when the server never answers

_env = dict(os.environ)
_env["PYTHONPATH"] = str(ROOT) + os.pathsep + _env.get("PYTHONPATH", "")


def _on_publish(ls: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
    ls.diagnostics[params.uri] = params.diagnostics
    ls.published.put_nowait(params)


def _on_register(ls: LanguageClient, params: types.RegistrationParams) -> None:
    ls.registrations.extend(params.registrations)


def _make_client() -> LanguageClient:
    """pytest-lsp's client, which also queues every publishDiagnostics and records registrations."""
    lsp_client = LanguageClient(converter_factory=default_converter)
    lsp_client.published = asyncio.Queue()
    lsp_client.registrations = []
    features = dict(DEFAULT_CLIENT_FEATURES)
    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = _on_publish
    features[types.CLIENT_REGISTER_CAPABILITY] = _on_register
    register_lsp_features(lsp_client, features)
    return lsp_client


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env=_env, client_factory=_make_client),
    params=CLIENTS,
)
async def client(lsp_client: LanguageClient, request):
    """A client with one editor's recorded capabilities; the test starts the session (`start`)."""
    lsp_client.editor = request.param
    yield
    await lsp_client.shutdown_session()


async def start(client: LanguageClient, root: Path, options: dict | None = None) -> types.InitializeResult:
    """Initialise a session on the workspace folder `root`."""
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(client.editor),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=options,
        )
    )
    encoding = result.capabilities.position_encoding or "utf-16"
    client.encoding = getattr(encoding, "value", encoding)
    return result


async def published(
    client: LanguageClient, uri: str | None = None, version: int | None = None
) -> types.PublishDiagnosticsParams:
    """The next diagnostics the server publishes (for `uri` and `version`, when given)."""
    while True:
        params = await asyncio.wait_for(client.published.get(), TIMEOUT)
        if (uri is None or params.uri == uri) and (version is None or params.version == version):
            return params


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")


def open_doc(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri,
                language_id="python",
                version=version,
                text=path.read_text(encoding="utf-8") if text is None else text,
            )
        )
    )
    return uri


def change_doc(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def workspace_edits(edit: types.WorkspaceEdit, uri: str) -> list[types.TextEdit]:
    """The text edits a WorkspaceEdit makes to `uri` (from `documentChanges` or `changes`)."""
    if edit.document_changes:
        out: list[types.TextEdit] = []
        for change in edit.document_changes:
            assert isinstance(change, types.TextDocumentEdit)
            if change.text_document.uri == uri:
                out.extend(change.edits)  # type: ignore[arg-type]
        return out
    return list((edit.changes or {}).get(uri, []))


def _units(ch: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(ch.encode("utf-8"))
    if encoding == "utf-16":
        return 2 if ord(ch) > 0xFFFF else 1
    return 1


def apply_edits(text: str, edits: list[types.TextEdit], encoding: str) -> str:
    """Apply LSP text edits the way an editor does (columns in `encoding` code units)."""
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        if pos.line >= len(lines):
            return len(text)
        start = sum(len(line) for line in lines[: pos.line])
        units = 0
        for i, ch in enumerate(lines[pos.line]):
            if units >= pos.character or ch in "\r\n":
                return start + i
            units += _units(ch, encoding)
        return start + len(lines[pos.line])

    spans = sorted(((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True)
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text
