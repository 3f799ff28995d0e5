"""Local OpenAI-compatible servers: Ollama, LM Studio, llama-server (and any other).

Finding one is a bounded probe of the usual ports on 127.0.0.1, all at once, each with a
short timeout: nothing here waits on the network at large. Everything a server sends is
read with a size cap and treated as untrusted text (model ids are shown to people).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict

from agent.models.base import Generation, Message, ModelUnavailable, Sampling

PROBE_PORTS_ENV = "GUILD_AGENT_PROBE_PORTS"
HOST = "127.0.0.1"
MAX_BODY = 4 << 20  # a model list or /api/show answer is far smaller
MAX_MODELS = 500
PROBE_TIMEOUT = 0.5


class ServerKind(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # the `--model KEY:NAME` prefix
    label: str
    port: int


KINDS: dict[str, ServerKind] = {k.key: k for k in (
    ServerKind(key="ollama", label="Ollama", port=11434),
    ServerKind(key="lmstudio", label="LM Studio", port=1234),
    ServerKind(key="llama-server", label="llama-server", port=8080),
)}
DEFAULT_PORTS = tuple(k.port for k in KINDS.values())

# Ollama's OpenAI endpoint runs a model at the server's default context unless the
# model's Modelfile sets num_ctx, and cuts longer prompts without saying so.
OLLAMA_DEFAULT_CONTEXT = 4096


class Server(BaseModel):
    """A server that answered: its base URL (no /v1), what it is, and how it was found."""

    url: str
    kind: str | None = None  # a KINDS key, when recognised
    label: str = "an OpenAI-compatible server"
    found_by: str = "--base-url"


def base_url(url: str) -> str:
    """`http://h:p/v1/chat/completions`, `http://h:p/v1/` → `http://h:p`."""
    url = url.strip().rstrip("/")
    for tail in ("/chat/completions", "/v1"):
        if url.endswith(tail):
            url = url[: -len(tail)].rstrip("/")
    return url


def probe_ports(env: dict[str, str] | None = None) -> tuple[int, ...]:
    """The ports to try: GUILD_AGENT_PROBE_PORTS (comma-separated), else the usual ones."""
    raw = (os.environ if env is None else env).get(PROBE_PORTS_ENV, "").strip()
    if not raw:
        return DEFAULT_PORTS
    ports = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise ModelUnavailable(f"{PROBE_PORTS_ENV}={raw!r}: ports are numbers 1-65535, "
                                   "comma-separated")
        ports.append(int(part))
    return tuple(ports)


def _get_json(url: str, timeout: float, data: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> Any:
    """GET (or POST `data`) and parse JSON; None for any failure, never an exception."""
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={
        "Accept": "application/json", **({"Content-Type": "application/json"} if body else {}),
        **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read(MAX_BODY + 1)
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if len(raw) > MAX_BODY:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_id(text: str, limit: int = 200) -> str:
    """A server's string made safe to print on one line (no control or bidi characters)."""
    return _UNPRINTABLE.sub("?", text)[:limit]


