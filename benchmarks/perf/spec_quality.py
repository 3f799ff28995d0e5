"""Does speculation (or the repetition penalty) change what the model writes?

Usage: python benchmarks/perf/spec_quality.py [--model NAME|FILE.gguf]
           [--suites DIR,DIR] [--configs 1.05:off,1.05:ngram,none:ngram] [--limit N]

Single shot through the real loop (one round, greedy, the deterministic fixes on), for
every task of the suites, once per configuration `PENALTY:SPEC` (`none` = no repetition
penalty). Configurations run one after the other with one engine loaded at a time, so
they never compete for the cores. Printed per configuration: tasks solved, answers
byte-identical to the first configuration's, completion tokens, model seconds, and
drafts accepted. Greedy decoding is deterministic, so the pass counts do not depend on
load; the seconds do (compare them only on a quiet machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout

from agent.loop.config import LoopConfig  # noqa: E402
from agent.loop.problem import problem_from_task  # noqa: E402
from agent.loop.repair import RepairLoop  # noqa: E402
from agent.loop.trajectory import Trajectory  # noqa: E402
from agent.models.catalog import lookup  # noqa: E402
from agent.models.llama_cpp import LlamaCppModel, Speculation  # noqa: E402
from agent.models.weights import pull_gguf  # noqa: E402
from agent.tasks.suites import load_suite  # noqa: E402


@dataclass
class Tally:
    solved: set[str] = field(default_factory=set)
    answers: dict[str, str] = field(default_factory=dict)
    tokens: int = 0
    seconds: float = 0.0
    drafted: int = 0
    accepted: int = 0


def parse_config(text: str) -> tuple[float | None, str]:
    penalty, _, spec = text.partition(":")
    if spec not in ("off", "ngram"):
        raise SystemExit(f"error: bad config {text!r}: want PENALTY:off|ngram")
    return (None if penalty == "none" else float(penalty)), spec


def run_config(path: Path, tasks: list, penalty: float | None, spec: str) -> Tally:
    model = LlamaCppModel(path, speculation=Speculation(mode=spec))  # type: ignore[arg-type]
    loop = RepairLoop(model, LoopConfig(max_rounds=1, repetition_penalty=penalty))
    tally = Tally()
    for task in tasks:
        traj = Trajectory()
        res = loop.run(problem_from_task(task), traj)
        answer = next((e["text"] for e in traj.events if e.get("event") == "response"), "")
        tally.answers[task.id] = answer
        if res.solved:
            tally.solved.add(task.id)
        for r in res.rounds_detail:
            tally.tokens += r.completion_tokens
            tally.seconds += r.model_seconds
            tally.drafted += r.drafted_tokens
            tally.accepted += r.accepted_tokens
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--suites", default="benchmarks/suite/basics,benchmarks/suite/logic")
    ap.add_argument("--configs", default="1.05:off,1.05:ngram,none:off,none:ngram")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    path = Path(args.model)
    if not path.is_file():
        path = pull_gguf(lookup(args.model).gguf, show_progress=True)
    tasks = [t for s in args.suites.split(",") for t in load_suite(ROOT / s).tasks]
    tasks = tasks[: args.limit] if args.limit else tasks
    configs = [parse_config(c) for c in args.configs.split(",")]
    tallies: list[tuple[str, Tally]] = []
    for penalty, spec in configs:
        name = f"penalty {penalty or 'none'}, spec {spec}"
        t0 = time.monotonic()
        tally = run_config(path, tasks, penalty, spec)
        tallies.append((name, tally))
        print(f"{name}: {len(tally.solved)}/{len(tasks)} solved in "
              f"{time.monotonic() - t0:.0f} s", flush=True)
    base = tallies[0][1]
    print(f"\n{args.model}, {len(tasks)} tasks ({args.suites}), single shot, greedy\n")
    print("| configuration | solved | answers same as first | completion tokens "
          "| model s | ms/token | drafts accepted |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, t in tallies:
        same = sum(t.answers[k] == base.answers.get(k) for k in t.answers)
        ms = 1000 * t.seconds / max(1, t.tokens)
        print(f"| {name} | {len(t.solved)} | {same}/{len(tasks)} | {t.tokens} "
              f"| {t.seconds:.1f} | {ms:.1f} | {t.accepted}/{t.drafted} |")
    for name, t in tallies[1:]:
        gained, lost = sorted(t.solved - base.solved), sorted(base.solved - t.solved)
        print(f"{name}: gained {gained or '-'}, lost {lost or '-'}")


if __name__ == "__main__":
    main()
