"""Settings people choose once: config files, environment variables, and their precedence.

A flag beats an environment variable, which beats the project file (`guild-agent.toml` in
this folder or the nearest parent), which beats the user file
(`$XDG_CONFIG_HOME/guild-agent/config.toml`, else `~/.config/…`), which beats the
built-in default. Files hold keys named like the long options (`max_rounds` or
`max-rounds`), at the top (every command that has the option) or in a section named
for a command (`[solve]`, `[bench]`, `[bench.run]`), where they win over the top.

This module knows files and names; the CLI turns the result into click's default_map,
so click itself applies "flag > env > file > default" and records where each value came
from.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import click
from pydantic import BaseModel, ConfigDict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the tomli backport
    import tomli as tomllib

PROJECT_FILE = "guild-agent.toml"

# Environment variables per key, first set wins. OPENAI_* are read for the openai backend
# only (see `openai_env`): other tools set them for other servers.
ENV: dict[str, tuple[str, ...]] = {
    "backend": ("GUILD_AGENT_BACKEND",),
    "model": ("GUILD_AGENT_MODEL",),
    "base_url": ("GUILD_AGENT_BASE_URL",),
    "api_key": ("GUILD_AGENT_API_KEY",),
}
OPENAI_ENV = {"base_url": "OPENAI_BASE_URL", "api_key": "OPENAI_API_KEY"}

# A project file travels with a repository someone else may have written, so it may not
# hold a secret, nor say "apply without asking" or where outputs are written.
PROJECT_FORBIDDEN = {
    "api_key": "a secret does not belong in a file shared with a project",
    "yes": "applying without asking is a choice for the person running the command",
    "apply_failing": "applying without asking is a choice for the person running the command",
    "force": "forcing an undo is a choice for the person running the command",
    "undo": "undo is an action, not a setting",
    "out": "where outputs are written is a choice for the person running the command",
}

Kind = Literal["project", "user"]


class ConfigError(ValueError):
    """A config file is unreadable or names something unknown; one line naming the file."""


class ConfigFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    kind: Kind
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.kind} file {self.path}"


def key_name(key: str) -> str:
    """`max-rounds`, `max_rounds`, `Max_Rounds` → `max_rounds`."""
    return key.strip().lower().replace("-", "_")


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "guild-agent" / "config.toml"


def project_config_path(start: Path | None = None) -> Path | None:
    """`guild-agent.toml` in `start` (default: the current folder) or its nearest parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path, kind: Kind) -> ConfigFile:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {' '.join(str(exc).split())}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text") from None
    return ConfigFile(path=path, kind=kind, data=data)


def load_configs(cwd: Path | None = None, env: Mapping[str, str] | None = None
                 ) -> list[ConfigFile]:
    """The files that apply here, weakest first (user, then project)."""
    files = []
    user = user_config_path(env)
    if user.is_file():
        files.append(read_config(user, "user"))
    project = project_config_path(cwd)
    if project is not None and project.resolve() != user.resolve():
        files.append(read_config(project, "project"))
    return files


def option_keys(cmd: click.Command) -> dict[str, click.Option]:
    """A command's options by config key: the long name (`--max-rounds` → `max_rounds`)."""
    keys = {}
    for param in cmd.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        longs = [o for o in param.opts if o.startswith("--")]
        if longs and longs[0] not in ("--help", "--version"):
            keys[key_name(longs[0][2:])] = param
    return keys


def subcommands(cmd: click.Command) -> dict[str, click.Command]:
    return dict(cmd.commands) if isinstance(cmd, click.Group) else {}


def _all_keys(cmd: click.Command) -> set[str]:
    keys = set(option_keys(cmd))
    for sub in subcommands(cmd).values():
        keys |= _all_keys(sub)
    return keys


def _where(file: ConfigFile, section: tuple[str, ...], key: str) -> str:
    return f"{file.path}: {'.'.join((*section, key))}"


