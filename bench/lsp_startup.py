#!/usr/bin/env python3
"""How long the language server takes to show the first diagnostics in a big workspace.

Usage::

    python bench/lsp_startup.py [--files 10000] [--seed 1] [--repeat 3]

On the corpus `run.py` uses (generated and reused under `bench/.corpora/`), each round times, one after
the other so that all see the same machine load:

  check cold   `fastsqla-lint check . --no-cache` (the baseline: the same parse set, linted)
  lsp cold     `fastsqla-lint lsp` started on the corpus as the workspace folder, with no cache: from
               starting the process to the first `publishDiagnostics` of one opened file; the server
               indexes that file's project first. Two files: one of a service (the first planted
               pitfall of `EXPECTED.tsv`; about 80 files in its project) and one of the monorepo's
               top-level project (`libs/`, `tools/`: 8,500 files, none of which need parsing)
  lsp warm     the same after `fastsqla-lint check .` wrote the cache (what an editor opened after a CI
               or pre-commit run, or reopened, pays)

The client is a minimal JSON-RPC one over the server's stdio (initialize, initialized, didOpen, then
shutdown and exit once the diagnostics came). It prints the medians, the ratios against the cold check,
the diagnostics' codes (they must hold the planted pitfall) and the server's own log line (files
indexed, files summarised, files parsed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import corpus  # noqa: E402

CACHE = ".fastsqla-lint-cache"


def frame(message: dict) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(stream) -> dict:
    length = None
    while True:
        line = stream.readline()
        if not line:
            raise EOFError("the server closed its output")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None
    return json.loads(stream.read(length))


def first_diagnostics(root: Path, target: Path) -> tuple[float, list[str], str, int]:
    """Seconds from starting the server to the first diagnostics of `target`, their codes, the server's
    log line about the project's index, and its peak RSS (MB)."""
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "fastsqla_lint", "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root
    )
    assert server.stdin is not None and server.stdout is not None
    uri = target.as_uri()

    def send(message: dict) -> None:
        server.stdin.write(frame(message))  # type: ignore[union-attr]
        server.stdin.flush()  # type: ignore[union-attr]

    send({"id": 1, "method": "initialize", "params": {
        "processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": {},
        "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}]}})
    log = ""
    while True:
        message = read_message(server.stdout)
        if message.get("id") == 1:
            break
    send({"method": "initialized", "params": {}})
    send({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": target.read_text(encoding="utf-8")}}})
    while True:
        message = read_message(server.stdout)
        if message.get("method") == "window/logMessage" and "indexed" in message["params"]["message"]:
            log = message["params"]["message"]
        if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
            seconds = time.perf_counter() - start
            codes = [d["code"] for d in message["params"]["diagnostics"]]
            break
    send({"id": 2, "method": "shutdown"})
    send({"method": "exit"})
    server.stdin.close()
    server.stdout.read()
    _, status, usage = os.wait4(server.pid, 0)  # its own peak memory (pool workers are the fork server's)
    server.returncode = os.waitstatus_to_exitcode(status)
    return seconds, codes, log, usage.ru_maxrss // 1024


def check(root: Path, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fastsqla_lint", "check", ".", "--output-format", "concise", *extra],
                   cwd=root, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = corpus(args.files, args.seed)
    planted = (root / "EXPECTED.tsv").read_text(encoding="utf-8").splitlines()[1].split("\t")
    top = sorted(p for p in (root / "libs").rglob("*.py"))[0]  # a file of the monorepo's top-level project
    targets = {"service": root / planted[0], "top": top}
    print(f"corpus {root.name}: service file {planted[0]} (planted: {planted[2]} at line {planted[1]}); "
          f"top-level project file {top.relative_to(root)}")
    times: dict[str, list[float]] = {"check cold": []}
    logs: dict[str, str] = {}
    rss: dict[str, list[int]] = {}
    codes: dict[str, set] = {}
    for round_ in range(args.repeat):
        times["check cold"].append(check(root, "--no-cache"))
        for state in ("cold", "warm"):
            for label, target in targets.items():
                what = f"lsp {state}, {label}"
                shutil.rmtree(root / CACHE, ignore_errors=True)
                if state == "warm":
                    check(root)  # writes the cache
                seconds, found, logs[what], peak = first_diagnostics(root, target)
                times.setdefault(what, []).append(seconds)
                rss.setdefault(what, []).append(peak)
                codes.setdefault(label, set()).add(tuple(found))
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    for label, found in codes.items():
        assert len(found) == 1, (label, found)  # the same diagnostics, cold or warm, every round
        print(f"{label}: diagnostics {list(next(iter(found)))}")
    base = statistics.median(times["check cold"])
    print(f"\n{'what':20s} {'median s':>9s} {'x check cold':>13s} {'peak RSS MB':>12s}")
    for what, values in times.items():
        median = statistics.median(values)
        peak = f"{max(rss[what]):12d}" if what in rss else ""
        print(f"{what:20s} {median:9.2f} {median / base:12.2f}x {peak}")
    for what, line in logs.items():
        print(f"{what}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
