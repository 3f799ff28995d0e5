"""Hostile model answers and hostile model servers: each fails safe, never with a traceback.

Real parts throughout: the real extractor, real HTTP servers on 127.0.0.1 (http.server and
raw sockets), the real CLI in a child process with the real Go toolchain, and a real
`go build` with cgo when a C compiler is present.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from agent.golang.edits import EditRules, parse_edit_answer
from agent.golang.extract import MAX_NAME_CHARS, FormatError, check_file_name, extract_code
from agent.models.base import MAX_ANSWER_CHARS, Generation, Message, ModelError, Sampling
from agent.models.openai import DEADLINE_ENV, OpenAIModel
from agent.models.replay import ReplayModel, load_responses
from agent.tasks.spec import TaskSpec

try:
    from conftest import needs_go
except ImportError:  # tests/ became a package
    from tests.conftest import needs_go

REPO = Path(__file__).resolve().parents[1]
HELLO = [Message(role="user", content="Write func Add(a, b int) int.")]
ADD = "func Add(a, b int) int { return a + b }\n"


def fenced(code: str, name: str | None = None, *, before: bool = False) -> str:
    if name is None:
        return f"```go\n{code}```\n"
    if before:
        return f"// file: {name}\n```go\n{code}```\n"
    return f"```go\n// file: {name}\n{code}```\n"


# -- 1. file names a model may not use --------------------------------------------------

BAD_NAMES = {
    ".hidden.go": "'.'",
    "a" * 300 + ".go": "characters long",
    "../x.go": "folder",
    "/etc/x.go": "folder",
    "sub/x.go": "folder",
    "a\\b.go": "folder",
    "a\x00b.go": "control characters",
    "go.mod": "managed by the harness",
    "notes.txt": "not a .go file",
    "_skip.go": "'_'",
    "impl_windows.go": "_windows",
    "impl_linux_arm64.go": "_linux_arm64",
    "ünïcode.go": "ASCII",
}


@pytest.mark.parametrize("name,why", list(BAD_NAMES.items()), ids=range(len(BAD_NAMES)))
@pytest.mark.parametrize("where", ["first-line", "line-before"])
def test_a_bad_file_name_is_a_format_error(name, why, where):
    answer = fenced("package p\n\n" + ADD, name, before=where == "line-before")
    with pytest.raises(FormatError, match="file name") as exc:
        extract_code(answer, package="p")
    msg = str(exc.value)
    assert why in msg and "\n" not in msg and len(msg) < 300
    assert "\x00" not in msg  # shown escaped, the model and terminal get printable text


def test_check_file_name_is_the_one_rule():
    for name in BAD_NAMES:
        with pytest.raises(FormatError):
            check_file_name(name)
    for ok in ("solution.go", "stack.go", "a-b.go", "x_test.go", "linux.go", "impl_amd.go",
               "v1.2.go", "a" * (MAX_NAME_CHARS - 3) + ".go"):
        assert check_file_name(ok) == ok


def test_good_names_and_prose_mentions_still_work():
    two = (fenced("package p\n\ntype T int\n", "types.go")
           + fenced("package p\n\nfunc F() T { return 0 }\n", "impl.go", before=True))
    assert set(extract_code(two, package="p").files) == {"types.go", "impl.go"}
    # A name only mentioned in prose is a guess: a bad one leaves the default name.
    prose = "I changed the code that lived in ../old/x.go before:\n" + fenced("package p\n\n" + ADD)
    assert set(extract_code(prose, package="p").files) == {"solution.go"}
    comment = fenced("// Add sums; see ../x.go for the old one\npackage p\n\n" + ADD)
    assert set(extract_code(comment, package="p").files) == {"solution.go"}
    # A comment with a `File:` label but no file name in it stays a comment.
    label = fenced("// File: helpers for numbers\npackage p\n\n" + ADD)
    assert set(extract_code(label, package="p").files) == {"solution.go"}


def test_fix_edits_refuse_bad_names_with_a_reason():
    rules = EditRules(package="calc", editable=["calc.go"])
    current = {"calc.go": "package calc\n\n" + ADD}
    answer = fenced("package calc\n\n" + ADD.replace("+", "-"), ".hidden.go")
    with pytest.raises(FormatError, match=r"'\.'.*change only calc\.go"):
        parse_edit_answer(answer, current, rules)


# -- 2. text that cannot be encoded -----------------------------------------------------

def test_lone_surrogates_become_replacement_characters_at_the_boundary():
    g = Generation(text="a\ud800b\udfffc")
    assert g.text == "a\ufffdb\ufffdc"
    g.text.encode("utf-8")
    # A pair written as two escapes is the character it spells.
    assert Generation(text="\ud83d\ude00").text == "\U0001f600"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_replay_answer_with_a_lone_surrogate_is_encodable(tmp_path, suffix):
    code = "package p\n\n// \ud800 odd\n" + ADD
    path = tmp_path / f"replay{suffix}"
    answer = fenced(code)
    if suffix == ".json":
        path.write_text(json.dumps({"responses": [answer]}))  # "\ud800" as an escape
    else:
        path.write_text(yaml.safe_dump({"responses": [answer]}))  # "\ud800" escaped too
    assert "\ud800" in load_responses(path)[0]
    g = ReplayModel.from_file(path).generate(HELLO, Sampling())
    assert "\ud800" not in g.text and "\ufffd" in g.text
    files = extract_code(g.text, package="p").files
    (tmp_path / "out.go").write_text(files["solution.go"])  # no UnicodeEncodeError


def test_replay_file_that_is_a_device_or_huge_is_one_clear_line(tmp_path):
    from agent.models.base import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="not a regular file"):
        load_responses("/dev/zero")
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(65 << 20)
    with pytest.raises(ModelUnavailable, match="larger than"):
        load_responses(big)


# -- 5 and 6. answers of odd shape ------------------------------------------------------

CGO = (
    "Here is a version that calls C:\n\n```go\npackage main\n\n"
    "/*\n#include <stdio.h>\n#include \"string.h\"\n"
    "static int add(int a, int b) { printf(\"%d\\n\", a + b); return a + b; }\n*/\n"
    "import \"C\"\n\nimport (\n\t\"fmt\"\n)\n\n"
    "func Add(a, b int) int { return int(C.add(C.int(a), C.int(b))) }\n\n"
    "func main() { fmt.Println(Add(2, 3)) }\n```\n"
)
CGO_LINES = CGO.replace(
    "/*\n#include <stdio.h>\n#include \"string.h\"\n"
    "static int add(int a, int b) { printf(\"%d\\n\", a + b); return a + b; }\n*/\n",
    "// #include <stdio.h>\n// static int add(int a, int b) { return a + b; }\n")


@pytest.mark.parametrize("answer", [CGO, CGO_LINES], ids=["block", "lines"])
def test_cgo_preamble_stays_verbatim_above_its_own_import_c(answer):
    src = extract_code(answer, package="main").files["solution.go"]
    start = answer.index("package main\n") + len("package main\n\n")
    preamble = answer[start:answer.index('import "C"\n') + len('import "C"\n')]
    assert preamble in src  # comment and `import "C"` together, byte for byte
    assert 'import "fmt"' in src
    # Nothing from the C code leaked into the Go import list.
    for leak in ('"string.h"', '"%d', "stdio"):
        assert leak not in src.replace(preamble, "")


@pytest.fixture(scope="module")
def go_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gohome")  # one build cache for both cgo builds


def _go_build_env(tmp: Path) -> dict[str, str]:
    from tools.go import find_toolchain

    tc = find_toolchain()
    return {"PATH": f"{tc.go.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(tmp), "GOCACHE": str(tmp / "cache"), "GOPATH": str(tmp / "gopath"),
            "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GOTELEMETRY": "off",
            "CGO_ENABLED": "1", "GO": str(tc.go)}


@needs_go
@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                    reason="no C compiler")
@pytest.mark.parametrize("answer", [CGO, CGO_LINES], ids=["block", "lines"])
def test_cgo_answer_builds_and_runs_with_the_real_toolchain(tmp_path, go_home, answer):
    from tools.gofmt import gofmt_source

    src = extract_code(answer, package="main").files["solution.go"]
    src = gofmt_source(src) or src  # the loop gofmts every answer: that must keep it too
    mod = tmp_path / "m"
    mod.mkdir()
    (mod / "go.mod").write_text("module m\n\ngo 1.21\n")
    (mod / "solution.go").write_text(src)
    env = _go_build_env(go_home)
    build = subprocess.run([env["GO"], "build", "-o", str(tmp_path / "bin"), "."], cwd=mod,
                           env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr + "\n" + src
    run = subprocess.run([str(tmp_path / "bin")], capture_output=True, text=True, timeout=30)
    assert run.stdout.split()[-1] == "5"


def test_crlf_and_bom_answers_read_like_plain_ones():
    plain = "Sure:\n" + fenced("package p\n\n" + ADD)
    want = extract_code(plain, package="p").files
    crlf = plain.replace("\n", "\r\n")
    assert extract_code(crlf, package="p").files == want
    assert extract_code("\ufeff" + plain, package="p").files == want
    assert extract_code(plain.replace("func Add", "\ufefffunc Add"), package="p").files == want


@pytest.mark.parametrize("answer", [
    "\x00" * 10_000,
    "",
    "```go\n" * 5_000,
    "".join("`" * (300 - i) + "go\n" for i in range(290)) + "package p\n" + ADD,
    "```go\n" + "{" * 50_000 + "\n```",
    "```go\npackage p\n/*" + "*" * 50_000 + '\nimport "C"\n```',
    "```go\npackage p\n" + "// c\n" * 20_000 + 'import "C"\n' + ADD + "```",
    "~~~~go\n```go\n" + "package p\n" + ADD + "```\n~~~~\n",
])
def test_degenerate_answers_give_a_result_or_a_format_error_quickly(answer):
    t0 = time.monotonic()
    try:
        ext = extract_code(answer, package="p")
    except FormatError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(src.startswith("package p\n") for src in ext.files.values())
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("clause", ["package 日本", "package", "package main-x", "package _",
                                    "package\tsandbox // c", "package 123"])
def test_odd_package_clauses_become_the_task_package(clause):
    src = extract_code(fenced(f"{clause}\n\n{ADD}"), package="p").files["solution.go"]
    assert src.startswith("package p\n") and src.count("package ") == 1


def test_an_enormous_answer_is_cut_at_the_boundary():
    g = Generation(text="x" * (MAX_ANSWER_CHARS * 3))
    assert len(g.text) == MAX_ANSWER_CHARS and g.finish_reason == "length"
    big = "```go\npackage p\n" + "".join(f"func F{i}() int {{ return {i} }}\n"
                                         for i in range(20_000)) + "```\n"
    g = Generation(text=big)
    t0 = time.monotonic()
    extract_code(g.text, package="p")
    assert time.monotonic() - t0 < 10


# -- 3 and 4. hostile servers ------------------------------------------------------------

class RawServer:
    """A TCP server on 127.0.0.1 that reads a request and runs `reply(conn)` on it."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.connections = 0
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(ln.split(b":")[1]) for ln in head.split(b"\r\n")
                           if ln.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(65536)
            with contextlib.suppress(OSError):  # the client hung up: what deadlines do
                self.reply(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw_server():
    made: list[RawServer] = []

    def make(reply) -> RawServer:
        made.append(RawServer(reply))
        return made[-1]

    yield make
    for s in made:
        s.close()


def drip(data: bytes, every: float = 2.0):
    """A reply that sends `data` one byte every `every` seconds."""
    def reply(conn: socket.socket, stop: threading.Event) -> None:
        for i in range(len(data)):
            conn.sendall(data[i:i + 1])
            if stop.wait(every):
                return
    return reply


HEAD_OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Content-Length: 100000\r\n\r\n")


@pytest.mark.parametrize("where", ["status line", "body"])
def test_a_dripping_server_is_cut_at_the_total_deadline(raw_server, where):
    if where == "status line":
        srv = raw_server(drip(HEAD_OK + b"{}"))
    else:
        def reply(conn, stop):
            conn.sendall(HEAD_OK + b'{"choices": [')
            drip(b" " * 100_000)(conn, stop)
        srv = raw_server(reply)
    m = OpenAIModel(srv.url, timeout=30, attempts=3, backoff=0.01, deadline=3)
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="deadline") as exc:
        m.generate(HELLO, Sampling(max_tokens=8))
    took = time.monotonic() - t0
    assert 2.5 < took < 6, took  # per-read timeouts (30 s) never fired; the deadline did
    assert "\n" not in str(exc.value)
    assert srv.connections == 1  # the deadline is for the whole call: no retry after it


