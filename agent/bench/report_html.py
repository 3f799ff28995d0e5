"""report.html: one self-contained page for a run, to look at rather than read.

The summary with inline SVG plots, the provenance, and a sortable, filterable task table
whose rows open onto every attempt's rounds: the code as a diff to the round before, the
deterministic fixes, the diagnostics and tests, tokens and seconds.

Everything on the page is written by the template with autoescaping: model answers, task
ids and compiler output are text, never markup. The page loads nothing: a Content Security
Policy forbids every fetch and lets only its own script run (by hash), so even markup that
slipped through could not reach the network.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent.atomic import write_text_atomic
from agent.bench.config import RESULTS, RUN_FILE, BenchConfig, Mode, trajectory_file
from agent.bench.results import AttemptRecord, read_records
from agent.bench.stats import ModeSummary, Summary
from agent.loop.trajectory import TRAJECTORY
from agent.runs.index import AttemptView, CheckView, read_attempt, round_diffs

HTML = "report.html"


@cache
def _asset(name: str) -> str:
    return resources.files("agent.bench").joinpath("templates", name).read_text(encoding="utf-8")


def _env() -> Any:
    from jinja2 import Environment, StrictUndefined

    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    return env.from_string(_asset("report.html.j2"))


def render_page(**ctx: Any) -> str:
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return _env().render(css=_asset("report.css"), script=script,
                         script_hash=f"sha256-{digest}", **ctx)


# -- plots --------------------------------------------------------------------------------

COLORS = {"single": "#d62728", "single-raw": "#ff9896", "repair": "#1f77b4",
          "sample": "#2ca02c"}


class Series(BaseModel):
    label: str
    points: list[tuple[float, float]]
    color: str
    marker: str = "circle"  # circle, square, triangle, diamond
    line: bool = True
    dashed: bool = False
    hollow: bool = False
    size: float = 4.0
    dx: float = 0.0  # pixels: points that share a position are set side by side


def _esc(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _ticks(hi: float, *, integer: bool, most: int = 6) -> list[float]:
    """Round tick values from 0 to at least `hi` (integers only when asked)."""
    hi = max(hi, 1.0)
    raw = hi / most
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1, math.ceil(step))
    n = math.ceil(hi / step - 1e-9)
    return [round(i * step, 6) for i in range(n + 1)]


def _fmt(v: float) -> str:
    if v >= 10_000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def _marker(shape: str, x: float, y: float, s: float, color: str, hollow: bool,
            title: str) -> str:
    fill = "#fff" if hollow else color
    style = f'fill="{fill}" stroke="{color}" stroke-width="{2 if hollow else 1}"'
    tip = f"<title>{_esc(title)}</title>"
    if shape == "square":
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" ' \
               f'height="{2 * s:.1f}" {style}>{tip}</rect>'
    if shape in ("triangle", "diamond"):
        if shape == "triangle":
            pts = [(x, y - s * 1.2), (x - s * 1.1, y + s * 0.8), (x + s * 1.1, y + s * 0.8)]
        else:
            pts = [(x, y - s * 1.3), (x + s * 1.3, y), (x, y + s * 1.3), (x - s * 1.3, y)]
        p = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        return f'<polygon points="{p}" {style}>{tip}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" {style}>{tip}</circle>'


def svg_chart(title: str, xlabel: str, ylabel: str, series: list[Series], *, y_max: float,
              x_integer: bool, ref_line: tuple[float, str] | None = None,
              width: int = 460, height: int = 300) -> str:
    """A line/marker chart as inline SVG; y ticks are whole tasks."""
    left, right, top, bottom = 52, 14, 30, 74
    pw, ph = width - left - right, height - top - bottom
    xs = [x for s in series for x, _ in s.points] or [1.0]
    x_hi = max(xs)
    x_ticks = _ticks(x_hi, integer=x_integer)
    x_lo = 0.0 if not x_integer else min(1.0, min(xs))
    if x_integer:
        x_ticks = [t for t in x_ticks if t >= x_lo] or [x_lo]
        x_span = max(x_ticks[-1] - x_lo, 1.0)
    else:
        x_span = x_ticks[-1] or 1.0
    y_ticks = _ticks(y_max, integer=True)
    y_span = y_ticks[-1] or 1.0
    pad = 0.5 if x_integer else 0.0  # room left and right of the first and last round

    def px(x: float) -> float:
        return left + (x - x_lo + pad) / (x_span + 2 * pad) * pw

    def py(y: float) -> float:
        return top + ph - y / y_span * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}" '
           'font-family="system-ui,sans-serif" font-size="11">',
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" '
           f'font-weight="600">{_esc(title)}</text>']
    for t in y_ticks:
        y = py(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#e5e8eb"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in x_ticks:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" '
                   'stroke="#888"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">'
                   f'{_fmt(t)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#888"/>')
    if ref_line is not None:
        y = py(ref_line[0])
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#b26b00" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{left + pw - 4}" y="{y - 4:.1f}" text-anchor="end" '
                   f'fill="#b26b00">{_esc(ref_line[1])}</text>')
    for s in series:
        pts = [(px(x) + s.dx, py(y)) for x, y in s.points]
        if s.line and len(pts) > 1:
            d = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            dash = ' stroke-dasharray="6,4"' if s.dashed else ""
            out.append(f'<polyline points="{d}" fill="none" stroke="{s.color}" '
                       f'stroke-width="2"{dash}/>')
        for (x, y), (a, b) in zip(s.points, pts, strict=True):
            out.append(_marker(s.marker, a, b, s.size, s.color, s.hollow,
                               f"{s.label}: {_fmt(y)} at {_fmt(x)}"))
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 32}" text-anchor="middle">'
               f'{_esc(xlabel)}</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" '
               f'text-anchor="middle">{_esc(ylabel)}</text>')
    lx, ly = left, top + ph + 46
    for s in series:
        w = 24 + 6.2 * len(s.label)
        if lx + w > width and lx > left:
            lx, ly = left, ly + 14
        out.append(_marker(s.marker, lx + 5, ly - 4, min(s.size, 4.5), s.color, s.hollow,
                           s.label))
        out.append(f'<text x="{lx + 14}" y="{ly}">{_esc(s.label)}</text>')
        lx += w
    out.append("</svg>")
    return "".join(out)


def plot_series(summary: Summary) -> tuple[list[Series], list[Series]]:
    """(solved vs rounds/samples, solved vs completion tokens) series of a summary.

    The single-shot points are drawn last, hollow and larger, so they stay visible on top
    of repair's round-1 marker (the same generation when single is read off repair).
    """
    by_step: list[Series] = []
    by_tokens: list[Series] = []
    for name, marker in (("repair", "square"), ("sample", "triangle")):
        ms = summary.modes.get(name)
        if ms is None or not ms.budget_curve:
            continue
        label = "repair (rounds)" if name == "repair" else "sample (pass@k, expected)"
        common = {"color": COLORS[name], "marker": marker, "dashed": name == "sample"}
        by_step.append(Series(label=label, points=[(p.step, p.solved) for p in
                                                   ms.budget_curve], **common))
        by_tokens.append(Series(label=name, points=[(p.completion_tokens, p.solved) for p in
                                                    ms.budget_curve], **common))
    single = summary.modes.get("single")
    if single is not None and single.budget_curve:
        p = single.budget_curve[0]
        if single.raw_solved is not None:
            raw = Series(label="single, as generated", points=[(1, single.raw_solved)],
                         color=COLORS["single-raw"], marker="triangle", line=False,
                         hollow=True, size=6.5, dx=-9)
            by_step.append(raw)
            by_tokens.append(raw.model_copy(update={
                "points": [(p.completion_tokens, single.raw_solved)]}))
        fixed = Series(label="single, after deterministic fixes", points=[(1, p.solved)],
                       color=COLORS["single"], marker="diamond", line=False, hollow=True,
                       size=6.5, dx=9)
        by_step.append(fixed)
        by_tokens.append(fixed.model_copy(update={"points": [(p.completion_tokens,
                                                                p.solved)]}))
    return by_step, by_tokens


def suite_name(suite: str) -> str:
    """A suite as a title: its file or folder name, never the absolute path."""
    p = Path(suite)
    return p.stem if p.suffix in (".jsonl", ".yaml", ".yml", ".json") else (p.name or suite)


def done_tasks(summary: Summary) -> int:
    return max((ms.tasks for ms in summary.modes.values()), default=0)


def incomplete_note(summary: Summary) -> str:
    if summary.complete:
        return ""
    return (f"incomplete: {summary.attempts_done}/{summary.attempts_planned} attempts, "
            f"{done_tasks(summary)} of {summary.tasks} tasks finished")


def bench_plots(summary: Summary) -> list[str]:
    by_step, by_tokens = plot_series(summary)
    if not by_step:
        return []
    ran = done_tasks(summary)
    ylabel = f"tasks solved (of {summary.tasks})"
    ref = None
    if not summary.complete:
        ylabel = f"tasks solved (of {ran} finished, {summary.tasks} planned)"
        ref = (float(ran), f"{ran} of {summary.tasks} tasks finished")
    return [
        svg_chart("solved vs rounds / samples", "rounds (repair) · samples (sample)", ylabel,
                  by_step, y_max=summary.tasks, x_integer=True, ref_line=ref),
        svg_chart("solved vs completion tokens", "completion tokens spent", ylabel,
                  by_tokens, y_max=summary.tasks, x_integer=False, ref_line=ref),
    ]


# -- the bench page -----------------------------------------------------------------------

class _Cell(BaseModel):
    text: str
    sort: str
    cls: str = ""


def _mode_cell(name: str, o: Any, per_task: int) -> _Cell:
    if o is None:
        return _Cell(text="(not run)", sort="9999")
    if name == Mode.sample.value:
        n = o.samples_solved or 0
        return _Cell(text=f"{n}/{per_task}", sort=str(per_task - n),
                     cls="ok" if n == per_task else "bad" if n == 0 else "fixed")
    if name == Mode.repair.value:
        if o.solved:
            return _Cell(text=f"✓ r{o.solved_at_round}", sort=str(o.solved_at_round),
                         cls="ok")
        return _Cell(text="✗", sort="1000", cls="bad")
    if o.solved:
        return (_Cell(text="✓", sort="0", cls="ok") if o.raw_solved else
                _Cell(text="✓ (fixed)", sort="1", cls="fixed"))
    return _Cell(text="✗", sort="2", cls="bad")


def _check_ctx(ch: CheckView) -> dict[str, Any]:
    failed = [t["name"] for t in ch.tests if t.get("outcome") == "fail"]
    return {"suite": ch.suite, "stage": ch.stage, "passed": ch.passed,
            "tests_line": ch.tests_line, "seconds": ch.seconds,
            "diagnostics": ch.diagnostics, "failed_tests": failed[:30]}


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    out = []
    for line in diff.splitlines():
        cls = ("file" if line.startswith(("+++", "---")) else "add" if line.startswith("+")
               else "del" if line.startswith("-") else "hunk" if line.startswith("@@")
               else "ctx")
        out.append((cls, line))
    return out


def attempt_ctx(view: AttemptView, label: str, rec: AttemptRecord | None = None
                ) -> dict[str, Any]:
    """One attempt's rounds, ready for the template."""
    res = rec.result.model_dump(mode="json") if rec is not None else (view.result or {})
    solved = bool(res.get("solved"))
    broke = rec is not None and rec.outcome == "error"
    outcome = ("broke" if broke else f"solved at round {res.get('solved_at_round')}"
               if solved else "not solved" if res else "unfinished")
    tokens = (res.get("tokens") or {}).get("completion", 0) if res else 0
    meta = (f"{res.get('rounds', len(view.rounds))} round(s) · {tokens} completion tokens · "
            f"{float(res.get('seconds') or 0):.1f} s · {res.get('stop_reason') or '—'}"
            if res else f"{len(view.rounds)} round(s) recorded")
    problem = res.get("error") if res else view.error
    if view.bad_lines:
        problem = (problem + "; " if problem else "") + (
            f"{view.bad_lines} unreadable line(s) in the trajectory were skipped")
    if not Path(view.path).is_file() and view.path:
        problem = (problem + "; " if problem else "") + "no trajectory file"
    rounds = []
    for r, diff in zip(view.rounds, round_diffs(view), strict=True):
        verdict = r.verdict
        if r.checks and not r.passed:
            kinds = [d.get("kind") for ch in r.checks for d in ch.diagnostics if d.get("kind")]
            verdict += f" ({kinds[0]})" if kinds else ""
        rounds.append({
            "n": r.round, "verdict": verdict, "cls": "ok" if r.passed else "bad",
            "cost": f"{r.completion_tokens} completion tokens · model "
                    f"{r.model_seconds:.1f} s · checks {r.check_seconds:.1f} s",
            "diff": _diff_lines(diff), "format_error": r.format_error, "fixes": r.fixes,
            "checks": [_check_ctx(c) for c in r.checks], "events": r.events,
            "prompt": r.prompt, "response": r.response, "feedback": r.feedback})
    return {"label": label, "outcome": outcome, "meta": meta, "problem": problem,
            "badge": "ok" if solved else "bad", "rounds": rounds}


