"""Benchmarks: what the repair loop buys over single-shot and resampling, at what cost.

One run puts the same tasks, model and seeds through up to three modes:

- `single`: one generation per task (pass@1). Both the raw verdict (no deterministic fix)
  and the verdict after the cheap fixes are recorded.
- `repair`: the loop, up to K rounds; solved-by-round 1…K comes from `solved_at_round`.
- `sample`: n independent one-round samples at temperature T with seeds seed+i, scored with
  the unbiased pass@k estimator of Chen et al. (2021).

Every attempt is one line of `results.jsonl`, appended and fsynced as it finishes, so a
killed run resumes without redoing or duplicating anything. The summary is a pure function
of those lines and the run's config: a resumed run summarises exactly like an
uninterrupted one.

An attempt that breaks (any exception in the harness, e.g. a model answer naming a file the
workspace refuses) is recorded with outcome `error` and its one-line message, and the run
goes on; the machine failing (disk full, no toolchain) stops the run instead, with the
finished attempts kept. A run folder is locked while a process writes it.

Where attempts run (threads here, or tasks on a Ray cluster) is agent.bench.executors;
whichever runs them, this process alone writes the run folder.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from enum import Enum
from fractions import Fraction
from math import comb
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.atomic import write_text_atomic
from agent.golang.fixes import FIX_NAMES
from agent.loop.checker import Checker
from agent.loop.config import LoopConfig, default
from agent.loop.problem import Problem, problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.stop import StopReason
from agent.loop.trajectory import (
    FeedbackMode,
    RoundRecord,
    RunResult,
    TokenUsage,
    Trajectory,
    file_name,
)
from agent.models.base import Generation, Message, Model, Sampling, bind
from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskSpec
from tools.go import ToolchainError

try:  # POSIX only; the project targets Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from agent.bench.executors import Executor

RESULTS = "results.jsonl"
RUN_FILE = "run.json"
SUMMARY = "summary.json"
TRAJECTORIES = "trajectories"  # one event log per attempt, for looking back at answers
LOCK = ".bench.lock"  # held (flock) by the process writing the run folder

# The machine, not the attempt, failed: every later attempt would fail the same way.
MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE,
                            errno.ENFILE, errno.ENOMEM})


class BenchError(ValueError):
    """Bad input or an unusable run directory; the message is one line (exit code 2)."""


class BenchStopped(RuntimeError):
    """The machine failed mid-run (disk full, …): finished attempts are kept (exit code 3)."""


def one_line(exc: BaseException, cap: int = 300) -> str:
    """An exception as one printable line: its type, and the first line of its message."""
    text = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    msg = msg.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from a model
    return msg if len(msg) <= cap else msg[: cap - 1] + "…"


def os_error_line(exc: OSError) -> str:
    """`path: reason` for an OSError, without the errno noise."""
    where = f"{exc.filename}: " if exc.filename else ""
    return one_line(OSError(f"{where}{exc.strerror or exc}")).removeprefix("OSError: ")


class Mode(str, Enum):
    single = "single"
    repair = "repair"
    sample = "sample"


MODE_ORDER = (Mode.single, Mode.repair, Mode.sample)


def parse_modes(text: str) -> list[Mode]:
    """`single,repair,sample` (any order, any subset) → modes in canonical order."""
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names:
        raise BenchError("--modes is empty; choose from single, repair, sample")
    bad = [n for n in names if n not in Mode.__members__]
    if bad:
        raise BenchError(f"unknown mode {bad[0]!r} in --modes; choose from single, repair, "
                         "sample (comma-separated)")
    # Canonical order, so `repair,single` and `single,repair` are the same config.
    return [m for m in MODE_ORDER if m.value in names]


# -- pass@k ------------------------------------------------------------------------------

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al. 2021, eq. 1).

    1 - C(n-c, k) / C(n, k), the chance that k samples drawn without replacement from the
    n include a passing one. Computed on exact integers, so large n neither overflows nor
    loses precision (the paper's product form only avoids floats' overflow).
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0  # every draw of k contains a pass
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


# -- configuration -------------------------------------------------------------------------

class BenchConfig(BaseModel):
    """Everything that decides a run's results; stored as run.json and hashed into keys."""

    model_config = ConfigDict(extra="forbid")

    suite: str
    tasks: list[str]  # the selected task ids, in order
    tasks_digest: str  # the selected tasks' content: an edited suite is a different run
    modes: list[Mode]
    max_rounds: int = Field(default=default("max_rounds"), ge=1)
    feedback: FeedbackMode | None = default("feedback")
    after_copy: Literal["resample", "repair"] = default("after_copy")
    samples: int = Field(default=5, ge=1)
    sample_temperature: float = Field(default=0.8, ge=0.0)
    seed: int = default("seed")
    max_tokens: int | None = default("max_tokens")
    fixes: list[str] = Field(default_factory=list)
    backend: str
    model: str | None = None  # as asked for (--model), not as resolved
    adapter: str | None = None
    replay: str | None = None
    task_filter: str | None = None  # --tasks as given, for the reproducing command
    limit: int | None = None
    # Greedy repair's round 1 is the very generation a single-shot attempt would make
    # (same prompt, seed and sampling), so with both modes it is read off, not redone.
    single_from_repair: bool = True
    # What produced the run (agent.runs.provenance): written to run.json, never hashed, so a
    # resume on another machine or engine version is the same run, each line saying which.
    provenance: dict[str, Any] | None = Field(default=None, exclude=True)

    @property
    def derives_single(self) -> bool:
        return self.single_from_repair and Mode.single in self.modes and (
            Mode.repair in self.modes)

    def config_hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def loop_config(self, mode: Mode, sample: int) -> LoopConfig:
        if mode is Mode.single:
            # Feedback is irrelevant in one round but `all` makes the check run every test.
            return LoopConfig(max_rounds=1, feedback=FeedbackMode.all, seed=self.seed,
                              max_tokens=self.max_tokens, fixes=self.fixes)
        if mode is Mode.repair:
            return LoopConfig(max_rounds=self.max_rounds, feedback=self.feedback,
                              seed=self.seed, max_tokens=self.max_tokens, fixes=self.fixes,
                              after_copy=self.after_copy)
        return LoopConfig(max_rounds=1, feedback=FeedbackMode.all,
                          temperature=self.sample_temperature, seed=self.seed + sample,
                          max_tokens=self.max_tokens, fixes=self.fixes)

    def attempts(self) -> list[AttemptKey]:
        """All attempts, task-major, so whole tasks finish early and progress means something."""
        h = self.config_hash()
        keys = []
        for task in self.tasks:
            for mode in self.modes:
                for i in range(self.samples if mode is Mode.sample else 1):
                    keys.append(AttemptKey(task=task, mode=mode, sample=i, config=h))
        return keys

    def command(self, out: str | None = None) -> str:
        """The command line that reproduces this run."""
        parts = ["guild-agent", "bench", self.suite, "--backend", self.backend]
        if self.model:
            parts += ["--model", self.model]
        if self.adapter:
            parts += ["--adapter", self.adapter]
        if self.replay:
            parts += ["--replay", self.replay]
        parts += ["--modes", ",".join(m.value for m in self.modes)]
        if Mode.repair in self.modes:
            parts += ["--max-rounds", str(self.max_rounds)]
            if self.feedback:
                parts += ["--feedback", self.feedback.value]
            if self.after_copy != "resample":
                parts += ["--after-copy", self.after_copy]
        if Mode.sample in self.modes:
            parts += ["--samples", str(self.samples),
                      "--sample-temperature", f"{self.sample_temperature:g}"]
        parts += ["--seed", str(self.seed)]
        if self.max_tokens:
            parts += ["--max-tokens", str(self.max_tokens)]
        for f in FIX_NAMES:
            if f not in self.fixes:
                parts += ["--no-fix", f]
        if not self.single_from_repair:
            parts.append("--separate-single")
        if self.task_filter:
            parts += ["--tasks", self.task_filter]
        if self.limit is not None:
            parts += ["--limit", str(self.limit)]
        if out:
            parts += ["--out", out]
        return " ".join(_shell_quote(p) for p in parts)


