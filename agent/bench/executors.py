"""Where a bench's attempts run: threads in this process, or tasks on a Ray cluster.

The driver (`BenchRun.run`) decides which attempts are left and alone writes the run
folder. An executor only turns attempt keys into records and hands each to `take` as it
finishes, in completion order; `take` writes the fsynced line and answers False once no
further attempt should start (the model answered nothing, the machine failed). So
`--resume`, `bench report` and every table read the same results.jsonl whichever executor
ran it, and the summary (a pure function of the records) is the same.

On Ray each attempt is one task. A worker process opens the model once (a per-process
cache keyed by the model's options: llama.cpp / mlx weights load once per worker, an
OpenAI-compatible server is shared by all) and runs the Go checks in its own sandboxes,
with the node's shared GOCACHE. A worker that dies loses only the attempts it was
running: Ray reruns each up to `max_retries` times, and one still lost is recorded as a
broken attempt (outcome `error`), never a pass.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from agent.atomic import write_text_atomic
from agent.bench.attempt import ModelFailed, SharedEngine, broken_record, run_one
from agent.bench.config import AttemptKey, BenchConfig, BenchError, BenchStopped, one_line
from agent.bench.results import AttemptRecord
from agent.loop.trajectory import TRAJECTORY, Trajectory
from agent.models.base import DEFAULT_SPECULATION, Model, ModelError
from agent.tasks.spec import TaskSpec
from tools.go import ToolchainError

if TYPE_CHECKING:
    from agent.bench.runner import BenchRun

Take = Callable[[AttemptRecord | BaseException], bool]


class Executor(Protocol):
    """Runs `keys` (lazily: stop drawing once `take` says so) and feeds `take`."""

    def execute(self, bench: BenchRun, model: Model, keys: Iterator[AttemptKey],
                take: Take) -> None: ...


class LocalExecutor:
    """Threads in this process sharing one model (generate calls take turns)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)

    def execute(self, bench: BenchRun, model: Model, keys: Iterator[AttemptKey],
                take: Take) -> None:
        engine = SharedEngine(model)
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="bench")
        running: set[Future[AttemptRecord]] = set()
        go = True

        def collect(fut: Future[AttemptRecord]) -> bool:
            try:
                rec = fut.result()
            except Exception as exc:  # the machine failed; others still finish
                return take(exc)
            return take(rec)

        try:
            # At most `jobs` attempts in flight, so an interrupt abandons little work.
            for key in keys:
                running.add(pool.submit(bench.run_attempt, key, engine))
                if len(running) >= self.jobs:
                    break
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    running.discard(fut)
                    go = collect(fut) and go
                    nxt = next(keys, None) if go else None
                    if nxt is not None:
                        running.add(pool.submit(bench.run_attempt, nxt, engine))
        finally:
            # Interrupted (Ctrl-C, SIGTERM) or failing: attempts in flight still finish,
            # in their own sandboxes, and what they found is kept rather than lost.
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in running:
                if fut.done() and not fut.cancelled():
                    with contextlib.suppress(Exception):
                        collect(fut)


# -- Ray ---------------------------------------------------------------------------------

