"""Verified training data from runs: chat samples whose code passes the task's hidden tests.

`guild-agent export RUN_DIR… --format mlx-chat --out DATA/` reads solve and bench runs and
writes `train.jsonl` / `valid.jsonl` in mlx-lm's chat format (one `{"messages": [...]}` per
line), ready for `mlx_lm.lora --data DATA/`.

A run saying "solved" is not trusted: every sample's final code is checked again with the
real harness against the task as it is now, and only code that passes every test (hidden
included) is written. The final code is the passing round's answer after the same
deterministic fixes the loop applied, redone here from the answer (the trajectory keeps
the answer, not the fixed files). Samples are deduplicated, and tasks (never samples) are
split between train and valid, so no task's answer leaks into validation.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent.atomic import write_text_atomic
from agent.golang.fixes import FIX_NAMES, apply_fixes
from agent.runs.index import kind_of, read_attempt, read_events
from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskError, TaskSpec, load_task
from agent.loop.trajectory import TRAJECTORY
from tools.diagnostics import Kind

FORMATS = ("mlx-chat",)
TRAIN, VALID, MANIFEST = "train.jsonl", "valid.jsonl", "export.json"


class ExportError(ValueError):
    """Bad input (no such run, an output folder holding other data); one line, exit 2."""


class Sample(BaseModel):
    task: str
    source: str  # the trajectory it came from
    messages: list[dict[str, str]]

    def key(self) -> str:
        blob = json.dumps(self.messages, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "replace")).hexdigest()


class Skipped(BaseModel):
    source: str
    reason: str


class Export(BaseModel):
    samples: list[Sample] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    duplicates: int = 0


def fence(files: dict[str, str]) -> str:
    """The answer as the loop asks for it: one ```go block per file."""
    if len(files) == 1:
        return f"```go\n{next(iter(files.values())).rstrip()}\n```"
    return "\n\n".join(f"```go\n// file: {n}\n{c.rstrip()}\n```" for n, c in files.items())


def verified_code(task: TaskSpec, files: dict[str, str], fixes: list[str],
                  harness: TaskHarness) -> dict[str, str] | None:
    """`files` after the deterministic fixes, if that passes every test; else None."""
    enabled = [f for f in fixes if f != "gofmt"]
    result = harness.check(files)
    for _ in range(3):
        if result.passed or not enabled or not any(
                d.kind is Kind.compile for d in result.diagnostics):
            break
        fixed, applied = apply_fixes(files, result.diagnostics, enabled, spec=task.prompt)
        if not applied or fixed == files:
            break
        files = fixed
        result = harness.check(files)
    return files if result.passed else None


def _messages(events: list[dict[str, Any]], rnd: int) -> list[dict[str, str]] | None:
    # The last request of the round is the one its answer came from: a candidate asked
    # afresh (switch-on-copy) carries its own request, written only when it was chosen.
    for ev in reversed(events):
        if ev.get("event") == "request" and ev.get("round") == rnd:
            msgs = ev.get("messages")
            if isinstance(msgs, list) and all(
                    isinstance(m, dict) and isinstance(m.get("role"), str)
                    and isinstance(m.get("content"), str) for m in msgs):
                return [{"role": m["role"], "content": m["content"]} for m in msgs]
    return None


def samples_of(traj: Path, task: TaskSpec, fixes: list[str], *, with_repairs: bool
               ) -> tuple[list[Sample], str | None]:
    """The samples one solved trajectory gives, or why it gives none."""
    events, _ = read_events(traj)
    view = read_attempt(traj)
    passing = next((r for r in view.rounds if r.passed and r.files), None)
    if passing is None:
        return [], "no round passed"
    first = _messages(events, 1)
    if not first or len(first) < 2:
        return [], "the task prompt is not in the trajectory"
    with TaskHarness(task) as harness:
        code = verified_code(task, passing.files, fixes, harness)
    if code is None:
        return [], "the final code does not pass the task's tests now"
    answer = {n: c for n, c in code.items() if n not in task.support_files}
    done = {"role": "assistant", "content": fence(answer)}
    # The prompt that opened the conversation → the passing code.
    out = [Sample(task=task.id, source=str(traj), messages=[*first[:2], done])]
    if with_repairs and passing.round > 1:
        last = _messages(events, passing.round)
        if last and len(last) > 2:  # a repair turn (a restart is just the task again)
            out.append(Sample(task=task.id, source=str(traj), messages=[*last, done]))
    return out, None


TaskLoader = Callable[[str], TaskSpec | None]


