"""`guild-agent fix FILE.go …`: repair or change a user's own Go files, with them in control.

Exit codes: 0 fixed (applied, or shown with --dry-run) or undone; 1 not fixed, declined or
refused; 2 bad input; 3 model or toolchain unavailable; 130 interrupted.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from agent.cli import EXIT_FAIL, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, fail, main
from agent.cli.options import (
    candidates_option,
    enabled_fixes,
    max_rounds_option,
    model_options,
    no_fix_option,
    open_model,
    seed_option,
    temperature_option,
)
from agent.cli.solve import RoundPrinter
from agent.fix.git import GitError, commit, dirty, newer_commit
from agent.fix.goenv import (
    GoEnvError,
    UserGoEnv,
    check_offline,
    for_module,
    missing_from_output,
    parse_tags,
)
from agent.fix.session import (
    FixError,
    FixRequest,
    FixSession,
    FixSite,
    StaleFileError,
    apply_changes,
    changed_files,
    deferred_interrupt,
    find_module_root,
    git_changed_note,
    git_root,
    locate,
    undo,
    unified_diff,
    unwritable,
)
from agent.fix.targets import is_pattern, package_files, scan
from agent.golang.feedback import render_feedback, summary_line
from agent.loop.config import LoopConfig
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import TRAJECTORY, RunResult, Trajectory
from agent.models.base import Model
from agent.runs.index import record_run
from tools.diagnostics import CheckResult
from tools.go import ToolchainError, find_toolchain
from tools.paths import cache_dir
from tools.runner import GoRunner
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


class _Elapsed:
    """The spinner's text, re-rendered on each refresh so the seconds keep counting."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = time.monotonic()

    def __rich__(self) -> str:
        return f"{self.label} {time.monotonic() - self.start:.0f}s"


class Progress:
    """The loop's events printed as they come, and a spinner with elapsed seconds while
    the model generates (a CPU-only model can take minutes per answer)."""

    def __init__(self, console: Console, printer: RoundPrinter) -> None:
        self.c = console
        self.printer = printer
        self.status: Any = None

    def __call__(self, ev: dict[str, Any]) -> None:
        self.stop()
        self.printer(ev)
        if ev["event"] == "request":
            self._start(f"round {ev['round']}: the model is writing its answer…")
        elif ev["event"] in ("response", "extract", "fix"):
            self._start("checking with the Go toolchain…")

    def _start(self, label: str) -> None:
        self.status = self.c.status(_Elapsed(label))
        _whole(self.status.start)

    def stop(self) -> None:
        status, self.status = self.status, None
        if status is not None:
            _whole(status.stop)


def _whole(step: Callable[[], object]) -> None:
    """Run a rich start/stop with Ctrl-C held: cut in half, rich's state breaks (a later
    stop raises IndexError). The interrupt is raised once the step is done."""
    with deferred_interrupt() as got:
        step()
    if got:
        raise KeyboardInterrupt


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
        self.first: CheckResult | None = None
        self.do_commit = False
        self.entry: dict[str, Any] = {}

    def loop(self, feedback: str, note: str | None = None) -> None:
        progress = Progress(self.c, RoundPrinter(self.c, self.verbose))
        loop = RepairLoop(self.model, self.config, checker_factory=self.s.checker_factory,
                          on_event=progress, parser=self.s.parse_answer)
        try:
            # Only the user's code as it came: a later loop's candidate was searched
            # in the run that made it.
            given = self.first if self.result is None else None
            result = loop.run(self.s.problem(self.files, feedback=feedback, note=note,
                                             given=given), self.traj)
        finally:
            progress.stop()
        self.result = result
        self.entry["run"] = result.public()
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
@click.argument("files", nargs=-1)
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
@candidates_option
@no_fix_option
@click.option("--test-timeout", type=click.FloatRange(1, 3600), default=60.0,
              show_default=True, help="Seconds for the package's tests per check.")
@click.option("--race", is_flag=True, help="Run the tests with -race (needs a C compiler).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Where trajectory.jsonl goes (default: the user cache, fix-runs/).")
@click.option("--tags", default=None, help="Build tags (comma-separated), as go build -tags.")
@click.option("--test-cmd", default=None,
              help="Your test command, run in the sandbox on the copy in place of go test; "
                   "its exit status is the verdict.")
