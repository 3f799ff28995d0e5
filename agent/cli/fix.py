"""`guild-agent fix FILE.go …`: repair or change a user's own Go files, with them in control.

Exit codes: 0 fixed (applied, or shown with --dry-run) or undone; 1 not fixed, declined or
refused; 2 bad input; 3 model or toolchain unavailable; 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from agent.cli import EXIT_FAIL, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, fail, main
from agent.cli.options import (
    max_rounds_option,
    model_options,
    open_model,
    seed_option,
    temperature_option,
)
from agent.cli.solve import RoundPrinter
from agent.fix.session import (
    FixError,
    FixRequest,
    FixSession,
    FixSite,
    StaleFileError,
    apply_changes,
    changed_files,
    git_changed_note,
    locate,
    undo,
    unified_diff,
    unwritable,
)
from agent.golang.feedback import render_feedback, summary_line
from agent.loop.config import LoopConfig
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import RunResult, Trajectory
from agent.models.base import Model
from agent.runs.index import record_run
from tools.diagnostics import CheckResult
from tools.go import ToolchainError, find_toolchain
from tools.paths import cache_dir
from tools.warm import warm_unless_disabled

EXIT_INTERRUPTED = 130
CHOICES = {"a": "apply", "s": "show", "k": "keep", "q": "quit"}


def _as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def ask(text: str, **kw: Any) -> str | None:
    """click.prompt, except that Ctrl-C stays an interrupt (exit 130, as documented) and
    end of input is None (the caller's safe answer)."""
    try:
        return click.prompt(text, **kw)
    except click.Abort as exc:
        # click turns both into Abort; the original is still the exception's context.
        if isinstance(exc.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        return None


def check_line(result: CheckResult) -> str:
    """One line: did build, vet and the tests pass."""
    top = [t for t in result.tests if "/" not in t.name]
    npass = sum(t.outcome.value == "pass" for t in top)
    tests = f"{npass}/{len(top)} tests" if top else "no tests"
    if result.passed:
        return f"[green]passes[/]: builds, vet clean, {tests} pass"
    return f"[red]fails[/]: {escape(summary_line(result))}" + (f" · {tests} pass" if top else "")


def print_diff(console: Console, name: str, old: str, new: str) -> None:
    for line in unified_diff(name, old, new).splitlines():
        style = ("bold" if line.startswith(("+++", "---")) else
                 "green" if line.startswith("+") else "red" if line.startswith("-") else
                 "cyan" if line.startswith("@@") else None)
        console.print(escape(line), style=style, highlight=False, soft_wrap=True)


def run_dir(out: Path | None, name: str) -> Path:
    # Not the working directory: it is usually the user's repository, which fix must not touch.
    return out or cache_dir() / "fix-runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


def _index(traj: Trajectory, names: str, model: Model) -> None:
    if traj.path is not None:
        record_run(traj.path.parent, kind="fix", subject=names, model=model.name)


class FixCommand:
    """The command's state across rounds of looping and the user's answers."""

    def __init__(self, session: FixSession, model: Model, config: LoopConfig,
                 console: Console, traj: Trajectory, verbose: bool) -> None:
        self.s = session
        self.model = model
        self.config = config
        self.c = console
        self.traj = traj
        self.verbose = verbose
        self.files = dict(session.original)  # the best candidate so far
        self.result: RunResult | None = None
        self.check: CheckResult | None = None

    def loop(self, feedback: str, note: str | None = None) -> None:
        loop = RepairLoop(self.model, self.config, checker_factory=self.s.checker_factory,
                          on_event=RoundPrinter(self.c, self.verbose),
                          parser=self.s.parse_answer)
        result = loop.run(self.s.problem(self.files, feedback=feedback, note=note), self.traj)
        self.result = result
        proposed = {n: c for n, c in result.files.items() if n in self.s.original}
        if proposed:
            self.files.update(proposed)
            # The verdict of the files as they will be written, not of an earlier round.
            self.check = self.s.checker.verdict(self.files)

    def show(self) -> dict[str, str]:
        changes = changed_files(self.s.original, self.files)
        targets = {t.name: t for t in self.s.site.targets}
        for name, new in changes.items():
            print_diff(self.c, name, self.s.original[name], new)
            if targets[name].kept:
                self.c.print(f"[dim]{escape(name)}: written with "
                             f"{', '.join(targets[name].kept)}, as it is now[/]")
        if self.check is not None:
            self.c.print(f"check: {check_line(self.check)}")
        return changes

    def full(self, changes: dict[str, str]) -> None:
        for name, new in changes.items():
            self.c.rule(escape(name))
            self.c.print(Syntax(new, "go", line_numbers=True, word_wrap=True))


@main.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--instruction", "-i", default=None,
              help="The change to make (default: make the package build and pass its tests).")
@click.option("--run", "run_re", default=None, help="Only tests matching this regex (go -run).")
@max_rounds_option
@click.option("--yes", "-y", is_flag=True, help="Apply a passing fix without asking.")
@click.option("--apply-failing", is_flag=True,
              help="With --yes: apply the last candidate even if it does not pass.")
@click.option("--dry-run", is_flag=True, help="Only show the diff; never write.")
@click.option("--undo", "do_undo", is_flag=True,
              help="Restore FILES from the backup the last applied fix kept.")
@click.option("--force", is_flag=True, help="With --undo: restore even if edited since.")
@click.option("--block-lines", type=click.IntRange(1, 100000), default=150, show_default=True,
              help="Files longer than this are edited with search/replace blocks.")
@temperature_option
@seed_option
@click.option("--test-timeout", type=click.FloatRange(1, 3600), default=60.0,
              show_default=True, help="Seconds for the package's tests per check.")
@click.option("--race", is_flag=True, help="Run the tests with -race (needs a C compiler).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Where trajectory.jsonl goes (default: the user cache, fix-runs/).")
@click.option("-v", "--verbose", is_flag=True, help="Show prompts and model answers.")
@model_options
def fix(files: tuple[Path, ...], instruction: str | None, run_re: str | None,
        max_rounds: int, yes: bool, apply_failing: bool, dry_run: bool, do_undo: bool,
        force: bool, block_lines: int, temperature: float, seed: int, test_timeout: float,
        race: bool, out_dir: Path | None, verbose: bool, **model_kw: Any) -> None:
    """Fix FILES (one package's .go files) in a loop; you decide what is written."""
    console = Console()
    if do_undo:
        _undo(console, list(files), force)
    try:
        site = locate(list(files))
    except FixError as exc:
        fail(str(exc), EXIT_USAGE)
    if dry_run:
        site = site.model_copy(update={"dry_run": True})  # apply_changes refuses outright
    elif (problem := unwritable(site)) is not None:
        fail(problem, EXIT_USAGE)  # before any round: the answer could never be written
    if instruction is not None and not instruction.strip():
        fail("--instruction is empty")
    try:
        find_toolchain()
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    model = open_model(model_kw, console=console)
    # A closed terminal or a kill takes the Ctrl-C path: the scratch copy is removed and a
    # half-done apply is rolled back instead of the process dying mid-way.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _as_interrupt)
    try:
        sys.exit(_fix(console, site, model, FixRequest(
            instruction=instruction, run=run_re, block_lines=block_lines,
            test_timeout=test_timeout, race=race), LoopConfig(
                max_rounds=max_rounds, temperature=temperature, seed=seed),
            yes=yes, apply_failing=apply_failing, dry_run=dry_run, out=out_dir,
            verbose=verbose))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: your files are as they were")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        # A disk that fills or a folder that turns read-only mid-run: one line, and the
        # apply step has already put back anything it wrote.
        fail(f"{exc.filename or 'fix'}: {exc.strerror or exc}", EXIT_UNAVAILABLE)


def _undo(console: Console, files: list[Path], force: bool) -> None:
    if not files:
        fail("--undo needs the files to restore")
    for f in files:
        try:
            rec = undo(f, force=force)
        except FixError as exc:
            fail(str(exc), EXIT_USAGE)
        console.print(f"restored {escape(str(rec.path))} to its version from "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(rec.saved_at))}")
    sys.exit(EXIT_OK)


