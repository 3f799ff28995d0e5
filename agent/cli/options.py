"""Model options shared by `solve`, `bench` and `fix`, and opening the model they name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from agent.cli import EXIT_UNAVAILABLE, fail
from agent.models.base import Model, ModelError, ModelUnavailable

BACKENDS = ["mlx", "llama-cpp", "openai", "replay", "oracle"]


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--backend", type=click.Choice(BACKENDS), default=None,
                     help="Engine (default: mlx on Apple silicon, else llama-cpp)."),
        click.option("--model", "model_name", default=None,
                     help="Catalog name (see `guild-agent models`), a local path, or the "
                          "server's model id (default: qwen2.5-coder-0.5b)."),
        click.option("--adapter", type=click.Path(path_type=Path), default=None,
                     help="LoRA adapter directory (mlx)."),
        click.option("--base-url", default=None,
                     help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."),
        click.option("--api-key", default=None, envvar="GUILD_AGENT_API_KEY",
                     help="API key for --base-url (or GUILD_AGENT_API_KEY / OPENAI_API_KEY)."),
        click.option("--replay", type=click.Path(path_type=Path), default=None,
                     help="Scripted responses (YAML/JSON `responses:` list) for --backend "
                          "replay."),
        click.option("--threads", type=click.IntRange(1, 256), default=None,
                     help="CPU threads for llama-cpp (default: all cores)."),
        click.option("--spec", "speculation", type=click.Choice(["ngram", "off"]),
                     default="ngram", show_default=True,
                     help="Speculative decoding by prompt lookup (llama-cpp): the model "
                          "copies what it was shown faster."),
        click.option("--draft-model", default=None,
                     help="A smaller model of the same family that drafts tokens for the "
                          "main one (catalog name or .gguf/MLX path; pays off with spare "
                          "cores)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


# Shared by `solve` and `bench run`: what a repair round is once the model copies itself.
after_copy_option = click.option(
    "--after-copy", type=click.Choice(["resample", "repair"]), default="resample",
    show_default=True,
    help="Once the model answers a repair prompt with code it already wrote, later rounds "
         "resample from the task (told what failed) or keep asking for repairs.")


def open_model(kw: dict[str, Any], *, console: Console | None = None) -> Model:
    """The model the options name; exit 3 with the fix in the message when unavailable."""
    from agent.models import default_backend, make_model

    backend = kw.get("backend")
    if kw.get("replay") and not backend:
        backend = "replay"
    backend = backend or default_backend()
    if backend == "replay" and not kw.get("replay"):
        fail("--backend replay needs --replay FILE")
    try:
        return make_model(backend, kw.get("model_name"), adapter=kw.get("adapter"),
                          base_url=kw.get("base_url"), api_key=kw.get("api_key"),
                          replay=kw.get("replay"), threads=kw.get("threads"),
                          speculation=kw.get("speculation") or "ngram",
                          draft_model=kw.get("draft_model"))
    except ModelUnavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except ModelError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