def _provenance_rows(prov: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not isinstance(prov, dict):
        return []
    return [(str(k), ", ".join(map(str, v)) if isinstance(v, list) else str(v))
            for k, v in prov.items() if v not in (None, "", [])]


def _run_provenance(out: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("provenance") if isinstance(data, dict) else None


def bench_page(out: Path, summary: Summary) -> str:
    """The page of a bench run folder (its summary, results and trajectories)."""
    config: BenchConfig | None = None
    with contextlib.suppress(OSError, ValueError):
        config = BenchConfig.model_validate_json((out / RUN_FILE).read_text())
    records: list[AttemptRecord] = []
    if (out / RESULTS).is_file():
        try:
            records = [r for r in read_records(out / RESULTS) if r.config == summary.config]
        except (OSError, ValueError):
            records = []
    by_task: dict[str, list[AttemptRecord]] = {}
    for r in records:
        by_task.setdefault(r.task, []).append(r)
    names = list(summary.modes)
    header = [{"label": "task", "type": "text"}]
    header += [{"label": n, "type": "num"} for n in names]
    header += [{"label": "rounds", "type": "num"}, {"label": "first failure", "type": "text"},
               {"label": "completion tokens", "type": "num"},
               {"label": "seconds", "type": "num"}]
    order = {m.value: i for i, m in enumerate(Mode)}
    derived = config.derives_single if config else False
    tasks = []
    for row in summary.per_task:
        per = {n: summary.modes[n].attempts // max(1, summary.modes[n].tasks) for n in names}
        cells = [_mode_cell(n, row.modes.get(n), per[n]) for n in names]
        outs = list(row.modes.values())
        rounds = sum(o.rounds for o in outs)
        first = next((o.first_failure for o in outs if o.first_failure), None) or "—"
        tok = sum(o.completion_tokens for o in outs)
        secs = sum(o.seconds for o in outs)
        cells += [_Cell(text=str(rounds), sort=str(rounds)), _Cell(text=first, sort=first),
                  _Cell(text=str(tok), sort=str(tok)),
                  _Cell(text=f"{secs:.1f}", sort=f"{secs:.3f}")]
        solved = [o.solved for o in outs]
        state = ("solved" if solved and all(solved) else "none" if not any(solved)
                 else "mixed")
        attempts, notes = [], []
        if not outs:
            notes.append("no attempt of this task has finished")
        for rec in sorted(by_task.get(row.task, []),
                          key=lambda r: (order.get(r.mode.value, 9), r.sample)):
            if rec.mode is Mode.single and derived:
                notes.append("single shot: read off repair's round 1 (the same generation)"
                             f" — {'solved' if rec.result.solved else 'not solved'}"
                             + (" as generated" if rec.result.raw_solved_round1 else ""))
                continue
            label = rec.mode.value + (f" {rec.sample + 1}" if rec.mode is Mode.sample else "")
            path = out / trajectory_file(rec.task, rec.mode.value, rec.sample)
            view = read_attempt(path, task=rec.task, label=label)
            attempts.append(attempt_ctx(view, label, rec))
        tasks.append({"id": row.task, "cells": cells, "state": state, "attempts": attempts,
                      "notes": notes})

    modes = {"header": ["mode", "tasks", "solved", "pass rate", "attempts", "model calls",
                        "completion tokens", "tokens/solved", "compute s", "wall s",
                        "errors", "broken"],
             "rows": [overview(ms) for ms in summary.modes.values()]}
    notes = []
    single = summary.modes.get("single")
    if single is not None and single.raw_solved is not None:
        notes.append(f"Single shot: {single.raw_solved}/{single.tasks} as generated, "
                     f"{single.solved}/{single.tasks} after the deterministic fixes.")
    repair = summary.modes.get("repair")
    if repair is not None and repair.solved_by_round:
        notes.append("Repair, solved by round: " + ", ".join(
            f"r{k}: {v}" for k, v in repair.solved_by_round.items()) + ".")
    provs = {json_key(r.provenance) for r in records if r.provenance}
    if len(provs) > 1:
        notes.append(f"The attempts were recorded under {len(provs)} different provenances "
                     "(a resumed run): see each results.jsonl line.")
    return render_page(
        title=f"Bench: {suite_name(summary.suite)}",
        subtitle=f"model {summary.model} (backend {summary.backend}) · {summary.tasks} "
                 f"task(s) · config {summary.config} · suite {summary.suite}",
        incomplete=incomplete_note(summary), command=summary.command,
        modes=modes, notes=notes, plots=bench_plots(summary),
        provenance=_provenance_rows(_run_provenance(out)), task_header=header, tasks=tasks)


def json_key(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True, default=str)


def write_bench_html(out: Path, summary: Summary) -> Path:
    path = out / HTML
    write_text_atomic(path, bench_page(out, summary))
    return path


# -- one solve or fix run -----------------------------------------------------------------

def attempt_page(run_dir: Path, kind: str) -> str:
    """The page of a solve or fix run: its one attempt, rounds open."""
    import json

    view = read_attempt(run_dir / TRAJECTORY, label=kind)
    info: dict[str, Any] = {}
    try:
        loaded = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
        info = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    if not info.get("solved") and view.result:
        info = {**view.result, **info}
    ctx = attempt_ctx(view.model_copy(update={"result": info or view.result}), kind)
    r = info or {}
    solved = bool(r.get("solved"))
    tok = (r.get("tokens") or {}).get("completion", 0) if isinstance(r.get("tokens"),
                                                                      dict) else 0
    task = view.task or str(r.get("task") or run_dir.name)
    cell = (_Cell(text=f"✓ r{r.get('solved_at_round')}", sort="0", cls="ok") if solved
            else _Cell(text="✗", sort="1", cls="bad"))
    header = [{"label": "task", "type": "text"}, {"label": kind, "type": "num"},
              {"label": "rounds", "type": "num"}, {"label": "completion tokens",
                                                   "type": "num"}]
    rounds = len(view.rounds)
    cells = [cell, _Cell(text=str(rounds), sort=str(rounds)), _Cell(text=str(tok),
                                                                    sort=str(tok))]
    return render_page(
        title=f"{kind}: {task}", subtitle=f"model {r.get('model', '?')} · {run_dir}",
        incomplete="" if r else "unfinished", command="", modes=None, notes=[], plots=[],
        provenance=_provenance_rows(r.get("provenance")), task_header=header,
        tasks=[{"id": task, "cells": cells, "state": "solved" if solved else "none",
                "attempts": [ctx], "notes": []}])


# -- the cells report.md and this page share ---------------------------------------

def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def overview(ms: ModeSummary) -> list[str]:
    return [ms.mode.value, str(ms.tasks), str(ms.solved), pct(ms.pass_rate),
            str(ms.attempts), str(ms.rounds), str(ms.completion_tokens),
            num(ms.tokens_per_solved) if ms.tokens_per_solved is not None else "—",
            f"{ms.model_seconds + ms.check_seconds:.1f}", f"{ms.seconds:.1f}", str(ms.errors),
            str(ms.broken)]
