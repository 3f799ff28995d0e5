"""What a run's records add up to: pass rates, solved-by-round, pass@k, budget curves."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from math import comb

from pydantic import BaseModel, Field

from agent.bench.config import (
    AttemptKey,
    BenchConfig,
    Mode,
)
from agent.bench.results import AttemptRecord
from agent.loop.trajectory import (
    RunResult,
)

try:  # POSIX only; the project targets Linux and macOS
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]



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
