"""`guild-agent runs`: the solve, fix and bench runs in the index; `runs show` one of them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from agent.atomic import write_text_atomic
from agent.cli import EXIT_OK, fail, main, out
from agent.loop.trajectory import TRAJECTORY
from agent.runs.index import (
    AttemptView,
    RunEntry,
    RunsError,
    read_attempt,
    read_index,
    resolve,
    round_diffs,
    status,
)
from tools.paths import data_dir


@main.group(invoke_without_command=True)
@click.option("--kind", type=click.Choice(["bench", "solve", "fix"]), default=None,
              help="Only runs of this kind.")
@click.option("--limit", type=click.IntRange(1), default=30, show_default=True,
              help="The most recent N runs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
@click.pass_context
def runs(ctx: click.Context, kind: str | None, limit: int, as_json: bool) -> None:
    """List recent runs (newest last); `runs show ID|DIR` shows one run's rounds."""
    if ctx.invoked_subcommand is not None:
        return
    entries = [e for e in read_index() if kind is None or e.kind == kind][-limit:]
    rows = [status(e) for e in entries]
    if as_json:
        for st in rows:
            click.echo(json.dumps({**st.entry.model_dump(), "exists": st.exists,
                                   "outcome": st.outcome, "solved": st.solved}))
        return
    if not rows:
        out.print(f"no runs recorded yet in {escape(str(data_dir()))}", highlight=False)
        return
    table = Table(title=f"runs ({escape(str(data_dir()))})", title_justify="left")
    for col in ("id", "kind", "task / suite", "model", "outcome", "date", "folder"):
        table.add_column(col, overflow="fold")
    for st in rows:
        e = st.entry
        style = "green" if st.solved else "red" if st.solved is False else (
            "dim" if not st.exists else "")
        table.add_row(e.id, e.kind, escape(e.subject), escape(e.model),
                      f"[{style}]{escape(st.outcome)}[/]" if style else escape(st.outcome),
                      e.created.replace("T", " "), escape(e.dir))
    out.print(table)


@runs.command()
@click.argument("ref")
@click.option("--task", "only", default=None, help="Bench runs: only this task id.")
@click.option("--html", "as_html", is_flag=True,
              help="Write the run's report.html (and open it on a desktop).")
@click.option("--full", is_flag=True, help="Also print the prompts and the model's answers.")
def show(ref: str, only: str | None, as_html: bool, full: bool) -> None:
    """Print a run's rounds: code diffs, fixes, diagnostics, tokens and seconds.

    REF is an id from `guild-agent runs` (or its prefix), or a run folder.
    """
    try:
        entry = resolve(ref)
    except RunsError as exc:
        fail(str(exc))
    path = Path(entry.dir)
    if not path.is_dir():
        fail(f"run {entry.id}: its folder {path} is gone")
    if as_html:
        page = _write_html(entry, path)
        out.print(f"wrote {escape(str(page))}", highlight=False)
        if sys.stdout.isatty():
            click.launch(str(page))
        sys.exit(EXIT_OK)
    st = status(entry)
    out.print(f"[bold]{entry.kind}[/] {escape(entry.subject or path.name)} · "
              f"{escape(entry.model or '?')} · {escape(st.outcome)} · {escape(str(path))}",
              highlight=False)
    if entry.kind == "bench":
        _show_bench(path, only, full)
    else:
        _print_attempt(read_attempt(path / TRAJECTORY, label=entry.kind), full)


def _write_html(entry: RunEntry, path: Path) -> Path:
    from agent.bench.config import BenchError
    from agent.bench.report_html import HTML, attempt_page
    from agent.bench.runner import rebuild_report

    if entry.kind == "bench":
        try:
            rebuild_report(path)  # writes report.html with the rest
        except BenchError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.filename or path}: {exc.strerror or exc}")
        return path / HTML
    page = path / HTML
    try:
        write_text_atomic(page, attempt_page(path, entry.kind))
    except OSError as exc:
        fail(f"{exc.filename or page}: {exc.strerror or exc}")
    return page


def _show_bench(path: Path, only: str | None, full: bool) -> None:
    from agent.bench.config import RESULTS, trajectory_file
    from agent.bench.results import read_records

    try:
        records = read_records(path / RESULTS) if (path / RESULTS).is_file() else []
    except (OSError, ValueError) as exc:
        fail(f"{path / RESULTS}: {exc}")
    if only is not None:
        records = [r for r in records if r.task == only]
        if not records:
            fail(f"no attempt of task {only!r} in {path}")
    for rec in records:
        traj = path / trajectory_file(rec.task, rec.mode.value, rec.sample)
        if not traj.is_file():
            continue  # single shots read off repair's round 1 have no log of their own
        r = rec.result
        verdict = (f"[green]solved r{r.solved_at_round}[/]" if r.solved else
                   "[red]broke[/]" if rec.outcome == "error" else "[red]not solved[/]")
        out.rule(f"{escape(rec.task)} · {rec.mode.value}"
                 + (f" {rec.sample + 1}" if rec.mode.value == "sample" else ""))
        out.print(f"{verdict} · {r.rounds} round(s) · {r.tokens.completion} completion tokens"
                  f" · {r.seconds:.1f} s · {escape(r.stop_reason or '—')}", highlight=False)
        _print_attempt(read_attempt(traj, task=rec.task), full)


def _print_attempt(view: AttemptView, full: bool) -> None:
    if view.bad_lines:
        out.print(f"[yellow]{view.bad_lines} unreadable trajectory line(s) skipped[/]")
    for r, diff in zip(view.rounds, round_diffs(view), strict=True):
        status = ("[green]pass[/]" if r.passed else "[yellow]format error[/]"
                  if r.format_error is not None else "[red]fail[/]")
        out.print(f"[bold cyan]round {r.round}[/] {status} · {r.completion_tokens} tokens · "
                  f"model {r.model_seconds:.1f} s · checks {r.check_seconds:.1f} s",
                  highlight=False)
        if full:
            out.print(escape(r.prompt), style="dim", highlight=False)
            out.print(escape(r.response), style="dim", highlight=False)
        for line in diff.splitlines():
            style = ("bold" if line.startswith(("+++", "---")) else "green"
                     if line.startswith("+") else "red" if line.startswith("-") else
                     "cyan" if line.startswith("@@") else None)
            out.print(escape(line), style=style, highlight=False, soft_wrap=True)
        if r.format_error is not None:
            out.print(f"  format error: {escape(r.format_error)}", highlight=False)
        for f in r.fixes:
            out.print(f"  [green]fixed[/] {escape(f)}", highlight=False)
        for ch in r.checks:
            out.print(f"  check ({escape(ch.suite)}, {escape(ch.stage)}): "
                      f"{'pass' if ch.passed else 'fail'} · {ch.tests_line}", highlight=False)
            for d in ch.diagnostics[:10]:
                loc = f"{d['file']}:{d['line']}: " if d.get("file") and d.get("line") else ""
                msg = (d.get("message") or "").splitlines()
                out.print(f"    [yellow]{escape(d.get('kind') or '')}[/] "
                          f"{escape(loc + (msg[0][:200] if msg else ''))}", highlight=False)
        for e in r.events:
            out.print(f"  [magenta]{escape(e)}[/]", highlight=False)
    if view.error:
        out.print(f"[red]{escape(view.error)}[/]", highlight=False)
