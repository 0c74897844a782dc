"""The command line: `check`, `rule`, `rules`, `lsp`, `debug-config`.

Exit codes: 0 nothing left to report, 1 findings left (or, with `--diff`, fixes to apply), 2 a usage,
configuration or internal error. Heavy modules (LibCST, the rules, the formatters, the LSP server) are
imported only by the commands that need them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from fastsqla_lint import __version__

FORMAT_NAMES = ("full", "concise", "json", "sarif", "github")  # the same as output.FORMAT_NAMES
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageProblem(Exception):
    """A problem with the command line or the configuration: printed as `error: ...`, exit 2."""


def _error(message: str) -> None:
    click.echo(f"{click.style('error', fg='red', bold=True) if _color(sys.stderr) else 'error'}: {message}", err=True)


def _warn(message: str) -> None:
    label = click.style("warning", fg="yellow", bold=True) if _color(sys.stderr) else "warning"
    click.echo(f"{label}: {message}", err=True)


def _color(stream) -> bool:
    """Colour only on a terminal, never with NO_COLOR set; FORCE_COLOR forces it (NO_COLOR still wins)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _selectors(values: tuple[str, ...]) -> tuple[str, ...]:
    """`--select A,B --select C` -> ("A", "B", "C")."""
    out: list[str] = []
    for value in values:
        out.extend(s.strip().upper() for s in value.split(",") if s.strip())
    return tuple(out)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="fastsqla-lint")
def cli() -> None:
    """fastsqla-lint: FastAPI + SQLAlchemy pitfalls, found and fixed."""


# -- check ---------------------------------------------------------------------------------------


@dataclass
class CheckOptions:
    paths: tuple[Path, ...]
    fix: bool | None = None
    unsafe_fixes: bool | None = None
    diff: bool = False
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exit_zero: bool = False
    statistics: bool = False
    config_file: Path | None = None
    stdin_filename: Path | None = None
    output_format: str | None = None
    force_exclude: bool = False
    show_fixes: bool = False
    jobs: int | None = None
    no_cache: bool = False
    cache_dir: Path | None = None
    stats: bool = False


@dataclass
class RunResult:
    diagnostics: list = field(default_factory=list)  # what is left, over every requested file
    sources: dict[str, str] = field(default_factory=dict)  # reported path -> text (after fixes)
    fixed: int = 0  # fixes applied (or, with --diff, that would be)
    fixed_by_file: dict[str, int] = field(default_factory=dict)
    diffs: list[str] = field(default_factory=list)
    internal_error: bool = False


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--fix/--no-fix", default=None, help="Apply safe fixes (and unsafe ones with --unsafe-fixes).")
@click.option(
    "--unsafe-fixes/--no-unsafe-fixes", default=None, help="Also count and apply fixes that may change behaviour."
)
@click.option("--diff", is_flag=True, help="Print the unified diffs --fix would make; write nothing.")
@click.option("--select", multiple=True, metavar="CODES", help="Rules to run (codes or prefixes; replaces `select`).")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Rules to run on top of the selection.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rules not to run (added to `ignore`).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings are left.")
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule instead of each finding.")
@click.option(
    "--no-cache", is_flag=True, envvar="FASTSQLA_LINT_NO_CACHE", help="Do not read or write the cache."
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="FASTSQLA_LINT_CACHE_DIR",
    help="Where the cache lives (default: `.fastsqla-lint-cache` in the project root).",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), default=None, help="Processes to use (default: one per core)."
)
@click.option("--stats", is_flag=True, hidden=True, help="Print what the run did (files read, parsed, cached).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Use this pyproject.toml instead of the nearest one.",
)
@click.option(
    "--stdin-filename",
    type=click.Path(path_type=Path),
    help="With `-` as the path: the name stdin is reported under (and configured for).",
)
@click.option(
    "--output-format",
    type=click.Choice(FORMAT_NAMES),
    default=None,
    help="full on a terminal, concise otherwise (or `output-format` from the config).",
)
@click.option("--force-exclude", is_flag=True, help="Apply exclusions to paths given on the command line too.")
@click.option("--show-fixes", is_flag=True, help="With --fix, list how many fixes were applied per file.")
def check(
    paths: tuple[Path, ...],
    fix: bool | None,
    unsafe_fixes: bool | None,
    diff: bool,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exit_zero: bool,
    statistics: bool,
    no_cache: bool,
    cache_dir: Path | None,
    jobs: int | None,
    stats: bool,
    config_file: Path | None,
    stdin_filename: Path | None,
    output_format: str | None,
    force_exclude: bool,
    show_fixes: bool,
) -> None:
    """Check PATHS (default: the current folder) for FastAPI + SQLAlchemy pitfalls."""
    options = CheckOptions(
        paths=paths,
        fix=fix,
        unsafe_fixes=unsafe_fixes,
        diff=diff,
        select=_selectors(select) or None,
        extend_select=_selectors(extend_select),
        ignore=_selectors(ignore),
        exit_zero=exit_zero,
        statistics=statistics,
        config_file=config_file,
        stdin_filename=stdin_filename,
        output_format=output_format,
        force_exclude=force_exclude,
        show_fixes=show_fixes,
        jobs=jobs,
        no_cache=no_cache,
        cache_dir=cache_dir,
        stats=stats,
    )
    try:
        code = run_check(options)
    except UsageProblem as exc:
        _error(str(exc))
        code = EXIT_ERROR
    sys.exit(code)