def test_retries_spend_the_same_total_budget(raw_server):
    def slow_503(conn, stop):
        stop.wait(0.8)
        conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\n{}")
    srv = raw_server(slow_503)
    m = OpenAIModel(srv.url, timeout=30, attempts=50, backoff=0.1, deadline=2.5)
    t0 = time.monotonic()
    with pytest.raises(ModelError, match=r"deadline.*HTTP 503|HTTP 503.*deadline") as exc:
        m.generate(HELLO, Sampling())
    assert time.monotonic() - t0 < 4
    assert 1 <= srv.connections < 5
    assert "\n" not in str(exc.value)


def test_the_deadline_has_a_sane_default_and_an_override(monkeypatch):
    from agent.models.base import ModelUnavailable

    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    m = OpenAIModel("http://127.0.0.1:9")
    assert m.deadline_for(Sampling(max_tokens=100)) < m.deadline_for(Sampling(max_tokens=2000))
    assert 120 <= m.deadline_for(Sampling(max_tokens=2048)) <= 3600
    monkeypatch.setenv(DEADLINE_ENV, "7.5")
    assert OpenAIModel("http://127.0.0.1:9").deadline_for(Sampling()) == 7.5
    for bad in ("soon", "-1", "0", "inf"):
        monkeypatch.setenv(DEADLINE_ENV, bad)
        with pytest.raises(ModelUnavailable, match=DEADLINE_ENV):
            OpenAIModel("http://127.0.0.1:9")


