"""Any OpenAI-compatible `/v1/chat/completions` server (mlx_lm.server, llama.cpp, Ollama, vLLM).

Plain http.client, so there is no client library to install. Transient failures
(connection refused or reset, timeouts, 429, 5xx) are retried with exponential backoff;
any other 4xx means the request itself is wrong and will not get better, so it fails at
once. Every final failure is one ModelError line naming the URL and what to check.

A server is not trusted to end its answer: a socket timeout only bounds each read, and a
server dripping a byte a second never trips it. So every `generate` has a total deadline
(all attempts and waits included), enforced by closing the socket when it passes, and the
body is read up to a size cap.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
)

from agent.models.base import (
    Generation,
    Message,
    ModelError,
    ModelUnavailable,
    Sampling,
    chat_body,
    clean_text,
    generation_from_response,
)

if TYPE_CHECKING:
    pass

API_KEY_ENV = ("GUILD_AGENT_API_KEY", "OPENAI_API_KEY")
DEADLINE_ENV = "GUILD_AGENT_REQUEST_DEADLINE"
# The default deadline: a fixed allowance for the prompt plus a floor of 2 tokens/s for
# the answer, slow enough for a CPU server, finite for a server that never finishes.
DEADLINE_BASE = 120.0
DEADLINE_PER_TOKEN = 0.5
# Bytes a response may take: generous for JSON-escaped text, finite for an endless one.
BODY_BASE = 4 << 20
BODY_PER_TOKEN = 64
# Requests one `generate_many` keeps in flight: a local server has a few slots at most.
MAX_CONCURRENT = 8


class _Transient(Exception):
    """A failure worth retrying; carries the one-line reason for the final error."""


class _Expired(Exception):
    """The total deadline passed."""


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
    except (ValueError, AttributeError, RecursionError):
        text = body.decode("utf-8", "replace")
    text = clean_text(" ".join(text.split()))
    return text[:200] or "(empty body)"


def _deadline_from_env() -> float | None:
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ModelUnavailable(f"{DEADLINE_ENV}={raw!r}: expected seconds, e.g. 600") from None
    if not 0 < value < 1e7:
        raise ModelUnavailable(f"{DEADLINE_ENV}={raw!r}: expected a positive number of seconds")
    return value


class OpenAIModel:
    """A chat model behind an OpenAI-compatible HTTP endpoint.

    `timeout` bounds each socket read; `deadline` bounds a whole `generate` call, retries
    and backoff included (None: `GUILD_AGENT_REQUEST_DEADLINE`, else 120 s plus 0.5 s per
    max token).
    """

    backend = "openai"

    def __init__(self, base_url: str | None, *, model: str | None = None,
                 api_key: str | None = None, timeout: float = 600.0, attempts: int = 4,
                 backoff: float = 1.0, deadline: float | None = None) -> None:
        if not base_url:
            raise ModelUnavailable(
                "the openai backend needs a server: pass --base-url http://HOST:PORT")
        self.url = chat_url(base_url)
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelUnavailable(
                f"--base-url {base_url!r}: expected http://HOST:PORT or https://HOST/…")
        self._parts = parts
        self.model = model
        self.name = model or self.url
        self.api_key = api_key or next(
            (os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.deadline = deadline if deadline is not None else _deadline_from_env()

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

    def deadline_for(self, sampling: Sampling) -> float:
        """Seconds one `generate` may take in all."""
        if self.deadline is not None:
            return self.deadline
        return DEADLINE_BASE + DEADLINE_PER_TOKEN * sampling.max_tokens

    # -- one HTTP exchange ------------------------------------------------------
    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, str,
                                                   dict[str, str]]:
        """A connection to the server (or its proxy, as urllib would pick), the request
        target and any proxy headers."""
        p = self._parts
        target = p.path + (f"?{p.query}" if p.query else "")
        https = p.scheme == "https"
        port = p.port or (443 if https else 80)
        cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
        proxy = urllib.request.getproxies().get(p.scheme)
        if not proxy or urllib.request.proxy_bypass(p.hostname or ""):
            return cls(p.hostname, port, timeout=timeout), target, {}
        pp = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        headers: dict[str, str] = {}
        if pp.username:
            cred = f"{urllib.parse.unquote(pp.username)}:{urllib.parse.unquote(pp.password or '')}"
            headers["Proxy-Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        if https:
            conn = cls(pp.hostname, pp.port or 80, timeout=timeout)
            conn.set_tunnel(p.hostname or "", port, headers=headers)
            return conn, target, {}
        return cls(pp.hostname, pp.port or 80, timeout=timeout), self.url, headers

    def _post_once(self, payload: bytes, until: float, max_body: int) -> Any:
        left = until - time.monotonic()
        if left <= 0:
            raise _Expired
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn, target, extra = self._connection(min(self.timeout, left))
        headers.update(extra)
        expired = threading.Event()

        def cut() -> None:
            # Shutting the socket down wakes a blocked read at once, wherever it is.
            expired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(left, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.request("POST", target, body=payload, headers=headers)
            resp = conn.getresponse()
            body = _read_capped(resp, max_body)
            status, ctype = resp.status, resp.getheader("Content-Type", "")
        except _TooBig:
            raise ModelError(f"{self.url}: the response is larger than {max_body} bytes; "
                             "the server does not stop answering") from None
        except TimeoutError:
            if expired.is_set():
                raise _Expired from None
            raise _Transient(f"no answer within {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise _Expired from None
            if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
                raise _Transient(f"cannot connect: {exc}") from None
            raise _Transient(f"connection failed: {exc or type(exc).__name__}") from None
        finally:
            watchdog.cancel()
            conn.close()
        if expired.is_set():
            raise _Expired
        return self._decode(status, ctype, body)

    def _decode(self, status: int, ctype: str, body: bytes) -> Any:
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}: {_error_detail(body)}")
        if status >= 400:
            hint = " (check --api-key)" if status in (401, 403) else ""
            raise ModelError(f"{self.url}: HTTP {status}: {_error_detail(body)}{hint}")
        if status >= 300:
            raise ModelError(f"{self.url}: HTTP {status} (a redirect); pass the final "
                             "address as --base-url")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            head = _error_detail(body)[:80]
            kind = ctype.split(";")[0].strip() or "no content type"
            raise ModelError(f"{self.url}: the server did not return JSON "
                             f"({kind}: {head})") from None

    # -- the Model protocol -----------------------------------------------------
    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        payload = json.dumps(self.request_body(messages, sampling)).encode()
        total = self.deadline_for(sampling)
        until = time.monotonic() + total
        max_body = BODY_BASE + BODY_PER_TOKEN * sampling.max_tokens
        # tenacity drives the retries; the deadline bounds them all, waits included, and a
        # wait that would cross it is not started.
        last: list[str] = []  # the last retried failure, for the deadline's message

        def note(state: RetryCallState) -> None:
            if state.outcome is not None and state.outcome.failed:
                last[:] = [str(state.outcome.exception())]

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            before_sleep=note,
            stop=stop_after_attempt(self.attempts) | stop_before_delay(total),
            wait=wait_exponential(multiplier=self.backoff, max=30.0),
            reraise=True,
        )
        try:
            data = retrying(self._post_once, payload, until, max_body)
        except _Transient as exc:
            tries = retrying.statistics.get("attempt_number", self.attempts)
            why = ("no time left within the " f"{total:g}s deadline; is the server running?"
                   if tries < self.attempts else
                   "is the server running and --base-url right?")
            raise ModelError(f"{self.url}: {exc} (gave up after {tries} "
                             f"{'attempt' if tries == 1 else 'attempts'}; {why})") from None
        except _Expired:
            before = f"; before that: {last[0]}" if last else ""
            raise ModelError(
                f"{self.url}: no complete answer within the {total:g}s deadline "
                f"({DEADLINE_ENV} sets it{before})") from None
        return generation_from_response(data, where=self.url, messages=messages)

    def generate_many(self, messages: list[Message], samplings: list[Sampling]
                      ) -> list[Generation]:
        """One answer per sampling, the requests in flight together: a server with
        several slots (llama-server -np, vLLM, Ollama) batches them. The first failure
        is raised once every request has ended."""
        if len(samplings) <= 1:
            return [self.generate(messages, s) for s in samplings]
        workers = min(len(samplings), MAX_CONCURRENT)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="candidate") as pool:
            futures = [pool.submit(self.generate, messages, s) for s in samplings]
        return [f.result() for f in futures]


class _TooBig(Exception):
    pass


def _read_capped(resp: http.client.HTTPResponse, limit: int) -> bytes:
    """The response body, refusing more than `limit` bytes (announced or sent)."""
    length = resp.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > limit:
        raise _TooBig
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooBig
        chunks.append(chunk)