def run_check(opts: CheckOptions) -> int:
    from fastsqla_lint.config import ConfigError

    try:
        return _run_check(opts)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None


def _with_overrides(config, opts: CheckOptions):
    """The config with the command line's selection laid over it, as ruff does: `--select` starts the
    selection afresh (the configured select, extend-select and ignore are dropped); `--extend-select` and
    `--ignore` add to whatever selection is in force. `per-file-ignores` always stay."""
    from dataclasses import replace

    if opts.select is not None:
        return replace(config, select=opts.select, extend_select=opts.extend_select, ignore=opts.ignore)
    changes: dict = {}
    if opts.extend_select:
        changes["extend_select"] = tuple(config.extend_select) + opts.extend_select
        # a selector named on the command line is no longer ignored by the same selector in the configuration
        # (a broader configured ignore already loses to a more specific select)
        changes["ignore"] = tuple(i for i in config.ignore if i.upper() not in opts.extend_select)
    if opts.ignore:
        changes["ignore"] = tuple(changes.get("ignore", config.ignore)) + opts.ignore
    return replace(config, **changes) if changes else config


def _check_config_selectors(config) -> None:
    from fastsqla_lint import registry

    origin = str(config.path) if config.path else "the configuration"
    registry.check_selectors(config.select or (), origin=f"`select` of {origin}")
    registry.check_selectors(config.extend_select, origin=f"`extend-select` of {origin}")
    registry.check_selectors(config.ignore, origin=f"`ignore` of {origin}")
    for pattern, codes in config.per_file_ignores:
        registry.check_selectors(codes, origin=f"`per-file-ignores` of {origin} ({pattern!r})")


