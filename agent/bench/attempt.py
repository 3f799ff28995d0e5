"""One attempt (task × mode × sample): the loop on a task with a model shared between
threads, and the record of an attempt that broke. Runs in the driver or on a worker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.bench.config import (
    MACHINE_ERRNOS,
    AttemptKey,
    BenchConfig,
    BenchStopped,
    one_line,
    os_error_line,
)
from agent.bench.results import AttemptRecord
from agent.loop.checker import Checker
from agent.loop.problem import Problem, problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.stop import StopReason
from agent.loop.trajectory import (
    FeedbackMode,
    RoundRecord,
    RunResult,
    TokenUsage,
    Trajectory,
)
from agent.models.base import Generation, Message, Model, Sampling, bind
from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskSpec
from tools.go import ToolchainError

try:  # POSIX only; the project targets Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]




class SharedEngine:
    """One model shared by worker threads: generate calls take turns under a lock.

    Engines hold no conversation state the loop must reset: llama.cpp and mlx reuse only
    the prefix a prompt shares with the cached one, so interleaved attempts cannot mix.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.lock = threading.Lock()

    def conversation(self) -> Conversation:
        return Conversation(self, self.model)


class Conversation:
    """The Model the loop sees for one attempt (see SharedEngine)."""

    def __init__(self, engine: SharedEngine, model: Model) -> None:
        self.engine = engine
        self.model = model
        self.name = engine.model.name
        self.backend = engine.model.backend

    def for_problem(self, problem: Problem) -> Conversation:
        return Conversation(self.engine, bind(self.engine.model, problem))

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        with self.engine.lock:
            return self.model.generate(messages, sampling)


class ModelFailed(RuntimeError):
    """The model gave no answer at all for an attempt (engine down, script exhausted…).

    Such attempts are not recorded: a resumed run retries them instead of counting a
    dead server as unsolved tasks.
    """


def run_one(config: BenchConfig, task: TaskSpec, key: AttemptKey, engine: SharedEngine,
            path: Path | None, *,
            checker_factory: Callable[[Problem], Checker] | None = None) -> AttemptRecord:
    """One attempt, its trajectory written to `path`. An exception inside it is recorded as a
    broken attempt, except where the machine failed (no toolchain, disk full): that raises
    (ToolchainError, BenchStopped) and stops the run.

    A module function, not a method: a Ray worker runs it with no run folder of its own.
    """
    start = time.monotonic()
    try:
        if path is not None:
            # An attempt cut short by a kill left a partial log: this run of it starts afresh.
            path.unlink(missing_ok=True)
        traj = Trajectory(path)
    except OSError as exc:  # the run folder itself is unusable
        raise BenchStopped(os_error_line(exc)) from None
    try:
        loop = RepairLoop(engine.conversation(), config.loop_config(key.mode, key.sample),
                          checker_factory=checker_factory or _harness)
        result = loop.run(problem_from_task(task), traj)
    except ToolchainError:
        raise
    except OSError as exc:
        if exc.errno in MACHINE_ERRNOS:
            raise BenchStopped(os_error_line(exc)) from None
        return broken_record(config, key, engine.model, traj, exc, start)
    except Exception as exc:  # one attempt's failure is its own result
        return broken_record(config, key, engine.model, traj, exc, start)
    finally:
        traj.close()
    return AttemptRecord(task=key.task, mode=key.mode, sample=key.sample,
                         config=key.config, result=result)


def _harness(problem: Problem) -> Checker:
    assert problem.task is not None  # bench problems always come from tasks
    return TaskHarness(problem.task)


def broken_record(config: BenchConfig, key: AttemptKey, model: Model, traj: Trajectory,
                  exc: BaseException, start: float) -> AttemptRecord:
    """The record of an attempt that raised: outcome `error`, the one-line reason, and
    the rounds' cost as far as the trajectory saw it."""
    message = one_line(exc)
    with contextlib.suppress(Exception):
        traj.event("attempt_error", message=message)
    rounds: list[RoundRecord] = []
    for ev in traj.events:
        if ev.get("event") == "response":
            t = ev.get("tokens") or {}
            rounds.append(RoundRecord(
                round=len(rounds) + 1, temperature=0.0, summary="attempt broke",
                completion_tokens=t.get("completion", 0), prompt_tokens=t.get("prompt", 0),
                cached_tokens=t.get("cached", 0), model_seconds=ev.get("seconds", 0.0)))
        elif ev.get("event") == "candidates" and rounds and ev.get("candidates"):
            # A round of several answers wrote only the chosen one's response.
            cands = ev["candidates"]
            rounds[-1] = rounds[-1].model_copy(update={
                "completion_tokens": sum(c.get("tokens", 0) for c in cands),
                "prompt_tokens": sum(c.get("prompt_tokens", 0) for c in cands),
                "cached_tokens": sum(c.get("cached_tokens", 0) for c in cands),
                "model_seconds": sum(c.get("seconds", 0.0) for c in cands)})
    usage = TokenUsage()
    for r in rounds:
        usage.add(r.prompt_tokens, r.cached_tokens, r.completion_tokens)
    lc = config.loop_config(key.mode, key.sample)
    result = RunResult(
        task=key.task, solved=False, rounds=len(rounds), feedback=lc.feedback
        or FeedbackMode.all, model=model.name, backend=model.backend,
        tokens=usage, seconds=time.monotonic() - start, stop_reason=StopReason.broke,
        first_failure="attempt-error", temperature=lc.temperature, seed=lc.seed,
        rounds_detail=rounds, error=message)
    return AttemptRecord(task=key.task, mode=key.mode, sample=key.sample,
                         config=key.config, outcome="error", result=result)
