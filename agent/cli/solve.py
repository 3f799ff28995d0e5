"""`guild-agent solve TASK.yaml`: run the repair loop on one task and show every round."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from agent.atomic import write_text_atomic
from agent.cli import EXIT_FAIL, EXIT_OK, EXIT_UNAVAILABLE, fail, main
from agent.cli.options import (
    after_copy_option,
    candidates_option,
    enabled_fixes,
    feedback_option,
    max_rounds_option,
    max_tokens_option,
    model_options,
    no_fix_option,
    on_stuck_option,
    open_model,
    seed_option,
    temperature_option,
)
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import TRAJECTORY, FeedbackMode, RunResult, Trajectory, file_name
from agent.runs.index import record_run
from agent.runs.provenance import collect
from agent.tasks.spec import TaskError, load_task
from tools.go import ToolchainError, find_toolchain
from tools.warm import warm_unless_disabled


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so `finally` blocks and context managers run
    (temp workspaces are removed, logs closed). Exits 143, as a SIGTERM'd process does."""

    CODE = 128 + signal.SIGTERM

    def __init__(self) -> None:
        super().__init__(self.CODE)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` instead of killing the process outright.

    A second SIGTERM during the cleanup is ignored, so the cleanup finishes (SIGKILL
    still ends everything). Outside the main thread signals cannot be handled: no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class RoundPrinter:
    """Live, human view of the loop's events."""

    def __init__(self, console: Console, verbose: bool) -> None:
        self.c = console
        self.verbose = verbose

    def __call__(self, ev: dict[str, Any]) -> None:
        kind = ev["event"]
        p = self.c.print
        if kind == "start":
            name = ev["model"] if ev["model"].startswith(ev["backend"]) else (
                f"{ev['backend']}:{ev['model']}")
            p(f"[bold]{escape(ev['task'])}[/] · {escape(name)}"
              f" · feedback={ev['mode']}")
        elif kind == "request":
            s = ev["sampling"]
            many = f" for {ev['candidates']} answers" if ev.get("candidates") else ""
            p(f"[cyan]round {ev['round']}[/] asking the model{many} "
              f"(T={s['temperature']}, max {s['max_tokens']} tokens)")
            if self.verbose:
                p(escape(ev["messages"][-1]["content"]), style="dim")
        elif kind == "response":
            t = ev["tokens"]
            p(f"  model: {t['completion']} tokens in {ev['seconds']:.1f}s "
              f"({ev['tokens_per_second']:.1f} tok/s), prompt {t['prompt']} "
              f"({t['cached']} cached)")
            if self.verbose:
                p(escape(ev["text"]), style="dim")
        elif kind == "extract":
            for d in ev["dropped"]:
                p(f"  [yellow]moved aside[/] {escape(d)}")
            for n in ev["notes"]:
                p(f"  [dim]{escape(n)}[/]")
        elif kind == "format_error":
            p(f"  [red]format error[/]: {escape(ev['message'])}")
        elif kind == "fix":
            for f in ev["fixes"]:
                p(f"  [green]fixed[/] {escape(f['file'])}: {escape(f['name'])} "
                  f"{escape(f['detail'])}")
        elif kind == "check":
            r = ev["result"]
            tests = r["tests"]
            npass = sum(t["outcome"] == "pass" for t in tests)
            status = "[green]pass[/]" if r["passed"] else "[red]fail[/]"
            p(f"  check ({ev['suite']}, {ev['stage']}): {status} · {npass}/{len(tests)} tests"
              f" · {r['seconds']:.2f}s")
            for d in r["diagnostics"][: 3 if not self.verbose else 10]:
                loc = f"{d['file']}:{d['line']}: " if d.get("file") and d.get("line") else ""
                first = (d["message"] or "").splitlines()[0][:160] if d["message"] else ""
                p(f"    [yellow]{d['kind']}[/] {escape(loc + first)}")
        elif kind == "candidates":
            p(f"  {candidates_line(ev)}")
        elif kind == "stuck":
            p(f"  [magenta]stuck[/]: same failure again → {ev['action']}")
        elif kind == "copies":
            p(f"  [magenta]copies[/]: {escape(ev['note'])}")
        elif kind == "ask_afresh":
            p(f"  [magenta]candidate #{ev['after']} copied[/]: the rest of the round asks "
              "the task afresh")
        elif kind == "error":
            p(f"  [red]model error[/]: {escape(ev['message'])}")
        elif kind == "one_token":
            kept = (f"[green]kept[/] {escape(ev['kept'])}" if ev["kept"] else "none passes")
            what = "one-token changes" if ev["round"] else (
                "[cyan]round 0[/] one-token changes to the code as given")
            p(f"  [blue]{what}[/]: {ev['tried']} of {ev['candidates']} tried in "
              f"{ev['seconds']:.1f}s, {kept}")
        elif kind in ("trace", "values") and ev["lines"]:
            what = "where the code went" if kind == "trace" else "values before the failure"
            p(f"  [blue]{kind}[/] {escape(ev['test'])}: {what}, {len(ev['lines'])} line(s)")
            if self.verbose:
                for line in ev["lines"]:
                    p(f"    {escape(line)}", style="dim")


def candidates_line(ev: dict[str, Any]) -> str:
    """A round's candidates in one line: how many were tried, which was kept and why."""
    tried = ev["candidates"]
    best = tried[ev["chosen"]]
    why = ("passes" if best["passed"] else "feedback passes" if best["feedback_passed"]
           else "format error" if best["format_error"] else
           ("compiles" if best["progress"][0] > 0 else "does not compile")
           + (f", {best['failed_tests']} failing test(s)" if best["failed_tests"] else ""))
    stopped = {"passed": "; stopped at a pass", "tokens": "; token budget spent",
               "time": "; time budget spent"}.get(ev.get("stopped") or "", "")
    fresh = sum(1 for c in tried if c.get("fresh"))
    afresh = f" ({fresh} asked afresh)" if fresh else ""
    return (f"candidates: {len(tried)} tried{afresh}, {ev['distinct']} distinct, kept "
            f"#{ev['chosen']} ({why}){stopped}")


def write_outputs(out: Path, result: RunResult, extra: dict[str, Any] | None = None) -> None:
    """solution/, and result.json (`extra`: what produced it, for `runs` and `export`)."""
    sol = out / "solution"
    sol.mkdir(parents=True, exist_ok=True)
    for name, content in result.files.items():
        write_text_atomic(sol / name, content)
    write_text_atomic(out / "result.json", json.dumps(
        {**result.model_dump(mode="json", exclude={"files"}), **(extra or {})}, indent=2))


def default_out(task_id: str) -> Path:
    """A new folder runs/<time>-<task> (created here), never one an earlier run uses: two
    solves of one task in the same second get -2, -3…; the id is made a safe name."""
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{file_name(task_id)}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{base}: too many runs of this task in one second")


@main.command()
@click.argument("task_file", type=click.Path(path_type=Path))
@model_options
@max_rounds_option
@temperature_option
@seed_option
@feedback_option
@no_fix_option
@on_stuck_option
@after_copy_option
@candidates_option
@max_tokens_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Where the solution, trajectory.jsonl and result.json go "
                   "(default: runs/<time>-<task>).")
@click.option("--json", "as_json", is_flag=True, help="Print the result object on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Show prompts and model answers.")
def solve(task_file: Path, max_rounds: int, temperature: float, seed: int,
          feedback: str | None, no_fix: tuple[str, ...], on_stuck: str, after_copy: str,
          candidates: int, max_tokens: int | None, out_dir: Path | None, as_json: bool,
          verbose: bool, **model_kw: Any) -> None:
    """Solve TASK_FILE: generate, check with the Go toolchain, repair, repeat.

    Exit 0 solved, 1 not solved, 2 bad input, 3 model or toolchain unavailable, 130 on
    Ctrl-C, 143 on SIGTERM (the temp workspace is removed either way).
    """
    with sigterm_exits():
        _solve(task_file, max_rounds, temperature, seed, feedback, no_fix, on_stuck,
               after_copy, candidates, max_tokens, out_dir, as_json, verbose, model_kw)


def _solve(task_file: Path, max_rounds: int, temperature: float, seed: int,
           feedback: str | None, no_fix: tuple[str, ...], on_stuck: str, after_copy: str,
           candidates: int, max_tokens: int | None, out_dir: Path | None, as_json: bool,
           verbose: bool, model_kw: dict[str, Any]) -> None:
    try:
        task = load_task(task_file)
    except TaskError as exc:
        fail(str(exc))
    console = Console(stderr=True) if as_json else Console()
    try:
        find_toolchain()
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    model = open_model(model_kw, console=console)
    fixes = enabled_fixes(no_fix)
    config = LoopConfig(max_rounds=max_rounds, temperature=temperature, seed=seed,
                        feedback=FeedbackMode(feedback) if feedback else None, fixes=fixes,
                        on_stuck=on_stuck, after_copy=after_copy, candidates=candidates,
                        max_tokens=max_tokens)
    with console.status("warming the Go build cache (first run only)…"):
        warm_unless_disabled()
    try:
        out = out_dir or default_out(task.id)
        out.mkdir(parents=True, exist_ok=True)
        traj = Trajectory(out / TRAJECTORY)
    except OSError as exc:
        fail(f"--out: {exc.filename or ''}: {exc.strerror or exc}")
    record_run(out, kind="solve", subject=task.id, model=model.name)
    extra = {"kind": "solve", "task_file": str(task_file.resolve()),
             "provenance": collect(model, seeds=[seed]).model_dump(mode="json")}
    loop = RepairLoop(model, config, on_event=RoundPrinter(console, verbose))
    try:
        result = loop.run(problem_from_task(task), traj)
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        traj.event("interrupted")
        fail("interrupted", 130)
    except Terminated:
        with contextlib.suppress(OSError):
            traj.event("terminated")
        fail("terminated", Terminated.CODE)
    finally:
        traj.close()
    write_outputs(out, result, extra)
    verdict = "[bold green]solved[/]" if result.solved else "[bold red]not solved[/]"
    at = f" at round {result.solved_at_round}" if result.solved else ""
    console.print(
        f"{verdict}{at} · {result.rounds} round(s) · {result.tokens.completion} completion "
        f"tokens · {result.seconds:.1f}s · {escape(result.stop_reason)} · {escape(str(out))}")
    if result.error:
        console.print(f"[red]{escape(result.error)}[/]")
    if as_json:
        click.echo(json.dumps(result.public()))
    if result.error and result.rounds == 0:
        sys.exit(EXIT_UNAVAILABLE)
    sys.exit(EXIT_OK if result.solved else EXIT_FAIL)
