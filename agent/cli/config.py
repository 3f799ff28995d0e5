"""Config files wired into click, and `guild-agent config`: each effective value and its source.

Files become click's default_map, so click applies "flag > environment > file > default"
itself and records a source per value; the files' own order (project over user) and
which file set a value are kept beside it in `FileValues.origins`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.markup import escape
from rich.table import Table

from agent.cli import EXIT_USAGE, fail, main, out
from agent.models import ModelUnavailable
from agent.models.catalog import default_model
from agent.settings import (
    ConfigError,
    FileValues,
    ModelChoice,
    defaults_tree,
    env_source,
    load_configs,
    option_keys,
    project_config_path,
    subcommands,
    user_config_path,
    validate,
)
from agent.settings import resolve_model as resolve_values


class FileDefaults(Mapping[str, Any]):
    """The root default_map: files are read when a command's context is made (so in the
    folder the command runs in), never for `--help`/`--version` of the group itself."""

    def __init__(self, root: click.Group) -> None:
        self.root = root

    def __getitem__(self, name: str) -> Any:
        if name not in self.root.commands:
            raise KeyError(name)
        return file_defaults(self.root)[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.root.commands)

    def __len__(self) -> int:
        return len(self.root.commands)


def file_defaults(root: click.Group) -> FileValues:
    """Read and check the files that apply here; a bad file is a one-line exit 2."""
    try:
        files = load_configs()
        for f in files:
            validate(f, root)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    return defaults_tree(root, files)


# Every command's context gets its defaults from the files (see the module docstring).
main.context_settings["default_map"] = FileDefaults(main)


def source_of(ctx: click.Context | None, name: str) -> str:
    """Where parameter `name` of `ctx`'s command got its value, in words."""
    if ctx is None:
        return "given"
    src = ctx.get_parameter_source(name)
    if src is ParameterSource.COMMANDLINE:
        return "flag"
    if src is ParameterSource.ENVIRONMENT:
        param = next((p for p in ctx.command.params if p.name == name), None)
        var = env_source(param) if isinstance(param, click.Option) else None
        return f"env {var}" if var else "env"
    if src is ParameterSource.DEFAULT_MAP:
        origins = getattr(ctx.default_map, "origins", {})
        return origins.get(name, "config file")
    return "default"


def resolve_model(kw: Mapping[str, Any], *, probe: bool = False,
                  ctx: click.Context | None = None) -> ModelChoice:
    """The model choice of the running command (its options `kw`), sources included."""
    ctx = ctx or click.get_current_context(silent=True)
    names = ("backend", "model_name", "base_url", "api_key")
    sources = {n: source_of(ctx, n) for n in names if ctx is not None and n in ctx.params}
    try:
        return resolve_values(kw, sources, probe=probe)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)


def _target(args: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """`bench --max-rounds 2` → (["bench", "run"], bench run, ["--max-rounds", "2"])."""
    path: list[str] = []
    cmd: click.Command = main
    while isinstance(cmd, click.Group):
        subs = subcommands(cmd)
        if args and args[0] in subs:
            name, args = args[0], args[1:]
        elif "run" in subs:  # bench's fall-through command
            name = "run"
        elif not path:
            name = "solve"
        else:
            fail(f"{' '.join(path)}: name a subcommand: {', '.join(subs)}")
        path.append(name)
        cmd = subs[name]
    return path, cmd, args


def _show(value: Any, name: str) -> Any:
    if name == "api_key" and value:
        return "(set, hidden)"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@main.command("config", context_settings={"ignore_unknown_options": True,
                                          "allow_interspersed_args": False})
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-probe", is_flag=True,
              help="Do not probe local ports for a server (openai without a URL).")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def config(as_json: bool, no_probe: bool, argv: tuple[str, ...]) -> None:
    """Each setting COMMAND would use, and where it came from.

    ARGV is a command and its options as you would run it (default: solve), e.g.
    `guild-agent config bench --max-rounds 2`. Sources, strongest first: flag, env,
    project file (guild-agent.toml here or in a parent), user file, default.
    """
    path, cmd, args = _target(list(argv))
    root_ctx = click.get_current_context().find_root()
    ctx = root_ctx
    for name in path:  # each level reads its defaults from the files, as a real run does
        parent_cmd = ctx.command
        assert isinstance(parent_cmd, click.Group)
        ctx = subcommands(parent_cmd)[name].make_context(
            name, list(args) if name == path[-1] else [], parent=ctx,
            resilient_parsing=True)
    keys = option_keys(cmd)
    rows: list[dict[str, Any]] = []
    for key, option in keys.items():
        if option.name is None or option.name not in ctx.params:
            continue
        rows.append({"key": key, "value": ctx.params[option.name],
                     "source": source_of(ctx, option.name)})
    choice, no_server = None, None
    if "backend" in keys:
        try:
            choice = resolve_model(ctx.params, probe=not no_probe, ctx=ctx)
        except ModelUnavailable as exc:  # config reports it; a run would stop here
            choice, no_server = resolve_model(ctx.params, ctx=ctx), str(exc)
        if choice.model is None and choice.backend in ("mlx", "llama-cpp"):
            choice.model = default_model(path[0] if path else None)
        by_key = {r["key"]: r for r in rows}
        for key, name, value in (("backend", "backend", choice.backend),
                                 ("model", "model_name", choice.model),
                                 ("base_url", "base_url", choice.base_url),
                                 ("api_key", "api_key", choice.api_key)):
            by_key[key].update(value=value, source=choice.sources[name])
    for r in rows:
        r["value"] = _show(r["value"], r["key"])
    project = project_config_path()
    user = user_config_path()
    files = {"project": str(project) if project else None,
             "user": str(user) if user.is_file() else None}
    server = None
    if choice is not None and choice.server is not None:
        server = {"url": choice.server.url, "label": choice.server.label,
                  "found_by": choice.server.found_by}
    elif no_server:
        server = {"url": None, "label": None, "found_by": None, "error": no_server}
    if as_json:
        click.echo(json.dumps({"command": " ".join(path), "settings": rows, "files": files,
                               "server": server}))
        return
    table = Table(title=f"guild-agent {' '.join(path)}: effective settings",
                  title_justify="left")
    for col in ("key", "value", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        shown = "" if r["value"] is None else str(r["value"])
        table.add_row(r["key"], escape(shown), escape(r["source"]))
    out.print(table)
    out.print(f"project file: {escape(files['project'] or f'none ({os.getcwd()} and parents)')}",
              highlight=False)
    out.print(f"user file: {escape(files['user'] or f'none ({user})')}", highlight=False)
    if server and server["url"] is None:
        out.print(f"server: {escape(server['error'])}", highlight=False)
    elif server:
        out.print(f"server: {escape(server['label'])} at {escape(server['url'])} "
                  f"({escape(server['found_by'])})", highlight=False)