def _bench_sources(run: Path, suite_override: Path | None
                   ) -> tuple[list[tuple[Path, str, list[str]]], TaskLoader]:
    from agent.bench.config import BenchError
    from agent.bench.rundir import load_run

    try:
        loaded = load_run(run, suite_override)
    except BenchError as exc:
        raise ExportError(str(exc)) from None
    config = loaded.config
    h = config.config_hash()
    out = []
    for rec in loaded.records:
        if rec.config != h or rec.outcome != "done" or not rec.result.solved:
            continue
        if rec.mode.value == "single" and config.derives_single:
            continue  # the same generation as repair's round 1, exported from there
        out.append((loaded.trajectory(rec.task, rec.mode.value, rec.sample), rec.task,
                    list(config.fixes)))
    return out, loaded.tasks.get


def _solve_sources(run: Path) -> tuple[list[tuple[Path, str, list[str]]], TaskLoader]:
    try:
        info = json.loads((run / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], lambda _: None
    if not isinstance(info, dict) or not info.get("solved"):
        return [], lambda _: None
    task_file = info.get("task_file")
    if not isinstance(task_file, str):
        raise ExportError(f"{run}: result.json does not name its task file (a run from an "
                          "older version); solve it again to export it")
    try:
        task = load_task(task_file)
    except TaskError as exc:
        raise ExportError(f"{run}: {exc}") from None
    # The loop ran with every fix but those switched off; redoing one more is harmless:
    # the code must still pass the tests to be written.
    return ([(run / TRAJECTORY, task.id, list(FIX_NAMES))],
            lambda tid: task if tid == task.id else None)


def collect(runs: list[Path], *, with_repairs: bool = False, suite: Path | None = None,
            on_attempt: Callable[[str], None] | None = None) -> Export:
    """Every verified sample of the given run folders (solve or bench)."""
    result = Export()
    seen: set[str] = set()
    for run in runs:
        kind = kind_of(run) if run.is_dir() else None
        if kind is None:
            raise ExportError(f"{run} is not a run folder (no run.json or trajectory.jsonl)")
        if kind == "fix":
            raise ExportError(f"{run} is a fix run: it has no task with hidden tests to "
                              "verify against")
        sources, load = (_bench_sources(run, suite) if kind == "bench"
                         else _solve_sources(run))
        for traj, task_id, fixes in sources:
            if on_attempt:
                on_attempt(task_id)
            task = load(task_id)
            if task is None or not traj.is_file():
                result.skipped.append(Skipped(source=str(traj), reason="no trajectory"))
                continue
            got, why = samples_of(traj, task, fixes, with_repairs=with_repairs)
            if why:
                result.skipped.append(Skipped(source=str(traj), reason=why))
            for s in got:
                k = s.key()
                if k in seen:
                    result.duplicates += 1
                    continue
                seen.add(k)
                result.samples.append(s)
    return result


def split_by_task(samples: list[Sample], valid_fraction: float
                  ) -> tuple[list[Sample], list[Sample]]:
    """Whole tasks to valid (at least one when there are two or more tasks), by a hash of
    their id: the same tasks land in valid on every export."""
    tasks = sorted({s.task for s in samples},
                   key=lambda t: hashlib.sha256(t.encode("utf-8", "replace")).hexdigest())
    n = 0 if len(tasks) < 2 else min(len(tasks) - 1,
                                     max(1, math.ceil(len(tasks) * valid_fraction)))
    valid = set(tasks[:n])
    return ([s for s in samples if s.task not in valid], [s for s in samples if s.task in valid])


def write_mlx_chat(export: Export, out: Path, *, valid_fraction: float = 0.1,
                   force: bool = False, sources: list[Path] | None = None) -> dict[str, int]:
    """train.jsonl, valid.jsonl and export.json (what went where, and what was skipped)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder")
    if out.is_dir() and not force:
        there = [n for n in (TRAIN, VALID) if (out / n).exists()]
        if there:
            raise ExportError(f"--out {out} already holds {there[0]}; pass --force to "
                              "replace it, or choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    train, valid = split_by_task(export.samples, valid_fraction)

    def lines(samples: list[Sample]) -> str:
        return "".join(json.dumps({"messages": s.messages}, ensure_ascii=False) + "\n"
                       for s in samples)

    write_text_atomic(out / TRAIN, lines(train))
    write_text_atomic(out / VALID, lines(valid))
    manifest = {
        "format": "mlx-chat", "sources": [str(p) for p in sources or []],
        "train": len(train), "valid": len(valid), "duplicates": export.duplicates,
        "train_tasks": sorted({s.task for s in train}),
        "valid_tasks": sorted({s.task for s in valid}),
        "skipped": [s.model_dump() for s in export.skipped],
    }
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return {"train": len(train), "valid": len(valid), "skipped": len(export.skipped),
            "duplicates": export.duplicates}
