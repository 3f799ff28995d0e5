"""Models the loop can drive, chosen by backend name; `make_model` is the one way in.

Engines are imported only when chosen, so `--backend replay` never pays for loading mlx or
llama.cpp, and a machine without one of them can still use the others.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path

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


def make_model(backend: str, model: str | None = None, *, adapter: str | None = None,
               base_url: str | None = None, api_key: str | None = None,
               replay: str | None = None, threads: int | None = None,
               context: int | None = None) -> Model:
    """Build the Model for `backend`.

    `model` is a catalog name (default qwen2.5-coder-0.5b), a local path (.gguf file for
    llama-cpp, model directory for mlx), a Hub repo for mlx, or the server's model name for
    openai. Catalog weights are fetched and verified on first use (with a progress bar).
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
        entry = _catalog_entry(model)
        if entry is not None:
            path = pull_gguf(entry.gguf, show_progress=True)
            return LlamaCppModel(path, name=entry.name, threads=threads, context=context)
        assert model is not None
        if not Path(model).expanduser().is_file():
            lookup(model)  # raises: neither a file nor a known name
        return LlamaCppModel(model, threads=threads, context=context)
    if name == "mlx":
        from agent.models.mlx import MLXModel
        from agent.models.weights import pull_mlx

        entry = _catalog_entry(model)
        if entry is not None:
            return MLXModel(pull_mlx(entry), name=entry.name, adapter=adapter)
        assert model is not None
        looks_like_repo = model.count("/") == 1 and not Path(model).exists()
        if not Path(model).expanduser().is_dir() and not looks_like_repo:
            lookup(model)
        return MLXModel(Path(model).expanduser() if not looks_like_repo else model,
                        name=model, adapter=adapter)
    raise ModelUnavailable(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
