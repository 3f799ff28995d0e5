"""Runs one can look back at: where they live, the index of them, and their rounds.

Every `solve`, `fix` and `bench` run is a folder. Without `--out` it goes under the data
folder (`$GUILD_AGENT_DATA`, else `$XDG_DATA_HOME/guild-agent` on Linux,
`~/Library/Application Support/guild-agent` on macOS); with `--out` wherever asked. Either
way one line is appended to the data folder's `runs.jsonl`, so `guild-agent runs` lists
them all from one place. A folder moved or deleted since shows as missing, nothing more.

A run's rounds are read back from its trajectory (the loop's JSONL event log), tolerating
torn or corrupt lines: a report of a killed run shows what was written.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tools.paths import data_dir
from agent.loop.trajectory import TRAJECTORY

try:  # POSIX only; the project targets Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

INDEX = "runs.jsonl"
Kind = Literal["bench", "solve", "fix"]

# Big enough for any real answer, small enough that a runaway one cannot bloat a page.
TEXT_CAP = 64_000


class RunsError(ValueError):
    """A run that cannot be found or read; one line (exit code 2)."""


# -- the index ----------------------------------------------------------------------------

class RunEntry(BaseModel):
    id: str
    kind: Kind
    dir: str
    subject: str = ""  # the task id, the suite, or the files fixed
    model: str = ""
    created: str = ""


def run_id(path: Path) -> str:
    return hashlib.sha256(str(path.resolve()).encode("utf-8", "replace")).hexdigest()[:8]


def record_run(out: Path, *, kind: Kind, subject: str, model: str) -> RunEntry | None:
    """Add a run folder to the index. Never fails the run: the index is a convenience, the
    folder is the record (a read-only data folder just means the run is not listed)."""
    entry = RunEntry(id=run_id(out), kind=kind, dir=str(out.resolve()), subject=subject,
                     model=model, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    line = (entry.model_dump_json() + "\n").encode("utf-8", "replace")
    with contextlib.suppress(OSError):
        root = data_dir()
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                     | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # one whole line per writer
            os.write(fd, line)
        finally:
            os.close(fd)
        return entry
    return None


def read_index(root: Path | None = None) -> list[RunEntry]:
    """The indexed runs, oldest first, one per folder; unreadable lines are skipped."""
    path = (root or data_dir()) / INDEX
    try:
        data = path.read_bytes()
    except OSError:
        return []
    by_dir: dict[str, RunEntry] = {}
    for raw in data.splitlines():
        with contextlib.suppress(ValidationError, ValueError):
            e = RunEntry.model_validate_json(raw)
            by_dir.pop(e.dir, None)  # a folder reused by a later run moves to the end
            by_dir[e.dir] = e
    return list(by_dir.values())


def kind_of(path: Path) -> Kind | None:
    """What kind of run a folder holds, from its files alone (None: not a run)."""
    if (path / "run.json").is_file() and (path / "results.jsonl").exists():
        return "bench"
    if (path / "run.json").is_file():
        return "bench"  # started, nothing recorded yet
    if (path / TRAJECTORY).is_file():
        info = _json(path / "result.json") or {}
        return "fix" if info.get("kind") == "fix" or "fix-runs" in path.parts else "solve"
    return None


def resolve(ref: str, root: Path | None = None) -> RunEntry:
    """A run by index id (or a unique prefix), folder name, or path."""
    entries = read_index(root)
    p = Path(ref).expanduser()
    if p.is_dir():
        kind = kind_of(p)
        if kind is None:
            raise RunsError(f"{ref} holds no run (no run.json or trajectory.jsonl)")
        known = {e.dir: e for e in entries}
        return known.get(str(p.resolve())) or RunEntry(id=run_id(p), kind=kind,
                                                       dir=str(p.resolve()))
    hits = [e for e in entries if e.id.startswith(ref) or Path(e.dir).name == ref]
    if len({e.dir for e in hits}) == 1:
        return hits[-1]
    if hits:
        raise RunsError(f"{ref!r} matches {len(hits)} runs; give more of the id")
    raise RunsError(f"no run {ref!r}: not a folder, nor an id from `guild-agent runs`")


class RunStatus(BaseModel):
    entry: RunEntry
    exists: bool
    outcome: str  # one short phrase: "solved r2", "repair 2/3 · single 1/3", "missing"
    solved: bool | None = None


def status(entry: RunEntry) -> RunStatus:
    path = Path(entry.dir)
    if not path.is_dir():
        return RunStatus(entry=entry, exists=False, outcome="missing")
    if entry.kind == "bench":
        s = _json(path / "summary.json")
        if not isinstance(s, dict) or not isinstance(s.get("modes"), dict):
            return RunStatus(entry=entry, exists=True, outcome="unfinished")
        parts = []
        for name, ms in s["modes"].items():
            with contextlib.suppress(KeyError, TypeError):
                parts.append(f"{name} {int(ms['solved'])}/{int(ms['tasks'])}")
        done = "" if s.get("complete", True) else " (incomplete)"
        return RunStatus(entry=entry, exists=True, outcome=" · ".join(parts) + done)
    res = _json(path / "result.json")
    if not isinstance(res, dict):
        res = last_result(path / TRAJECTORY)
    if not isinstance(res, dict) or "solved" not in res:
        return RunStatus(entry=entry, exists=True, outcome="unfinished")
    solved = bool(res.get("solved"))
    at = res.get("solved_at_round")
    return RunStatus(entry=entry, exists=True, solved=solved,
                     outcome=f"solved r{at}" if solved else "not solved")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None


def last_result(traj: Path) -> dict[str, Any] | None:
    events, _ = read_events(traj)
    for ev in reversed(events):
        if ev.get("event") == "result" and isinstance(ev.get("result"), dict):
            return ev["result"]
    return None


# -- rounds -------------------------------------------------------------------------------

def read_events(path: Path) -> tuple[list[dict[str, Any]], int]:
    """A trajectory's events and how many lines could not be read (torn, corrupt)."""
    try:
        data = path.read_bytes()
    except OSError:
        return [], 0
    events, bad = [], 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            ev = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            bad += 1
            continue
        if isinstance(ev, dict) and isinstance(ev.get("event"), str):
            events.append(ev)
        else:
            bad += 1
    return events, bad