@click.option("--lint-cmd", default=None,
              help="A linter command that must also pass (run in the sandbox on the copy).")
@click.option("--show-tests", is_flag=True,
              help="Show the package's test files in full to the model (default: only the "
                   "failing tests' lines, which small models do not copy into their answer).")
@click.option("--allow-dirty", is_flag=True,
              help="Work on files with uncommitted git changes.")
@click.option("--commit", "do_commit", is_flag=True,
              help="Commit the applied fix (only its files) with a message saying what was "
                   "fixed and by which model.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one result object on stdout (needs --yes or --dry-run).")
@click.option("-v", "--verbose", is_flag=True, help="Show prompts and model answers.")
@model_options
def fix(files: tuple[str, ...], instruction: str | None, run_re: str | None,
        max_rounds: int, yes: bool, apply_failing: bool, dry_run: bool, do_undo: bool,
        force: bool, block_lines: int, temperature: float, seed: int, candidates: int,
        no_fix: tuple[str, ...], test_timeout: float,
        race: bool, out_dir: Path | None, tags: str | None, test_cmd: str | None,
        lint_cmd: str | None, show_tests: bool, allow_dirty: bool, do_commit: bool,
        as_json: bool,
        verbose: bool, **model_kw: Any) -> None:
    """Fix FILES: .go files of one package, a package folder, or a pattern such as ./...

    For a pattern, the packages that fail (build, vet or tests) are fixed one after
    another; the ones that pass are left alone. You decide what is written.
    """
    console = Console(stderr=as_json)
    if do_undo:
        _undo(console, [Path(f) for f in files], force)
    if as_json and not (yes or dry_run):
        fail("--json needs --yes or --dry-run (it cannot ask you questions)")
    if do_commit and dry_run:
        fail("--commit and --dry-run contradict each other")
    if instruction is not None and not instruction.strip():
        fail("--instruction is empty")
    for flag, cmd_text in (("--test-cmd", test_cmd), ("--lint-cmd", lint_cmd)):
        if cmd_text is not None and not cmd_text.strip():
            fail(f"{flag} is empty")
    try:
        tag_list = parse_tags(tags)
        find_toolchain()
    except GoEnvError as exc:
        fail(str(exc))
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    groups = _targets(console, list(files), tag_list)
    sites: list[tuple[FixSite, UserGoEnv]] = []
    for group in groups:
        site, goenv = _prepare_site(group, tag_list, dry_run=dry_run,
                                    allow_dirty=allow_dirty, do_commit=do_commit)
        sites.append((site, goenv))
    report: dict[str, Any] = {"command": "fix", "packages": []}
    if not sites:
        console.print("nothing to fix: every package builds, vet is clean and the tests pass")
        _finish(as_json, report, EXIT_OK)
    model = open_model(model_kw, console=console, command="fix")
    report["model"] = model.name
    # A closed terminal or a kill takes the Ctrl-C path: the scratch copy is removed and a
    # half-done apply is rolled back instead of the process dying mid-way.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _as_interrupt)
    code = EXIT_OK
    try:
        for site, goenv in sites:
            if len(sites) > 1:
                console.rule(f"package {escape(site.package)} ({escape(site.pattern())})")
            entry: dict[str, Any] = {"package": site.package, "folder": str(site.package_dir),
                                     "files": [str(t.path) for t in site.targets]}
            report["packages"].append(entry)
            one = _fix(console, site, model, FixRequest(
                instruction=instruction, run=run_re, block_lines=block_lines,
                test_timeout=test_timeout, race=race, test_cmd=test_cmd, lint_cmd=lint_cmd,
                show_tests=show_tests, goenv=goenv), LoopConfig(
                    max_rounds=max_rounds, temperature=temperature, seed=seed,
                    candidates=candidates, fixes=enabled_fixes(no_fix)),
                yes=yes, apply_failing=apply_failing, dry_run=dry_run, out=out_dir,
                verbose=verbose, do_commit=do_commit, entry=entry)
            entry["exit_code"] = one
            if one == EXIT_UNAVAILABLE:
                code = one
                break
            if one != EXIT_OK:
                code = EXIT_FAIL
    except KeyboardInterrupt:
        done = [e["package"] for e in report["packages"] if e.get("applied")]
        console.print("[yellow]interrupted[/]: " + (
            f"the fixes applied to {', '.join(done)} stay (fix --undo restores them); the "
            "package in progress is as it was" if done else "your files are as they were"))
        _finish(as_json, report, EXIT_INTERRUPTED)
    except OSError as exc:
        # A disk that fills or a folder that turns read-only mid-run: one line, and the
        # apply step has already put back anything it wrote.
        fail(f"{exc.filename or 'fix'}: {exc.strerror or exc}", EXIT_UNAVAILABLE)
    _finish(as_json, report, code)


