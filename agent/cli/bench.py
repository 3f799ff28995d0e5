"""`guild-agent bench`: run suites (`bench SUITE`) and check them (`bench verify SUITE`).

`bench` is a group whose first argument falls through to its `run` command when it is
not a subcommand's name, so `guild-agent bench SUITE --backend oracle` and
`guild-agent bench verify SUITE` live side by side. The run mode registers itself with
`@bench.command("run")`; until it exists, no fall-through happens.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli import EXIT_FAIL, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, err, fail, main, out
from agent.tasks.spec import TaskError
from agent.tasks.suites import load_suite
from agent.tasks.verify import SuiteVerification, TaskVerification, verify_tasks
from tools.go import ToolchainError

DEFAULT_COMMAND = "run"


class BenchGroup(click.Group):
    """A group that treats an unknown first argument as the default command's argument."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if (args and args[0] not in self.commands and args[0] not in ctx.help_option_names
                and DEFAULT_COMMAND in self.commands):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


@main.group(cls=BenchGroup)
def bench() -> None:
    """Benchmark suites of Go tasks; `bench verify SUITE` checks a suite's tests first."""


@bench.command()
@click.argument("suite", type=click.Path(path_type=Path))
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Tasks checked at once (the Go toolchain is the bottleneck).")
@click.option("--task", "only", multiple=True, help="Verify only this task id (repeatable).")
@click.option("--gocode", type=click.Path(path_type=Path), default=None,
              help="Root of local Go module sources for suites whose tests import testify "
                   "(default: $GUILD_AGENT_GOCODE, else /usr/share/gocode/src).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(suite: Path, workers: int, only: tuple[str, ...], gocode: Path | None,
           as_json: bool) -> None:
    """Check that every task's reference passes and a zero-value solution fails.

    SUITE is a directory of task files, a task file, or a JSONL file (our tasks, the
    research log's format, or HumanEval-X Go). Exit 0 when every task is sound.
    """
    try:
        loaded = load_suite(suite, gocode=gocode)
    except TaskError as exc:
        fail(str(exc))
    tasks = loaded.tasks
    if only:
        unknown = sorted(set(only) - {t.id for t in tasks})
        if unknown:
            fail(f"{suite}: no task with id {unknown[0]!r}")
        tasks = [t for t in tasks if t.id in only]
    try:
        result = _run_with_progress(tasks, loaded.name, workers, quiet=as_json)
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    # Import fixes made while loading count as fixes the task needed, like those in verify.
    for t in result.tasks:
        t.fixes = loaded.fixes.get(t.task, []) + t.fixes
    if as_json:
        click.echo(json.dumps(result.public()))
    else:
        _print_table(result)
    sys.exit(EXIT_OK if result.ok else EXIT_FAIL)