def _run_check(opts: CheckOptions) -> int:
    from fastsqla_lint.discovery import Excluder, Target, absolute, discover, display_path
    from fastsqla_lint.project import ConfigTree, Planner

    # 1. the command line itself (rule selectors are checked in step 4, by the run when it must lint)
    use_stdin = opts.paths == (Path("-"),) or (not opts.paths and opts.stdin_filename is not None)
    if not use_stdin and Path("-") in opts.paths:
        raise UsageProblem("`-` (stdin) cannot be combined with other paths")
    if not use_stdin and opts.stdin_filename is not None:
        _warn("--stdin-filename is ignored: the paths given are read from disk (use `-` to read stdin)")
    paths = opts.paths or (Path("."),)
    if not use_stdin:
        missing = [p for p in paths if not p.exists() and not p.is_symlink()]
        if missing:
            raise UsageProblem("; ".join(f"path does not exist: {p}" for p in missing))

    # a check whose saved answer still holds (nothing it depends on changed) is answered from the cache
    cache_root = None if opts.no_cache or use_stdin else (opts.cache_dir or _default_cache_dir())
    saved_key = _saved_check_key(opts, paths) if cache_root is not None and not (opts.fix or opts.diff) else None
    if saved_key is not None:
        saved = _saved_check(cache_root, saved_key)
        if saved is not None:
            from fastsqla_lint.output import EDIT_FORMATS

            fmt = opts.output_format or saved.fmt or _default_format()
            if saved.edits or fmt not in EDIT_FORMATS:  # else: its fixes lack the edits this format shows
                return _report(saved, opts, fmt, False, saved.threshold, False)

    # 2. configuration: run-wide settings come from --config or the working folder's config
    resolver = ConfigTree(opts.config_file)
    run_config = resolver.for_folder(absolute(Path.cwd()))
    fix = opts.fix if opts.fix is not None else bool(run_config.fix)
    unsafe = opts.unsafe_fixes if opts.unsafe_fixes is not None else bool(run_config.unsafe_fixes)
    fmt = opts.output_format or run_config.output_format or _default_format()
    if fmt not in FORMAT_NAMES:
        raise UsageProblem(f"unknown output format {fmt!r} (expected one of: {', '.join(FORMAT_NAMES)})")
    from fastsqla_lint.diagnostics import Applicability

    threshold = Applicability.UNSAFE if unsafe else Applicability.SAFE

    # 3. which files
    excluder = Excluder(resolver.for_folder)
    planner = Planner(resolver)
    contents: dict[str, bytes] = {}
    if use_stdin:
        name = opts.stdin_filename or Path("-")
        path = absolute(name)
        target = Target(str(path), display_path(path) if opts.stdin_filename else "-", explicit=True)
        data = sys.stdin.buffer.read()
        stop = resolver.project_root(path)[0]
        if opts.force_exclude and opts.stdin_filename and excluder.is_excluded_with_parents(path, stop):
            if fix and not opts.diff:
                sys.stdout.buffer.write(data)
            return EXIT_CLEAN
        contents[target.path] = data
        targets = [target]
    else:
        targets = discover(
            paths,
            excluder,
            force_exclude=opts.force_exclude,
            stop_for=lambda p: resolver.project_root(p)[0],
            folders=planner.folders,
        )
        planner.walked = tuple(absolute(p) for p in paths if p.is_dir())
    found_files = bool(targets)
    if not found_files:
        _warn("No Python files found under the given paths.")

    # 4. lint (and fix) every project
    result = RunResult()
    groups = planner.groups(targets)
    del targets  # each file's path lives on in its project's run only (see `project.check_groups`)
    configs = [group.config for group in groups]

    def check_selectors() -> None:
        """Unknown rule selectors are usage errors. Checked when the rules are loaded: a run answered by
        the cache (whose key holds the selectors) never loads them."""
        from fastsqla_lint import registry

        registry.check_selectors(opts.select or (), origin="--select")
        registry.check_selectors(opts.extend_select, origin="--extend-select")
        registry.check_selectors(opts.ignore, origin="--ignore")
        checked: set[int] = set()
        for config in configs:
            if id(config) not in checked:
                _check_config_selectors(config)
                checked.add(id(config))

    if not groups:
        check_selectors()
    for group in groups:
        group.config = _with_overrides(group.config, opts)
    from fastsqla_lint.output import EDIT_FORMATS

    edits = fmt in EDIT_FORMATS
    runs = _run_groups(
        groups, planner, excluder, contents, opts, fix, threshold, use_stdin, result, check_selectors, edits
    )
    if saved_key is not None and found_files and not fix and not result.internal_error:
        _save_check(cache_root, saved_key, opts, paths, planner, runs, result, run_config.output_format, threshold,
                    edits)

    # 5. report
    return _report(result, opts, fmt, fix, threshold, use_stdin)