def _finish(as_json: bool, report: dict[str, Any], code: int) -> NoReturn:
    if as_json:
        report["exit_code"] = code
        report["status"] = {EXIT_OK: "fixed", EXIT_FAIL: "not-fixed",
                            EXIT_UNAVAILABLE: "unavailable",
                            EXIT_INTERRUPTED: "interrupted"}.get(code, "error")
        click.echo(json.dumps(report, default=str))
    sys.exit(code)


def _targets(console: Console, args: list[str], tags: list[str]) -> list[list[Path]]:
    """The file groups to fix, one per package: files, a folder, or a pattern's failures."""
    if not args:
        fail("name at least one .go file to fix (or a package folder, or a pattern such "
             "as ./...)")
    patterns = [a for a in args if is_pattern(a)]
    try:
        if patterns:
            if len(patterns) != len(args):
                fail("name either .go files or package patterns, not both")
            if flag := next((p for p in patterns if p.startswith("-")), None):
                # The go command would read it as a flag (-toolexec=…, -exec=…).
                fail(f"{flag}: not a package pattern (patterns never start with '-')")
            cwd = Path.cwd()
            # As the go command does by default: cgo on when a C compiler is there, so a
            # package that imports "C" is not reported as failing by the scan.
            goenv = for_module(find_module_root(cwd), tags).model_copy(
                update={"cgo": shutil.which("cc") is not None})
            check_offline(find_module_root(cwd), goenv)
            with console.status(f"testing {escape(' '.join(patterns))} to find the failing "
                                "packages…"):
                found = scan(patterns, cwd, goenv, GoRunner().options.limits)
            for rel in found.passing:
                console.print(f"[green]ok[/] {escape(rel)} (passes; left alone)")
            for d in found.failing:
                rel = d.relative_to(found.module_root).as_posix()
                console.print(f"[red]fails[/] ./{escape(rel) if rel != '.' else ''}")
            return [package_files(d) for d in found.failing]
        folders = [Path(a) for a in args if Path(a).is_dir()]
        if folders and len(folders) == len(args):
            return [package_files(d) for d in folders]
    except (FixError, GoEnvError) as exc:
        fail(str(exc), EXIT_USAGE)
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    return [[Path(a) for a in args]]


def _prepare_site(files: list[Path], tags: list[str], *, dry_run: bool, allow_dirty: bool,
                  do_commit: bool) -> tuple[FixSite, UserGoEnv]:
    """Everything that can refuse before a model is asked: paths, git, the module cache."""
    try:
        site = locate(files)
    except FixError as exc:
        fail(str(exc), EXIT_USAGE)
    if dry_run:
        site = site.model_copy(update={"dry_run": True})  # apply_changes refuses outright
    elif (problem := unwritable(site)) is not None:
        fail(problem, EXIT_USAGE)  # before any round: the answer could never be written
    if do_commit and site.git_root is None:
        fail(f"--commit: {site.package_dir} is not in a git work tree")
    if site.git_root is not None and not dry_run and not allow_dirty:
        try:
            changed = dirty(site.git_root, [t.real for t in site.targets])
        except GitError as exc:
            fail(str(exc))
        if changed:
            fail(f"uncommitted changes in {', '.join(changed)}; commit or stash them first "
                 "(or --allow-dirty)")
    goenv = for_module(site.module_root, tags, site.package_dir)
    try:
        check_offline(site.module_root, goenv)
    except GoEnvError as exc:
        fail(str(exc))
    return site, goenv


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
        root = git_root(Path(rec.path).parent)
        newer = newer_commit(root, rec.path, rec.saved_at) if root is not None else None
        if newer is not None:
            console.print(f"git: commit {escape(newer)} was made after that fix and still "
                          "holds the fixed version; the file now differs from it (`git "
                          "revert` the commit, or `git checkout` the file, to match git)")
    sys.exit(EXIT_OK)


