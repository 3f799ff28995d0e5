"""Any OpenAI-compatible `/v1/chat/completions` server (mlx_lm.server, llama.cpp, Ollama, vLLM).

Plain urllib, so there is no client library to install. Transient failures (connection
refused or reset, timeouts, 429, 5xx) are retried with exponential backoff; any other 4xx
means the request itself is wrong and will not get better, so it fails at once. Every
final failure is one ModelError line naming the URL and what to check.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from agent.models.base import (
    Generation,
    Message,
    ModelError,
    ModelUnavailable,
    Sampling,
    chat_body,
)
from agent.models.llama_cpp import generation_from_response

if TYPE_CHECKING:
    from agent.task import TaskSpec

API_KEY_ENV = ("GUILD_AGENT_API_KEY", "OPENAI_API_KEY")


class _Transient(Exception):
    """A failure worth retrying; carries the one-line reason for the final error."""


def chat_url(base_url: str) -> str:
    """`http://host:port`, `.../v1` or `.../v1/chat/completions` → the completions URL."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if not url.endswith("/v1"):
        url += "/v1"
    return url + "/chat/completions"


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        text = str(msg)
    except (ValueError, AttributeError):
        text = body.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:200] or "(empty body)"


class OpenAIModel:
    """A chat model behind an OpenAI-compatible HTTP endpoint."""

    backend = "openai"

    def __init__(self, base_url: str | None, *, model: str | None = None,
                 api_key: str | None = None, timeout: float = 600.0, attempts: int = 4,
                 backoff: float = 1.0) -> None:
        if not base_url:
            raise ModelUnavailable(
                "the openai backend needs a server: pass --base-url http://HOST:PORT")
        self.url = chat_url(base_url)
        self.model = model
        self.name = model or self.url
        self.api_key = api_key or next(
            (os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def start(self, task: TaskSpec | None) -> None:
        """Servers keep no conversation state we could drop."""

    def request_body(self, messages: list[Message], sampling: Sampling) -> dict[str, Any]:
        body = chat_body(messages, sampling)
        body["stream"] = False
        if self.model:
            body["model"] = self.model
        if sampling.stop:
            body["stop"] = list(sampling.stop)[:4]  # the OpenAI API accepts at most four
        if sampling.repetition_penalty is not None:
            body["repetition_penalty"] = sampling.repetition_penalty  # vLLM, mlx_lm.server
            body["repeat_penalty"] = sampling.repetition_penalty  # llama.cpp, Ollama
        return body

    def _post_once(self, payload: bytes) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc.read())
            if exc.code == 429 or exc.code >= 500:
                raise _Transient(f"HTTP {exc.code}: {detail}") from None
            hint = " (check --api-key)" if exc.code in (401, 403) else ""
            raise ModelError(f"{self.url}: HTTP {exc.code}: {detail}{hint}") from None
        except urllib.error.URLError as exc:
            raise _Transient(f"cannot connect: {exc.reason}") from None
        except TimeoutError:
            raise _Transient(f"no answer within {self.timeout:g}s") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Transient(f"connection failed: {exc or type(exc).__name__}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise ModelError(f"{self.url}: the server did not return JSON") from None

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        payload = json.dumps(self.request_body(messages, sampling)).encode()
        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=30),
            reraise=False,
        )
        try:
            data = retrying(self._post_once, payload)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise ModelError(
                f"{self.url}: {last} (gave up after {self.attempts} attempts; "
                "is the server running and --base-url right?)") from None
        return generation_from_response(data, where=self.url)

