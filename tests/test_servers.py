"""Local servers: found through GUILD_AGENT_BASE_URL, a config file and the port probe.

The server is a real `mlx_lm.server` on 127.0.0.1 serving a tiny model made here; the CLI
runs as a real process (`python -m agent.cli`). Ollama is not installed here, so its own
endpoints (`/api/version`, `/api/show`) come from a small local server that speaks them;
hostile answers (huge, malformed, control characters) come from the same kind of server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from agent.loop.problem import problem_from_task
from agent.models import Message, ModelUnavailable, Sampling, make_model
from agent.models.servers import (
    ContextWatch,
    clean_id,
    find_server,
    list_models,
    ollama_context,
    probe_ports,
    split_server_model,
)
from agent.tasks.spec import TaskSpec

try:
    from conftest_models import make_tiny_qwen2
except ImportError:  # tests/ became a package
    from tests.conftest_models import make_tiny_qwen2

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_ENV = ("GUILD_AGENT_BACKEND", "GUILD_AGENT_MODEL", "GUILD_AGENT_BASE_URL",
                "GUILD_AGENT_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY",
                "GUILD_AGENT_PROBE_PORTS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh process, with only the settings the test gives."""
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    base["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *([base["PYTHONPATH"]] if base.get("PYTHONPATH") else [])])
    base["XDG_CONFIG_HOME"] = str(cwd / ".no-user-config")
    base["GUILD_AGENT_NO_WARM"] = "1"
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={**base, **env})


@pytest.fixture(scope="module")
def mlx_server(tmp_path_factory) -> Iterator[dict[str, str]]:
    pytest.importorskip("mlx_lm")
    model_dir = make_tiny_qwen2(tmp_path_factory.mktemp("served") / "qwen2")
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    # An empty Hub cache: the server then lists exactly the model it serves.
    hf_home = tmp_path_factory.mktemp("hf")
    (hf_home / "hub").mkdir()  # without it the server's /v1/models fails mid-answer
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlx_lm.server", "--model", str(model_dir),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)})
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
        yield {"url": url, "port": str(port), "model": str(model_dir.resolve())}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


TASK = {
    "id": "add",
    "prompt": "Write func Add(a, b int) int that returns a + b.",
    "tests": 'import "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(2, 3) != 5 '
             '{\n\t\tt.Fatal("wrong")\n\t}\n}\n',
}


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    (tmp_path / "add.yaml").write_text(yaml.safe_dump(TASK))
    return tmp_path


def solve_json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- a real server, found three ways -------------------------------------------------


def test_found_through_guild_agent_base_url(mlx_server, task_dir) -> None:
    proc = cli(["solve", "add.yaml", "--max-rounds", "1", "--max-tokens", "24", "--json",
                "--out", "run"], task_dir, GUILD_AGENT_BASE_URL=mlx_server["url"] + "/v1")
    result = solve_json(proc)
    assert result["backend"] == "openai" and result["rounds"] == 1
    assert not result.get("error"), result
    assert result["tokens"]["completion"] > 0  # the tiny model answered (garbage, but did)


def test_found_through_a_config_file(mlx_server, task_dir) -> None:
    (task_dir / "guild-agent.toml").write_text(
        f'base_url = "{mlx_server["url"]}"\n[solve]\nmax_tokens = 24\n')
    cfg = cli(["config", "--json"], task_dir)
    assert cfg.returncode == 0, cfg.stderr
    rows = {r["key"]: r for r in json.loads(cfg.stdout)["settings"]}
    assert rows["base_url"]["value"] == mlx_server["url"]
    assert rows["base_url"]["source"] == f"project file {task_dir / 'guild-agent.toml'}"
    assert rows["backend"]["value"] == "openai"
    assert rows["max_tokens"]["value"] == 24
    proc = cli(["solve", "add.yaml", "--max-rounds", "1", "--json", "--out", "run"], task_dir)
    result = solve_json(proc)
    assert result["backend"] == "openai" and result["tokens"]["completion"] > 0
    assert not result.get("error"), result
    # `models` takes the same base_url from the file and lists what the server offers.
    listed = cli(["models", "--json"], task_dir)
    assert listed.returncode == 0, listed.stderr
    server = json.loads(listed.stdout)["server"]
    assert server["url"] == mlx_server["url"] and server["models"] == [mlx_server["model"]]


