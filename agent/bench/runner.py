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
import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from agent.atomic import write_text_atomic
from agent.bench.attempt import ModelFailed, SharedEngine, run_one
from agent.bench.config import (
    LOCK,
    RESULTS,
    RUN_FILE,
    SUMMARY,
    AttemptKey,
    BenchConfig,
    BenchError,
    Mode,
    trajectory_file,
)
from agent.bench.executors import LocalExecutor
from agent.bench.report import write_report
from agent.bench.results import AttemptRecord, ResultsLog, read_records, single_from_repair
from agent.bench.stats import (
    Summary,
    summarize,
)
from agent.loop.checker import Checker
from agent.loop.problem import Problem
from agent.models.base import Model
from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskSpec

try:  # POSIX only; the project targets Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

from agent.bench.executors import Executor

ProgressHook = Callable[[AttemptRecord], None]


# A run killed with -9 can hold its lock a moment longer than its own pid: a child forked
# to start a check still has every descriptor until it reaches exec. When the recorded
# holder is gone, `--resume` right after the kill waits that moment out instead of
# calling the folder in use; a live holder is named at once.
LOCK_GRACE_SECONDS = 3.0
_HOLDER_RE = re.compile(r"\(pid (?P<pid>\d+) on (?P<host>[^,]+),")


def _holder_gone(holder: str) -> bool:
    m = _HOLDER_RE.search(holder)
    if m is None or m["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(m["pid"]), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return False


def _flock_within(fd: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


class RunLock:
    """An flock on the run folder's lock file, held while one process writes the folder.

    A second bench (or `bench report`) on the same folder is refused at once, with a line
    naming the holder, instead of both running every attempt. The kernel drops the lock
    when its holder and the children it forked are gone, so a killed run never leaves the
    folder locked (the next run waits a moment for those children).
    """

    def __init__(self, out: Path, what: str) -> None:
        self.path = out / LOCK
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self._fh = os.fdopen(fd, "r+", encoding="utf-8", errors="replace")
        if fcntl is None:  # pragma: no cover
            return
        if not _flock_within(fd, 0.0) and not (
                _holder_gone(self._fh.read(200)) and _flock_within(fd, LOCK_GRACE_SECONDS)):
            self._fh.seek(0)
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
    write_text_atomic(out / SUMMARY, summary.model_dump_json(indent=2) + "\n")
    write_report(out, summary)


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
        return self.out / trajectory_file(key.task, key.mode.value, key.sample)

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
