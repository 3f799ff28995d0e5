"""`bench SUITE --executor ray` on a real local Ray instance (2 CPUs), the oracle model and
the real toolchain: the same summary as a local run, a killed worker costs nothing but
time (or one broken attempt once retries are spent), a killed driver resumes cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import needs_go

from agent.bench.config import RESULTS
from agent.bench.results import AttemptRecord
from tests.test_bench_run import TESTS, invoke, make_suite, summary_of, without_timings

try:
    import ray
except ImportError:  # not installed, or an install that does not import: nothing to test
    pytest.skip("Ray is not installed (pip install '.[ray]')", allow_module_level=True)

pytestmark = needs_go

TASKS = ["add", "neg", "square"]
COMMON = ["--backend", "oracle", "--modes", "single,repair,sample", "--samples", "2"]
TOTAL = len(TASKS) * (1 + 1 + 2)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance for the module; its GCS address, for driver subprocesses."""
    # Workers are started by this instance: they must import this checkout.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    os.environ["PYTHONPATH"] = path
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """One suite for the module: the same suite path makes the same config hash."""
    return make_suite(tmp_path_factory.mktemp("suite"), TASKS)


@pytest.fixture(scope="module")
def local_summary(suite, tmp_path_factory):
    """The same bench through the local executor: what every Ray run must equal."""
    out = tmp_path_factory.mktemp("local") / "run"
    res = invoke([str(suite), *COMMON, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return without_timings(summary_of(out))


def comparable(summary: dict) -> dict:
    return without_timings(summary)


def records(out: Path) -> list[AttemptRecord]:
    return [AttemptRecord.model_validate_json(x)
            for x in (out / RESULTS).read_text().splitlines()]


def driver(suite: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    """A bench driver process joining the test's Ray instance."""
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "bench", str(suite), *COMMON, "--out", str(out),
         "--executor", "ray", "--ray-address", address, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)


def running_attempt_pids() -> list[int]:
    """Ray workers executing an attempt right now (Ray names the process after the task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::guild-agent-attempt"):
            pids.append(int(entry.name))
    return pids


def kill_one_worker_mid_attempt(proc: subprocess.Popen, out: Path) -> int:
    """SIGKILL a worker while it runs an attempt, once at least one line is recorded (so
    the kill lands mid-run, not before it). Returns the pid killed."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        results = out / RESULTS
        if results.exists() and results.read_bytes().count(b"\n") >= 1:
            pids = running_attempt_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                return pids[0]
        time.sleep(0.01)
    pytest.fail("no worker was caught running an attempt")


def test_ray_summary_equals_local(cluster, suite, local_summary, tmp_path):
    out = tmp_path / "ray"
    res = invoke([str(suite), *COMMON, "--out", str(out), "--executor", "ray"])
    assert res.exit_code == 0, res.output
    assert comparable(summary_of(out)) == comparable(local_summary)
    recs = records(out)
    assert len(recs) == TOTAL and len({r.key for r in recs}) == TOTAL
    # Workers wrote no run folder: the driver wrote their trajectories (single-shot
    # attempts are read off repair's round 1 and have none).
    trajs = sorted(p.name for p in (out / "trajectories").glob("*.jsonl"))
    assert len(trajs) == TOTAL - len(TASKS)
    assert all((out / "trajectories" / t).read_text().strip() for t in trajs)
    # `bench report` rebuilds the same summary from results.jsonl alone.
    (out / "summary.json").unlink()
    rebuilt = invoke(["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert comparable(summary_of(out)) == comparable(local_summary)


def test_a_killed_worker_is_retried_and_costs_no_attempt(cluster, suite, local_summary, tmp_path):
    out = tmp_path / "ray"
    proc = driver(suite, out, cluster)
    kill_one_worker_mid_attempt(proc, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    recs = records(out)
    assert len(recs) == TOTAL and len({r.key for r in recs}) == TOTAL
    assert all(r.outcome == "done" for r in recs)  # the lost attempt ran again
    assert comparable(summary_of(out)) == comparable(local_summary)


def test_a_worker_lost_past_its_retries_is_one_broken_line(cluster, suite, tmp_path):
    out = tmp_path / "ray"
    proc = driver(suite, out, cluster, "--ray-retries", "0")
    kill_one_worker_mid_attempt(proc, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    recs = records(out)
    assert len(recs) == TOTAL and len({r.key for r in recs}) == TOTAL  # one line each
    broken = [r for r in recs if r.outcome == "error"]
    # The killed attempt (and, for repair, the single-shot attempt read off it).
    assert 1 <= len(broken) <= 2
    assert all("Ray worker" in (r.result.error or "") and not r.result.solved
               for r in broken)
    s = summary_of(out)
    assert s["complete"] and sum(m["broken"] for m in s["modes"].values()) == len(broken)


def test_resume_after_killing_the_driver(cluster, suite, local_summary, tmp_path):
    out = tmp_path / "ray"
    proc = driver(suite, out, cluster)
    results = out / RESULTS
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_bytes().count(b"\n") >= 3:
            break
        if proc.poll() is not None:
            pytest.fail("the run finished before its driver could be killed")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = results.read_bytes().count(b"\n")
    assert 3 <= before < TOTAL
    resumed = invoke([str(suite), *COMMON, "--out", str(out), "--resume",
                      "--executor", "ray"])
    assert resumed.exit_code == 0, resumed.output
    assert "recorded" in resumed.stderr
    recs = records(out)
    assert len(recs) == TOTAL and len({r.key for r in recs}) == TOTAL  # none duplicated
    assert comparable(summary_of(out)) == comparable(local_summary)


def test_ray_refuses_what_it_cannot_run(cluster, tmp_path):
    suite = make_suite(tmp_path, ["add"])
    replay = tmp_path / "script.yaml"
    replay.write_text("responses: ['x']\n")
    res = invoke([str(suite), "--replay", str(replay), "--executor", "ray",
                  "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "call order" in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()  # refused before anything was made
    res = invoke([str(suite), "--backend", "oracle", "--jobs", "64",
                  "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--executor ray" in res.stderr


def cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", "bench", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_an_unreachable_cluster_is_one_line_and_exit_3(tmp_path):
    suite = make_suite(tmp_path, ["add"])
    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
        start = time.monotonic()
        res = cli([str(suite), "--backend", "oracle", "--executor", "ray", "--ray-address",
                   address, "--out", str(tmp_path / "r"), "--no-warm"])
        assert res.returncode == 3, res.stderr
        assert f"no Ray cluster answers at {address}" in res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert time.monotonic() - start < 60  # not Ray's minutes of retrying
        assert not (tmp_path / "r" / RESULTS).exists()
    res = cli([str(suite), "--backend", "oracle", "--executor", "ray", "--ray-address",
               "nonsense", "--out", str(tmp_path / "r2")])
    assert res.returncode == 2 and "expected HOST:PORT" in res.stderr


def test_without_ray_installed_it_says_how_to_get_it(tmp_path):
    # A `ray` that cannot be imported stands first on the path, as if it were absent.
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(ROOT)])}
    suite = make_suite(tmp_path, ["add"])
    res = cli([str(suite), "--backend", "oracle", "--executor", "ray",
               "--out", str(tmp_path / "r")], env=env)
    assert res.returncode == 2, res.stderr
    assert "pip install 'guild-agent[ray]'" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "r").exists()
    # The local executor never needs it.
    res = cli([str(suite), "--backend", "oracle", "--modes", "single",
               "--out", str(tmp_path / "l")], env=env)
    assert res.returncode == 0, res.stderr


class Served:
    """An OpenAI-compatible server on 127.0.0.1 answering each task with its reference,
    slowly, and counting how many requests it holds at once."""

    def __init__(self, hold: float = 0.3) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests = 0
        self.now = 0
        self.peak = 0
        lock = threading.Lock()
        served = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"data": [{"id": "served"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    served.requests += 1
                    served.now += 1
                    served.peak = max(served.peak, served.now)
                try:
                    time.sleep(hold)
                    text = " ".join(m["content"] for m in body["messages"])
                    ref = next(ref for sig, _, ref in TESTS.values() if sig in text)
                    answer = f"```go\npackage sandbox\n\n{ref}\n```\n"
                    self._send(200, {"choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant",
                                                              "content": answer}}],
                                     "usage": {"prompt_tokens": 50, "completion_tokens": 20}})
                finally:
                    with lock:
                        served.now -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_served_model_is_shared_by_workers_within_jobs(cluster, suite, tmp_path, jobs):
    served = Served()
    try:
        out = tmp_path / "ray"
        res = invoke([str(suite), "--backend", "openai", "--base-url", served.url,
                      "--model", "served", "--modes", "sample", "--samples", "2",
                      "--executor", "ray", "--jobs", str(jobs), "--out", str(out)])
        assert res.exit_code == 0, res.output
    finally:
        served.close()
    recs = records(out)
    assert len(recs) == len(TASKS) * 2 and all(r.result.solved for r in recs)
    assert served.requests == len(recs)  # one request per attempt, from the workers
    assert 1 <= served.peak <= jobs  # --jobs bounds what the server sees at once
