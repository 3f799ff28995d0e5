"""The `guild-agent` command line: a thin click layer over the library."""

from __future__ import annotations

import sys
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape

from agent import __version__

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One clear line on stderr and a non-zero exit: never a traceback for bad input."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="guild-agent")
def main() -> None:
    """guild-agent: a local model writes Go, the Go toolchain checks it, the loop repairs it."""


def _register() -> None:
    # Each command lives in its own module; importing them here attaches them to `main`.
    from agent.cli import (
        bench,  # noqa: F401
        bench_run,  # noqa: F401 - the `bench` group's default `run` command
        check,  # noqa: F401
        config,  # noqa: F401
        doctor,  # noqa: F401
        export,  # noqa: F401
        fix,  # noqa: F401
        models,  # noqa: F401
        runs,  # noqa: F401
        solve,  # noqa: F401
    )


_register()


if __name__ == "__main__":  # pragma: no cover
    main()
