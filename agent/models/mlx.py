"""mlx-lm in-process, with the KV cache kept across the rounds of one conversation.

A repair round resends the whole conversation: system prompt, task, the previous answer,
and the compiler's complaint. Everything but the complaint was already prefilled last
round, so we keep the prompt cache and the exact token list it holds; the next call trims
the cache back to the longest common token prefix and prefills only the rest.

With a draft model (a smaller one sharing the tokenizer) mlx-lm decodes speculatively:
the draft proposes a few tokens, the main model checks them in one pass. The cache then
holds both models' layers, each trimmed to the same common prefix. mlx-lm has no prompt
lookup, so without a draft model decoding is plain.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.models.base import Generation, Message, ModelError, ModelUnavailable, Sampling

if TYPE_CHECKING:
    pass

# Chat-end markers of common templates: generation stops on them even when a model's
# config names a different EOS token (Qwen's base config says <|endoftext|>).
HISTORY = 256  # prompt tokens a logits processor may look back on (mlx-lm's penalty: 20)
CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest shared prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class MLXModel:
    """A model loaded by mlx-lm from a local directory or Hub repo, optional LoRA adapter."""

    backend = "mlx"

    def __init__(self, path: str | Path, *, name: str | None = None,
                 adapter: str | Path | None = None, reuse_cache: bool = True,
                 draft: str | Path | None = None, draft_tokens: int = 4) -> None:
        try:
            from mlx_lm import load
        except ImportError as exc:  # pragma: no cover - depends on the platform
            raise ModelUnavailable(
                f"the mlx backend needs mlx-lm ({exc}); `pip install mlx-lm` "
                "or use --backend llama-cpp") from None
        self.name = name or str(path)
        self.path = str(path)
        self.adapter = str(adapter) if adapter else None
        self.reuse_cache = reuse_cache
        if self.adapter and not Path(self.adapter, "adapter_config.json").is_file():
            raise ModelUnavailable(
                f"no LoRA adapter at {self.adapter} (expected adapter_config.json and "
                "adapters.safetensors); pass --adapter DIR of an mlx-lm adapter")
        try:
            self._model, self._tokenizer = load(self.path, adapter_path=self.adapter)
        except Exception as exc:  # mlx-lm raises many kinds; the user needs one line
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelUnavailable(
                f"cannot load MLX model {self.path!r}: {detail}; give a local model "
                "directory or run `guild-agent models pull NAME --backend mlx`") from None
        self._draft: Any = None
        self.draft_tokens = draft_tokens
        if draft is not None:
            self._draft = self._load_draft(load, str(draft))
        self._stop_ids = set(self._tokenizer.eos_token_ids)
        vocab = self._tokenizer.get_vocab()
        for tok in CHAT_END_TOKENS:
            if tok in vocab:
                self._stop_ids.add(vocab[tok])
        self._cache: list[Any] | None = None
        self._cached: list[int] = []  # exactly the tokens whose keys/values are in _cache

    def _load_draft(self, load: Any, path: str) -> Any:
        try:
            draft, tokenizer = load(path)
        except Exception as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelUnavailable(f"cannot load MLX draft model {path!r}: {detail}") from None
        if tokenizer.get_vocab() != self._tokenizer.get_vocab():
            raise ModelUnavailable(
                f"draft model {path!r} has a different vocabulary from {self.path!r}; "
                "use a smaller model of the same family")
        return draft

    def _new_cache(self) -> list[Any]:
        from mlx_lm.models.cache import make_prompt_cache

        cache = make_prompt_cache(self._model)
        if self._draft is not None:  # speculative_generate_step's layout: main, then draft
            cache += make_prompt_cache(self._draft)
        return cache

    @property
    def context_length(self) -> int | None:
        return getattr(getattr(self._model, "args", None), "max_position_embeddings", None)

    def reset(self) -> None:
        """Forget the prompt cache (after a failed generation, or to time a cold start)."""
        self._cache = None
        self._cached = []

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        """The chat template applied to `messages`, ready for the assistant's turn."""
        tokens = self._tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], add_generation_prompt=True, tokenize=True)
        if isinstance(tokens, dict):  # newer transformers return a BatchEncoding
            tokens = tokens["input_ids"]
        return list(tokens)

    def _reusable_prefix(self, prompt: list[int]) -> int:
        """Trim the kept cache to its common prefix with `prompt`; return that length."""
        from mlx_lm.models.cache import can_trim_prompt_cache

        if not self.reuse_cache or self._cache is None:
            return 0
        keep = common_prefix(self._cached, prompt)
        keep = min(keep, len(prompt) - 1)  # the last prompt token must run to get logits
        if keep <= 0 or not can_trim_prompt_cache(self._cache):
            return 0
        if not _trim_to(self._cache, keep):
            return 0
        self._cached = self._cached[:keep]
        return keep

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        import mlx.core as mx
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        if not messages:
            raise ModelError("no messages to send to the model")
        prompt = self.prompt_tokens(messages)
        cached = self._reusable_prefix(prompt)
        if cached == 0:
            self._cache = self._new_cache()
            self._cached = []
        cache = self._cache
        mx.random.seed(sampling.seed)
        sampler = make_sampler(sampling.temperature, top_p=sampling.top_p)
        processors = make_logits_processors(repetition_penalty=sampling.repetition_penalty)
        # mlx-lm shows processors the tokens it ran this call: plain decoding the uncached
        # prompt, speculative decoding only its last token. Prepend the rest, so a
        # repetition penalty sees the same window whatever the cache or the draft did.
        seen = len(prompt) - 1 if self._draft is not None else cached
        processors = _with_history(processors, prompt[:seen][-HISTORY:])
        detok = self._tokenizer.detokenizer
        out: list[int] = []
        finish = "length"
        t0 = time.perf_counter()
        t_first = None
        steps = self._steps(mx.array(prompt[cached:]), sampling.max_tokens, sampler,
                            processors, cache)
        drafted = accepted = 0
        new_pass = self._draft is not None
        try:
            for token, _, from_draft in steps:
                if t_first is None:
                    t_first = time.perf_counter()
                if new_pass:  # the draft proposed this many tokens for this verify pass
                    drafted += min(self.draft_tokens, sampling.max_tokens - len(out))
                # A pass yields its accepted guesses, then the main model's own token.
                new_pass = self._draft is not None and not from_draft
                accepted += bool(from_draft)
                out.append(token)
                if token in self._stop_ids:
                    finish = "stop"
                    break
                detok.add_token(token)
                if sampling.stop and _find_stop(detok.text, sampling.stop) is not None:
                    break
        except Exception as exc:
            self.reset()
            raise ModelError(f"mlx generation failed: {exc}") from None
        finally:
            steps.close()
        t_end = time.perf_counter()
        detok.finalize()
        text = detok.text
        hit = _find_stop(text, sampling.stop) if sampling.stop else None
        if hit is not None:
            text, finish = text[:hit], "stop"
        # The cache now holds the prompt plus the sampled tokens it has already run (a
        # speculative run may hold more, if we stopped reading inside an accepted guess).
        seq = self._cached + prompt[cached:] + out
        held = min((getattr(c, "offset", 0) for c in cache), default=0)
        held = min(held, len(seq))
        if not _trim_to(cache, held):
            self._cache, held = None, 0
        self._cached = seq[:held]
        if t_first is None:
            t_first = t_end
        return Generation(
            text=text,
            prompt_tokens=len(prompt),
            cached_tokens=cached,
            completion_tokens=len(out),
            drafted_tokens=drafted,
            accepted_tokens=accepted,
            prompt_seconds=t_first - t0,
            generation_seconds=t_end - t_first,
            finish_reason=finish,  # type: ignore[arg-type]
        )


    def _steps(self, prompt: Any, max_tokens: int, sampler: Any, processors: Any,
               cache: list[Any]) -> Any:
        """mlx-lm's token generator: (token, logprobs, from_draft) per token."""
        from mlx_lm.generate import generate_step, speculative_generate_step

        if self._draft is None:
            plain = generate_step(prompt, self._model, max_tokens=max_tokens, sampler=sampler,
                                  logits_processors=processors, prompt_cache=cache)
            return _undrafted(plain)
        return speculative_generate_step(
            prompt, self._model, self._draft, num_draft_tokens=self.draft_tokens,
            max_tokens=max_tokens, sampler=sampler, logits_processors=processors,
            prompt_cache=cache)


def _with_history(processors: list[Any], head: list[int]) -> list[Any]:
    import mlx.core as mx

    if not head:
        return processors
    prefix = mx.array(head)

    def wrap(proc: Any) -> Any:
        return lambda tokens, logits: proc(
            mx.concatenate([prefix.astype(tokens.dtype), tokens]), logits)

    return [wrap(p) for p in processors]


def _undrafted(steps: Any) -> Any:
    """Plain steps shaped like speculative ones; closing this closes the inner generator."""
    try:
        for token, logprobs in steps:
            yield token, logprobs, False
    finally:
        steps.close()


def _trim_to(cache: list[Any], length: int) -> bool:
    """Trim every layer of `cache` back to `length` tokens; False if one cannot be."""
    for c in cache:
        extra = getattr(c, "offset", 0) - length
        if extra < 0 or (extra and c.trim(extra) != extra):
            return False
    return True


def _find_stop(text: str, stops: list[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None
