"""The model seam: chat messages and sampling settings in, text plus measurements out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

from pydantic import BaseModel, Field, field_validator, model_validator

if TYPE_CHECKING:
    from agent.loop.problem import Problem


# Speculative decoding by prompt lookup, where the engine has it (llama.cpp): a repair
# answer copies most of the file it was shown, and the engine checks a guessed run of
# tokens in one pass (1.4-1.5x per repair answer, README). Off by default, measured: on
# every request (`ngram`) its batched check moved greedy answers (single shot 4 -> 3 of
# 26 basics); for sampled requests only (`sampled`, a second engine) greedy answers stay
# exact, but at the loop's temperatures fewer guesses hold and on 2 cores the repair
# rounds were 1.06x faster per token, the same compute in all (1,002 s both ways).
SpecMode = Literal["sampled", "ngram", "off"]
SPEC_MODES: tuple[str, ...] = get_args(SpecMode)
DEFAULT_SPECULATION: SpecMode = "off"

class ModelError(RuntimeError):
    """A model call failed for good (after any retries); the message says why."""


class ModelUnavailable(ModelError):
    """The engine or weights are missing; the message says how to get them (exit code 3)."""


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Sampling(BaseModel):
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0
    max_tokens: int = Field(default=1024, ge=1)
    stop: list[str] = Field(default_factory=list)
    repetition_penalty: float | None = Field(default=None, gt=0.0)


# Far beyond any answer asked for (32k tokens is ~130k characters); a longer one is a
# runaway server or script, and the extractor and the trajectory should not pay for it.
MAX_ANSWER_CHARS = 400_000
# A token count above this is nonsense from a server, not a measurement.
MAX_TOKEN_COUNT = 10_000_000


def clean_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD.

    JSON and YAML can carry "\\ud800"; such a str cannot be encoded, so writing it to a Go
    file, a trajectory or the terminal would raise. Paired surrogates become the character
    they spell.
    """
    if text.isascii():
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class Generation(BaseModel):
    """One answer. Every engine's text passes through here, so this is the model boundary:
    text that cannot be encoded is repaired and a runaway answer is cut."""

    text: str
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from a cache, not prefilled again
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    finish_reason: Literal["stop", "length", "error"] = "stop"
    drafted_tokens: int = 0  # tokens guessed ahead by speculative decoding…
    accepted_tokens: int = 0  # …and how many of them the model confirmed

    @field_validator("text")
    @classmethod
    def _encodable(cls, v: str) -> str:
        return clean_text(v)

    @model_validator(mode="after")
    def _capped(self) -> Generation:
        if len(self.text) > MAX_ANSWER_CHARS:
            self.text = self.text[:MAX_ANSWER_CHARS]
            self.finish_reason = "length"
        return self

    @property
    def seconds(self) -> float:
        return self.prompt_seconds + self.generation_seconds

    @property
    def tokens_per_second(self) -> float:
        if self.generation_seconds <= 0:
            return 0.0
        return self.completion_tokens / self.generation_seconds


@runtime_checkable
class Model(Protocol):
    """Any engine the loop can drive."""

    name: str
    backend: str

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        """One chat completion. Raises ModelError (or ModelUnavailable).

        Conversation state is the engine's business: llama.cpp and mlx reuse the cached
        prefix a new prompt shares with the last one, so conversations cannot mix.
        """
        ...


def bind(model: Model, problem: Problem) -> Model:
    """The model as it answers `problem`: the oracle needs the task it came from."""
    for_problem = getattr(model, "for_problem", None)
    return for_problem(problem) if callable(for_problem) else model


def chat_body(messages: list[Message], sampling: Sampling) -> dict[str, Any]:
    """The OpenAI chat-completions fields every engine here understands.

    Engines add their own extras (llama.cpp's cache_prompt, a server's model name).
    """
    body: dict[str, Any] = {
        "messages": [m.model_dump() for m in messages],
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": sampling.seed,
    }
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    return body


def _count(value: Any) -> int | None:
    """A token count from a server, or None when it is not a plausible one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        # isdigit() alone admits "²", which int() refuses
        value = int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None
    elif isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, int) and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    return None


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    value = float(value) / 1000.0
    return value if math.isfinite(value) and 0.0 <= value < 1e7 else 0.0


def _one_line(value: Any, limit: int = 200) -> str:
    text = clean_text(" ".join(str(value).split()))
    return text[:limit] + ("…" if len(text) > limit else "")


def _content(message: Any) -> str | None:
    """The text of a chat message: a string, or a list of text parts (some servers)."""
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(
            isinstance(p, dict) and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    return None


def generation_from_response(data: Any, *, where: str,
                             messages: Sequence[Message] = ()) -> Generation:
    """Read an OpenAI-style chat completion (plus llama.cpp `timings`) into a Generation.

    A response without answer text is a ModelError (one line). Usage numbers that are
    missing, negative, absurd or not numbers are unknown, not fatal: the counts are then
    estimated (about four characters a token) from `messages` and the text, so budgets
    still move.
    """
    if not isinstance(data, dict):
        raise ModelError(f"{where}: the response is a JSON {type(data).__name__}, "
                         "not a chat completion object")
    if data.get("error"):
        err = data["error"]
        msg = err.get("message", err) if isinstance(err, dict) else err
        raise ModelError(f"{where}: {_one_line(msg)}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelError(f"{where}: the response has no choices")
    choice = choices[0]
    text = _content(choice.get("message"))
    if text is None:
        raise ModelError(f"{where}: the response has no text in choices[0].message.content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    timings = data.get("timings") if isinstance(data.get("timings"), dict) else {}
    prompt = _count(usage.get("prompt_tokens"))
    if prompt is None:
        prompt = sum(len(m.content) for m in messages) // 4
    completion = _count(usage.get("completion_tokens"))
    if completion is None:
        completion = max(1, len(text) // 4) if text else 0
    cached = _count(details.get("cached_tokens"))
    if cached is None:
        cached = _count(timings.get("cache_n")) or 0
    return Generation(
        text=text,
        prompt_tokens=prompt,
        cached_tokens=min(cached, prompt),
        completion_tokens=completion,
        prompt_seconds=_seconds(timings.get("prompt_ms")),
        generation_seconds=_seconds(timings.get("predicted_ms")),
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        drafted_tokens=_count(timings.get("draft_n")) or 0,
        accepted_tokens=_count(timings.get("draft_n_accepted")) or 0,
    )