def _fix(console: Console, site: FixSite, model: Model, request: FixRequest, config: LoopConfig,
         *, yes: bool, apply_failing: bool, dry_run: bool, out: Path | None,
         verbose: bool) -> int:
    names = ", ".join(site.names)
    where = site.module_root or "no go.mod: a temporary module"
    console.print(f"[bold]fix[/] {escape(names)} · package {site.package} · "
                  f"{escape(str(where))}")
    where_run = run_dir(out, Path(site.names[0]).stem)
    try:
        traj = Trajectory(where_run / "trajectory.jsonl")
    except OSError as exc:
        fail(f"{where_run}: cannot write the run log there: {exc.strerror or exc} (choose "
             "another folder with --out)", EXIT_USAGE)
    with console.status("warming the Go build cache (first run only)…"):
        warm_unless_disabled()
    _index(traj, names, model)
    try:
        try:
            session = FixSession(site, request)
        except FixError as exc:
            fail(str(exc), EXIT_USAGE)
        with session:
            modes = {n: m.value for n, m in session.modes.items()}
            traj.event("fix_start", files=[str(t.path) for t in site.targets],
                       module=str(site.module_root) if site.module_root else None,
                       package=site.package, instruction=request.instruction,
                       run=request.run, edit_modes=modes,
                       copy_skipped=session.skipped[:100])
            console.print("edits: " + ", ".join(f"{n} ({m})" for n, m in modes.items()))
            try:
                first = session.initial_check()
            except ToolchainError as exc:
                fail(str(exc), EXIT_UNAVAILABLE)
            traj.event("initial_check", result=first.public())
            console.print(f"now: {check_line(first)}")
            if first.passed and not request.instruction:
                console.print("nothing to fix: it builds, vet is clean and the tests pass")
                return EXIT_OK
            # Tests first in the context map: a failure's source lines are usually there.
            context = {**session.support_files(), **session.original}
            feedback = "" if first.passed else render_feedback(first, context)[0]
            config = config.model_copy(update={"fixes": session.loop_fixes()})
            cmd = FixCommand(session, model, config, console, traj, verbose)
            return _interact(cmd, feedback, yes=yes, apply_failing=apply_failing,
                             dry_run=dry_run)
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    finally:
        traj.close()


