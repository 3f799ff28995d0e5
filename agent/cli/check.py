"""`guild-agent check`: run a task's tests against solution files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from agent.cli import EXIT_FAIL, EXIT_OK, EXIT_UNAVAILABLE, fail, main, out
from agent.tasks.harness import Suite, check_task
from agent.tasks.spec import (
    GO_FILE_MAX_BYTES,
    TaskError,
    UnsafeFileError,
    check_go_file_name,
    load_task,
    read_text_file,
)
from tools.go import ToolchainError
from tools.workspace import WorkspaceError


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
        files = read_solutions(solutions)
    elif not task.reference_solution():
        fail(f"{task_file}: the task has no 'reference'; pass --solution FILE.go")
    try:
        result = check_task(task, files, suite=Suite(suite), keep=keep)
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except WorkspaceError as exc:  # e.g. a replace directory too large to copy
        fail(f"{task_file}: {exc}")
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


def read_solutions(paths: tuple[Path, ...]) -> dict[str, str]:
    """`--solution` files by base name: regular UTF-8 .go files of at most 1 MB, each
    name usable in the module and given once (else one line and exit 2)."""
    files: dict[str, str] = {}
    for p in paths:
        try:
            text = read_text_file(p, GO_FILE_MAX_BYTES)
        except UnsafeFileError as exc:
            fail(f"{p}: cannot read solution file: {exc}")
        except UnicodeDecodeError:
            fail(f"{p}: cannot read solution file: not UTF-8 text")
        except OSError as exc:
            fail(f"{p}: cannot read solution file: {exc.strerror or exc}")
        # The base name becomes the file's name in the module: the task's rules apply.
        if problem := check_go_file_name(p.name):
            fail(f"{p}: cannot use as a solution file: the name {problem}")
        if p.name in files:
            fail(f"{p}: two --solution files are named {p.name}")
        if "\0" in text:
            fail(f"{p}: cannot use as a solution file: it holds a NUL byte")
        files[p.name] = text
    return files
