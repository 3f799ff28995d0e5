"""The model seam: chat messages and sampling settings in, text plus measurements out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from agent.task import TaskSpec


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


class Generation(BaseModel):
    text: str
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from a cache, not prefilled again
    completion_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0
    finish_reason: Literal["stop", "length", "error"] = "stop"
    drafted_tokens: int = 0  # tokens guessed ahead by speculative decoding…
    accepted_tokens: int = 0  # …and how many of them the model confirmed

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

    def start(self, task: TaskSpec | None) -> None:
        """A new conversation begins (about `task`, when there is one).

        Engines drop per-conversation state here; the oracle reads the task's reference.
        """
        ...

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        """One chat completion. Raises ModelError (or ModelUnavailable)."""
        ...


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