def _default_format() -> str:
    return "full" if _isatty(sys.stdout) else "concise"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _run_groups(
    groups, planner, excluder, contents, opts, fix, threshold, use_stdin, result: RunResult, check_selectors,
    edits: bool = True,
) -> list:
    from fastsqla_lint import project as proj
    from fastsqla_lint.source import DecodeError, decode

    stats = proj.RunStats()
    cache_root = None if opts.no_cache else (opts.cache_dir or proj.default_cache_dir())
    runs = proj.check_groups(
        groups, planner, excluder, contents, jobs=opts.jobs, cache_root=cache_root, stats=stats,
        before_parse=check_selectors, edits=edits, summaries=bool(fix or opts.diff),
    )
    if opts.stats:
        import json

        stats.peak_rss_kb = proj.peak_rss_kb()
        click.echo(json.dumps(stats.as_dict()), err=True)
    for run in runs:
        project = None
        for state in run.requested:
            path = Path(state.path)
            file_result = run.result(state)
            count = 0
            fixing = (fix or opts.diff) and any(
                d.fix is not None and d.fix.applies_at(threshold) for d in file_result.diagnostics
            )
            if not (fixing or file_result.diagnostics or file_result.internal_errors or (use_stdin and fix)):
                continue  # nothing to show or write: the text is not needed
            data = run.data_of(state)
            try:
                if fixing:
                    if project is None:
                        project = run.project(cache_root)
                    loaded = project.files[path] = proj.load_file(path, state.display, run.roots, data)
                    outcome = proj.fix_file(project, path, threshold)
                    file_result, text, count = outcome.result, outcome.text, outcome.fixed
                    for w in outcome.warnings:
                        _warn(w)
                    source = loaded.source
                else:
                    try:
                        source = decode(data) if data is not None else None
                    except DecodeError:
                        source = None
                    text = source.text if source is not None else ""
            except Exception as exc:  # a bug in the linter must not stop the other files
                _error(f"{state.display}: internal error: {exc!r}")
                result.internal_error = True
                if use_stdin and fix and not opts.diff:
                    _echo_bytes(data or b"")  # the caller replaces its buffer with stdout: give it back
                continue
            for message in file_result.internal_errors:
                _internal_error(message)
                result.internal_error = True
            original = source.text if source is not None else ""
            changed = count > 0 and text != original and source is not None
            if opts.diff:
                if changed:
                    result.diffs.append(_unified_diff(state.display, original, text))
                    result.fixed += count
            elif fix:
                from fastsqla_lint.writer import WriteError, encoded, write_fixed

                try:
                    if use_stdin:
                        _echo_bytes(encoded(source, text) if changed else (data or b""))
                    elif changed:
                        write_fixed(path, source, text, data or b"", root=run.root)
                except WriteError as exc:
                    _warn(f"{state.display}: not fixed: {exc}")
                    if use_stdin:
                        _echo_bytes(data or b"")
                    file_result, text, count = proj.lint_file(project, path), original, 0
                if changed and count:
                    result.fixed += count
                    result.fixed_by_file[state.display] = count
            result.diagnostics.extend(file_result.diagnostics)
            if source is not None:
                result.sources[state.display] = text
    return runs


# -- saved checks ------------------------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    from fastsqla_lint.project import default_cache_dir

    return default_cache_dir()