def test_found_through_the_port_probe(mlx_server, task_dir) -> None:
    closed = free_port()  # nothing listens: the probe moves on to the next port
    ports = f"{closed},{mlx_server['port']}"
    t0 = time.monotonic()
    proc = cli(["solve", "add.yaml", "--backend", "openai", "--max-rounds", "1",
                "--max-tokens", "24", "--json", "--out", "run"], task_dir,
               GUILD_AGENT_PROBE_PORTS=ports)
    result = solve_json(proc)
    assert f"using an OpenAI-compatible server at {mlx_server['url']} (port probe)" in (
        " ".join(proc.stderr.split())), proc.stderr
    assert result["backend"] == "openai" and result["tokens"]["completion"] > 0
    assert time.monotonic() - t0 < 120
    cfg = cli(["config", "--json", "solve", "--backend", "openai"], task_dir,
              GUILD_AGENT_PROBE_PORTS=ports)
    obj = json.loads(cfg.stdout)
    rows = {r["key"]: r for r in obj["settings"]}
    assert rows["base_url"] == {"key": "base_url", "value": mlx_server["url"],
                                "source": "port probe"}
    assert obj["server"]["found_by"] == "port probe"


def test_models_lists_the_servers_models(mlx_server, task_dir) -> None:
    by_flag = cli(["models", "--base-url", mlx_server["url"] + "/v1"], task_dir)
    assert by_flag.returncode == 0, by_flag.stderr
    flat = " ".join(by_flag.stdout.split())
    assert "qwen2.5-coder-0.5b" in flat  # the catalog is still there
    assert f"served by an OpenAI-compatible server at {mlx_server['url']}" in flat
    assert Path(mlx_server["model"]).name in flat
    probed = cli(["models", "--json"], task_dir, GUILD_AGENT_PROBE_PORTS=mlx_server["port"])
    server = json.loads(probed.stdout)["server"]
    assert server["found_by"] == "port probe" and server["models"] == [mlx_server["model"]]
    none = cli(["models", "--json"], task_dir, GUILD_AGENT_PROBE_PORTS=str(free_port()))
    assert json.loads(none.stdout)["server"] is None


def test_probe_with_nothing_listening_is_one_line_exit_3(task_dir) -> None:
    ports = f"{free_port()},{free_port()}"
    proc = cli(["solve", "add.yaml", "--backend", "openai"], task_dir,
               GUILD_AGENT_PROBE_PORTS=ports)
    assert proc.returncode == 3, proc.stderr
    line = " ".join(proc.stderr.split())
    assert "no server answered on 127.0.0.1 ports" in line and "--base-url" in line
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("ports", ["80,abc", "0", "70000", "1;2"])
def test_bad_probe_port_list_is_one_line(task_dir, ports: str) -> None:
    proc = cli(["solve", "add.yaml", "--backend", "openai"], task_dir,
               GUILD_AGENT_PROBE_PORTS=ports)
    assert proc.returncode == 3 and "GUILD_AGENT_PROBE_PORTS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ollama_name_without_prefix_gets_a_hint(task_dir) -> None:
    proc = cli(["solve", "add.yaml", "--model", "qwen2.5-coder:1.5b", "--backend",
                "llama-cpp"], task_dir)
    assert proc.returncode == 3
    assert "ollama:qwen2.5-coder:1.5b" in " ".join(proc.stderr.split())


def test_server_prefix_with_another_backend_is_bad_input(task_dir) -> None:
    proc = cli(["solve", "add.yaml", "--model", "ollama:x", "--backend", "llama-cpp"],
               task_dir)
    assert proc.returncode == 2 and "use --backend openai" in " ".join(proc.stderr.split())


# --- servers that answer strangely ---------------------------------------------------


class FakeServer:
    """Answers GET/POST paths from a table of path → (status, body bytes)."""

    def __init__(self, routes: dict[str, Callable[[bytes], tuple[int, bytes]]]) -> None:
        self.seen: list[tuple[str, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bytes) -> None:
                fake.seen.append((self.path, body))
                route = routes.get(self.path.split("?")[0])
                status, data = route(body) if route else (404, b"not found")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                self._answer(self.rfile.read(n))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeServer]]:
    made: list[FakeServer] = []

    def make(routes):
        s = FakeServer(routes)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def const(obj: object, status: int = 200) -> Callable[[bytes], tuple[int, bytes]]:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return lambda _body: (status, data)


def chat_answer(prompt_tokens: int) -> Callable[[bytes], tuple[int, bytes]]:
    return const({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "```go\npackage sandbox\n```"}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 3}})


def ollama_routes(num_ctx: int | None, trained: int = 32768, prompt_tokens: int = 50):
    params = f"num_ctx {num_ctx}\nstop <|im_end|>" if num_ctx else "stop <|im_end|>"
    return {
        "/api/version": const({"version": "0.9.0"}),
        "/v1/models": const({"object": "list", "data": [{"id": "qwen2.5-coder:1.5b"}]}),
        "/api/show": const({"parameters": params,
                            "model_info": {"qwen2.context_length": trained}}),
        "/v1/chat/completions": chat_answer(prompt_tokens),
    }


