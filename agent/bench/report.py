"""report.md and the plot of a bench run: views of summary.json, nothing computed anew."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.atomic import write_text_atomic
from agent.bench.config import RUN_FILE, SUMMARY, BenchError, Mode, os_error_line
from agent.bench.report_html import (
    COLORS,
    HTML,
    _esc,
    _ticks,
    done_tasks,
    incomplete_note,
    num,
    overview,
    pct,
    plot_series,
    suite_name,
    write_bench_html,
)
from agent.bench.stats import BudgetPoint, Summary

REPORT = "report.md"
PLOT = "plot.png"


def _cell(text: str) -> str:
    # Task ids and error messages come from task files and models: keep them in their cell.
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out + [""]


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
                num(p.completion_tokens), f"{p.seconds:.1f}", num(p.solved),
                f"k={match.step}: {num(match.solved)} ({num(match.completion_tokens)} tok)"
                if match else "—"])
    return rows


def _best_within(curve: list[BudgetPoint], tokens: float) -> BudgetPoint | None:
    within = [p for p in curve if p.completion_tokens <= tokens + 1e-9]
    return within[-1] if within else None


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
                    [overview(ms) for ms in s.modes.values()])
    lines += ["`sample` counts a task solved when any of its samples passes (pass@n). "
              "Compute seconds are model plus toolchain time; wall seconds also include "
              "waiting for the shared model. `broken` attempts raised an error in the "
              "harness: recorded as errors, never as passes (listed below).", ""]
    drafted = {m: ms for m, ms in s.modes.items() if ms.drafted_tokens}
    if drafted:
        lines += ["## Speculative decoding", ""]
        lines += _table(["mode", "drafted tokens", "accepted", "acceptance"],
                        [[m, str(ms.drafted_tokens), str(ms.accepted_tokens),
                          f"{100 * ms.accepted_tokens / ms.drafted_tokens:.0f}%"]
                         for m, ms in drafted.items()])
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
                          pct(repair.solved_by_round.get(p.step, 0) / repair.tasks)
                          if repair.tasks else "—", num(p.completion_tokens)]
                         for p in repair.budget_curve])
    sample = s.modes.get(Mode.sample.value)
    if sample is not None and sample.pass_at_k:
        lines += ["## Sampling: pass@k (unbiased estimator)", ""]
        lines += _table(["k", "pass@k", "expected completion tokens"],
                        [[str(k), pct(v), num(sample.budget_curve[k - 1].completion_tokens)
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
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import offset_copy


    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    shapes = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D"}
    by_step, by_tokens = plot_series(summary)
    for ax, series in ((ax1, by_step), (ax2, by_tokens)):
        # Later series on top: the hollow single-shot markers stay visible over repair's
        # round-1 point (the same generation), nudged apart as in report.html.
        for z, s in enumerate(series):
            xs = [x for x, _ in s.points]
            ys = [y for _, y in s.points]
            shift = ax.transData
            if s.dx:
                ax.plot(xs, ys, linestyle="none", marker="none")  # a shifted line does not
                shift = offset_copy(shift, fig=fig, x=s.dx * 0.8, units="points")  # scale
            ax.plot(xs, ys, transform=shift, marker=shapes[s.marker], linestyle=(
                "--" if s.dashed else "-") if s.line else "none", color=s.color,
                markerfacecolor="white" if s.hollow else s.color,
                markersize=s.size * 1.6, markeredgewidth=1.8 if s.hollow else 1,
                label=s.label, zorder=3 + z)
    ran = done_tasks(summary)
    ylabel = (f"tasks solved (of {summary.tasks})" if summary.complete else
              f"tasks solved (of {ran} finished, {summary.tasks} planned)")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds and samples are counts
    ax1.set_xlabel("rounds (repair) / samples (sample)")
    ax1.set_ylabel(ylabel)
    ax1.set_title("solved vs rounds")
    ax2.set_xlabel("completion tokens spent")
    ax2.set_title("solved vs completion tokens")
    for ax in (ax1, ax2):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # tasks are whole
        ax.set_ylim(0, max(1, summary.tasks) * 1.05)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        if not summary.complete:
            ax.axhline(ran, color="#b26b00", linestyle=":", linewidth=1.2)
    note = incomplete_note(summary)
    fig.suptitle(f"{suite_name(summary.suite)} · {summary.model}"
                 + (f" — {note}" if note else ""), color="#7a5200" if note else "black")
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


# -- several runs side by side (`bench compare`) -------------------------------------------

class ComparedRun(BaseModel):
    dir: str
    label: str
    suite: str
    tasks_digest: str
    summary: Summary


class ModeRow(BaseModel):
    run: str
    mode: str
    solved: int
    tasks: int
    pass_rate: float
    completion_tokens: int
    wins: int  # tasks this run solves that the first run (same mode) does not
    losses: int


class Comparison(BaseModel):
    runs: list[ComparedRun]
    modes: list[ModeRow]
    tasks: list[str]
    # task → run label → mode → solved (None: not run there)
    outcomes: dict[str, dict[str, dict[str, bool | None]]]
    same_suite: bool


def _load_compared(run: Path) -> tuple[ComparedRun, dict[str, Any]]:
    import json


    try:
        config = json.loads((run / RUN_FILE).read_text(encoding="utf-8"))
        summary = Summary.model_validate_json((run / SUMMARY).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BenchError(f"{run} is not a finished bench run ({Path(exc.filename).name} "
                         "not found; `guild-agent bench report DIR` writes summary.json)"
                         ) from None
    except (OSError, ValueError) as exc:
        raise BenchError(f"{run}: unreadable run ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise BenchError(f"{run / RUN_FILE}: not a run config")
    return ComparedRun(dir=str(run), label="", suite=summary.suite,
                       tasks_digest=str(config.get("tasks_digest", "")),
                       summary=summary), config


def _labels(configs: list[dict[str, Any]], dirs: list[Path]) -> list[str]:
    """Each run named by its model and the settings in which the runs differ."""
    keys = ["model", "backend", "adapter", "feedback", "max_rounds", "after_copy",
            "candidates", "fixes", "samples", "sample_temperature", "seed", "max_tokens",
            "modes"]
    configs = [{"candidates": 1, **c} for c in configs]  # runs from before the setting
    differ = [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]
    labels = []
    for c, _d in zip(configs, dirs, strict=True):
        name = str(c.get("model") or c.get("backend") or "?")
        extra = [f"{k}={_setting(c.get(k))}" for k in differ
                 if k not in ("model", "backend")]
        labels.append(" ".join([name, *extra]))
    if len(set(labels)) < len(labels):  # still alike: the folder tells them apart
        labels = [f"{lab} ({d.name})" for lab, d in zip(labels, dirs, strict=True)]
    return labels


def _setting(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def compare_runs(dirs: list[Path], *, force: bool = False) -> Comparison:
    """Several bench runs on one suite: per mode solved, and per task who solved it.

    Runs of different suites (other tasks, or the same ids with other content) are refused
    unless `force`: their pass rates would not measure the same thing.
    """

    if len(dirs) < 2:
        raise BenchError("bench compare needs at least two run folders")
    loaded = [_load_compared(d) for d in dirs]
    runs = [r for r, _ in loaded]
    configs = [{**c, "model": r.summary.model} for r, c in loaded]
    for r, lab in zip(runs, _labels(configs, dirs), strict=True):
        r.label = lab
    same = len({r.tasks_digest for r in runs}) == 1
    if not same and not force:
        a = runs[0]
        b = next(r for r in runs if r.tasks_digest != a.tasks_digest)
        raise BenchError(f"{b.dir} ran other tasks than {a.dir} (suite {b.suite}, "
                         f"{b.summary.tasks} task(s) vs {a.suite}, {a.summary.tasks}); "
                         "pass --force to compare them anyway")
    tasks: list[str] = []
    for r in runs:
        tasks += [t.task for t in r.summary.per_task if t.task not in tasks]
    outcomes: dict[str, dict[str, dict[str, bool | None]]] = {t: {} for t in tasks}
    for r in runs:
        rows = {t.task: t for t in r.summary.per_task}
        for t in tasks:
            row = rows.get(t)
            outcomes[t][r.label] = {m: (row.modes[m].solved if row and m in row.modes
                                        else None) for m in r.summary.modes}
    modes: list[ModeRow] = []
    base = runs[0]
    for r in runs:
        for m, ms in r.summary.modes.items():
            wins = losses = 0
            for t in tasks:
                mine, theirs = outcomes[t][r.label].get(m), outcomes[t][base.label].get(m)
                if mine is None or theirs is None:
                    continue
                wins += mine and not theirs
                losses += theirs and not mine
            modes.append(ModeRow(run=r.label, mode=m, solved=ms.solved, tasks=ms.tasks,
                                 pass_rate=ms.pass_rate,
                                 completion_tokens=ms.completion_tokens, wins=wins,
                                 losses=losses))
    return Comparison(runs=runs, modes=modes, tasks=tasks, outcomes=outcomes,
                      same_suite=same)


def comparison_svg(c: Comparison) -> str:
    """Solved tasks per run and mode, as grouped bars (inline SVG, integer ticks)."""

    mode_names = [m.value for m in Mode if any(r.mode == m.value for r in c.modes)]
    runs = [r.label for r in c.runs]
    width, left, top, bottom = max(420, 120 + 110 * len(runs)), 48, 30, 90
    height = 320
    pw, ph = width - left - 14, height - top - bottom
    y_max = max([r.summary.tasks for r in c.runs] + [1])
    ticks = _ticks(y_max, integer=True)
    span = ticks[-1] or 1
    group = pw / len(runs)
    bar = min(28.0, group * 0.8 / max(1, len(mode_names)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui,sans-serif" '
           'font-size="11" role="img" aria-label="solved per run">',
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" '
           f'font-weight="600">tasks solved per run (of {y_max})</text>']
    for t in ticks:
        y = top + ph - t / span * ph
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#e5e8eb"/><text x="{left - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{t:g}</text>')
    rows = {(r.run, r.mode): r for r in c.modes}
    for i, run in enumerate(runs):
        x0 = left + i * group + (group - bar * len(mode_names)) / 2
        for j, m in enumerate(mode_names):
            row = rows.get((run, m))
            if row is None:
                continue
            h = row.solved / span * ph
            out.append(f'<rect x="{x0 + j * bar:.1f}" y="{top + ph - h:.1f}" '
                       f'width="{bar - 2:.1f}" height="{h:.1f}" fill="{COLORS[m]}">'
                       f'<title>{_esc(f"{run} · {m}: {row.solved}/{row.tasks}")}</title>'
                       '</rect>')
        out.append(f'<text x="{left + (i + 0.5) * group:.1f}" y="{top + ph + 16}" '
                   f'text-anchor="middle">{_esc(run[:40])}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#888"/>')
    for j, m in enumerate(mode_names):
        x = left + j * 90
        out.append(f'<rect x="{x}" y="{height - 22}" width="10" height="10" '
                   f'fill="{COLORS[m]}"/><text x="{x + 14}" y="{height - 13}">{m}</text>')
    out.append("</svg>")
    return "".join(out)
