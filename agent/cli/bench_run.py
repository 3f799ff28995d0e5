"""`guild-agent bench SUITE`: single-shot, repair and resampling on one suite, one model.

Registered as the `bench` group's `run` command, which the group falls through to, so
`guild-agent bench SUITE …` and `guild-agent bench run SUITE …` are the same.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from agent.bench.attempt import ModelFailed
from agent.bench.config import (
    MACHINE_ERRNOS,
    BenchConfig,
    BenchError,
    BenchStopped,
    Mode,
    os_error_line,
    parse_modes,
    select_tasks,
    tasks_digest,
)
from agent.bench.executors import ClusterUnavailable, ModelSpec, RayExecutor, ray_module
from agent.bench.report import REPORT
from agent.bench.results import AttemptRecord
from agent.bench.runner import BenchRun
from agent.bench.stats import Summary
from agent.cli import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, fail
from agent.cli.bench import bench
from agent.cli.config import resolve_model
from agent.cli.options import (
    after_copy_option,
    candidates_option,
    enabled_fixes,
    feedback_option,
    max_rounds_option,
    max_tokens_option,
    model_options,
    no_fix_option,
    open_model,
    seed_option,
)
from agent.cli.solve import Terminated, sigterm_exits
from agent.loop.trajectory import FeedbackMode, file_name
from agent.models.base import DEFAULT_SPECULATION
from agent.tasks.spec import TaskError
from agent.tasks.suites import load_suite
from tools.go import ToolchainError, find_toolchain
from tools.warm import warm_unless_disabled


class LiveProgress:
    """Attempts done, whole tasks done / left, running pass rate per mode, ETA."""

    def __init__(self, console: Console, config: BenchConfig, done: list[AttemptRecord]
                 ) -> None:
        self.config = config
        per_task = sum(config.samples if m is Mode.sample else 1 for m in config.modes)
        self.per_task = per_task
        self.attempts_left: dict[str, int] = {t: per_task for t in config.tasks}
        self.solved: dict[str, int] = {m.value: 0 for m in config.modes}
        self.seen: dict[str, int] = {m.value: 0 for m in config.modes}
        self.progress = Progress(
            TextColumn("[bold]bench[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[tasks]}"), TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False)
        total = per_task * len(config.tasks)
        self.bar = self.progress.add_task("bench", total=total, tasks="", rates="")
        for rec in done:
            self._count(rec)
        # Resumed attempts count as done but took no time now: `reset` starts the clock
        # here, so the ETA's rate comes from this session's attempts only.
        self.progress.reset(self.bar, total=total, completed=len(done), **self._fields())

    def _count(self, rec: AttemptRecord) -> None:
        self.attempts_left[rec.task] = self.attempts_left.get(rec.task, 1) - 1
        self.seen[rec.mode.value] += 1
        self.solved[rec.mode.value] += rec.result.solved

    def _fields(self) -> dict[str, str]:
        done = sum(1 for v in self.attempts_left.values() if v <= 0)
        rates = "  ".join(f"{m} {self.solved[m]}/{self.seen[m]}" for m in self.seen)
        return {"tasks": f"tasks {done} done, {len(self.attempts_left) - done} left",
                "rates": rates}

    def __call__(self, rec: AttemptRecord) -> None:
        self._count(rec)
        self.progress.update(self.bar, advance=1, **self._fields())

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def print_summary(console: Console, summary: Summary, out: Path) -> None:
    table = Table(title=f"bench {summary.suite} · {summary.model}", title_justify="left")
    for col in ("mode", "solved", "pass rate", "by round / pass@k", "completion tok",
                "compute s"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    broken = sum(ms.broken for ms in summary.modes.values())
    for name, ms in summary.modes.items():
        if ms.solved_by_round:
            extra = " ".join(f"r{r}:{n}" for r, n in ms.solved_by_round.items())
        elif ms.pass_at_k:
            extra = " ".join(f"@{k}:{v:.2f}" for k, v in ms.pass_at_k.items())
        else:
            extra = f"raw {ms.raw_solved}" if ms.raw_solved is not None else ""
        table.add_row(name, f"{ms.solved}/{ms.tasks}", f"{100 * ms.pass_rate:.1f}%", extra,
                      str(ms.completion_tokens), f"{ms.model_seconds + ms.check_seconds:.1f}")
    console.print(table)
    if broken:
        first = summary.broken[0]
        console.print(f"[yellow]{broken} attempt(s) broke[/] (recorded as errors, not "
                      f"passes), e.g. {escape(first.task)} ({first.mode.value}): "
                      f"{escape(first.message)}")
    console.print(f"report: {escape(str(out / REPORT))}")


def default_out(suite: str) -> Path:
    return Path("runs") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{file_name(suite)}"


def fail_os(exc: OSError, out: Path) -> None:
    """A file system error as one line: the machine's fault (disk full) or the user's."""
    if exc.errno in MACHINE_ERRNOS:
        fail(f"{os_error_line(exc)}; recorded attempts in {out} are kept (continue with "
             f"--resume --out {out})", EXIT_UNAVAILABLE)
    fail(f"{os_error_line(exc)}", EXIT_USAGE)


@bench.command("run")
@click.argument("suite", type=click.Path(path_type=Path))
@model_options
@click.option("--modes", default="single,repair,sample", show_default=True,
              help="Comma-separated: single (one shot), repair (the loop), sample (n "
                   "independent samples, pass@k).")
@max_rounds_option
@feedback_option
@after_copy_option
@candidates_option
@click.option("--samples", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="Samples per task in sample mode (pass@k for k ≤ this).")
@click.option("--sample-temperature", type=click.FloatRange(0, 2), default=0.8,
              show_default=True)
@seed_option
@max_tokens_option
@no_fix_option
@click.option("--tasks", "task_filter", default=None,
              help="Only tasks whose id matches one of these comma-separated ids or globs.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Only the first N (selected) tasks.")
@click.option("--gocode", type=click.Path(path_type=Path), default=None,
              help="Local Go module sources for suites whose tests import testify.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Run directory (default: runs/bench-<time>-<suite>).")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out: skip recorded attempts (same config only).")
@click.option("--jobs", type=click.IntRange(1, 4096), default=None,
              help="Attempts in flight: one task's Go checks overlap another's generation "
                   "(default 2, at most 32; with --executor ray, the cluster's CPUs, and "
                   "with a served model the most requests its server sees at once).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where attempts run: threads here, or one Ray task per attempt.")
@click.option("--ray-address", default=None, envvar="RAY_ADDRESS",
              help="Ray cluster to join (e.g. ray://head:10001 or head:6379; default: "
                   "RAY_ADDRESS, else a new local instance).")
@click.option("--ray-retries", type=click.IntRange(0, 20), default=2, show_default=True,
              help="Reruns of an attempt whose Ray worker died; then it is recorded as "
                   "broken.")
@click.option("--ray-cpus", type=click.FloatRange(0.01, 256), default=1.0, show_default=True,
              help="CPUs each attempt reserves on a Ray node (with llama-cpp: its "
                   "--threads, so a node loads as many models as it has room for).")
@click.option("--separate-single", is_flag=True,
              help="Generate single-shot attempts on their own instead of reading them off "
                   "greedy repair's first round (the same generation).")
@click.option("--no-warm", is_flag=True, help="Do not warm the shared Go build cache first.")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json on stdout.")
def run(suite: Path, modes: str, max_rounds: int, feedback: str | None, after_copy: str,
        candidates: int, samples: int,
        sample_temperature: float, seed: int, max_tokens: int | None, no_fix: tuple[str, ...],
        task_filter: str | None, limit: int | None, gocode: Path | None,
        out_dir: Path | None, resume: bool, jobs: int | None, executor: str,
        ray_address: str | None, ray_retries: int, ray_cpus: float, separate_single: bool,
        no_warm: bool, as_json: bool, **model_kw: Any) -> None:
    """Benchmark SUITE: single-shot vs the repair loop vs resampling, at equal cost.

    Exit 0 when the run completes (whatever the pass rate), 2 on bad input, 3 when the
    model or the Go toolchain is unavailable.
    """
    from agent.models import default_backend

    console = Console(stderr=True)
    if resume and out_dir is None:
        fail("--resume needs --out DIR (the run to continue)")
    try:
        mode_list = parse_modes(modes)
        loaded = load_suite(suite, gocode=gocode)
        tasks = select_tasks(loaded.tasks, task_filter, limit)
    except (BenchError, TaskError) as exc:
        fail(str(exc))
    fixes = enabled_fixes(no_fix)
    backend = model_kw.get("backend") or ("replay" if model_kw.get("replay")
                                          else default_backend())
    replay = model_kw.get("replay")
    adapter = model_kw.get("adapter")
    config = BenchConfig(
        suite=str(suite), tasks=[t.id for t in tasks], tasks_digest=tasks_digest(tasks),
        modes=mode_list, max_rounds=max_rounds,
        feedback=FeedbackMode(feedback) if feedback else None, after_copy=after_copy,
        candidates=candidates, samples=samples,
        sample_temperature=sample_temperature, seed=seed, max_tokens=max_tokens,
        fixes=fixes, backend=backend, model=model_kw.get("model_name"),
        adapter=str(adapter) if adapter else None, replay=str(replay) if replay else None,
        task_filter=task_filter, limit=limit, single_from_repair=not separate_single)
    out = out_dir or default_out(loaded.name)
    if executor == "local" and jobs is not None and jobs > 32:
        fail("--jobs above 32 needs --executor ray")
    if executor == "ray" and backend == "replay":
        fail("--backend replay answers in call order, which workers on a cluster cannot "
             "keep; run it with --executor local")
    if executor == "ray":
        try:
            ray_module()  # a missing extra is bad input, said before anything is made
        except BenchError as exc:
            fail(str(exc))
    ray_opts = (dict(address=ray_address, jobs=jobs, max_retries=ray_retries,
                     cpus_per_attempt=ray_cpus, warm=not no_warm) if executor == "ray"
                else None)
    try:
        runner = BenchRun(config, tasks, out, jobs=jobs or 2, resume=resume)
    except BenchError as exc:
        fail(str(exc))
    except OSError as exc:
        fail_os(exc, out)
    with sigterm_exits(), runner:
        _run(runner, config, loaded.name, tasks, mode_list, model_kw, console, out,
             no_warm=no_warm, as_json=as_json, ray_opts=ray_opts)


def _run(runner: BenchRun, config: BenchConfig, name: str, tasks: list, mode_list: list[Mode],
         model_kw: dict[str, Any], console: Console, out: Path, *, no_warm: bool,
         as_json: bool, ray_opts: dict[str, Any] | None = None) -> None:
    """The run proper, with the folder locked and SIGTERM raising `Terminated`."""
    try:
        find_toolchain()
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    model = open_model(model_kw, console=console)
    if ray_opts is not None:
        runner.executor = _ray_executor(model_kw, ray_opts)
    if not no_warm:
        try:
            with console.status("warming the Go build cache (first run only)…"):
                warm_unless_disabled()
        except OSError as exc:
            fail_os(exc, out)
    done = list(runner.log.records.values())
    left = len(runner.pending())
    console.print(f"bench [bold]{escape(name)}[/]: {len(tasks)} task(s) · "
                  f"{', '.join(m.value for m in mode_list)} · {escape(model.name)} · "
                  f"{left} attempt(s) to run" + (f", {len(done)} recorded" if done else "")
                  + f" · {escape(str(out))}")
    try:
        with LiveProgress(console, config, done) as progress:
            summary = runner.run(model, on_record=progress)
    except ModelFailed as exc:
        _finish_quietly(runner, model.name)
        fail(f"the model gave no answer: {exc}; finished attempts are saved, rerun with "
             f"--resume --out {out}", EXIT_UNAVAILABLE)
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except BenchStopped as exc:
        _finish_quietly(runner, model.name)
        fail(f"{exc}; finished attempts are saved, continue with --resume --out {out}",
             EXIT_UNAVAILABLE)
    except BenchError as exc:
        fail(str(exc))
    except OSError as exc:
        fail_os(exc, out)
    except KeyboardInterrupt:
        fail(f"interrupted; continue with --resume --out {out}", 130)
    except Terminated:
        fail(f"terminated; continue with --resume --out {out}", Terminated.CODE)
    print_summary(console, summary, out)
    if as_json:
        click.echo(json.dumps(summary.model_dump(mode="json")))
    sys.exit(EXIT_OK)


def _ray_executor(model_kw: dict[str, Any], ray_opts: dict[str, Any]) -> RayExecutor:
    """The Ray executor, its workers opening the model the driver just opened."""
    choice = resolve_model(model_kw, probe=True)  # as open_model settled it
    adapter = model_kw.get("adapter")
    spec = ModelSpec(backend=choice.backend, model=choice.model,
                     adapter=str(adapter) if adapter else None, base_url=choice.base_url,
                     api_key=choice.api_key, threads=model_kw.get("threads"),
                     speculation=model_kw.get("speculation") or DEFAULT_SPECULATION,
                     draft_model=model_kw.get("draft_model"))
    try:
        executor = RayExecutor(spec, **ray_opts)
        executor.connect()
    except BenchError as exc:
        fail(str(exc))
    except ClusterUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    return executor


def _finish_quietly(runner: BenchRun, model_name: str) -> None:
    """The summary of what was recorded, if the disk still takes it: the error that
    stopped the run is the one worth reporting."""
    with contextlib.suppress(OSError, BenchError):
        runner.finish(model_name)
