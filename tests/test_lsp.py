"""The language server end to end: pytest-lsp drives `python -m fastsqla_lint lsp` as a real subprocess,
once with VS Code's recorded capabilities and once with Neovim's."""

from __future__ import annotations

from lsprotocol import types

from lsp_support import change_doc, client, open_doc, published, start, write  # noqa: F401  (client: fixture)


async def test_syntax_error_then_good_version(client, tmp_path):
    write(tmp_path, {"app.py": "def broken(:\n    pass\n"})
    await start(client, tmp_path)
    uri = open_doc(client, tmp_path / "app.py")
    first = await published(client, uri)
    assert first.version == 1
    [diag] = first.diagnostics
    assert diag.code == "FSL900"
    assert diag.source == "fastsqla-lint"
    assert diag.severity == types.DiagnosticSeverity.Error
    assert diag.code_description is not None and "FSL900" in diag.code_description.href
    assert diag.message.startswith("SyntaxError")

    change_doc(client, uri, "def fixed():\n    pass\n", version=2)
    second = await published(client, uri)
    assert second.version == 2
    assert len(second.diagnostics) == 0

    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
    closed = await published(client, uri)
    assert len(closed.diagnostics) == 0