class ModelSpec(BaseModel):
    """What a worker needs to open the same model the driver opened (make_model's inputs).

    The API key, when one is given, travels in the task's arguments: a cluster whose
    object store others can read should give its workers the key by environment instead.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str
    model: str | None = None
    adapter: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    threads: int | None = None
    speculation: str = DEFAULT_SPECULATION
    draft_model: str | None = None

    def open(self) -> Model:
        from agent.models import make_model

        return make_model(self.backend, self.model, adapter=self.adapter,
                          base_url=self.base_url, api_key=self.api_key, threads=self.threads,
                          speculation=self.speculation, draft_model=self.draft_model)


# Per worker process: the opened models (by their options) and whether GOCACHE is warm.
_ENGINES: dict[str, SharedEngine] = {}
_WARMED: list[bool] = []


def _engine(spec: ModelSpec) -> SharedEngine:
    key = spec.model_dump_json()
    if key not in _ENGINES:
        _ENGINES[key] = SharedEngine(spec.open())
    return _ENGINES[key]


def _warm_once() -> None:
    """The node's build cache, warmed by the first attempt of each worker (a stamp and a
    file lock make every later call, in any process of the node, cost a stat())."""
    if not _WARMED:
        from tools.warm import warm_unless_disabled

        warm_unless_disabled()
        _WARMED.append(True)


def remote_attempt(config_json: str, task_json: str, key_json: str, spec_json: str,
                   warm: bool = True) -> dict[str, str]:
    """One attempt in a Ray worker. Plain JSON in and out, so driver and worker need only
    agree on the record format, not on pickled classes.

    Returns {"record", "trajectory"}; or {"stop", "message"} when the worker cannot run
    attempts at all (no toolchain, disk full, the model will not open): the driver stops
    the run as a local one would.
    """
    config = BenchConfig.model_validate_json(config_json)
    task = TaskSpec.model_validate_json(task_json)
    key = AttemptKey.model_validate_json(key_json)
    try:
        if warm:
            _warm_once()
        engine = _engine(ModelSpec.model_validate_json(spec_json))
    except ToolchainError as exc:
        return {"stop": "toolchain", "message": str(exc)}
    except ModelError as exc:
        return {"stop": "model", "message": one_line(exc)}
    except OSError as exc:
        return {"stop": "machine", "message": one_line(exc)}
    # The trajectory is written here, then carried back: only the driver writes the run
    # folder, which a worker on another machine could not reach anyway.
    with tempfile.TemporaryDirectory(prefix="guild-agent-attempt-") as tmp:
        path = Path(tmp) / TRAJECTORY
        try:
            rec = run_one(config, task, key, engine, path)
        except ToolchainError as exc:
            return {"stop": "toolchain", "message": str(exc)}
        except BenchStopped as exc:
            return {"stop": "machine", "message": str(exc)}
        trajectory = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return {"record": rec.model_dump_json(), "trajectory": trajectory}


class WorkerLost(RuntimeError):
    """The Ray worker running an attempt died (after Ray's retries), or Ray failed it."""


def ray_module() -> Any:
    """`ray`, or one line saying how to get it (exit 2)."""
    try:
        import ray
    except ImportError:
        raise BenchError("--executor ray needs Ray: pip install 'guild-agent[ray]'") from None
    return ray


class ClusterUnavailable(RuntimeError):
    """The Ray cluster named cannot be reached (exit 3, like a model that is down)."""


def probe_address(address: str, timeout: float = 5.0) -> None:
    """Refuse at once an address nothing listens on: Ray itself retries a dead GCS for
    minutes, printing its own warnings, before it gives up."""
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        if address in ("auto", "local"):
            return  # Ray's own names: the cluster this machine runs, or a new one
        raise BenchError(f"--ray-address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ClusterUnavailable(f"no Ray cluster answers at {address} ({reason})") from None


def connect(address: str | None) -> Any:
    """Ray, connected: to `address`, else to the instance this process already runs, else
    to a new local one (all this machine's CPUs)."""
    ray = ray_module()
    if ray.is_initialized():
        return ray
    if address:
        probe_address(address)
    kw: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        kw["include_dashboard"] = False
        # Workers of a local instance import this very checkout, installed or not.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        kw["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    try:
        ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"join the Ray cluster at {address}" if address else "start Ray here"
        raise ClusterUnavailable(f"cannot {where}: {one_line(exc)}") from None
    return ray


class RayExecutor:
    """Each attempt a Ray task; at most `jobs` in flight (default: the cluster's CPUs).

    With a served model (`--backend openai`) `jobs` is also the most requests the server
    sees at once, since a worker runs one attempt and an attempt one request at a time.
    """

    def __init__(self, spec: ModelSpec, *, address: str | None = None,
                 jobs: int | None = None, max_retries: int = 2,
                 cpus_per_attempt: float = 1.0, warm: bool = True) -> None:
        if spec.backend == "replay":
            raise BenchError("--backend replay answers in call order, which workers on a "
                             "cluster cannot keep; run it with --executor local")
        self.spec = spec
        self.address = address
        self.jobs = jobs
        self.max_retries = max_retries
        self.cpus_per_attempt = cpus_per_attempt
        self.warm = warm  # --no-warm holds for the workers too

    def connect(self) -> Any:
        """Join (or start) the cluster: callable early, so a bad address fails before the
        run starts; `execute` calls it again (a no-op once connected)."""
        return connect(self.address)

    def execute(self, bench: BenchRun, model: Model, keys: Iterator[AttemptKey],
                take: Take) -> None:
        ray = self.connect()
        task_fn = ray.remote(remote_attempt).options(
            num_cpus=self.cpus_per_attempt, max_retries=self.max_retries,
            retry_exceptions=False, name="guild-agent-attempt")
        cpus = int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_attempt) or 1
        window = self.jobs or cpus
        config_ref = ray.put(bench.config.model_dump_json())
        spec_json = self.spec.model_dump_json()
        tasks = {t: bench.tasks[t].model_dump_json() for t in bench.config.tasks}
        running: dict[Any, tuple[AttemptKey, float]] = {}

        def submit(key: AttemptKey) -> None:
            ref = task_fn.remote(config_ref, tasks[key.task], key.model_dump_json(), spec_json,
                                 self.warm)
            running[ref] = (key, time.monotonic())

        go = True
        try:
            for key in keys:
                submit(key)
                if len(running) >= window:
                    break
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    key, start = running.pop(ref)
                    go = self._collect(ray, bench, model, ref, key, start, take) and go
                    nxt = next(keys, None) if go else None
                    if nxt is not None:
                        submit(nxt)
        finally:
            # Interrupted: what already finished is kept; the rest is abandoned (a resume
            # reruns it), not waited for, since a cluster's attempts may be many.
            if running:
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
                for ref in ready:
                    key, start = running.pop(ref)
                    with contextlib.suppress(Exception):
                        self._collect(ray, bench, model, ref, key, start, take)
                for ref in running:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)

    def _collect(self, ray: Any, bench: BenchRun, model: Model, ref: Any, key: AttemptKey,
                 start: float, take: Take) -> bool:
        try:
            got = ray.get(ref)
        except ray.exceptions.RayError as exc:
            # Retries spent (a worker or its node died each time) or Ray failed the task:
            # this attempt is recorded as broken, the run goes on.
            cause = getattr(exc, "cause", None) or exc
            text = one_line(cause) if cause is not exc else type(exc).__name__
            lost = WorkerLost(f"the Ray worker running it was lost ({text}; "
                              f"{self.max_retries} retries)")
            return take(broken_record(bench.config, key, model, Trajectory(None), lost, start))
        if "stop" in got:
            kind, message = got["stop"], got["message"]
            if kind == "toolchain":
                return take(ToolchainError(message))
            if kind == "model":
                return take(ModelFailed(f"a Ray worker could not open the model: {message}"))
            return take(BenchStopped(f"a Ray worker stopped: {message}"))
        rec = AttemptRecord.model_validate_json(got["record"])
        if got["trajectory"]:
            path = bench.trajectory_path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, got["trajectory"])
        return take(rec)