def list_models(url: str, *, api_key: str | None = None, timeout: float = 3.0
                ) -> list[str] | None:
    """The model ids `GET /v1/models` lists (None if the server does not answer it)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    data = _get_json(base_url(url) + "/v1/models", timeout, headers=headers)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    ids = [clean_id(m["id"]) for m in data["data"][:MAX_MODELS]
           if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"].strip()]
    return ids


def identify(url: str, timeout: float = 1.0) -> tuple[str | None, str]:
    """(KINDS key, label) of the server at `url`, from endpoints only it has."""
    root = base_url(url)
    version = _get_json(root + "/api/version", timeout)
    if isinstance(version, dict) and isinstance(version.get("version"), str):
        return "ollama", f"Ollama {clean_id(version['version'], 40)}"
    lms = _get_json(root + "/api/v0/models", timeout)
    if isinstance(lms, dict) and isinstance(lms.get("data"), list):
        return "lmstudio", "LM Studio"
    props = _get_json(root + "/props", timeout)
    if isinstance(props, dict) and ("default_generation_settings" in props
                                     or "build_info" in props):
        return "llama-server", "llama-server"
    return None, "an OpenAI-compatible server"


def find_server(ports: Sequence[int] | None = None, *, host: str = HOST,
                timeout: float = PROBE_TIMEOUT) -> Server | None:
    """The first of `ports` (in order) where a server lists models; all tried at once.

    Bounded: each port gets one `GET /v1/models` with `timeout` seconds, so a probe
    takes about `timeout` however many ports there are.
    """
    ports = tuple(ports) if ports is not None else probe_ports()
    if not ports:
        return None
    urls = [f"http://{host}:{p}" for p in ports]
    with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
        answers = list(pool.map(lambda u: list_models(u, timeout=timeout), urls))
    for url, models in zip(urls, answers, strict=True):
        if models is not None:
            kind, label = identify(url, timeout=timeout)
            return Server(url=url, kind=kind, label=label, found_by="port probe")
    return None


def split_server_model(name: str | None) -> tuple[ServerKind | None, str | None]:
    """`ollama:qwen2.5-coder:1.5b` → (Ollama, `qwen2.5-coder:1.5b`); others unchanged."""
    if not name or ":" not in name:
        return None, name
    prefix, rest = name.split(":", 1)
    kind = KINDS.get(prefix.strip().lower())
    if kind is None:
        return None, name
    if not rest.strip():
        raise ModelUnavailable(f"--model {name!r}: name the model after '{prefix}:' "
                               f"(see `guild-agent models --base-url "
                               f"http://{HOST}:{kind.port}`)")
    return kind, rest.strip()


def ollama_context(url: str, model: str, timeout: float = 3.0) -> int | None:
    """The context Ollama's OpenAI endpoint runs `model` at: the Modelfile's num_ctx, else
    the server default. None when the server does not describe the model."""
    info = _get_json(base_url(url) + "/api/show", timeout, data={"model": model})
    if not isinstance(info, dict):
        return None
    params = info.get("parameters")
    if isinstance(params, str):
        for line in params.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit():
                return int(parts[1])
    trained = None
    details = info.get("model_info")
    if isinstance(details, dict):
        trained = next((v for k, v in details.items()
                        if k.endswith(".context_length") and isinstance(v, int)), None)
    return min(OLLAMA_DEFAULT_CONTEXT, trained) if trained else OLLAMA_DEFAULT_CONTEXT


def estimate_tokens(messages: list[Message]) -> int:
    """A deliberately high token count for code and prose (about 3 characters a token)."""
    return sum(len(m.content) for m in messages) // 3 + 8 * len(messages)


class ContextWatch:
    """A model whose prompts are compared with the server's context before each call.

    Ollama truncates silently; this says so once per conversation when a prompt plus its
    answer budget comes within 10% of the context, and again when the usage it reports
    shows the context was filled.
    """

    def __init__(self, model: Any, context: int, warn: Callable[[str], None]) -> None:
        self.inner = model
        self.context = context
        self.warn = warn
        self.name = model.name
        self.backend = model.backend
        self._warned = False
        self._warned_full = False

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)

    def for_problem(self, problem: Any) -> ContextWatch:
        """A new conversation: warned afresh."""
        from agent.models.base import bind

        return ContextWatch(bind(self.inner, problem), self.context, self.warn)

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        need = estimate_tokens(messages) + sampling.max_tokens
        if not self._warned and need >= 0.9 * self.context:
            self._warned = True
            self.warn(f"the prompt (~{estimate_tokens(messages)} tokens) plus "
                      f"{sampling.max_tokens} for the answer nears {self.name}'s context of "
                      f"{self.context} tokens; Ollama cuts the prompt silently beyond it "
                      "(raise num_ctx, or OLLAMA_CONTEXT_LENGTH on the server)")
        gen = self.inner.generate(messages, sampling)
        used = gen.prompt_tokens + gen.completion_tokens
        if used >= self.context - 1 and not self._warned_full:
            self._warned_full = True
            self.warn(f"{self.name} used its whole context ({used}/{self.context} tokens): "
                      "the prompt was probably cut")
        return gen
