"""Models the loop can drive, chosen by backend name; `make_model` is the one way in.

Engines are imported only when chosen, so `--backend replay` never pays for loading mlx or
llama.cpp, and a machine without one of them can still use the others.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.models.base import (
    DEFAULT_SPECULATION,
    Generation,
    Message,
    Model,
    ModelError,
    ModelUnavailable,
    Sampling,
)
from agent.models.catalog import CATALOG, DEFAULT_MODEL, CatalogEntry, lookup

__all__ = [
    "BACKENDS",
    "CATALOG",
    "DEFAULT_MODEL",
    "ENGINES",
    "CatalogEntry",
    "Engine",
    "Generation",
    "Message",
    "Model",
    "ModelError",
    "ModelUnavailable",
    "Sampling",
    "default_backend",
    "engine",
    "make_model",
]


class Request(BaseModel):
    """What the caller asked for; each engine reads the fields it understands."""

    model: str | None = None
    adapter: str | Path | None = None
    base_url: str | None = None
    api_key: str | None = None
    replay: str | Path | None = None
    threads: int | None = None
    context: int | None = None
    speculation: str = DEFAULT_SPECULATION  # llama-cpp prompt lookup: sampled, ngram or off
    draft_model: str | None = None  # a smaller model of the family drafting for this one


class Engine(BaseModel):
    """A backend: the class that runs it (imported only when chosen) and how to open it."""

    model_config = ConfigDict(frozen=True)

    name: str
    module: str
    cls: str
    summary: str
    open: Callable[[Any, Request], Model]

    def load(self) -> Any:
        return getattr(importlib.import_module(self.module), self.cls)


def default_backend() -> str:
    """`mlx` on Apple silicon with mlx importable; `llama-cpp` everywhere else.

    mlx also runs on Linux CPUs, but llama.cpp's quantized CPU kernels are much faster
    there, so only Metal makes mlx the default.
    """
    apple_silicon = sys.platform == "darwin" and platform.machine() == "arm64"
    if apple_silicon and importlib.util.find_spec("mlx") is not None:
        return "mlx"
    return "llama-cpp"


def _catalog_entry(model: str | None) -> CatalogEntry | None:
    if model is None:
        return lookup(DEFAULT_MODEL)
    return CATALOG.get(model.strip().lower())


def _open_replay(cls: Any, req: Request) -> Model:
    if not req.replay:
        raise ModelUnavailable("the replay backend needs --replay FILE")
    return cls.from_file(req.replay)


def _open_oracle(cls: Any, req: Request) -> Model:
    return cls()


def _open_openai(cls: Any, req: Request) -> Model:
    from agent.models.servers import HOST, split_server_model

    kind, name = split_server_model(req.model)
    url = req.base_url or (f"http://{HOST}:{kind.port}" if kind else None)
    return cls(url, model=name, api_key=req.api_key)


def _open_llama_cpp(cls: Any, req: Request) -> Model:
    from agent.models.weights import pull_gguf

    if req.adapter:
        raise ModelUnavailable("LoRA adapters are supported by the mlx backend only")
    spec = speculation_settings(req.speculation, req.draft_model)
    entry = _catalog_entry(req.model)
    if entry is not None:
        path = pull_gguf(entry.gguf, show_progress=True)
        return cls(path, name=entry.name, threads=req.threads, context=req.context,
                   speculation=spec)
    assert req.model is not None
    if not Path(req.model).expanduser().is_file():
        _unknown(req.model)
    return cls(req.model, threads=req.threads, context=req.context, speculation=spec)


def _mlx_source(model: str) -> str | Path:
    """An MLX model directory or Hub repo for a catalog name, a directory or `org/repo`."""
    from agent.models.weights import pull_mlx

    entry = _catalog_entry(model)
    if entry is not None:
        return pull_mlx(entry)
    looks_like_repo = model.count("/") == 1 and not Path(model).exists()
    if not Path(model).expanduser().is_dir() and not looks_like_repo:
        _unknown(model)
    return model if looks_like_repo else Path(model).expanduser()


def _open_mlx(cls: Any, req: Request) -> Model:
    draft = _mlx_source(req.draft_model) if req.draft_model else None
    entry = _catalog_entry(req.model)
    assert req.model is not None or entry is not None
    name = entry.name if entry is not None else req.model
    return cls(_mlx_source(req.model or name), name=name, adapter=req.adapter, draft=draft)


def speculation_settings(mode: str, draft_model: str | None) -> Any:
    """llama-cpp's Speculation for `--spec MODE` and `--draft-model NAME|FILE.gguf`."""
    from agent.models.base import SPEC_MODES
    from agent.models.llama_cpp import Speculation
    from agent.models.weights import pull_gguf

    if mode not in SPEC_MODES:
        raise ModelUnavailable(f"unknown speculation {mode!r}; choose {' or '.join(SPEC_MODES)}")
    draft = None
    if draft_model:
        entry = _catalog_entry(draft_model)
        if entry is not None:
            draft = pull_gguf(entry.gguf, show_progress=True)
        elif Path(draft_model).expanduser().is_file():
            draft = Path(draft_model).expanduser()
        elif draft_model.endswith(".gguf") or "/" in draft_model:
            raise ModelUnavailable(f"no GGUF file at {draft_model} for --draft-model")
        else:
            _unknown(draft_model)
    return Speculation(mode=mode, draft_model=draft)  # type: ignore[arg-type]


