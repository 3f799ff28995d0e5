"""The result schema shared by `solve`, `bench` and `fix`, and the JSONL event log."""

from __future__ import annotations

import hashlib
import json
import re
import time
from enum import Enum
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, field_validator

from agent.loop.stop import StopReason

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_NAME_CAP = 80
TRAJECTORY = "trajectory.jsonl"  # a solve or fix run folder's event log


def file_name(raw: str) -> str:
    """A task id as one safe, unique file or folder name (for trajectories, run folders).

    Ids made only of letters, digits, `-` and `_` (up to 80) are used as they are. Any
    other id (`x/../../y`, `x?y`, a 300-character id) becomes its slug plus `.` and a hash
    of the whole id: the slug alone would send `x/y` and `x?y` to one file, and plain ids
    never contain `.`, so no plain id can equal a hashed one.
    """
    if _PLAIN_NAME.fullmatch(raw):
        return raw
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:_NAME_CAP].strip("_") or "task"
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slug}.{digest}"


class FeedbackMode(str, Enum):
    visible = "visible"  # the model sees compiler output and visible tests only
    all = "all"  # hidden test failures are fed back too
    compile = "compile"  # compiler and vet only


class TokenUsage(BaseModel):
    prompt: int = 0
    cached: int = 0
    completion: int = 0

    def add(self, prompt: int, cached: int, completion: int) -> None:
        self.prompt += prompt
        self.cached += cached
        self.completion += completion


class RoundRecord(BaseModel):
    round: int
    temperature: float
    format_error: bool = False
    raw_passed: bool = False  # the answer as extracted, before deterministic fixes
    passed: bool = False  # the verdict: every test, hidden included
    feedback_passed: bool = False  # what the feedback run (the mode's suite) said
    failure: str | None = None  # kind of the first problem, if any
    fixes: list[str] = Field(default_factory=list)
    dropped: list[str] = Field(default_factory=list)
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    drafted_tokens: int = 0  # speculative decoding: tokens guessed ahead, and confirmed
    accepted_tokens: int = 0
    model_seconds: float = 0.0
    check_seconds: float = 0.0
    summary: str = ""
    candidates: int = 1  # answers generated this round (--candidates)…
    distinct: int = 1  # …how many differed after extraction (each checked once)…
    chosen: int = 0  # …and the index of the one kept
    # one-token (repair runs only): the change kept, and the seconds its search took; a
    # single shot read off round 1 is judged without it.
    one_token: str | None = None
    one_token_seconds: float = 0.0


class RunResult(BaseModel):
    task: str
    solved: bool
    rounds: int
    solved_at_round: int | None = None
    feedback: FeedbackMode
    model: str
    backend: str
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    seconds: float = 0.0
    stop_reason: StopReason | None = None
    first_failure: str | None = None  # kind of the first round's first problem
    raw_solved_round1: bool = False  # round 1 passed with no deterministic fix
    temperature: float = 0.0
    seed: int = 0
    rounds_detail: list[RoundRecord] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    error: str | None = None  # the model or toolchain failed for good

    @field_validator("stop_reason", mode="before")
    @classmethod
    def _no_reason(cls, v: Any) -> Any:
        return v or None  # results written before the enum held "" for "still running"

    def public(self) -> dict[str, Any]:
        """The `--json` object (without the per-round detail and files)."""
        return self.model_dump(mode="json", exclude={"rounds_detail", "files"})


class Trajectory:
    """Append-only JSONL of what happened, flushed per event so a crash loses nothing."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the object
        self.events: list[dict[str, Any]] = []
        self._start = time.monotonic()

    def event(self, kind: str, **data: Any) -> dict[str, Any]:
        ev = {"event": kind, "t": round(time.monotonic() - self._start, 3), **data}
        self.events.append(ev)
        if self._fh is not None:
            self._fh.write(json.dumps(ev, default=_jsonable) + "\n")
            self._fh.flush()
        return ev

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path | set | frozenset):
        return str(obj) if isinstance(obj, Path) else sorted(obj)
    return str(obj)