def _fix(console: Console, site: FixSite, model: Model, request: FixRequest, config: LoopConfig,
         *, yes: bool, apply_failing: bool, dry_run: bool, out: Path | None,
         verbose: bool, do_commit: bool = False, entry: dict[str, Any] | None = None) -> int:
    """One package: check, loop, show, apply. `entry` collects the --json record."""
    entry = entry if entry is not None else {}
    names = ", ".join(site.names)
    where = site.module_root or "no go.mod: a temporary module"
    console.print(f"[bold]fix[/] {escape(names)} · package {site.package} · "
                  f"{escape(str(where))}")
    where_run = run_dir(out, Path(site.names[0]).stem)
    try:
        traj = Trajectory(where_run / TRAJECTORY)
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
            entry["initial"] = first.public()
            if not first.passed and site.module_root is not None and (
                    missing := missing_from_output(first.log + "\n".join(
                        d.message for d in first.diagnostics), site.module_root)):
                fail(missing, EXIT_USAGE)  # before any model call: no answer could build
            console.print(f"now: {check_line(first)}")
            if first.passed and not request.instruction:
                console.print("nothing to fix: it builds, vet is clean and the tests pass")
                entry["status"] = "nothing-to-fix"
                return EXIT_OK
            # Tests first in the context map: a failure's source lines are usually there.
            shown, tests = session.context_files()
            context = {**tests, **shown, **session.original}
            feedback = "" if first.passed else render_feedback(first, context)[0]
            allowed = session.loop_fixes()  # what the user switched off stays off
            config = config.model_copy(update={"fixes": [f for f in config.fixes
                                                         if f in allowed]})
            cmd = FixCommand(session, model, config, console, traj, verbose)
            cmd.first = first
            cmd.do_commit = do_commit
            cmd.entry = entry
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
        cmd.entry.update(passed=passed, applied=False,
                         final=cmd.check.public() if cmd.check is not None else None,
                         diff="".join(unified_diff(n, cmd.s.original[n], c)
                                      for n, c in changes.items()))
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
                shown, tests = cmd.s.context_files()
                feedback = ("" if cmd.check is None or cmd.check.passed
                            else render_feedback(cmd.check,
                                                 {**tests, **shown, **cmd.files})[0])
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
    cmd.entry["applied"] = True
    for b in backups:
        c.print(f"[green]applied[/] {escape(str(b.path))} (undo: guild-agent fix --undo "
                f"{escape(str(b.path))})")
    if cmd.do_commit and site.git_root is not None:
        message = commit_message(cmd, list(changes), passed)
        try:
            head = commit(site.git_root, [b.path for b in backups], message)
        except GitError as exc:
            cmd.traj.event("commit", failed=str(exc))
            c.print(f"[red]not committed[/]: {escape(str(exc))} (the fix is applied)")
            return EXIT_FAIL
        cmd.traj.event("commit", commit=head, message=message)
        cmd.entry["commit"] = head
        c.print(f"[green]committed[/] {escape(head)}: {escape(message.splitlines()[0])}")
    else:
        note = git_changed_note(site, list(changes))
        if note:
            c.print(escape(note))
    return EXIT_OK if passed else EXIT_FAIL


def commit_message(cmd: FixCommand, names: list[str], passed: bool) -> str:
    """Subject: the package and what was wrong (or the instruction); body: files, model."""
    site = cmd.s.site
    request = cmd.s.request
    if request.instruction:
        what = request.instruction.strip().splitlines()[0][:60]
    elif cmd.first is not None and not cmd.first.passed:
        what = "fix " + plain_summary(cmd.first)
    else:
        what = "change"
    subject = f"{site.pattern().removeprefix('./')}: {what}"[:72]
    check = cmd.check
    verdict = ("it builds, vet is clean and the tests pass" if passed else
               "it still fails: " + plain_summary(check) if check is not None else "unchecked")
    body = [f"Changed {', '.join(names)} in package {site.package}; after the change {verdict}.",
            "", f"Fixed by guild-agent fix with model {cmd.model.name}."]
    if cmd.first is not None and not cmd.first.passed:
        body[0:0] = [f"Before: {plain_summary(cmd.first)}", ""]
    return subject + "\n\n" + "\n".join(body) + "\n"


def plain_summary(result: CheckResult) -> str:
    line = summary_line(result)
    return line.split("\n")[0][:200]