def _interact(cmd: FixCommand, feedback: str, *, yes: bool, apply_failing: bool,
              dry_run: bool) -> int:
    c = cmd.c
    note: str | None = None
    while True:
        cmd.loop(feedback, note)
        result = cmd.result
        assert result is not None
        if result.error and result.rounds == 0:
            c.print(f"[red]model unavailable[/]: {escape(result.error)}")
            return EXIT_UNAVAILABLE
        changes = cmd.show()
        passed = cmd.check is not None and cmd.check.passed
        if not changes:
            c.print("[red]no change proposed[/]"
                    + (f" ({escape(result.stop_reason)})" if result.stop_reason else ""))
            cmd.traj.event("decision", action="none", reason="no change")
            if yes or dry_run:
                return EXIT_FAIL
        if dry_run:
            cmd.traj.event("decision", action="dry-run", passed=passed)
            c.print("dry run: nothing written")
            return EXIT_OK if passed else EXIT_FAIL
        if yes:
            if not passed and not apply_failing:
                c.print("not applied: the candidate does not pass (--apply-failing to apply "
                        "it anyway)")
                cmd.traj.event("decision", action="refuse-failing")
                return EXIT_FAIL
            return _apply(cmd, changes, passed)
        while True:
            options = ("[a]pply / [s]how full file / [k]eep looping with a note / [q]uit"
                       if changes else "[k]eep looping with a note / [q]uit")
            got = ask(options, default="q" if not passed else "a", show_default=True)
            answer = "q" if got is None else got.strip().lower()[:1]  # end of input: quit
            action = CHOICES.get(answer)
            if action == "show" and changes:
                cmd.full(changes)
                continue
            if action == "apply" and changes:
                return _apply(cmd, changes, passed)
            if action == "quit":
                cmd.traj.event("decision", action="quit")
                c.print("left your files unchanged")
                return EXIT_FAIL
            if action == "keep":
                got = ask("note for the model (empty: none)", default="", show_default=False)
                note = (got or "").strip() or None
                cmd.traj.event("decision", action="keep", note=note)
                feedback = ("" if cmd.check is None or cmd.check.passed
                            else render_feedback(cmd.check, {**cmd.s.support_files(),
                                                             **cmd.files})[0])
                break
            c.print("answer a, s, k or q")


def _apply(cmd: FixCommand, changes: dict[str, str], passed: bool) -> int:
    c, site = cmd.c, cmd.s.site
    try:
        backups = apply_changes(site, changes)
    except StaleFileError as exc:
        cmd.traj.event("decision", action="apply", refused=str(exc))
        c.print(f"[red]refused[/]: {escape(str(exc))}")
        return EXIT_FAIL
    except FixError as exc:  # a write failed: everything written was put back
        cmd.traj.event("decision", action="apply", failed=str(exc))
        fail(str(exc), EXIT_USAGE)
    cmd.traj.event("decision", action="apply", passed=passed,
                   files=[str(b.path) for b in backups])
    for b in backups:
        c.print(f"[green]applied[/] {escape(str(b.path))} (undo: guild-agent fix --undo "
                f"{escape(str(b.path))})")
    note = git_changed_note(site, list(changes))
    if note:
        c.print(escape(note))
    return EXIT_OK if passed else EXIT_FAIL
