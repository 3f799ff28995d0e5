"""`guild-agent export RUN_DIR… --format mlx-chat --out DATA/`: verified training data."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape

from agent.cli import EXIT_UNAVAILABLE, err, fail, main, out
from agent.runs.export import FORMATS, ExportError, collect, write_mlx_chat
from tools.go import ToolchainError, find_toolchain


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="mlx-chat",
              show_default=True, help="mlx-chat: {\"messages\": [...]} lines for mlx_lm.lora.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for train.jsonl, valid.jsonl and export.json.")
@click.option("--with-repairs", is_flag=True,
              help="Also a sample of the repair turn that led to the passing code.")
@click.option("--valid-fraction", type=click.FloatRange(0, 0.9), default=0.1,
              show_default=True, help="Share of tasks (not samples) held out for valid.")
@click.option("--suite", type=click.Path(path_type=Path), default=None,
              help="Bench runs: the suite they ran (default: the path in run.json).")
@click.option("--force", is_flag=True, help="Replace train/valid.jsonl already in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def export(run_dirs: tuple[Path, ...], fmt: str, out_dir: Path, with_repairs: bool,
           valid_fraction: float, suite: Path | None, force: bool, as_json: bool) -> None:
    """Write chat samples from RUN_DIRs' solved attempts whose code passes the task's
    hidden tests when checked again now (solve and bench runs)."""
    try:
        find_toolchain()
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if out_dir.is_dir() and not force and any(
            (out_dir / n).exists() for n in ("train.jsonl", "valid.jsonl")):
        fail(f"--out {out_dir} already holds training data; pass --force to replace it")
    try:
        with err.status("checking solved attempts again…"):
            got = collect(list(run_dirs), with_repairs=with_repairs, suite=suite)
        counts = write_mlx_chat(got, out_dir, valid_fraction=valid_fraction, force=force,
                                sources=list(run_dirs))
    except ExportError as exc:
        fail(str(exc))
    except ToolchainError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except OSError as exc:
        fail(f"{exc.filename or out_dir}: {exc.strerror or exc}")
    if as_json:
        click.echo(json.dumps(counts))
        return
    out.print(f"{counts['train']} train, {counts['valid']} valid sample(s) · "
              f"{counts['skipped']} skipped, {counts['duplicates']} duplicate(s) · "
              f"{escape(str(out_dir))}", highlight=False)
    for s in got.skipped[:5]:
        out.print(f"  skipped {escape(s.source)}: {escape(s.reason)}", highlight=False)