def validate(file: ConfigFile, root: click.Group) -> None:
    """Raise ConfigError for the first unknown key, section or value in `file`."""

    def walk(table: dict[str, Any], cmd: click.Command, section: tuple[str, ...]) -> None:
        known = _all_keys(cmd)
        subs = subcommands(cmd)
        for raw, value in table.items():
            key = key_name(raw)
            if isinstance(value, dict):
                if raw in subs:
                    walk(value, subs[raw], (*section, raw))
                    continue
                where = _where(file, section, raw)
                raise ConfigError(f"{where}: unknown section; commands: {', '.join(subs)}"
                                  if subs else f"{where}: unknown section")
            if key not in known:
                raise ConfigError(f"{_where(file, section, raw)}: unknown key "
                                  f"(keys are long options, e.g. model, base_url, "
                                  f"max_rounds)")
            if file.kind == "project" and key in PROJECT_FORBIDDEN:
                raise ConfigError(f"{_where(file, section, raw)}: not allowed in a project "
                                  f"file: {PROJECT_FORBIDDEN[key]} (use the user file "
                                  f"{user_config_path()} or a flag)")
            # A top-level value needs one command that takes it (`backend = "replay"` is
            # not for `models pull`, whose --backend names weight formats).
            errors = [_value_error(file, section, raw, option, value)
                      for option in _options_named(cmd, key)]
            if errors and all(errors):
                raise ConfigError(errors[0])
            if file.kind == "project" and key == "base_url":
                _check_local(file, section, raw, value)

    walk(file.data, root, ())


def _options_named(cmd: click.Command, key: str) -> Iterator[click.Option]:
    if key in option_keys(cmd):
        yield option_keys(cmd)[key]
    for sub in subcommands(cmd).values():
        yield from _options_named(sub, key)


def _value_error(file: ConfigFile, section: tuple[str, ...], raw: str,
                 option: click.Option, value: Any) -> str | None:
    """Why `option` cannot take `value` (one line naming the file), or None."""
    where = _where(file, section, raw)
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not option.multiple:
        return f"{where}: one value, not a list"
    if option.is_flag and not isinstance(value, bool):
        return f"{where}: true or false"
    for item in values:
        if isinstance(item, dict | list):
            return f"{where}: not a value"
        try:
            option.type.convert(item, option, None)
        except click.BadParameter as exc:
            return f"{where}: {' '.join(exc.format_message().split())}"
    return None


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _check_local(file: ConfigFile, section: tuple[str, ...], raw: str, value: Any) -> None:
    # Prompts carry the project's code, and a key from the environment rides along: a
    # shared file may point at this machine only.
    if not is_loopback_url(str(value)):
        raise ConfigError(f"{_where(file, section, raw)}: a project file may only name a "
                          f"server on this machine (127.0.0.1, localhost); put {value!r} in "
                          f"the user file or GUILD_AGENT_BASE_URL")


class FileValues(dict):  # type: ignore[type-arg]
    """One command's defaults from files (a click default_map level), plus where each
    came from (`origins`: parameter name → "project file PATH")."""

    def __init__(self) -> None:
        super().__init__()
        self.origins: dict[str, str] = {}


def defaults_tree(cmd: click.Command, files: list[ConfigFile],
                  scopes: list[tuple[list[dict[str, Any]], dict[str, Any] | None]] | None = None
                  ) -> FileValues:
    """The default_map for `cmd` and (nested) its subcommands.

    Per file, `scopes` holds the tables that apply to `cmd` (outermost first, so a more
    specific section wins) and `cmd`'s own section, whose sub-tables are its subcommands'.
    Later files are stronger.
    """
    scopes = scopes if scopes is not None else [([f.data], f.data) for f in files]
    out = FileValues()
    keys = option_keys(cmd)
    for file, (tables, _) in zip(files, scopes, strict=True):
        for table in tables:
            for raw, value in table.items():
                option = keys.get(key_name(raw))
                if (option is None or isinstance(value, dict) or option.name is None
                        or _value_error(file, (), raw, option, value)):
                    continue  # not this command's (checked for all by `validate`)
                out[option.name] = _relative_to(file, option, value)
                out.origins[option.name] = file.label
    for name, sub in subcommands(cmd).items():
        nested = []
        for tables, own in scopes:
            child = own.get(name) if own is not None else None
            child = child if isinstance(child, dict) else None
            nested.append(([*tables, child] if child is not None else tables, child))
        out[name] = defaults_tree(sub, files, nested)
    return out


def _relative_to(file: ConfigFile, option: click.Option, value: Any) -> Any:
    """A relative path in a file means a path next to that file, as in pyproject.toml."""
    if not isinstance(option.type, click.Path):
        return value

    def fix(v: Any) -> Any:
        if isinstance(v, str) and v and not Path(v).expanduser().is_absolute():
            return str(file.path.parent / v)
        return v

    return [fix(v) for v in value] if isinstance(value, list) else fix(value)