def _saved_check_key(opts: CheckOptions, paths) -> str:
    """What a saved check is for: the command's options that change findings, the working folder, the
    environment it reads, and the linter's code."""
    from fastsqla_lint.cache import code_stamp, digest

    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("FASTSQLA_LINT_") or k == "HOME")
    return digest(
        "check", code_stamp(), os.getcwd(), env, [str(p) for p in paths], opts.select, opts.extend_select,
        opts.ignore, opts.config_file, opts.force_exclude, opts.unsafe_fixes, opts.fix,
    )


@dataclass
class _SavedRun(RunResult):
    fmt: str | None = None  # the configured output format (None: by the terminal)
    threshold: object = None
    edits: bool = True  # its fixes carry their text edits


def _saved_check(cache_root: Path, key: str) -> _SavedRun | None:
    from fastsqla_lint.cache import Cache, snapshot_holds
    from fastsqla_lint.source import DecodeError, decode

    entry = Cache(cache_root).load("checks", key)
    if not isinstance(entry, dict) or not snapshot_holds(entry["snapshot"]):
        return None
    saved = _SavedRun(diagnostics=list(entry["diagnostics"]), fmt=entry["fmt"], threshold=entry["threshold"],
                      edits=entry.get("edits", True))
    for path, display in entry["sources"]:
        try:
            with open(path, "rb") as fh:
                saved.sources[display] = decode(fh.read()).text
        except (OSError, DecodeError):
            return None
    return saved


def _save_check(
    cache_root: Path, key: str, opts: CheckOptions, paths, planner, runs, result: RunResult, fmt: str | None,
    threshold, edits: bool,
) -> None:
    from fastsqla_lint.cache import Cache, join_packs, take_snapshot
    from fastsqla_lint.discovery import absolute

    above: list[str] = []
    for start in (*(absolute(p) for p in paths), absolute(Path.cwd())):
        folder = start if start.is_dir() else start.parent
        above.extend(str(f) for f in (folder, *folder.parents))
    packs, sources = [], []
    with_findings = {d.path for d in result.diagnostics}
    for run in runs:
        listing = run.listing()
        if listing is None:
            return  # a file that could not be read: run again next time
        packs.append(listing)
        # a file with findings was parsed: it is among the run's files even when the skipped ones were dropped
        sources.extend((f.path, f.display) for f in run.requested if f.display in with_findings)
    extra = [str(absolute(p)) for p in (*paths, *([opts.config_file] if opts.config_file else ())) if not p.is_dir()]
    snapshot = take_snapshot([str(f) for f in planner.folders], above, extra, join_packs(packs))
    Cache(cache_root).store("checks", key, {
        "snapshot": snapshot, "diagnostics": result.diagnostics, "fmt": fmt, "threshold": threshold, "edits": edits,
        "sources": sources,
    })


def _echo_bytes(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _internal_error(message: str) -> None:
    """An engine's internal-error message: its first and last lines, the traceback only when debugging."""
    if os.environ.get("FASTSQLA_LINT_DEBUG"):
        _error(message.rstrip())
        return
    parts = [line for line in message.strip().splitlines() if line.strip()]
    head = parts[0] if parts else "internal error"
    tail = parts[-1].strip() if len(parts) > 1 else ""
    _error(f"{head} {tail}".rstrip() + " (set FASTSQLA_LINT_DEBUG=1 for the traceback)")


def _unified_diff(display: str, old: str, new: str) -> str:
    import difflib

    lines = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=display, tofile=display
    ):
        if not line.endswith(("\n", "\r")):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(result: RunResult, fix: bool, threshold) -> list[str]:
    from fastsqla_lint.diagnostics import Applicability

    left = result.diagnostics
    fixable = sum(1 for d in left if d.fix is not None and d.fix.applies_at(threshold))
    hidden = sum(
        1
        for d in left
        if d.fix is not None and d.fix.applies_at(Applicability.UNSAFE) and not d.fix.applies_at(threshold)
    )
    lines = []
    if fix and result.fixed:
        lines.append(f"Fixed {_plural(result.fixed, 'error')} ({len(left)} remaining).")
    elif left:
        lines.append(f"Found {_plural(len(left), 'error')}.")
    elif result.internal_error:
        return ["No errors found, but some checks did not run (see the internal errors above)."]
    else:
        return ["All checks passed!"]
    more = f" ({hidden} more with --unsafe-fixes)" if hidden else ""
    if fixable:
        lines.append(f"[*] {fixable} fixable with the --fix option{more}.")
    elif hidden:
        lines.append(f"No fixes available with --fix{more}.")
    return lines