def _unknown(model: str) -> None:
    """Raise: `model` is neither a file nor a catalog name; hint at servers' names."""
    try:
        lookup(model)
    except ModelUnavailable as exc:
        if ":" in model and "/" not in model:
            raise ModelUnavailable(
                f"{exc}; {model!r} looks like a server's model name: use --model "
                f"ollama:{model} (or lmstudio:NAME, or --base-url URL --model NAME)"
            ) from None
        raise


# The one place a backend name meets its engine; `BACKENDS` and the CLI's choices follow.
ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine(name="mlx", module="agent.models.mlx", cls="MLXModel", open=_open_mlx,
           summary="Apple MLX in this process (the default on Apple silicon)"),
    Engine(name="llama-cpp", module="agent.models.llama_cpp", cls="LlamaCppModel",
           open=_open_llama_cpp, summary="llama.cpp in this process (the default elsewhere)"),
    Engine(name="openai", module="agent.models.openai", cls="OpenAIModel", open=_open_openai,
           summary="an OpenAI-compatible server: Ollama, LM Studio, llama-server, vLLM…"),
    Engine(name="replay", module="agent.models.replay", cls="ReplayModel", open=_open_replay,
           summary="scripted answers from a file (tests, demos)"),
    Engine(name="oracle", module="agent.models.oracle", cls="OracleModel", open=_open_oracle,
           summary="answers with the task's reference solution (checks a suite)"),
)}
ALIASES = {"llamacpp": "llama-cpp", "llama.cpp": "llama-cpp"}
BACKENDS = tuple(ENGINES)


def engine(backend: str) -> Engine:
    """The engine called `backend` (aliases and `_` for `-` accepted)."""
    name = backend.strip().lower().replace("_", "-")
    found = ENGINES.get(ALIASES.get(name, name))
    if found is None:
        raise ModelUnavailable(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return found


def make_model(backend: str, model: str | None = None, *, adapter: str | Path | None = None,
               base_url: str | None = None, api_key: str | None = None,
               replay: str | Path | None = None, threads: int | None = None,
               context: int | None = None, speculation: str = DEFAULT_SPECULATION,
               draft_model: str | None = None) -> Model:
    """Build the Model for `backend`.

    `model` is a catalog name (default qwen2.5-coder-0.5b), a local path (.gguf file for
    llama-cpp, model directory for mlx), a Hub repo for mlx, or the server's model name for
    openai (`ollama:NAME` / `lmstudio:NAME` also name the server's usual local port).
    Catalog weights are fetched and verified on first use (with a progress bar).
    `speculation` ("sampled", "ngram" or "off") and `draft_model` (named like `model`) set
    speculative decoding for llama-cpp and mlx.
    Raises ModelUnavailable (exit 3) with one line saying how to fix it.
    """
    chosen = engine(backend)
    req = Request(model=model, adapter=adapter, base_url=base_url, api_key=api_key,
                  replay=replay, threads=threads, context=context, speculation=speculation,
                  draft_model=draft_model)
    return chosen.open(chosen.load(), req)
