"""The openai backend against a real mlx_lm.server and against a scripted stub server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.models import Message, ModelError, ModelUnavailable, Sampling, make_model
from agent.models.openai import OpenAIModel, chat_url

try:
    from conftest_models import make_tiny_qwen2
except ImportError:  # tests/ became a package
    from tests.conftest_models import make_tiny_qwen2

HELLO = [Message(role="user", content="Write func Add(a, b int) int.")]

OK_BODY = {
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "```go\nfunc Add() {}\n```"}}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 7,
              "prompt_tokens_details": {"cached_tokens": 5}},
}


class Stub:
    """A local server that answers with a script of (status, body) and records requests."""

    def __init__(self, script: list[tuple[int, dict]]) -> None:
        self.script = list(script)
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                stub.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": json.loads(self.rfile.read(length))})
                status, body = stub.script.pop(0) if stub.script else (500, {"error": "x"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    made: list[Stub] = []

    def make(script):
        s = Stub(script)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_chat_url_accepts_any_base_form():
    for base in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/",
                 "http://h:1/v1/chat/completions"):
        assert chat_url(base) == "http://h:1/v1/chat/completions"


def test_success_reads_usage_and_sends_sampling(stub):
    s = stub([(200, OK_BODY)])
    m = OpenAIModel(s.url + "/v1", model="m1", api_key="sk-test", backoff=0.01)
    g = m.generate(HELLO, Sampling(max_tokens=9, temperature=0.2, seed=4, stop=["END"],
                                   repetition_penalty=1.1))
    assert g.text.startswith("```go") and g.finish_reason == "stop"
    assert (g.prompt_tokens, g.completion_tokens, g.cached_tokens) == (11, 7, 5)
    req = s.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test"
    body = req["body"]
    assert body["model"] == "m1" and body["max_tokens"] == 9 and body["seed"] == 4
    assert body["stop"] == ["END"] and body["messages"][0]["role"] == "user"


def test_api_key_from_environment(stub, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("GUILD_AGENT_API_KEY", "from-env")
    s = stub([(200, OK_BODY)])
    make_model("openai", base_url=s.url).generate(HELLO, Sampling())
    assert s.requests[0]["headers"]["Authorization"] == "Bearer from-env"


def test_500_then_200_is_retried(stub):
    s = stub([(500, {"error": {"message": "overloaded"}}), (429, {"error": "slow down"}),
              (200, OK_BODY)])
    g = OpenAIModel(s.url, backoff=0.01).generate(HELLO, Sampling())
    assert g.completion_tokens == 7 and len(s.requests) == 3


def test_400_is_not_retried(stub):
    s = stub([(400, {"error": {"message": "bad max_tokens"}}), (200, OK_BODY)])
    with pytest.raises(ModelError, match="HTTP 400: bad max_tokens") as exc:
        OpenAIModel(s.url, backoff=0.01).generate(HELLO, Sampling())
    assert len(s.requests) == 1 and "\n" not in str(exc.value)


def test_persistent_5xx_gives_one_line_error(stub):
    s = stub([(503, {"error": "down"})] * 3)
    with pytest.raises(ModelError, match="gave up after 3 attempts") as exc:
        OpenAIModel(s.url, attempts=3, backoff=0.01).generate(HELLO, Sampling())
    assert len(s.requests) == 3 and "\n" not in str(exc.value)


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    m = OpenAIModel(f"http://127.0.0.1:{port}", attempts=2, backoff=0.01, timeout=2)
    with pytest.raises(ModelError, match="cannot connect"):
        m.generate(HELLO, Sampling())


def test_missing_base_url_is_unavailable():
    with pytest.raises(ModelUnavailable, match="--base-url"):
        make_model("openai")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlx_server(tmp_path_factory):
    pytest.importorskip("mlx_lm")
    model_dir = make_tiny_qwen2(tmp_path_factory.mktemp("served") / "qwen2")
    port = _free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlx_lm.server", "--model", str(model_dir),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlx_lm.server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_real_mlx_lm_server(mlx_server):
    m = make_model("openai", base_url=mlx_server + "/v1")
    g = m.generate(HELLO, Sampling(max_tokens=8))
    assert g.prompt_tokens > 5 and 0 < g.completion_tokens <= 8
    assert isinstance(g.text, str)
    again = m.generate(HELLO, Sampling(max_tokens=8))
    assert again.text == g.text  # greedy: the server is deterministic
