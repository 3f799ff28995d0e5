"""Models the loop can drive, chosen by backend name; `make_model` is the one way in.

Engines are imported only when chosen, so `--backend replay` never pays for loading mlx or
llama.cpp, and a machine without one of them can still use the others.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path
from typing import Any

from agent.models.base import (
    Generation,
    Message,
    Model,
    ModelError,
    ModelUnavailable,
    Sampling,
)
from agent.models.catalog import CATALOG, DEFAULT_MODEL, CatalogEntry, lookup

BACKENDS = ("mlx", "llama-cpp", "openai", "replay", "oracle")

__all__ = [
    "BACKENDS",
    "CATALOG",
    "DEFAULT_MODEL",
    "CatalogEntry",
    "Generation",
    "Message",
    "Model",
    "ModelError",
    "ModelUnavailable",
    "Sampling",
    "default_backend",
    "make_model",
]


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


def _mlx_source(model: str) -> str | Path:
    """An MLX model directory or Hub repo for a catalog name, a directory or `org/repo`."""
    from agent.models.weights import pull_mlx

    entry = CATALOG.get(model.strip().lower())
    if entry is not None:
        return pull_mlx(entry)
    looks_like_repo = model.count("/") == 1 and not Path(model).exists()
    if not Path(model).expanduser().is_dir() and not looks_like_repo:
        lookup(model)  # raises: neither a directory nor a known name
    return model if looks_like_repo else Path(model).expanduser()


def speculation_settings(mode: str, draft_model: str | None) -> Any:
    """llama-cpp's Speculation for `--spec MODE` and `--draft-model NAME|FILE.gguf`."""
    from agent.models.llama_cpp import SPEC_MODES, Speculation
    from agent.models.weights import pull_gguf

    if mode not in SPEC_MODES:
        raise ModelUnavailable(f"unknown speculation {mode!r}; choose {' or '.join(SPEC_MODES)}")
    draft = None
    if draft_model:
        entry = CATALOG.get(draft_model.strip().lower())
        if entry is not None:
            draft = pull_gguf(entry.gguf, show_progress=True)
        elif Path(draft_model).expanduser().is_file():
            draft = Path(draft_model).expanduser()
        elif draft_model.endswith(".gguf") or "/" in draft_model:
            raise ModelUnavailable(f"no GGUF file at {draft_model} for --draft-model")
        else:
            lookup(draft_model)  # raises: neither a file nor a known name
    return Speculation(mode=mode, draft_model=draft)  # type: ignore[arg-type]


def make_model(backend: str, model: str | None = None, *, adapter: str | None = None,
               base_url: str | None = None, api_key: str | None = None,
               replay: str | None = None, threads: int | None = None,
               context: int | None = None, speculation: str = "ngram",
               draft_model: str | None = None) -> Model:
    """Build the Model for `backend`.

    `model` is a catalog name (default qwen2.5-coder-0.5b), a local path (.gguf file for
    llama-cpp, model directory for mlx), a Hub repo for mlx, or the server's model name for
    openai. Catalog weights are fetched and verified on first use (with a progress bar).
    `speculation` ("ngram" or "off") and `draft_model` (named like `model`) set speculative
    decoding for llama-cpp and mlx.
    Raises ModelUnavailable (exit 3) with one line saying how to fix it.
    """
    name = backend.strip().lower().replace("_", "-")
    if name in ("llamacpp", "llama.cpp"):
        name = "llama-cpp"
    if name == "replay":
        from agent.models.replay import ReplayModel

        if not replay:
            raise ModelUnavailable("the replay backend needs --replay FILE")
        return ReplayModel.from_file(replay)
    if name == "oracle":
        from agent.models.oracle import OracleModel

        return OracleModel()
    if name == "openai":
        from agent.models.openai import OpenAIModel

        return OpenAIModel(base_url, model=model, api_key=api_key)
    if name == "llama-cpp":
        from agent.models.llama_cpp import LlamaCppModel
        from agent.models.weights import pull_gguf

        if adapter:
            raise ModelUnavailable("LoRA adapters are supported by the mlx backend only")
        spec = speculation_settings(speculation, draft_model)
        entry = _catalog_entry(model)
        if entry is not None:
            path = pull_gguf(entry.gguf, show_progress=True)
            return LlamaCppModel(path, name=entry.name, threads=threads, context=context,
                                 speculation=spec)
        assert model is not None
        if not Path(model).expanduser().is_file():
            lookup(model)  # raises: neither a file nor a known name
        return LlamaCppModel(model, threads=threads, context=context, speculation=spec)
    if name == "mlx":
        from agent.models.mlx import MLXModel
        from agent.models.weights import pull_mlx

        draft = _mlx_source(draft_model) if draft_model else None
        entry = _catalog_entry(model)
        if entry is not None:
            return MLXModel(pull_mlx(entry), name=entry.name, adapter=adapter, draft=draft)
        assert model is not None
        return MLXModel(_mlx_source(model), name=model, adapter=adapter, draft=draft)
    raise ModelUnavailable(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
