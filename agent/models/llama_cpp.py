"""GGUF models in-process on CPU through xllamacpp (llama.cpp's own server engine).

We call the engine's OpenAI-style chat handler directly (no HTTP hop), with one slot and
`cache_prompt` on for sampled requests: llama.cpp keeps the slot's KV cache and reuses
the longest common prefix of the next prompt, so a repair round prefills only the new
tail. The engine reports how many prompt tokens it served from that cache; we pass the
number on. A greedy request is prefilled whole, so it always gets the same answer.

Speculation (prompt lookup): a repair answer mostly copies the file the model was just
shown, so the engine looks up the last few generated tokens earlier in the conversation
and proposes what followed them there; one batched pass checks the whole guess. That
batched check is not bit-exact against plain decoding on this engine (a near-tie can
fall the other way), so in `sampled` mode greedy requests go to a plain
engine and only sampled ones (repair rounds) to a speculating one, loaded on first use;
the weights are memory-mapped once, each engine has its own KV cache, and a lock keeps
them from running at once. `Speculation` holds the settings;
benchmarks/perf/spec_sweep.py measures other n-gram sizes and draft lengths.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent.models.base import (
    DEFAULT_SPECULATION,
    Generation,
    Message,
    ModelError,
    ModelUnavailable,
    Sampling,
    SpecMode,
    chat_body,
    generation_from_response,
)

DEFAULT_CONTEXT = 8192

# llama.cpp's CPU backend runs on OpenMP (libgomp), which cuts its threads' spin-wait from
# 300,000 to 100 rounds once a process holds more OpenMP threads than cores: a second
# engine in the process (`--spec sampled`), even idle, then made the first decode 18%
# slower on 2 cores (50 -> 41 tok/s) as its threads slept between every operation. ACTIVE
# with the default spin count keeps 1,000 rounds in that case and changes nothing for one
# engine; idle engines still use no CPU. libgomp reads these once, when xllamacpp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "300000")


class Speculation(BaseModel):
    """How the engine guesses tokens ahead for the model to verify in one batch.

    `ngram`: the last `ngram` tokens (the one just sampled included) are looked up in the
    conversation so far, and up to `draft_max` tokens that followed the latest earlier
    match become the guess. A `draft_model` (a smaller GGUF of the same vocabulary) adds
    guesses where the text is new; it pays off only with cores to spare.
    Measured on the 0.5B (benchmarks/perf/spec_sweep.py, 2 shared cores, noisy): with
    llama.cpp's draft length of 48 a fresh answer drafted ~320 tokens a pass, kept 10%,
    and decoded at 0.81x; 16 keeps fresh answers at 0.96-1.03x and accepts 81% of a
    repair answer's guesses (vs 62%). The n-gram size is llama.cpp's 12.
    """

    mode: SpecMode = DEFAULT_SPECULATION
    ngram: int = Field(default=12, ge=1, le=64)
    draft_max: int = Field(default=16, ge=1, le=256)
    draft_model: Path | None = None

    @property
    def active(self) -> bool:
        return self.mode != "off" or self.draft_model is not None


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset/cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def engine_params(path: str | Path, *, threads: int | None = None,
                  context: int | None = None, speculation: Speculation | None = None) -> Any:
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
    _speculate(p, speculation or Speculation(), n)
    return p


def _speculate(p: Any, spec: Speculation, threads: int) -> None:
    """Set the engine's speculative-decoding fields from `spec` (the engine's own
    defaults for a draft model's batch sizes: on a small CPU they hardly matter)."""
    import xllamacpp

    kind = xllamacpp.common_speculative_type
    types = []
    if spec.mode == "sampled":  # this engine serves greedy requests: it decodes plainly
        p.speculative.types = [kind.COMMON_SPECULATIVE_TYPE_NONE]
        return
    if spec.mode == "ngram":
        types.append(kind.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE)
        p.speculative.ngram_simple.size_n = spec.ngram
        p.speculative.ngram_simple.size_m = spec.draft_max
    if spec.draft_model is not None:
        types.append(kind.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE)
        p.speculative.draft.mparams.path = str(spec.draft_model)
        p.speculative.draft.cpuparams.n_threads = threads
        p.speculative.draft.cpuparams_batch.n_threads = threads
    p.speculative.types = types or [kind.COMMON_SPECULATIVE_TYPE_NONE]


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
                 cache_prompt: bool = True, speculation: Speculation | None = None) -> None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelUnavailable(
                f"no GGUF file at {path}; give a .gguf path or a catalog name "
                "(`guild-agent models` lists them)")
        try:
            import xllamacpp  # noqa: F401 - here to say at once when it is missing
        except ImportError as exc:  # pragma: no cover - depends on the platform
            raise ModelUnavailable(
                f"the llama-cpp backend needs xllamacpp ({exc}); `pip install xllamacpp`"
            ) from None
        self.name = name or path.stem
        self.path = path
        self.threads = threads or available_cores()
        self.context_length = context or DEFAULT_CONTEXT
        self.cache_prompt = cache_prompt  # off only to measure what the cache saves
        self.speculation = speculation or Speculation()
        draft = self.speculation.draft_model
        if draft is not None and not Path(draft).is_file():
            raise ModelUnavailable(f"no GGUF file at {draft} for --draft-model")
        self._server = self._load(self.speculation)
        self._speculating: Any = None  # `sampled`: the engine for T > 0, loaded on first use
        self._lock = threading.Lock()  # two engines never share the cores at once

    def _load(self, spec: Speculation) -> Any:
        import xllamacpp

        try:
            return xllamacpp.Server(engine_params(
                self.path, threads=self.threads, context=self.context_length,
                speculation=spec))
        except Exception as exc:
            raise ModelUnavailable(
                f"llama.cpp cannot load {self.path}: {exc}; is it a complete GGUF file? "
                "`guild-agent models pull NAME` fetches a verified one") from None

    def _engine(self, sampling: Sampling) -> Any:
        if self.speculation.mode != "sampled" or not sampling.temperature:
            return self._server
        if self._speculating is None:
            try:
                self._speculating = self._load(self.speculation.model_copy(
                    update={"mode": "ngram"}))
            except ModelUnavailable as exc:
                raise ModelError(str(exc)) from None
        return self._speculating

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        # A greedy answer is prefilled from scratch: what the slot's cache held before
        # changes how a reused prefix was computed, and that alone can tip a near-tie, so
        # the same greedy prompt gave a different answer as single shot and as round 1 of
        # a repair run (insert_interval, 1.5B: passed as the one, failed as the other).
        # It costs one prompt's prefill; sampled (repair) requests keep the cache.
        cache = self.cache_prompt and bool(sampling.temperature)
        with self._lock:
            engine = self._engine(sampling)  # raises ModelError as it is, unwrapped
            try:
                data = engine.handle_chat_completions(
                    chat_request(messages, sampling, cache_prompt=cache))
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"llama.cpp rejected the request: {exc}") from None
        return generation_from_response(data, where=f"llama.cpp ({self.name})")
