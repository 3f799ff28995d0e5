"""report.md and the plot of a bench run: views of summary.json, nothing computed anew."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from agent.atomic import write_text_atomic
from agent.bench import BudgetPoint, Mode, ModeSummary, Summary, os_error_line

REPORT = "report.md"
PLOT = "plot.png"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _cell(text: str) -> str:
    # Task ids and error messages come from task files and models: keep them in their cell.
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out + [""]


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def equal_budget_rows(summary: Summary) -> list[list[str]]:
    """Each repair (or single) budget point next to what resampling solved for no more.

    Resampling's point is the largest k whose expected completion tokens do not exceed the
    loop's: "repair beats resampling" is only claimed at equal (or lower) cost.
    """
    rows: list[list[str]] = []
    sample = summary.modes.get(Mode.sample.value)
    for name in (Mode.single.value, Mode.repair.value):
        ms = summary.modes.get(name)
        if ms is None:
            continue
        for p in ms.budget_curve:
            match = _best_within(sample.budget_curve, p.completion_tokens) if sample else None
            rows.append([
                f"{name} ≤{p.step} round(s)" if name == Mode.repair.value else name,
                _num(p.completion_tokens), f"{p.seconds:.1f}", _num(p.solved),
                f"k={match.step}: {_num(match.solved)} ({_num(match.completion_tokens)} tok)"
                if match else "—"])
    return rows


def _best_within(curve: list[BudgetPoint], tokens: float) -> BudgetPoint | None:
    within = [p for p in curve if p.completion_tokens <= tokens + 1e-9]
    return within[-1] if within else None


def _overview(ms: ModeSummary) -> list[str]:
    return [ms.mode.value, str(ms.tasks), str(ms.solved), _pct(ms.pass_rate),
            str(ms.attempts), str(ms.rounds), str(ms.completion_tokens),
            _num(ms.tokens_per_solved) if ms.tokens_per_solved is not None else "—",
            f"{ms.model_seconds + ms.check_seconds:.1f}", f"{ms.seconds:.1f}", str(ms.errors),
            str(ms.broken)]


def render_report(summary: Summary, out: Path | None = None, plot_note: str | None = None
                  ) -> str:
    s = summary
    lines = [f"# Bench: {s.suite}", "",
             f"Model `{s.model}` (backend `{s.backend}`), {s.tasks} task(s), config `{s.config}`"
             + ("" if s.complete else
                f" — **incomplete: {s.attempts_done}/{s.attempts_planned} attempts**") + ".",
             "", "Reproduce:", "", "```sh",
             s.command + (f" --out {out}" if out else ""), "```", "",
             "## Modes", ""]
    lines += _table(["mode", "tasks", "solved", "pass rate", "attempts", "model calls",
                     "completion tokens", "tokens/solved", "compute s", "wall s", "errors",
                     "broken"],
                    [_overview(ms) for ms in s.modes.values()])
    lines += ["`sample` counts a task solved when any of its samples passes (pass@n). "
              "Compute seconds are model plus toolchain time; wall seconds also include "
              "waiting for the shared model. `broken` attempts raised an error in the "
              "harness: recorded as errors, never as passes (listed below).", ""]
    single = s.modes.get(Mode.single.value)
    if single is not None and single.raw_solved is not None:
        lines += ["## Single shot", ""]
        lines += _table(["as generated", "after deterministic fixes"],
                        [[f"{single.raw_solved}/{single.tasks}",
                          f"{single.solved}/{single.tasks}"]])
    repair = s.modes.get(Mode.repair.value)
    if repair is not None and repair.solved_by_round:
        lines += ["## Repair: solved by round", ""]
        lines += _table(["round", "solved", "pass rate", "completion tokens to here"],
                        [[str(p.step), str(repair.solved_by_round.get(p.step, 0)),
                          _pct(repair.solved_by_round.get(p.step, 0) / repair.tasks)
                          if repair.tasks else "—", _num(p.completion_tokens)]
                         for p in repair.budget_curve])
    sample = s.modes.get(Mode.sample.value)
    if sample is not None and sample.pass_at_k:
        lines += ["## Sampling: pass@k (unbiased estimator)", ""]
        lines += _table(["k", "pass@k", "expected completion tokens"],
                        [[str(k), _pct(v), _num(sample.budget_curve[k - 1].completion_tokens)
                          if k - 1 < len(sample.budget_curve) else "—"]
                         for k, v in sample.pass_at_k.items()])
    budget = equal_budget_rows(s)
    if budget:
        lines += ["## Equal budget", "",
                  "Solved against completion tokens spent; the last column is resampling's "
                  "best result costing no more tokens (— when even one sample costs more).",
                  ""]
        lines += _table(["budget", "completion tokens", "compute s", "solved",
                         "sampling at ≤ same tokens"], budget)
    kinds = sorted({k for ms in s.modes.values() for k in ms.first_failures})
    if kinds:
        lines += ["## First failure of unsolved attempts", ""]
        lines += _table(["mode", *kinds], [[ms.mode.value] + [str(ms.first_failures.get(k, 0))
                                                              for k in kinds]
                                           for ms in s.modes.values()])
    reasons = sorted({k for ms in s.modes.values() for k in ms.stop_reasons})
    if reasons and Mode.repair.value in s.modes:
        lines += ["## Why attempts stopped", ""]
        lines += _table(["mode", *reasons], [[ms.mode.value] + [str(ms.stop_reasons.get(k, 0))
                                                                for k in reasons]
                                             for ms in s.modes.values()])
    if s.broken:
        lines += ["## Broken attempts", "",
                  "These attempts stopped on an error, not on a verdict; the rest of the run "
                  "went on. Each is counted unsolved.", ""]
        lines += _table(["task", "mode", "sample", "error"],
                        [[b.task, b.mode.value, str(b.sample), b.message] for b in s.broken])
    names = list(s.modes)
    lines += ["## Per task", "",
              "Each cell: outcome · rounds · first failure · completion tokens · seconds.", ""]
    broke: dict[tuple[str, str], int] = {}
    for b in s.broken:
        broke[(b.task, b.mode.value)] = broke.get((b.task, b.mode.value), 0) + 1
    rows = []
    for row in s.per_task:
        cells = [row.task]
        for name in names:
            o = row.modes.get(name)
            if o is None:
                cells.append("(not run)")
                continue
            if name == Mode.sample.value:
                per_task = s.modes[name].attempts // max(1, s.modes[name].tasks)
                verdict = f"{o.samples_solved}/{per_task}"
            elif name == Mode.repair.value:
                verdict = f"✓ r{o.solved_at_round}" if o.solved else "✗"
            else:
                verdict = ("✓" if o.raw_solved else "✓ (fixed)") if o.solved else "✗"
            if n := broke.get((row.task, name), 0):
                verdict += f" ⚠ {n} broke"
            cells.append(f"{verdict} · {o.rounds} · {o.first_failure or '—'} · "
                         f"{o.completion_tokens} · {o.seconds:.1f}")
        rows.append(cells)
    lines += _table(["task", *names], rows)
    if plot_note:
        lines += [plot_note, ""]
    return "\n".join(lines)


def write_plot(path: Path, summary: Summary) -> str | None:
    """Solved vs rounds and solved vs completion tokens; returns a note when skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: never needs a display
        import matplotlib.pyplot as plt
    except ImportError:
        return "(plot skipped: matplotlib is not installed; `pip install guild-agent[plot]`)"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    styles = {Mode.single.value: "o", Mode.repair.value: "s-", Mode.sample.value: "^--"}
    for name, ms in summary.modes.items():
        if not ms.budget_curve:
            continue
        steps = [p.step for p in ms.budget_curve]
        solved = [p.solved for p in ms.budget_curve]
        label = {"repair": "repair (rounds)", "sample": "sample (k samples, expected)",
                 "single": "single"}[name]
        ax1.plot(steps, solved, styles[name], label=label)
        ax2.plot([p.completion_tokens for p in ms.budget_curve], solved, styles[name],
                 label=name)
    from matplotlib.ticker import MaxNLocator

    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds and samples are counts
    ax1.set_xlabel("rounds (repair) / samples (sample)")
    ax1.set_ylabel(f"tasks solved (of {summary.tasks})")
    ax1.set_title("solved vs rounds")
    ax2.set_xlabel("completion tokens spent")
    ax2.set_title("solved vs completion tokens")
    for ax in (ax1, ax2):
        ax.set_ylim(0, max(1, summary.tasks) * 1.05)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(f"{summary.suite} · {summary.model}")
    fig.tight_layout()
    # Into a temp file, then renamed: a full disk never leaves half a plot.png behind.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, dpi=110, format="png")
        os.chmod(tmp, 0o644)  # as savefig would create it; mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
    return None


def write_report(out: Path, summary: Summary) -> None:
    """plot.png, report.md and report.html. A plot that cannot be written (disk full) is
    noted in the report, which is still written if it can be; the OSError is raised
    afterwards."""
    from agent.report_html import HTML, write_bench_html

    failed: OSError | None = None
    try:
        note = write_plot(out / PLOT, summary)
    except OSError as exc:
        failed = exc
        note = f"(plot not written: {os_error_line(exc)})"
    text = render_report(summary, out, (note if note else f"![solved vs cost]({PLOT})")
                         + f"\n\nEvery round of every task: [{HTML}]({HTML}).")
    write_text_atomic(out / REPORT, text)
    write_bench_html(out, summary)
    if failed is not None:
        raise failed
