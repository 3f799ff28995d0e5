"""Options shared by `solve`, `bench` and `fix` (the model, the loop), and opening the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from agent.cli import EXIT_UNAVAILABLE, err, fail
from agent.cli.config import resolve_model
from agent.golang.fixes import FIX_NAMES
from agent.loop.config import COMMAND_CANDIDATES, default
from agent.loop.trajectory import FeedbackMode
from agent.models import BACKENDS
from agent.models.base import (
    DEFAULT_SPECULATION,
    SPEC_MODES,
    Model,
    ModelError,
    ModelUnavailable,
)
from agent.models.catalog import default_model


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--backend", type=click.Choice(BACKENDS), default=None,
                     envvar="GUILD_AGENT_BACKEND", show_envvar=True,
                     help="Engine (default: openai when a server is named, mlx on Apple "
                          "silicon, else llama-cpp)."),
        click.option("--model", "model_name", default=None,
                     envvar="GUILD_AGENT_MODEL", show_envvar=True,
                     help="Catalog name (see `guild-agent models`), a local path, a "
                          "server's model id, or ollama:NAME / lmstudio:NAME "
                          "(default: qwen2.5-coder-0.5b; for fix qwen2.5-coder-1.5b)."),
        click.option("--adapter", type=click.Path(path_type=Path), default=None,
                     help="LoRA adapter directory (mlx)."),
        click.option("--base-url", default=None,
                     envvar="GUILD_AGENT_BASE_URL", show_envvar=True,
                     help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 "
                          "(with --backend openai and none given: the usual local ports "
                          "are probed; OPENAI_BASE_URL is read too)."),
        click.option("--api-key", default=None, envvar="GUILD_AGENT_API_KEY",
                     help="API key for --base-url (or GUILD_AGENT_API_KEY / OPENAI_API_KEY)."),
        click.option("--replay", type=click.Path(path_type=Path), default=None,
                     help="Scripted responses (YAML/JSON `responses:` list) for --backend "
                          "replay."),
        click.option("--threads", type=click.IntRange(1, 256), default=None,
                     help="CPU threads for llama-cpp (default: all cores)."),
        click.option("--spec", "speculation", type=click.Choice(SPEC_MODES),
                     default=DEFAULT_SPECULATION, show_default=True,
                     help="Speculative decoding by prompt lookup (llama-cpp): the model "
                          "copies what it was shown faster (repair answers 1.4-1.5x). "
                          "ngram: every request (greedy answers may change); sampled: "
                          "sampled requests only, on a second engine (greedy answers "
                          "exact). Off by default: see the README."),
        click.option("--draft-model", default=None,
                     help="A smaller model of the same family that drafts tokens for the "
                          "main one (catalog name or .gguf/MLX path; pays off with spare "
                          "cores)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


# The loop's options, shared by `solve`, `bench run` and `fix`; every default is
# LoopConfig's (agent.loop.config), declared there once.
max_rounds_option = click.option(
    "--max-rounds", type=click.IntRange(1, 50), default=default("max_rounds"),
    show_default=True, help="Model answers per task, repair rounds included.")
temperature_option = click.option(
    "--temperature", type=click.FloatRange(0, 2), default=default("temperature"),
    show_default=True, help="Sampling temperature of round 1.")
seed_option = click.option(
    "--seed", type=int, default=default("seed"), show_default=True,
    help="Sampling seed (bench: sample i uses seed+i).")
feedback_option = click.option(
    "--feedback", type=click.Choice([m.value for m in FeedbackMode]),
    default=default("feedback"),
    help="What the model is told: visible tests (default when the task has them), all "
         "tests, or compile errors only.")
no_fix_option = click.option(
    "--no-fix", "no_fix", multiple=True, type=click.Choice([*FIX_NAMES, "all"]),
    help="Switch off a deterministic fix or loop lever (repeatable).")
max_tokens_option = click.option(
    "--max-tokens", type=click.IntRange(16, 32768), default=default("max_tokens"),
    help="Per answer (default: sized to the task).")
on_stuck_option = click.option(
    "--on-stuck", type=click.Choice(["resample", "stop"]), default=default("on_stuck"),
    show_default=True, help="When the same failure comes back: start afresh, or stop.")
after_copy_option = click.option(
    "--after-copy", type=click.Choice(["resample", "repair"]), default=default("after_copy"),
    show_default=True,
    help="Once the model answers a repair prompt with code it already wrote, later rounds "
         "resample from the task (told what failed) or keep asking for repairs.")


candidates_option = click.option(
    "--candidates", type=click.IntRange(1, 16), default=COMMAND_CANDIDATES,
    show_default=True, envvar="GUILD_AGENT_CANDIDATES", show_envvar=True,
    help="Answers asked for per round (1-16): each distinct one is checked and the best "
         "kept. Every answer's tokens count against the budget.")


def enabled_fixes(no_fix: tuple[str, ...]) -> list[str]:
    """The fixes and levers left on by `--no-fix`."""
    return [] if "all" in no_fix else [f for f in FIX_NAMES if f not in no_fix]


def open_model(kw: dict[str, Any], *, console: Console | None = None,
               command: str | None = None) -> Model:
    """The model the options name; exit 3 with the fix in the message when unavailable.

    A server is found here when none is named (`--backend openai`, `ollama:NAME`), and
    the line saying which one answered goes to `console` (stderr by default).
    """
    from agent.models import make_model
    from agent.models.servers import ContextWatch, ollama_context

    say = (console or err).print
    try:
        choice = resolve_model(kw, probe=True)
    except ModelUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if choice.backend == "replay" and not kw.get("replay"):
        fail("--backend replay needs --replay FILE")
    server = choice.server
    if server is not None and server.found_by != "--base-url":
        say(f"using {escape(server.label)} at {escape(server.url)} "
            f"({escape(server.found_by)})", highlight=False)
    if server is not None and server.kind == "ollama" and not choice.served_model:
        from agent.models.servers import list_models

        names = ", ".join((list_models(server.url) or [])[:10]) or "none pulled yet"
        fail(f"Ollama needs a model name: --model ollama:NAME (it has: {names})")
    try:
        name = choice.model
        if name is None and choice.backend in ("llama-cpp", "mlx"):
            name = default_model(command)
        model = make_model(choice.backend, name, adapter=kw.get("adapter"),
                           base_url=choice.base_url, api_key=choice.api_key,
                           replay=kw.get("replay"), threads=kw.get("threads"),
                           speculation=kw.get("speculation") or DEFAULT_SPECULATION,
                           draft_model=kw.get("draft_model"))
    except ModelUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except ModelError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if server is not None and server.kind == "ollama" and choice.served_model:
        context = ollama_context(server.url, choice.served_model)
        if context:
            model = ContextWatch(model, context, lambda m: say(
                f"[yellow]warning:[/] {escape(m)}", highlight=False))
    return model