def test_ollama_is_recognised_and_its_context_read(fake) -> None:
    s = fake(ollama_routes(num_ctx=8192))
    found = find_server([s.port])
    assert found is not None and found.kind == "ollama" and found.label == "Ollama 0.9.0"
    assert ollama_context(s.url, "qwen2.5-coder:1.5b") == 8192
    plain = fake(ollama_routes(num_ctx=None, trained=2048))
    assert ollama_context(plain.url, "m") == 2048  # the default, capped by training
    assert json.loads(s.seen[-1][1]) == {"model": "qwen2.5-coder:1.5b"}


def test_ollama_prompt_near_the_context_warns_in_a_real_run(fake, task_dir) -> None:
    s = fake(ollama_routes(num_ctx=300, prompt_tokens=299))
    proc = cli(["solve", "add.yaml", "--backend", "openai", "--model", "qwen2.5-coder:1.5b",
                "--max-rounds", "1", "--max-tokens", "200", "--json", "--out", "run"],
               task_dir, GUILD_AGENT_PROBE_PORTS=str(s.port))
    err = " ".join(proc.stderr.split())
    assert "using Ollama 0.9.0 at" in err, proc.stderr
    assert "warning: the prompt" in err and "context of 300 tokens" in err, proc.stderr
    assert "used its whole context" in err
    assert any(p == "/v1/chat/completions" for p, _ in s.seen)


def test_ollama_far_from_the_context_stays_quiet(fake) -> None:
    s = fake(ollama_routes(num_ctx=32768))
    warnings: list[str] = []
    model = ContextWatch(make_model("openai", base_url=s.url, model="m"),
                         ollama_context(s.url, "m") or 0, warnings.append)
    model.generate([Message(role="user", content="short")], Sampling(max_tokens=64))
    assert warnings == [] and model.name == "m" and model.backend == "openai"
    # Near it: one warning per conversation, not one per round.
    near = ContextWatch(make_model("openai", base_url=s.url, model="m"), 100,
                        warnings.append)
    long = [Message(role="user", content="x" * 600)]
    near.generate(long, Sampling(max_tokens=8))
    near.generate(long, Sampling(max_tokens=8))
    assert sum("nears" in w for w in warnings) == 1
    near = near.for_problem(problem_from_task(TaskSpec(id="t", prompt="p", tests="t")))
    near.generate(long, Sampling(max_tokens=8))
    assert sum("nears" in w for w in warnings) == 2


def test_hostile_model_lists_are_capped_and_cleaned(fake) -> None:
    evil = "evil\x1b[31m\u202eid\nnext"
    ids = [{"id": evil}, {"id": 5}, {"no": "id"}, "str", {"id": "   "}]
    ids += [{"id": f"m{i}"} for i in range(2000)]
    s = fake({"/v1/models": const({"data": ids})})
    got = list_models(s.url)
    assert got is not None and len(got) <= 500
    assert got[0] == "evil?[31m?id?next"
    assert all("\n" not in m and "\x1b" not in m for m in got)
    assert clean_id("a" * 1000) == "a" * 200


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"data": "x"}', b"{" * 10,
                                  b" " * (5 << 20)])
def test_malformed_model_lists_are_no_server(fake, body: bytes) -> None:
    s = fake({"/v1/models": const(body)})
    assert list_models(s.url) is None
    assert find_server([s.port]) is None


def test_a_port_that_never_answers_is_bounded() -> None:
    # Accepts the connection (the kernel does, via the backlog) and never replies.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port = sock.getsockname()[1]
        t0 = time.monotonic()
        assert find_server([port, free_port()], timeout=0.5) is None
        assert time.monotonic() - t0 < 3


def test_probe_port_list_and_prefixes() -> None:
    assert probe_ports({}) == (11434, 1234, 8080)
    assert probe_ports({"GUILD_AGENT_PROBE_PORTS": " 5, 6 "}) == (5, 6)
    with pytest.raises(ModelUnavailable):
        probe_ports({"GUILD_AGENT_PROBE_PORTS": "5,-6"})
    kind, name = split_server_model("ollama:qwen2.5-coder:1.5b")
    assert kind is not None and kind.port == 11434 and name == "qwen2.5-coder:1.5b"
    kind, name = split_server_model("LMStudio:qwen")
    assert kind is not None and kind.port == 1234 and name == "qwen"
    assert split_server_model("qwen2.5-coder:1.5b") == (None, "qwen2.5-coder:1.5b")
    with pytest.raises(ModelUnavailable, match="name the model"):
        split_server_model("ollama:")


def test_ollama_without_a_model_name_lists_what_it_has(fake, task_dir) -> None:
    s = fake(ollama_routes(num_ctx=4096))
    proc = cli(["solve", "add.yaml", "--backend", "openai"], task_dir,
               GUILD_AGENT_PROBE_PORTS=str(s.port))
    assert proc.returncode == 2, proc.stderr
    line = " ".join(proc.stderr.split())
    assert "Ollama needs a model name" in line and "qwen2.5-coder:1.5b" in line