def cap(text: Any, limit: int = TEXT_CAP) -> str:
    s = text if isinstance(text, str) else ("" if text is None else str(text))
    return s if len(s) <= limit else s[:limit] + f"\n… ({len(s) - limit} more characters)"


class CheckView(BaseModel):
    suite: str = ""
    stage: str = ""
    passed: bool = False
    diagnostics: list[dict[str, Any]] = Field(default_factory=list)
    tests: list[dict[str, Any]] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def tests_line(self) -> str:
        top = [t for t in self.tests if "/" not in str(t.get("name", ""))]
        ok = sum(t.get("outcome") == "pass" for t in top)
        return f"{ok}/{len(top)} tests pass" if top else "no tests ran"


class RoundView(BaseModel):
    round: int
    prompt: str = ""  # the last message the model was sent
    response: str = ""
    files: dict[str, str] = Field(default_factory=dict)  # as extracted (and gofmt'd)
    dropped: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    fixes: list[str] = Field(default_factory=list)
    checks: list[CheckView] = Field(default_factory=list)
    format_error: str | None = None
    feedback: str | None = None  # what the model was told after this round
    events: list[str] = Field(default_factory=list)  # stuck, copies, model error
    completion_tokens: int = 0
    prompt_tokens: int = 0
    model_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and self.checks[-1].passed

    @property
    def check_seconds(self) -> float:
        return sum(c.seconds for c in self.checks)

    @property
    def verdict(self) -> str:
        if self.format_error is not None:
            return "format error"
        if not self.checks:
            return "no check"
        return "pass" if self.passed else "fail"


class AttemptView(BaseModel):
    task: str = ""
    label: str = ""  # "repair", "sample 2", "solve"
    path: str = ""
    rounds: list[RoundView] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    bad_lines: int = 0
    error: str | None = None  # why it ended without a result (attempt broke, killed)