def _statistics(result: RunResult, fmt: str, threshold) -> str:
    import json as _json

    rows: dict[str, dict] = {}
    for d in result.diagnostics:
        row = rows.setdefault(d.code, {"code": d.code, "name": d.name, "count": 0, "fixable": False})
        row["count"] += 1
        if d.fix is not None and d.fix.applies_at(threshold):
            row["fixable"] = True
    ordered = sorted(rows.values(), key=lambda r: (-r["count"], r["code"]))
    if fmt == "json":
        return _json.dumps(ordered, indent=2) + "\n"
    width = max((len(str(r["count"])) for r in ordered), default=1)
    return "".join(
        f"{r['count']:>{width}}\t{r['code']}\t{'[*]' if r['fixable'] else '[ ]'} {r['name']}\n" for r in ordered
    )


def _report(result: RunResult, opts: CheckOptions, fmt: str, fix: bool, threshold, use_stdin: bool) -> int:
    out = sys.stderr if (use_stdin and fix and not opts.diff) else sys.stdout
    color = _color(out)
    textual = fmt in ("full", "concise")
    if opts.diff:
        for d in result.diffs:
            click.echo(d, nl=False)
        if result.fixed:
            click.echo(f"Would fix {_plural(result.fixed, 'error')}.", err=True)
        else:
            click.echo("No errors would be fixed.", err=True)
        status = EXIT_FINDINGS if result.diffs else EXIT_CLEAN
    else:
        result.diagnostics.sort(key=lambda d: d.sort_key())
        if opts.statistics:
            click.echo(_statistics(result, fmt, threshold), nl=False, file=out)
        else:
            from fastsqla_lint.output import RenderContext, render

            ctx = RenderContext(sources=result.sources, threshold=threshold, color=color)
            try:
                text = render(fmt, result.diagnostics, ctx)
            except KeyError:
                raise UsageProblem(f"the {fmt} output format is not available in this build") from None
            click.echo(text, nl=False, file=out)
        if opts.show_fixes and result.fixed_by_file:
            click.echo(f"Fixed {_plural(result.fixed, 'error')}:", err=True)
            for name, count in sorted(result.fixed_by_file.items()):
                click.echo(f"- {name}: {_plural(count, 'fix')}", err=True)
        if textual:
            for line in _summary(result, fix, threshold):
                click.echo(click.style(line, bold=True) if color and line.startswith(("Found", "Fixed")) else line, file=out)
        status = EXIT_FINDINGS if result.diagnostics else EXIT_CLEAN
    if opts.exit_zero:
        status = EXIT_CLEAN
    if result.internal_error:
        status = EXIT_ERROR
    return status


# -- rules ---------------------------------------------------------------------------------------


def _rule_info(rule) -> dict:
    return {
        "code": rule.code,
        "name": rule.name,
        "summary": rule.message,
        "fix": rule.fix_availability.value,
        "default": bool(rule.default_enabled),
        "url": rule.url(),
    }


