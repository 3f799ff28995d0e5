"""The results log: one fsynced JSON line per attempt, read back tolerating a torn tail."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, model_validator

from agent.bench.config import (
    AttemptKey,
    BenchError,
    Mode,
)
from agent.loop.stop import StopReason
from agent.loop.trajectory import (
    FeedbackMode,
    RunResult,
    TokenUsage,
)

try:  # POSIX only; the project targets Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]



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

def single_from_repair(rec: AttemptRecord) -> AttemptRecord:
    """The single-shot attempt contained in a greedy repair attempt: its first round."""
    r = rec.result
    first = r.rounds_detail[0] if r.rounds_detail else None
    # A change one-token made is the loop's, not the single shot's.
    solved = bool(first and first.passed and first.one_token is None)
    tokens = TokenUsage(prompt=first.prompt_tokens, cached=first.cached_tokens,
                        completion=first.completion_tokens) if first else TokenUsage()
    result = r.model_copy(deep=True, update={
        "solved": solved,
        "rounds": 1 if first else 0,
        "solved_at_round": 1 if solved else None,
        "feedback": FeedbackMode.all,
        "tokens": tokens,
        "seconds": (first.model_seconds + first.check_seconds - first.one_token_seconds
                    ) if first else 0.0,
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