def test_an_endless_stream_is_capped(raw_server):
    def endless(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        while not stop.is_set():
            conn.sendall(piece)
    srv = raw_server(endless)
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="larger than") as exc:
        OpenAIModel(srv.url, deadline=60).generate(HELLO, Sampling(max_tokens=16))
    assert time.monotonic() - t0 < 30 and "\n" not in str(exc.value)


def test_an_announced_huge_body_is_refused_before_reading(raw_server):
    srv = raw_server(lambda conn, stop: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{"))
    with pytest.raises(ModelError, match="larger than"):
        OpenAIModel(srv.url, deadline=20).generate(HELLO, Sampling(max_tokens=16))


class BodyServer:
    """http.server answering every POST with one fixed (status, content type, body)."""

    def __init__(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.requests = 0
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests += 1
                outer.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
def body_server():
    made: list[BodyServer] = []

    def make(status: int, body: bytes | dict | list, ctype: str = "application/json"):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        made.append(BodyServer(status, raw, ctype))
        return made[-1]

    yield make
    for s in made:
        s.close()


def completion(content: object = "```go\nfunc Add() {}\n```", **usage: object) -> dict:
    return {"choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": usage}


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": "x", "completion_tokens": "y"},
    {"prompt_tokens": -5, "completion_tokens": -1},
    {"prompt_tokens": None, "completion_tokens": None},
    {},
    {"prompt_tokens": 10**30, "completion_tokens": 1e308},
    {"prompt_tokens": True, "completion_tokens": [3]},
    {"prompt_tokens": "²", "completion_tokens": {"n": 1},
     "prompt_tokens_details": "lots"},
], ids=["strings", "negative", "null", "missing", "huge", "wrong-types", "odd"])
def test_nonsense_usage_is_unknown_and_counted_here(body_server, usage):
    srv = body_server(200, completion(**usage))
    g = OpenAIModel(srv.url, backoff=0.01).generate(HELLO, Sampling())
    text_len = len("```go\nfunc Add() {}\n```")
    assert g.completion_tokens == max(1, text_len // 4)
    assert g.prompt_tokens == sum(len(m.content) for m in HELLO) // 4
    assert 0 <= g.cached_tokens <= g.prompt_tokens


def test_numeric_strings_and_timings_garbage_are_tolerated(body_server):
    body = completion(prompt_tokens="12", completion_tokens=7.0)
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 99}
    body["timings"] = {"prompt_ms": "fast", "predicted_ms": float("inf")}
    body["error"] = None  # some servers send it on success
    srv = body_server(200, json.dumps(body).replace("Infinity", "1e999").encode())
    g = OpenAIModel(srv.url).generate(HELLO, Sampling())
    assert (g.prompt_tokens, g.completion_tokens, g.cached_tokens) == (12, 7, 12)
    assert g.prompt_seconds == 0.0 and g.generation_seconds == 0.0


def test_a_server_sending_a_lone_surrogate_is_repaired(body_server):
    srv = body_server(200, completion("```go\n// \ud800\nfunc Add() {}\n```"))
    g = OpenAIModel(srv.url).generate(HELLO, Sampling())
    assert "\ufffd" in g.text
    g.text.encode("utf-8")


def test_a_proxy_from_the_environment_is_still_used(body_server, monkeypatch):
    # http.client replaced urllib for the deadline; proxies must keep working as before.
    proxy = body_server(200, completion())
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    g = OpenAIModel("http://llm.invalid:8080", deadline=20).generate(HELLO, Sampling())
    assert g.text.startswith("```go")
    assert proxy.paths == ["http://llm.invalid:8080/v1/chat/completions"]


HTML = b"<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>"


@pytest.mark.parametrize("status,body,ctype,match", [
    (200, {"choices": []}, "application/json", "no choices"),
    (200, {"id": "x"}, "application/json", "no choices"),
    (200, {"choices": ["text"]}, "application/json", "no choices"),
    (200, completion(None), "application/json", "no text"),
    (200, completion(42), "application/json", "no text"),
    (200, {"choices": [{"message": "hi"}]}, "application/json", "no text"),
    (200, [1, 2], "application/json", "not a chat completion"),
    (200, b"hello, world", "text/plain", "did not return JSON"),
    (200, HTML, "text/html", "did not return JSON.*text/html"),
    (200, b"[" * 100_000 + b"]" * 100_000, "application/json", "did not return JSON"),
    (200, b"", "application/json", "did not return JSON"),
    (200, {"error": {"message": "model\nnot\nloaded"}}, "application/json", "model not loaded"),
    (502, HTML, "text/html", "HTTP 502.*Bad Gateway"),
    (404, HTML, "text/html", "HTTP 404"),
    (302, b"", "text/plain", "redirect"),
], ids=["empty-choices", "no-choices", "choice-not-object", "content-null", "content-number",
        "message-string", "json-list", "plain-text", "html-200", "deep-json", "empty-body",
        "error-multiline", "html-502", "html-404", "redirect"])
def test_malformed_responses_are_one_line_model_errors(body_server, status, body, ctype, match):
    srv = body_server(status, body, ctype)
    with pytest.raises(ModelError, match=match) as exc:
        OpenAIModel(srv.url, attempts=2, backoff=0.01, deadline=20).generate(HELLO, Sampling())
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 400 and srv.url in msg


# -- through the real CLI -----------------------------------------------------------------

TASK = TaskSpec(
    id="add",
    package="calc",
    prompt="Write `Add(a, b int) int` returning the sum.",
    tests=('import "testing"\n\nfunc TestAdd(t *testing.T) {\n'
           '\tif Add(2, 3) != 5 {\n\t\tt.Fatal("Add(2, 3) != 5")\n\t}\n}\n'),
    reference=ADD,
)


def run_cli(tmp_path: Path, *args: str, timeout: float = 300,
            env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    task = tmp_path / "add.yaml"
    task.write_text(yaml.safe_dump(TASK.model_dump(exclude_defaults=True), sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO), "GUILD_AGENT_NO_WARM": "1",
           **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "agent.cli", "solve", str(task), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def events(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "trajectory.jsonl").read_text().splitlines()]


@needs_go
def test_cli_solve_feeds_bad_names_back_and_repairs_surrogates(tmp_path):
    good = "package calc\n\n// \ud800 done\n" + ADD
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"responses": [
        fenced("package calc\n\n" + ADD, ".hidden.go"),
        fenced("package calc\n\n" + ADD, "a" * 300 + ".go", before=True),
        fenced("package calc\n\n" + ADD, "../x.go"),
        fenced(good),
    ]}))
    out = tmp_path / "run"
    res = run_cli(tmp_path, "--backend", "replay", "--replay", str(replay),
                  "--max-rounds", "4", "--out", str(out))
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == 0, res.stdout + res.stderr
    errors = [e["message"] for e in events(out) if e["event"] == "format_error"]
    assert len(errors) == 3
    assert "'.hidden.go'" in errors[0] and "characters long" in errors[1]
    assert "folder" in errors[2]
    solution = (out / "solution" / "solution.go").read_text(encoding="utf-8")
    assert "\ufffd done" in solution
    assert not list(out.rglob(".hidden.go")) and not (tmp_path / "x.go").exists()


