"""GGUF models in-process on CPU through xllamacpp (llama.cpp's own server engine).

We call the engine's OpenAI-style chat handler directly (no HTTP hop), with one slot and
`cache_prompt` on: llama.cpp keeps the slot's KV cache and reuses the longest common
prefix of the next prompt, so a repair round prefills only the new tail. The engine
reports how many prompt tokens it served from that cache; we pass the number on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.models.base import (
    Generation,
    Message,
    ModelError,
    ModelUnavailable,
    Sampling,
    chat_body,
    generation_from_response,
)

if TYPE_CHECKING:
    from agent.tasks.spec import TaskSpec

DEFAULT_CONTEXT = 8192


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def engine_params(path: str | Path, *, threads: int | None = None,
                  context: int | None = None) -> Any:
    """The xllamacpp CommonParams we run with; the benchmark builds its raw engine from it."""
    import xllamacpp

    n = threads or available_cores()
    p = xllamacpp.CommonParams()
    p.model.path = str(path)
    p.n_ctx = context or DEFAULT_CONTEXT
    p.n_parallel = 1  # one conversation at a time: its slot keeps the prefix cache
    p.cpuparams.n_threads = n
    p.cpuparams_batch.n_threads = n
    p.cache_prompt = True
    p.verbosity = -1  # llama.cpp logs every request to stderr otherwise
    return p


def chat_request(messages: list[Message], sampling: Sampling, *,
                 cache_prompt: bool = True) -> dict[str, Any]:
    """An OpenAI-style chat request body, with llama.cpp's extras (cache, repeat penalty)."""
    body = chat_body(messages, sampling)
    body["cache_prompt"] = cache_prompt
    if sampling.repetition_penalty is not None:
        body["repeat_penalty"] = sampling.repetition_penalty
    return body


class LlamaCppModel:
    """One GGUF file loaded into an in-process llama.cpp server engine."""

    backend = "llama-cpp"

    def __init__(self, path: str | Path, *, name: str | None = None,
                 threads: int | None = None, context: int | None = None,
                 cache_prompt: bool = True) -> None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelUnavailable(
                f"no GGUF file at {path}; give a .gguf path or a catalog name "
                "(`guild-agent models` lists them)")
        try:
            import xllamacpp
        except ImportError as exc:  # pragma: no cover - depends on the platform
            raise ModelUnavailable(
                f"the llama-cpp backend needs xllamacpp ({exc}); `pip install xllamacpp`"
            ) from None
        self.name = name or path.stem
        self.path = path
        self.threads = threads or available_cores()
        self.context_length = context or DEFAULT_CONTEXT
        self.cache_prompt = cache_prompt  # off only to measure what the cache saves
        try:
            self._server = xllamacpp.Server(
                engine_params(path, threads=self.threads, context=self.context_length))
        except Exception as exc:
            raise ModelUnavailable(
                f"llama.cpp cannot load {path}: {exc}; is it a complete GGUF file? "
                "`guild-agent models pull NAME` fetches a verified one") from None

    def start(self, task: TaskSpec | None) -> None:
        """Nothing to reset: the engine reuses only a matching prefix, so tasks can't mix."""

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        try:
            data = self._server.handle_chat_completions(
                chat_request(messages, sampling, cache_prompt=self.cache_prompt))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp rejected the request: {exc}") from None
        return generation_from_response(data, where=f"llama.cpp ({self.name})")