def env_source(option: click.Option, env: Mapping[str, str] | None = None) -> str | None:
    """The name of the environment variable that set `option`, if one did."""
    env = os.environ if env is None else env
    names = option.envvar if isinstance(option.envvar, list | tuple) else (
        [option.envvar] if option.envvar else [])
    return next((n for n in names if env.get(n)), None)


class ModelChoice(BaseModel):
    """Which engine, model and server a command will use, and where each came from."""

    backend: str
    model: str | None = None  # as given (`ollama:NAME` included)
    served_model: str | None = None  # the name a server is asked for
    base_url: str | None = None
    api_key: str | None = None
    server: Any = None  # agent.models.servers.Server, once one is known
    sources: dict[str, str] = {}


def resolve_model(values: Mapping[str, Any], sources: Mapping[str, str], *,
                  env: Mapping[str, str] | None = None, probe: bool = False,
                  default_backend: str | None = None) -> ModelChoice:
    """Settle backend, model, server and key from the option values and their sources.

    `values` holds the model options (`backend`, `model_name`, `base_url`, `api_key`,
    `replay`); `sources` says where each came from ("flag", "env NAME", "project file
    P", "user file P", "default"). Rules beyond click's precedence:
    - no backend named: `--replay` means replay, a server (`ollama:NAME`, a base URL)
      means openai, else this machine's default;
    - for openai, OPENAI_BASE_URL / OPENAI_API_KEY count as environment variables: they
      beat files and defaults, not GUILD_AGENT_* or flags;
    - openai with no URL: `ollama:`/`lmstudio:` name their port; else, with `probe`, the
      usual local ports are tried.
    Raises ModelUnavailable (a server was needed and none answered) or ConfigError.
    """
    from agent.models.servers import HOST, Server, find_server, split_server_model

    env = os.environ if env is None else env
    src = {k: sources.get(k, "default") for k in ("backend", "model_name", "base_url",
                                                  "api_key")}
    model = values.get("model_name")
    kind, served = split_server_model(model)
    backend = values.get("backend")
    base = values.get("base_url")
    if not backend:
        if values.get("replay"):
            backend, src["backend"] = "replay", "implied by --replay"
        elif kind is not None:
            backend, src["backend"] = "openai", f"implied by --model {kind.key}:…"
        elif base:
            backend, src["backend"] = "openai", f"implied by base_url ({src['base_url']})"
        else:
            from agent.models import default_backend as machine_default

            backend = default_backend or machine_default()
            src["backend"] = "default (this machine)"
    if kind is not None and backend != "openai":
        raise ConfigError(f"--model {model}: a {kind.label} model is reached over HTTP; "
                          f"use --backend openai or leave --backend out")
    api_key = values.get("api_key")
    server = None
    if backend == "openai":
        file_or_default = ("project file", "user file", "default")
        if src["base_url"].startswith(file_or_default) and env.get(OPENAI_ENV["base_url"]):
            base, src["base_url"] = env[OPENAI_ENV["base_url"]], f"env {OPENAI_ENV['base_url']}"
        if src["api_key"].startswith(file_or_default) and env.get(OPENAI_ENV["api_key"]):
            api_key, src["api_key"] = env[OPENAI_ENV["api_key"]], f"env {OPENAI_ENV['api_key']}"
        if base:
            server = Server(url=base, found_by=src["base_url"])
            if probe and is_loopback_url(base):
                from agent.models.servers import identify

                server.kind, server.label = identify(base)
        elif kind is not None:
            base = f"http://{HOST}:{kind.port}"
            server = Server(url=base, kind=kind.key, label=kind.label,
                            found_by=f"the usual {kind.label} port")
            src["base_url"] = server.found_by
        elif probe:
            from agent.models.base import ModelUnavailable
            from agent.models.servers import probe_ports

            ports = probe_ports(dict(env))
            server = find_server(ports)
            if server is None:
                raise ModelUnavailable(
                    f"no server answered on {HOST} ports {', '.join(map(str, ports))} "
                    "(Ollama, LM Studio, llama-server): start one or pass --base-url URL")
            base, src["base_url"] = server.url, "port probe"
    return ModelChoice(backend=backend, model=model, served_model=served, base_url=base,
                       api_key=api_key, server=server, sources=src)