def _shell_quote(s: str) -> str:
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./,:=+@%")
    return s if s and all(c in safe for c in s) else "'" + s.replace("'", "'\\''") + "'"


def select_tasks(tasks: list[TaskSpec], patterns: str | None = None,
                 limit: int | None = None) -> list[TaskSpec]:
    """Tasks whose id matches any comma-separated id or glob, then the first `limit`."""
    chosen = tasks
    if patterns:
        pats = [p.strip() for p in patterns.split(",") if p.strip()]
        chosen = [t for t in tasks if any(fnmatch.fnmatchcase(t.id, p) for p in pats)]
        if not chosen:
            raise BenchError(f"--tasks {patterns!r} matches no task in the suite")
    if limit is not None:
        chosen = chosen[:limit]
    if not chosen:
        raise BenchError("no tasks selected")
    return chosen


def tasks_digest(tasks: Iterable[TaskSpec]) -> str:
    h = hashlib.sha256()
    for t in tasks:
        h.update(json.dumps(t.model_dump(mode="json"), sort_keys=True).encode() + b"\0")
    return h.hexdigest()[:16]


# -- records -------------------------------------------------------------------------------

class AttemptKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: str
    mode: Mode
    sample: int = 0
    config: str  # BenchConfig.config_hash()


class AttemptRecord(BaseModel):
    """One line of results.jsonl: which attempt, and the loop's result without files."""

    task: str
    mode: Mode
    sample: int = 0
    config: str
    # `error`: the attempt broke (an exception in the harness); `result.error` holds the
    # message and it is never a pass. Lines written before this field read as `done`.
    outcome: Literal["done", "error"] = "done"
    result: RunResult
    provenance: dict[str, Any] | None = None  # agent.runs.provenance.Provenance, as recorded

    @model_validator(mode="after")
    def _broken_never_passes(self) -> AttemptRecord:
        if self.outcome == "error":
            self.result.solved = self.result.raw_solved_round1 = False
            self.result.solved_at_round = None
            self.result.error = self.result.error or "the attempt broke"
        return self

    @property
    def key(self) -> AttemptKey:
        return AttemptKey(task=self.task, mode=self.mode, sample=self.sample,
                          config=self.config)

    def line(self) -> str:
        text = json.dumps(self.model_dump(mode="json", exclude={"result": {"files"}}),
                          sort_keys=True, ensure_ascii=False)
        # A lone surrogate (from a model's text) would be written as an escape that no
        # JSON reader accepts back, poisoning the log: replace it here, once.
        return text.encode("utf-8", "replace").decode("utf-8") + "\n"


