"""A bench run's config (what decides its results, hashed into every record), its file
names, and the errors that stop a run."""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
from collections.abc import Iterable
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.golang.fixes import FIX_NAMES
from agent.loop.config import LoopConfig, default
from agent.loop.trajectory import FeedbackMode, file_name
from agent.tasks.spec import TaskSpec

try:  # POSIX only; the project targets Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]



RESULTS = "results.jsonl"
RUN_FILE = "run.json"
SUMMARY = "summary.json"
TRAJECTORIES = "trajectories"  # one event log per attempt, for looking back at answers
LOCK = ".bench.lock"  # held (flock) by the process writing the run folder


def trajectory_file(task: str, mode: str, sample: int) -> str:
    """An attempt's event log under TRAJECTORIES. file_name keeps `x/../y` inside the
    folder and `x/y`, `x?y` on files of their own."""
    return f"{TRAJECTORIES}/{file_name(task)}.{mode}.{sample}.jsonl"


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
    # Repair mode's answers per round; single and sample modes stay one answer each.
    candidates: int = Field(default=default("candidates"), ge=1, le=16)
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
        # With several candidates repair's round 1 is a best-of-N, not one shot.
        return self.single_from_repair and Mode.single in self.modes and (
            Mode.repair in self.modes) and self.candidates == 1

    def config_hash(self) -> str:
        # One candidate hashes as before the setting existed: runs made then still resume.
        skip = {"candidates"} if self.candidates == 1 else set()
        blob = json.dumps(self.model_dump(mode="json", exclude=skip), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def loop_config(self, mode: Mode, sample: int) -> LoopConfig:
        if mode is Mode.single:
            # Feedback is irrelevant in one round but `all` makes the check run every test.
            return LoopConfig(max_rounds=1, feedback=FeedbackMode.all, seed=self.seed,
                              max_tokens=self.max_tokens, fixes=self.fixes)
        if mode is Mode.repair:
            return LoopConfig(max_rounds=self.max_rounds, feedback=self.feedback,
                              seed=self.seed, max_tokens=self.max_tokens, fixes=self.fixes,
                              after_copy=self.after_copy, candidates=self.candidates)
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
            if self.candidates != 1:
                parts += ["--candidates", str(self.candidates)]
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