@cli.command()
@click.argument("code")
@click.option("--output-format", type=click.Choice(("text", "json")), default="text")
def rule(code: str, output_format: str) -> None:
    """Print the documentation of rule CODE."""
    from fastsqla_lint import registry

    found = registry.get(code.strip())
    if found is None:
        _error(f"unknown rule code {code!r} (see `fastsqla-lint rules`)")
        sys.exit(EXIT_ERROR)
    if output_format == "json":
        import json

        info = _rule_info(found)
        info["documentation"] = found.documentation()
        click.echo(json.dumps(info, indent=2))
        return
    fix = {"always": "Fix is always available.", "sometimes": "Fix is sometimes available.", "none": "No fix."}
    state = "on by default" if found.default_enabled else "off by default (opt in with --extend-select)"
    click.echo(f"# {found.name} ({found.code})\n")
    click.echo(f"{fix[found.fix_availability.value]} The rule is {state}.\n")
    click.echo(found.documentation())


@cli.command(name="rules")
@click.option("--output-format", type=click.Choice(("text", "json")), default="text")
def rules_(output_format: str) -> None:
    """List every rule: code, name, fix availability, on or off by default."""
    from fastsqla_lint import registry

    infos = [_rule_info(r) for r in registry.all_rules()]
    if output_format == "json":
        import json

        click.echo(json.dumps(infos, indent=2))
        return
    width = max((len(i["name"]) for i in infos), default=4)
    click.echo(f"{'code':<7} {'name':<{width}}  {'fix':<9}  default")
    for i in infos:
        click.echo(f"{i['code']:<7} {i['name']:<{width}}  {i['fix']:<9}  {'on' if i['default'] else 'off'}")


# -- lsp, debug-config -----------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def lsp() -> None:
    """Run the language server on stdin/stdout."""
    try:
        from fastsqla_lint import lsp as server
    except ImportError as exc:
        _error(f"the language server is not available: {exc}")
        sys.exit(EXIT_ERROR)
    server.main()


@cli.command(name="debug-config")
@click.argument("path", type=click.Path(path_type=Path, exists=True), default=".")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
def debug_config(path: Path, config_file: Path | None) -> None:
    """Print the configuration that applies to PATH."""
    from fastsqla_lint import config as cfg
    try:
        config = cfg.load_config(path.absolute(), config_file)
    except cfg.ConfigError as exc:
        _error(str(exc))
        sys.exit(EXIT_ERROR)
    formatter = getattr(cfg, "format_config", None)
    click.echo(formatter(config) if formatter is not None else _format_config(config), nl=False)


def _format_config(config) -> str:
    from dataclasses import fields

    lines = []
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name == "versions":
            ranges = getattr(value, "ranges", {})
            value = {k: f"{v} ({v.source})" if v.source else str(v) for k, v in sorted(ranges.items())}
        lines.append(f"{f.name.replace('_', '-')} = {value!r}")
    return "\n".join(lines) + "\n"


# -- entry point -----------------------------------------------------------------------------------


def console() -> None:
    """The `fastsqla-lint` command: `main`, then an exit without Python's teardown.

    Freeing every module and object of the run at exit costs about 0.05 s, an eighth of a pre-commit run.
    As mypy does, the command flushes its output and leaves at once: every file it wrote is closed by
    then, and its worker processes are gone.
    """
    status = EXIT_CLEAN
    try:
        main()
    except SystemExit as exc:  # its status as Python would give it
        if isinstance(exc.code, int):
            status = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except ValueError:  # closed already: the language server's output, once its client has gone
            pass
        except OSError:  # the reader went away (`| head`) before the last of the output
            status = EXIT_ERROR
    os._exit(status)


def main(argv: list[str] | None = None) -> None:
    """The command, raising `SystemExit` with its status. Never shows a traceback: an unexpected error is
    reported and exits 2."""
    try:
        cli.main(args=argv, prog_name="fastsqla-lint")
    except SystemExit:
        raise
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        click.echo(f"fastsqla-lint: internal error: {type(exc).__name__}: {exc}", err=True)
        if os.environ.get("FASTSQLA_LINT_DEBUG"):
            import traceback

            traceback.print_exc()
        else:
            click.echo("Set FASTSQLA_LINT_DEBUG=1 to see the traceback, and please report it.", err=True)
        sys.exit(EXIT_ERROR)