class ResultsLog:
    """results.jsonl: append-only, one fsynced line per finished attempt, never duplicated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[AttemptKey, AttemptRecord] = {}
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        if not self.path.is_file():
            raise BenchError(f"{self.path} is not a regular file")
        data = self.path.read_bytes()
        good_end = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            end = len(data) if nl < 0 else nl + 1
            raw = data[pos:end]
            if not raw.strip():
                pos = good_end = end  # a blank line carries nothing; keep it harmlessly
                continue
            if nl < 0:
                # Only an unterminated last line is a torn write (complete JSON or not):
                # the attempt did not finish, and is redone.
                break
            try:
                rec = AttemptRecord.model_validate_json(raw)
            except ValidationError:
                # A newline-ended line was written whole: unreadable means corrupt, and
                # dropping it would silently lose (or redo) a recorded attempt.
                lineno = data.count(b"\n", 0, pos) + 1
                raise BenchError(f"{self.path}: line {lineno} is corrupt (a complete "
                                 "line, not a torn write); fix or remove it") from None
            # A duplicate (impossible from this writer) would be dropped, never counted twice.
            self.records.setdefault(rec.key, rec)
            good_end = end
            pos = end
        if good_end != len(data):
            # Rewrite cleanly: drop the torn tail so the next append starts a fresh line.
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())

    def __contains__(self, key: AttemptKey) -> bool:
        return key in self.records

    def append(self, rec: AttemptRecord) -> bool:
        """Write `rec` unless its attempt is already recorded; True when written."""
        with self._lock:
            if rec.key in self.records:
                return False
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(rec.line())
                fh.flush()
                os.fsync(fh.fileno())
            self.records[rec.key] = rec
            return True


def read_records(path: Path) -> list[AttemptRecord]:
    return list(ResultsLog(path).records.values())


# -- summary -------------------------------------------------------------------------------

class BudgetPoint(BaseModel):
    """Solved tasks after spending this much: one point of a solved-vs-cost curve."""

    step: int  # repair: rounds allowed; sample: samples drawn; single: 1
    solved: float  # expected count for sample (sum of per-task pass@k)
    completion_tokens: float
    seconds: float


class ModeSummary(BaseModel):
    mode: Mode
    tasks: int
    solved: int  # sample: tasks solved by any of the n samples
    pass_rate: float
    attempts: int
    errors: int = 0  # attempts the model or toolchain failed for good (broken included)
    broken: int = 0  # attempts that broke (outcome `error`): never passes, listed apart
    raw_solved: int | None = None  # single: round 1 passed with no deterministic fix
    solved_by_round: dict[int, int] | None = None  # repair: cumulative, rounds 1..K
    pass_at_k: dict[int, float] | None = None  # sample: mean over tasks, k = 1..n
    first_failures: dict[str, int] = Field(default_factory=dict)
    # Why each attempt ended ("tests pass", "visible tests pass, hidden tests fail", …):
    # it tells a model that ran out of rounds from one that had nothing left to act on.
    stop_reasons: dict[str, int] = Field(default_factory=dict)
    rounds: int = 0  # model calls made
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Speculative decoding (--spec ngram / --draft-model): tokens guessed ahead, and kept.
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    seconds: float = 0.0  # wall time of the attempts (includes waiting for the model lock)
    model_seconds: float = 0.0
    check_seconds: float = 0.0
    tokens_per_solved: float | None = None
    budget_curve: list[BudgetPoint] = Field(default_factory=list)


class TaskModeOutcome(BaseModel):
    solved: bool
    raw_solved: bool | None = None
    solved_at_round: int | None = None
    samples_solved: int | None = None
    rounds: int
    first_failure: str | None = None
    stop_reason: str = ""
    completion_tokens: int
    seconds: float


class BrokenAttempt(BaseModel):
    """An attempt recorded with outcome `error`, and why."""

    task: str
    mode: Mode
    sample: int
    message: str


class TaskRow(BaseModel):
    task: str
    modes: dict[str, TaskModeOutcome]


class Summary(BaseModel):
    suite: str
    model: str
    backend: str
    config: str
    command: str  # reproduces the run (add --out DIR)
    tasks: int
    complete: bool  # every planned attempt is recorded
    attempts_done: int
    attempts_planned: int
    modes: dict[str, ModeSummary]
    per_task: list[TaskRow]
    broken: list[BrokenAttempt] = Field(default_factory=list)  # in task and mode order


def _round_seconds(r: RunResult) -> tuple[float, float]:
    return (sum(x.model_seconds for x in r.rounds_detail),
            sum(x.check_seconds for x in r.rounds_detail))


def summarize(config: BenchConfig, records: Iterable[AttemptRecord], *,
              model_name: str | None = None, command: str | None = None) -> Summary:
    """The summary of a run: a pure function of its config and its recorded attempts.

    Records are grouped by key and read in the config's task order, so the order in which
    workers finished (or a resume) changes nothing but timings.
    """
    h = config.config_hash()
    by_key = {r.key: r for r in records if r.config == h}
    planned = config.attempts()
    modes: dict[str, ModeSummary] = {}
    rows: dict[str, dict[str, TaskModeOutcome]] = {t: {} for t in config.tasks}
    broken: list[BrokenAttempt] = []
    for mode in config.modes:
        n_samples = config.samples if mode is Mode.sample else 1
        per_task: dict[str, list[RunResult]] = {}
        broken_of: dict[str, int] = {}
        for task in config.tasks:
            got = [by_key.get(AttemptKey(task=task, mode=mode, sample=i, config=h))
                   for i in range(n_samples)]
            if all(g is not None for g in got):
                per_task[task] = [g.result for g in got if g is not None]
                bad = [g for g in got if g is not None and g.outcome == "error"]
                broken_of[task] = len(bad)
                broken += [BrokenAttempt(task=task, mode=mode, sample=g.sample,
                                         message=g.result.error or "") for g in bad]
        results = [r for rs in per_task.values() for r in rs]
        ms = ModeSummary(mode=mode, tasks=len(per_task), solved=0, pass_rate=0.0,
                         attempts=len(results), broken=sum(broken_of.values()))
        for r in results:
            ms.errors += r.error is not None
            ms.rounds += r.rounds
            ms.prompt_tokens += r.tokens.prompt
            ms.completion_tokens += r.tokens.completion
            ms.drafted_tokens += sum(d.drafted_tokens for d in r.rounds_detail)
            ms.accepted_tokens += sum(d.accepted_tokens for d in r.rounds_detail)
            ms.seconds += r.seconds
            model_s, check_s = _round_seconds(r)
            ms.model_seconds += model_s
            ms.check_seconds += check_s
            reason = r.stop_reason.value if r.stop_reason else "unknown"
            ms.stop_reasons[reason] = ms.stop_reasons.get(reason, 0) + 1
            if not r.solved:
                kind = r.first_failure or ("model-error" if r.error else "unknown")
                ms.first_failures[kind] = ms.first_failures.get(kind, 0) + 1
        for task, rs in per_task.items():
            solved_n = sum(r.solved for r in rs)
            r0 = rs[0]
            rows[task][mode.value] = TaskModeOutcome(
                solved=solved_n > 0,
                raw_solved=r0.raw_solved_round1 if mode is Mode.single else None,
                solved_at_round=r0.solved_at_round if mode is Mode.repair else None,
                samples_solved=solved_n if mode is Mode.sample else None,
                rounds=sum(r.rounds for r in rs), first_failure=r0.first_failure,
                stop_reason=r0.stop_reason.value if len(rs) == 1 and r0.stop_reason else "",
                completion_tokens=sum(r.tokens.completion for r in rs),
                seconds=round(sum(r.seconds for r in rs), 3))
            ms.solved += solved_n > 0
        ms.pass_rate = ms.solved / ms.tasks if ms.tasks else 0.0
        ms.tokens_per_solved = (ms.completion_tokens / ms.solved) if ms.solved else None
        if mode is Mode.single:
            ms.raw_solved = sum(rs[0].raw_solved_round1 for rs in per_task.values())
            ms.budget_curve = [BudgetPoint(step=1, solved=ms.solved,
                                           completion_tokens=ms.completion_tokens,
                                           seconds=ms.model_seconds + ms.check_seconds)]
        elif mode is Mode.repair:
            ms.solved_by_round, ms.budget_curve = _repair_curve(
                [rs[0] for rs in per_task.values()], config.max_rounds)
        else:
            ms.pass_at_k, ms.budget_curve = _sample_curve(list(per_task.values()),
                                                          config.samples)
        modes[mode.value] = ms
    backend = config.backend
    return Summary(
        suite=config.suite, model=model_name or config.model or backend, backend=backend,
        config=h, command=command or config.command(), tasks=len(config.tasks),
        complete=all(k in by_key for k in planned), attempts_done=sum(
            k in by_key for k in planned), attempts_planned=len(planned), modes=modes,
        per_task=[TaskRow(task=t, modes=rows[t]) for t in config.tasks], broken=broken)


def _repair_curve(results: list[RunResult], max_rounds: int
                  ) -> tuple[dict[int, int], list[BudgetPoint]]:
    """Solved by round r (cumulative) and what stopping every task after r rounds costs."""
    by_round: dict[int, int] = {}
    curve = []
    for r in range(1, max_rounds + 1):
        solved = sum(1 for x in results if x.solved and (x.solved_at_round or 0) <= r)
        by_round[r] = solved
        tokens = sum(d.completion_tokens for x in results for d in x.rounds_detail
                     if d.round <= r)
        secs = sum(d.model_seconds + d.check_seconds for x in results for d in x.rounds_detail
                   if d.round <= r)
        curve.append(BudgetPoint(step=r, solved=solved, completion_tokens=tokens,
                                 seconds=round(secs, 3)))
    return by_round, curve


def _sample_curve(per_task: list[list[RunResult]], n: int
                  ) -> tuple[dict[int, float], list[BudgetPoint]]:
    """Mean pass@k for k = 1..n, and the expected cost of drawing k samples per task."""
    if not per_task:
        return {k: 0.0 for k in range(1, n + 1)}, []
    at_k: dict[int, float] = {}
    curve = []
    tokens = sum(r.tokens.completion for rs in per_task for r in rs)
    secs = sum(sum(_round_seconds(r)) for rs in per_task for r in rs)
    for k in range(1, n + 1):
        expected = sum(pass_at_k(n, sum(r.solved for r in rs), k) for rs in per_task)
        at_k[k] = expected / len(per_task)
        # k of the n samples cost, in expectation, k/n of what all n cost.
        curve.append(BudgetPoint(step=k, solved=round(expected, 6),
                                 completion_tokens=round(tokens * k / n, 3),
                                 seconds=round(secs * k / n, 3)))
    return at_k, curve


# -- running ------------------------------------------------------------------------------

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


ProgressHook = Callable[[AttemptRecord], None]


def single_from_repair(rec: AttemptRecord) -> AttemptRecord:
    """The single-shot attempt contained in a greedy repair attempt: its first round."""
    r = rec.result
    first = r.rounds_detail[0] if r.rounds_detail else None
    solved = bool(first and first.passed)
    tokens = TokenUsage(prompt=first.prompt_tokens, cached=first.cached_tokens,
                        completion=first.completion_tokens) if first else TokenUsage()
    result = r.model_copy(deep=True, update={
        "solved": solved,
        "rounds": 1 if first else 0,
        "solved_at_round": 1 if solved else None,
        "feedback": FeedbackMode.all,
        "tokens": tokens,
        "seconds": (first.model_seconds + first.check_seconds) if first else 0.0,
        "stop_reason": StopReason.solved if solved else StopReason.rounds_spent,
        "rounds_detail": [first] if first else [],
        "files": {},
    })
    # A repair attempt that broke in round 1 leaves no single-shot verdict: that breaks too.
    # One that broke later had a round 1 that ran and did not pass.
    broke = rec.outcome == "error" and len(r.rounds_detail) <= 1
    if rec.outcome == "error" and not broke:
        result.error = None
        result.first_failure = None
    return AttemptRecord(task=rec.task, mode=Mode.single, sample=0, config=rec.config,
                         outcome="error" if broke else "done", result=result,
                         provenance=rec.provenance)


class ModelFailed(RuntimeError):
    """The model gave no answer at all for an attempt (engine down, script exhausted…).

    Such attempts are not recorded: a resumed run retries them instead of counting a
    dead server as unsolved tasks.
    """


class RunLock:
    """An flock on the run folder's lock file, held while one process writes the folder.

    A second bench (or `bench report`) on the same folder is refused at once, with a line
    naming the holder, instead of both running every attempt. The kernel drops the lock
    when its holder dies, so a killed run never leaves the folder locked.
    """

    def __init__(self, out: Path, what: str) -> None:
        self.path = out / LOCK
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self._fh = os.fdopen(fd, "r+", encoding="utf-8", errors="replace")
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._fh.read(200).strip().splitlines()
            self._fh.close()
            raise BenchError(f"{out} is in use by {holder[0] if holder else 'another process'}"
                             "; wait for it to end or choose another --out") from None
        # Who holds it is a courtesy to the next caller; the flock is what counts, so a
        # full disk here changes nothing.
        holder = (f"{what} (pid {os.getpid()} on {socket.gethostname()}, since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode("utf-8", "replace"), 0)

    def release(self) -> None:
        if not self._fh.closed:
            with contextlib.suppress(OSError):
                self._fh.close()  # closing the descriptor drops the flock


def _read_config(run_file: Path, why: str) -> BenchConfig:
    if not run_file.is_file():
        raise BenchError(f"{run_file} is not a regular file")
    try:
        return BenchConfig.model_validate_json(run_file.read_text())
    except (ValidationError, OSError, ValueError) as exc:
        raise BenchError(f"{run_file}: unreadable ({type(exc).__name__}){why}") from None


def rebuild_report(out: Path) -> Summary:
    """summary.json, report.md and the plot of a run directory, from its run.json and
    results.jsonl alone: for a run that was killed, or one recorded by an older version.

    Refused while a bench writes the folder (it writes them itself when it ends).
    """
    run_file = out / RUN_FILE
    if not run_file.exists():
        raise BenchError(f"{out} holds no run ({RUN_FILE} not found)")
    config = _read_config(run_file, "")
    lock = RunLock(out, "bench report")
    try:
        records = read_records(out / RESULTS) if (out / RESULTS).exists() else []
        ours = [r for r in records if r.config == config.config_hash()]
        summary = summarize(config, ours, model_name=ours[0].result.model if ours else None,
                            command=config.command())
        _write_summary(out, summary)
    finally:
        lock.release()
    return summary


def _write_summary(out: Path, summary: Summary) -> None:
    from agent.bench.report import write_report

    write_text_atomic(out / SUMMARY, summary.model_dump_json(indent=2) + "\n")
    write_report(out, summary)


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
    rounds = []
    for ev in traj.events:
        if ev.get("event") == "response":
            t = ev.get("tokens") or {}
            rounds.append(RoundRecord(
                round=len(rounds) + 1, temperature=0.0, summary="attempt broke",
                completion_tokens=t.get("completion", 0), prompt_tokens=t.get("prompt", 0),
                cached_tokens=t.get("cached", 0), model_seconds=ev.get("seconds", 0.0)))
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


class BenchRun:
    """Runs a config's unrecorded attempts into an output directory.

    The directory is created, locked and checked on construction (so bad input fails
    before a model loads); run.json is written when the run starts. `close()` (or the
    `with` block) releases the lock.
    """

    def __init__(self, config: BenchConfig, tasks: list[TaskSpec], out: Path, *,
                 jobs: int = 2, resume: bool = False, command: str | None = None,
                 checker_factory: Callable[[TaskSpec], Checker] | None = None,
                 executor: Executor | None = None) -> None:
        self.config = config
        self.tasks = {t.id: t for t in tasks}
        if [t.id for t in tasks] != config.tasks:
            raise BenchError("the tasks given do not match the config's task list")
        self.out = out
        self.jobs = max(1, jobs)
        self.command = command or config.command()
        self.checker_factory = checker_factory
        self.executor = executor  # None: threads in this process (LocalExecutor)
        self._check_place()
        if out.is_dir():
            self._check_is_run()  # before the lock file is made: a refused folder is untouched
        out.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(out, "bench")
        try:
            self._check_is_run()  # again, now that no other bench can be changing it
            self._check_dir(resume)
            self.log = ResultsLog(out / RESULTS)
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        self.lock.release()

    def __enter__(self) -> BenchRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_place(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise BenchError(f"--out {self.out} is a file, not a directory")
        suite = Path(self.config.suite)
        if suite.is_dir():
            where, root = self.out.resolve(), suite.resolve()
            if where == root or root in where.parents:
                # Its summary.json, run.json and results.jsonl would load as task files.
                raise BenchError(f"--out {self.out} is inside the suite folder {suite}; "
                                 "choose a folder outside it")

    def _check_is_run(self) -> None:
        """Only a run folder, an empty one, or one a run left before its first write may
        be used: a user's report.md or summary.json is never overwritten."""
        if (self.out / RUN_FILE).exists() or (self.out / RESULTS).exists():
            return
        other = sorted(p.name for p in self.out.iterdir() if not _run_leftover(p.name))
        if other:
            raise BenchError(f"--out {self.out} is not empty and holds no bench run "
                             f"(found {other[0]!r}); choose a new or empty folder")

    def _check_dir(self, resume: bool) -> None:
        run_file = self.out / RUN_FILE
        results = self.out / RESULTS
        if run_file.exists():
            if not resume:
                raise BenchError(f"{self.out} already holds a run; pass --resume to continue "
                                 "it, or choose another --out")
            old = _read_config(run_file, "; cannot resume")
            if old.config_hash() != self.config.config_hash():
                new, was = self.config.model_dump(mode="json"), old.model_dump(mode="json")
                diff = [k for k in new if was.get(k) != new[k]]
                raise BenchError(f"{self.out} holds a run with a different config (differs "
                                 f"in: {', '.join(diff)}); resume with the same options or "
                                 "choose another --out")
        elif results.exists() and results.stat().st_size:
            raise BenchError(f"{results} exists without {RUN_FILE}; choose another --out")

    def pending(self) -> list[AttemptKey]:
        derived = self.config.derives_single
        return [k for k in self.config.attempts() if k not in self.log
                and not (derived and k.mode is Mode.single)]

    def _record(self, rec: AttemptRecord) -> list[AttemptRecord]:
        """Append a finished attempt (and the single-shot attempt it implies)."""
        rec.provenance = rec.provenance or self.config.provenance
        written = [rec] if self.log.append(rec) else []
        if self.config.derives_single and rec.mode is Mode.repair:
            single = single_from_repair(rec)
            single.provenance = rec.provenance
            if self.log.append(single):
                written.append(single)
        return written

    def _backfill(self) -> None:
        """A run killed between a repair line and its single line gets the latter now."""
        if self.config.derives_single:
            for rec in list(self.log.records.values()):
                if rec.mode is Mode.repair:
                    self.log.append(single_from_repair(rec))

    def _checker(self, problem: Problem) -> Checker:
        assert problem.task is not None  # bench problems always come from tasks
        if self.checker_factory is not None:
            return self.checker_factory(problem.task)
        return TaskHarness(problem.task)

    def trajectory_path(self, key: AttemptKey) -> Path:
        # file_name keeps `x/../y` inside the folder and `x/y`, `x?y` on files of their own.
        return (self.out / TRAJECTORIES
                / f"{file_name(key.task)}.{key.mode.value}.{key.sample}.jsonl")

    def run_attempt(self, key: AttemptKey, engine: SharedEngine) -> AttemptRecord:
        """One attempt, its trajectory in the run folder (see `run_one`)."""
        return run_one(self.config, self.tasks[key.task], key, engine,
                       self.trajectory_path(key), checker_factory=self._checker)

    def run(self, model: Model, on_record: ProgressHook | None = None) -> Summary:
        """Run what is not yet recorded; write results, summary.json, report.md, plot.

        Raises ModelFailed when the model answers nothing for an attempt (after the
        attempts already in flight are recorded).
        """
        _record_provenance(self.config, model)
        if not (self.out / RUN_FILE).exists():
            write_text_atomic(self.out / RUN_FILE, json.dumps(
                {**self.config.model_dump(mode="json"), "provenance": self.config.provenance},
                indent=2) + "\n")
            _index_run(self.out, self.config, model.name)
        self._backfill()
        from agent.bench.executors import LocalExecutor

        # The replay script is consumed in call order: only one worker keeps it meaningful.
        jobs = 1 if model.backend == "replay" else self.jobs
        executor = self.executor or LocalExecutor(jobs)
        failed: str | None = None
        stopped: BaseException | None = None

        def take(got: AttemptRecord | BaseException) -> bool:
            """Record one finished attempt; False once no further attempt should start."""
            nonlocal failed, stopped
            if isinstance(got, BaseException):  # the machine failed; others still finish
                stopped = stopped or got
                return False
            if got.outcome == "done" and got.result.error and got.result.rounds == 0:
                failed = failed or f"{got.task} ({got.mode.value}): {got.result.error}"
                return False
            for written in self._record(got):  # the log refuses a second copy
                if on_record:
                    on_record(written)
            return not (failed or stopped)

        executor.execute(self, model, iter(self.pending()), take)
        if stopped:
            raise stopped
        if failed:
            raise ModelFailed(failed)
        return self.finish(model.name)

    def finish(self, model_name: str | None = None) -> Summary:
        """Summarise everything recorded so far into summary.json, report.md and the plot."""
        summary = summarize(self.config, self.log.records.values(), model_name=model_name,
                            command=self.command)
        _write_summary(self.out, summary)
        return summary


def _run_leftover(name: str) -> bool:
    """What a run can leave in its folder before run.json exists: the lock file, or an
    atomic write's temp file from a kill mid-write."""
    return name == LOCK or (name.startswith(f".{RUN_FILE}.") and name.endswith(".tmp"))


# -- provenance and the runs index (agent.runs.provenance, agent.runs.index) --------------

def _record_provenance(config: BenchConfig, model: Model) -> None:
    from agent.runs.provenance import collect

    seeds = [config.seed] + ([config.seed + i for i in range(config.samples)]
                             if Mode.sample in config.modes else [])
    config.provenance = collect(model, seeds=seeds).model_dump(mode="json")


def _index_run(out: Path, config: BenchConfig, model_name: str) -> None:
    from agent.runs.index import record_run

    record_run(out, kind="bench", subject=config.suite, model=model_name)
