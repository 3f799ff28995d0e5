"""`guild-agent check`: run a task's tests against solution files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from agent.cli import EXIT_FAIL, EXIT_OK, EXIT_UNAVAILABLE, fail, main, out
from agent.harness import Suite, check_task
from agent.task import TaskError, load_task
from tools.go import ToolchainError


@main.command()
@click.argument("task_file", type=click.Path(path_type=Path))
@click.option("--solution", "solutions", multiple=True, type=click.Path(path_type=Path),
              help="A solution .go file (repeatable). Default: the task's reference.")
@click.option("--tests", "suite", type=click.Choice([s.value for s in Suite]), default="all",
              show_default=True, help="Which of the task's tests to run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--keep", is_flag=True, help="Keep the scratch workspace for debugging.")
def check(task_file: Path, solutions: tuple[Path, ...], suite: str, as_json: bool,
          keep: bool) -> None:
    """Run TASK_FILE's tests against solution files (default: its reference)."""
    try:
        task = load_task(task_file)
    except TaskError as exc:
        fail(str(exc))
    files: dict[str, str] | None = None
    if solutions:
        files = {}
        for p in solutions:
            try:
                files[p.name] = p.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                fail(f"{p}: cannot read solution file: {exc.strerror or exc}")
    elif not task.reference_solution():
        fail(f"{task_file}: the task has no 'reference'; pass --solution FILE.go")
    try:
        result = check_task(task, files, suite=Suite(suite), keep=keep)
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if as_json:
        click.echo(json.dumps(result.public()))
    else:
        status = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
        npass = sum(t.outcome.value == "pass" for t in result.tests)
        out.print(f"{status} {task.id}: {npass}/{len(result.tests)} tests passed "
                  f"in {result.seconds:.2f}s")
        for d in result.diagnostics[:20]:
            out.print(f"  [yellow]{d.kind.value}[/] {escape(str(d))}", highlight=False)
    sys.exit(EXIT_OK if result.passed else EXIT_FAIL)