@needs_go
def test_cli_solve_with_only_hostile_answers_is_not_solved_and_no_traceback(tmp_path):
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump({"responses": [
        fenced("package calc\n\n" + ADD, "go.mod"),
        "\x00" * 1000,
    ]}))
    out = tmp_path / "run"
    res = run_cli(tmp_path, "--backend", "replay", "--replay", str(replay),
                  "--max-rounds", "2", "--out", str(out))
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == 1, res.stdout + res.stderr
    errors = [e["message"] for e in events(out) if e["event"] == "format_error"]
    assert len(errors) == 2 and "managed by the harness" in errors[0]
    assert json.loads((out / "result.json").read_text())["solved"] is False


@needs_go
@pytest.mark.parametrize("body,match", [
    (completion(None), "no text"),
    (b"<html>oops</html>", "did not return JSON"),
])
def test_cli_solve_against_a_broken_server_exits_3_with_one_line(tmp_path, body_server,
                                                                  body, match):
    srv = body_server(200, body, "text/html" if isinstance(body, bytes) else "application/json")
    out = tmp_path / "run"
    res = run_cli(tmp_path, "--backend", "openai", "--base-url", srv.url, "--out", str(out))
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == 3, res.stdout + res.stderr
    assert any(match in e.get("message", "") for e in events(out) if e["event"] == "error")


@needs_go
def test_cli_solve_against_a_dripping_server_ends_at_the_deadline(tmp_path, raw_server):
    srv = raw_server(drip(HEAD_OK + b"{}"))
    out = tmp_path / "run"
    t0 = time.monotonic()
    res = run_cli(tmp_path, "--backend", "openai", "--base-url", srv.url, "--out", str(out),
                  timeout=120, env_extra={DEADLINE_ENV: "4"})
    assert time.monotonic() - t0 < 60
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == 3 and "deadline" in res.stdout + res.stderr

