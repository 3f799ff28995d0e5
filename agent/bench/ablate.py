"""What each deterministic fix buys single shot, measured on a run's recorded answers.

Round 1 of a bench run is greedy, and the fixes act after the answer is written: the
answer does not depend on which fixes are on. So the recorded round-1 answers, checked
again with one fix switched off, measure that fix exactly, with no model call and only
the toolchain's time. The repair rounds' levers change what the model is asked next;
they need runs of their own (`bench run --no-fix NAME`). One of them is measured here
too, on request: `one-token` searches a round-1 answer that builds and fails, as a
repair run's round 1 does, judged by the tests that run sees.

A fix that did nothing on a task (neither kept nor tried and rejected) leaves that task's
round as it was when switched off, so only the tasks it touched are checked again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import BaseModel

from agent.bench.config import BenchError, Mode
from agent.bench.rundir import Run
from agent.golang.fixes import FIX_KINDS
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import RoundRecord, Trajectory
from agent.models.replay import ReplayModel
from agent.runs.index import read_events
from agent.tasks.spec import TaskSpec
from tools.diagnostics import Kind

# What acts on a round-1 answer: the fixes proper, and the guard that keeps a fix only
# when the check improves. Every other lever shapes a later request.
ROUND_ONE = (*FIX_KINDS, "never-worse")
ONE_TOKEN = "+one-token"
# The first problem of code that built: it ran its tests.
_REACHED = (Kind.test_failure.value, Kind.panic.value, Kind.timeout.value)


class Row(BaseModel):
    name: str  # "all", "none", or the fix switched off
    solved: list[str]
    # Tasks whose round-1 code builds and reaches its tests: on a tier beyond the model,
    # what the fixes buy is code the repair rounds can work from, not yet a pass.
    built: list[str] = []
    touched: list[str] = []  # tasks the fix acted on (kept or tried), or one-token searched


class Ablation(BaseModel):
    run: str
    model: str | None
    suite: str
    answered: list[str]  # tasks with a recorded round-1 answer
    missing: list[str]  # tasks without one (not run yet, or the attempt broke)
    rows: list[Row]

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def markdown(self) -> str:
        base = set(self.row("all").solved)
        n = len(self.answered)
        lines = [f"Round-1 fixes on the recorded answers of `{self.run}` "
                 f"({self.model or 'model not recorded'}, {self.suite}, {n} task(s))",
                 "", "| round-1 fixes | solved | vs all | builds | acted on | lost | gained |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            got = set(r.solved)
            label = {"all": "all the run had on", "none": "none (as generated)",
                     ONE_TOKEN: "all, + `one-token` as in a repair run's round 1"}.get(
                r.name, f"all, + `{r.name[1:]}` (off in the run)" if r.name.startswith("+")
                else f"without `{r.name}`")
            delta = "" if r.name == "all" else f"{len(got) - len(base):+d}"
            acted = "" if r.name in ("all", "none") else str(len(r.touched))
            if r.name == ONE_TOKEN:
                acted += " searched"
            lines.append(f"| {label} | {len(got)} / {n} | {delta} | {len(r.built)} | "
                         f"{acted} | "
                         f"{', '.join(sorted(base - got))} | {', '.join(sorted(got - base))} |")
        if self.missing:
            lines += ["", f"No round-1 answer recorded for {len(self.missing)} task(s): "
                      + ", ".join(self.missing)]
        return "\n".join(lines) + "\n"


@dataclass
class _Judged:
    solved: bool
    raw: bool
    built: bool
    raw_built: bool
    touched: set[str] = field(default_factory=set)


def recorded_answers(run: Run) -> dict[str, str]:
    """Each task's round-1 answer: the single-shot attempt's, or, when single shot was read
    off greedy repair (one candidate a round), the repair attempt's first answer."""
    modes = [Mode.single.value] + ([Mode.repair.value] if run.config.derives_single else [])
    out: dict[str, str] = {}
    for task in run.config.tasks:
        for mode in modes:
            events, _ = read_events(run.trajectory(task, mode))
            text = next((e["text"] for e in events if e.get("event") == "response"
                         and e.get("round") == 1 and isinstance(e.get("text"), str)), None)
            if text is not None:
                out[task] = text
                break
    return out