def _run_with_progress(tasks: list, name: str, workers: int, *, quiet: bool
                       ) -> SuiteVerification:
    if quiet or not err.is_terminal:
        return verify_tasks(tasks, suite=name, workers=workers)
    lock = threading.Lock()
    with Progress(TextColumn("verify {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        bar = progress.add_task(name, total=len(tasks))

        def done(_: TaskVerification) -> None:
            with lock:
                progress.advance(bar)

        return verify_tasks(tasks, suite=name, workers=workers, on_result=done)


def _print_table(result: SuiteVerification) -> None:
    table = Table(title=f"bench verify {result.suite}", title_justify="left")
    table.add_column("task", overflow="fold")
    table.add_column("reference")
    table.add_column("zero-value solution")
    table.add_column("s", justify="right")
    table.add_column("notes", overflow="fold")
    yes, no, skip = "[green]passes[/]", "[red]FAILS[/]", "[dim]-[/]"
    for t in result.tasks:
        ref = skip if t.reference_passed is None else (yes if t.reference_passed else no)
        if t.wrong_failed is None:
            wrong = skip
        elif t.wrong_failed:
            wrong = "[green]fails[/]" + ("" if t.wrong_built is not False else " (build)")
        else:
            wrong = "[red]PASSES[/]"
        notes = [t.problem] if t.problem else []
        if t.starter_failed:
            notes.append("starter files fail, as they should")
        notes += t.details
        if t.fixes:
            notes.append(f"{len(t.fixes)} import fix(es): "
                         + ", ".join(f"{f.file} {f.detail}" for f in t.fixes[:3]))
        table.add_row(t.task, ref, wrong, f"{t.seconds:.1f}", "\n".join(notes))
    out.print(table)
    bad = result.failures
    status = "[bold green]OK[/]" if not bad else f"[bold red]{len(bad)} FAILED[/]"
    out.print(f"{status} {len(result.tasks) - len(bad)}/{len(result.tasks)} tasks sound")


@bench.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print summary.json on stdout.")
def report(run_dir: Path, as_json: bool) -> None:
    """Rewrite summary.json, report.md and the plot of RUN_DIR from its recorded results
    (a killed run, or one recorded by an older version). Runs nothing."""
    from agent.bench.config import MACHINE_ERRNOS, BenchError, os_error_line
    from agent.bench.runner import rebuild_report

    try:
        summary = rebuild_report(run_dir)
    except BenchError as exc:
        fail(str(exc))
    except OSError as exc:  # disk full while writing the summary: results.jsonl stays
        fail(f"{os_error_line(exc)}; {run_dir / 'results.jsonl'} is unchanged",
             EXIT_UNAVAILABLE if exc.errno in MACHINE_ERRNOS else EXIT_USAGE)
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
        return
    done = "" if summary.complete else (
        f" (incomplete: {summary.attempts_done}/{summary.attempts_planned} attempts)")
    for name, ms in summary.modes.items():
        out.print(f"{name}: {ms.solved}/{ms.tasks} solved{done}", highlight=False)
    out.print(f"wrote {run_dir / 'report.md'}", highlight=False)


@bench.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Compare runs of different suites anyway.")
@click.option("--svg", "svg_path", type=click.Path(path_type=Path), default=None,
              help="Also write the plot (solved per run and mode) to this SVG file.")
@click.option("--all-tasks", is_flag=True, help="List every task, not only those the runs "
                                                "disagree on.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(run_dirs: tuple[Path, ...], force: bool, svg_path: Path | None, all_tasks: bool,
            as_json: bool) -> None:
    """Compare bench runs of one suite: solved per mode, and per task wins and losses
    against the first run."""
    from agent.atomic import write_text_atomic
    from agent.bench.config import BenchError
    from agent.bench.report import compare_runs, comparison_svg

    try:
        c = compare_runs(list(run_dirs), force=force)
    except BenchError as exc:
        fail(str(exc))
    if svg_path is not None:
        try:
            write_text_atomic(svg_path, comparison_svg(c))
        except OSError as exc:
            fail(f"--svg {svg_path}: {exc.strerror or exc}")
    if as_json:
        click.echo(c.model_dump_json(exclude={"runs": {"__all__": {"summary"}}}))
        return
    table = Table(title=f"bench compare · {c.runs[0].suite}" + (
        "" if c.same_suite else " (different suites, --force)"), title_justify="left")
    for col in ("run", "mode", "solved", "pass rate", "completion tok",
                f"wins / losses vs {c.runs[0].label}"):
        table.add_column(col, overflow="fold")
    for m in c.modes:
        first = m.run == c.runs[0].label
        table.add_row(escape(m.run), m.mode, f"{m.solved}/{m.tasks}",
                      f"{100 * m.pass_rate:.1f}%", str(m.completion_tokens),
                      "—" if first else f"[green]+{m.wins}[/] / [red]-{m.losses}[/]")
    out.print(table)
    labels = [r.label for r in c.runs]
    shown = [t for t in c.tasks if all_tasks or len({
        repr(c.outcomes[t].get(lab)) for lab in labels}) > 1]
    if shown:
        per = Table(title="per task (✓ solved, ✗ not, · not run), modes "
                          "single/repair/sample", title_justify="left")
        per.add_column("task", overflow="fold")
        for lab in labels:
            per.add_column(escape(lab), overflow="fold")
        for t in shown:
            cells = []
            for lab in labels:
                got = c.outcomes[t].get(lab, {})
                cells.append(" ".join(f"{m[:1]}{'·' if v is None else '✓' if v else '✗'}"
                                      for m, v in got.items()))
            per.add_row(escape(t), *cells)
        out.print(per)
    same = len(c.tasks) - len(shown)
    if not all_tasks:
        out.print(f"{same} task(s) with the same outcome in every run not listed "
                  "(--all-tasks lists them)", highlight=False)
    if svg_path is not None:
        out.print(f"wrote {escape(str(svg_path))}", highlight=False)


@bench.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--fix", "fixes", multiple=True,
              help="Only this fix: switched off if the run had it on, else added "
                   "(repeatable; default: every round-1 fix, in turn).")
@click.option("--suite", type=click.Path(path_type=Path), default=None,
              help="The suite the run used (default: the path in run.json).")
@click.option("--jobs", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Answers checked at once (the Go toolchain is the bottleneck).")
@click.option("--one-token", "one_token", is_flag=True,
              help="Also search each answer that builds and fails as a repair run's round 1 "
                   "does (up to a minute a task).")
@click.option("--json", "as_json", is_flag=True, help="Print the ablation as JSON.")
def ablate(run_dir: Path, fixes: tuple[str, ...], suite: Path | None, jobs: int,
           one_token: bool, as_json: bool) -> None:
    """What each deterministic fix buys single shot: RUN_DIR's recorded round-1 answers
    checked again with each fix switched off, with no model call. Writes ablation.md and
    ablation.json into RUN_DIR (with --fix, ablation-NAME.md and .json, so the whole
    table stays)."""
    from agent.atomic import write_text_atomic
    from agent.bench.ablate import ablate as run_ablation
    from agent.bench.config import BenchError
    from agent.bench.rundir import load_run

    try:
        run = load_run(run_dir, suite)
        with err.status("checking the recorded answers again…") as status:
            done = [0]

            def tick(task: str) -> None:
                done[0] += 1
                status.update(f"checking the recorded answers again… {done[0]} checked")

            result = run_ablation(run, list(fixes) or None, jobs=jobs, one_token=one_token,
                                  on_check=tick)
    except BenchError as exc:
        fail(str(exc))
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    text = result.markdown()
    # Known fix names only (run_ablation refuses others): safe in a file name.
    stem = "ablation" + "".join(f"-{f}" for f in sorted(set(fixes)))
    try:
        write_text_atomic(run_dir / f"{stem}.json", result.model_dump_json(indent=2) + "\n")
        write_text_atomic(run_dir / f"{stem}.md", text)
    except OSError as exc:
        fail(f"{run_dir}: cannot write the ablation: {exc.strerror or exc}", EXIT_UNAVAILABLE)
    if as_json:
        click.echo(result.model_dump_json())
        return
    click.echo(text, nl=False)
    out.print(f"wrote {escape(str(run_dir / (stem + '.md')))}", highlight=False)