def _int(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


def _float(x: Any) -> float:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else 0.0


def _strs(x: Any) -> list[str]:
    return [cap(v, 2000) for v in x] if isinstance(x, list) else []


def read_attempt(path: Path, *, task: str = "", label: str = "") -> AttemptView:
    """The rounds of one trajectory, as far as its events go (hostile content is kept as
    text: rendering escapes it)."""
    events, bad = read_events(path)
    view = AttemptView(task=task, label=label, path=str(path), bad_lines=bad)
    rounds: dict[int, RoundView] = {}

    def at(ev: dict[str, Any]) -> RoundView:
        n = max(1, _int(ev.get("round")))
        return rounds.setdefault(n, RoundView(round=n))

    for ev in events:
        kind = ev["event"]
        if kind == "start" and not view.task:
            view.task = cap(ev.get("task"), 300)
        elif kind == "request":
            msgs = ev.get("messages")
            last = msgs[-1] if isinstance(msgs, list) and msgs else {}
            at(ev).prompt = cap(last.get("content") if isinstance(last, dict) else "")
        elif kind == "response":
            r = at(ev)
            r.response = cap(ev.get("text"))
            t = ev.get("tokens") if isinstance(ev.get("tokens"), dict) else {}
            r.completion_tokens += _int(t.get("completion"))
            r.prompt_tokens += _int(t.get("prompt"))
            r.model_seconds += _float(ev.get("seconds"))
        elif kind == "candidates":
            # Only the chosen candidate's response was written: the round paid for all.
            cands = [c for c in ev.get("candidates") or [] if isinstance(c, dict)]
            if cands:
                r = at(ev)
                r.completion_tokens = sum(_int(c.get("tokens")) for c in cands)
                r.prompt_tokens = sum(_int(c.get("prompt_tokens")) for c in cands)
                r.model_seconds = sum(_float(c.get("seconds")) for c in cands)
        elif kind == "extract":
            r = at(ev)
            files = ev.get("files")
            if isinstance(files, dict):
                r.files = {cap(k, 300): cap(v) for k, v in files.items()}
            r.dropped, r.notes = _strs(ev.get("dropped")), _strs(ev.get("notes"))
            r.fixes += _strs(ev.get("fixes"))
        elif kind == "fix":
            fixes = ev.get("fixes") if isinstance(ev.get("fixes"), list) else []
            at(ev).fixes += [cap(f"{f.get('name')} {f.get('file')}: {f.get('detail')}", 2000)
                             for f in fixes if isinstance(f, dict)]
        elif kind == "check":
            res = ev.get("result") if isinstance(ev.get("result"), dict) else {}
            diags = res.get("diagnostics") if isinstance(res.get("diagnostics"), list) else []
            tests = res.get("tests") if isinstance(res.get("tests"), list) else []
            at(ev).checks.append(CheckView(
                suite=cap(ev.get("suite"), 40), stage=cap(ev.get("stage"), 40),
                passed=res.get("passed") is True,
                diagnostics=[{k: cap(d.get(k), 8000) for k in
                              ("kind", "file", "line", "column", "message")}
                             for d in diags[:200] if isinstance(d, dict)],
                tests=[{"name": cap(t.get("name"), 300), "outcome": cap(t.get("outcome"), 20)}
                       for t in tests[:500] if isinstance(t, dict)],
                seconds=_float(res.get("seconds"))))
        elif kind == "format_error":
            at(ev).format_error = cap(ev.get("message"), 4000)
        elif kind == "feedback":
            at(ev).feedback = cap(ev.get("text"))
        elif kind in ("stuck", "copies"):
            at(ev).events.append(f"{kind}: {cap(ev.get('action') or ev.get('note'), 300)}")
        elif kind == "error":
            at(ev).events.append(f"model error: {cap(ev.get('message'), 2000)}")
        elif kind == "attempt_error":
            view.error = cap(ev.get("message"), 2000)
        elif kind == "result" and isinstance(ev.get("result"), dict):
            view.result = ev["result"]
        elif kind in ("interrupted", "terminated"):
            view.error = kind
    view.rounds = [rounds[k] for k in sorted(rounds)]
    return view


def diff_files(old: dict[str, str], new: dict[str, str]) -> str:
    """A unified diff of one round's files against the previous round's."""
    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name, ""), new.get(name, "")
        if a == b:
            continue
        out += difflib.unified_diff(a.splitlines(), b.splitlines(),
                                    fromfile=f"a/{name}" if name in old else "/dev/null",
                                    tofile=f"b/{name}" if name in new else "/dev/null",
                                    lineterm="")
    return "\n".join(out)


def round_diffs(view: AttemptView) -> list[str]:
    """Each round's code against the previous round that had code (round 1: all added)."""
    prev: dict[str, str] = {}
    diffs = []
    for r in view.rounds:
        if r.files:
            diffs.append(diff_files(prev, r.files) or "(same code as the round before)")
            prev = r.files
        else:
            diffs.append("")
    return diffs