def ablate(run: Run, fixes: Iterable[str] | None = None, *, jobs: int = 2,
           one_token: bool = False,
           on_check: Callable[[str], None] | None = None) -> Ablation:
    """The run's recorded round-1 answers judged with every round-1 fix it had on, with
    none, and with each of `fixes` (default: every round-1 fix) in turn switched off if
    the run had it on, or added if it had it off (or the fix is newer than the run); with
    `one_token`, also searched as a repair run's round 1 searches them."""
    on = [f for f in run.config.fixes if f in ROUND_ONE]
    chosen = list(dict.fromkeys(fixes)) if fixes is not None else list(ROUND_ONE)
    unknown = [f for f in chosen if f not in ROUND_ONE]
    if unknown:
        raise BenchError(f"{unknown[0]!r} does not act on a round-1 answer; these do: "
                         + ", ".join(ROUND_ONE))
    answers = recorded_answers(run)
    if not answers:
        raise BenchError(f"{run.path}: no recorded round-1 answer (a single-shot run "
                         "writes them to trajectories/)")
    tasks = [t for t in run.config.tasks if t in answers]
    base_config = run.config.loop_config(Mode.single, 0)

    def judge(task: str, change: str | None) -> _Judged:
        fixes = [f for f in base_config.fixes if f != change]
        if change is not None and change not in on:
            fixes.append(change)
        config = base_config.model_copy(update={"fixes": fixes})
        got = _judge(run.tasks[task], answers[task], config)
        if on_check is not None:
            on_check(task)
        return got

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        full = dict(zip(tasks, pool.map(lambda t: judge(t, None), tasks), strict=True))
        rows = [Row(name="all", solved=[t for t in tasks if full[t].solved],
                    built=[t for t in tasks if full[t].built]),
                Row(name="none", solved=[t for t in tasks if full[t].raw],
                    built=[t for t in tasks if full[t].raw_built])]
        for fix in chosen:
            # Off, a fix can change only the tasks it acted on; added, only the tasks
            # that failed (a passing answer has nothing for a fix to act on).
            redo = ([t for t in tasks if fix in full[t].touched] if fix in on
                    else [t for t in tasks if not full[t].solved])
            again = dict(zip(redo, pool.map(lambda t, f=fix: judge(t, f), redo),
                             strict=True))
            now = {t: again[t] if t in again else full[t] for t in tasks}
            touched = (redo if fix in on else
                       [t for t in redo if fix in again[t].touched])
            rows.append(Row(name=fix if fix in on else f"+{fix}", touched=touched,
                            solved=[t for t in tasks if now[t].solved],
                            built=[t for t in tasks if now[t].built]))
        if one_token:
            repair = run.config.loop_config(Mode.repair, 0).model_copy(update={
                "max_rounds": 2, "candidates": 1,
                "fixes": list(dict.fromkeys([*run.config.fixes, "one-token"]))})
            missed = [t for t in tasks if not full[t].solved]
            searched = dict(zip(missed, pool.map(
                lambda t: _searched(run.tasks[t], answers[t], repair), missed),
                strict=True))
            rows.append(Row(name=ONE_TOKEN, touched=[t for t in missed if searched[t][1]],
                            solved=[t for t in tasks if full[t].solved
                                    or (t in searched and all(searched[t]))],
                            built=rows[0].built))  # it searches only code that builds
            if on_check is not None:
                on_check("")
    return Ablation(run=str(run.path), model=(run.config.provenance or {}).get("model")
                    or run.config.model, suite=run.config.suite, answered=tasks,
                    missing=[t for t in run.config.tasks if t not in answers], rows=rows)


def _round_one(task: TaskSpec, answer: str, config: LoopConfig
               ) -> tuple[RoundRecord | None, Trajectory]:
    """Round 1 of the loop on `task` with `answer` as the model's. A run with rounds left
    gets the same answer again (a copy: nothing new is checked); only round 1 is read."""
    traj = Trajectory()
    result = RepairLoop(ReplayModel([answer] * 8, name="recorded"), config).run(
        problem_from_task(task), traj)
    return (result.rounds_detail[0] if result.rounds_detail else None), traj


def _judge(task: TaskSpec, answer: str, config: LoopConfig) -> _Judged:
    """One round on `answer` as the loop runs it in a single-shot attempt."""
    first, traj = _round_one(task, answer, config)
    touched = {f.split(" ", 1)[0] for f in (first.fixes if first else [])}
    for ev in traj.events:
        if ev.get("event") in ("fix", "fix_rejected"):
            touched |= {f.get("name") for f in ev.get("fixes", []) if isinstance(f, dict)}
            touched.add("never-worse")  # it judged this fix
    raw = next((e["result"] for e in traj.events if e.get("event") == "check"
                and e.get("stage") == "raw"), None) or {}
    kinds = [d.get("kind") for d in raw.get("diagnostics", [])]
    return _Judged(solved=bool(first and first.passed),
                   raw=bool(first and first.raw_passed),
                   built=bool(first and (first.passed or first.failure in _REACHED)),
                   raw_built=bool(raw.get("passed") or (kinds and kinds[0] in _REACHED)),
                   touched=touched)


def _searched(task: TaskSpec, answer: str, config: LoopConfig) -> tuple[bool, bool]:
    """Round 1 of a repair run on `answer`: whether it passed every test, and whether
    one-token searched it."""
    first, traj = _round_one(task, answer, config)
    return bool(first and first.passed), any(
        e.get("event") == "one_token" and e.get("round") == 1 for e in traj.events)
