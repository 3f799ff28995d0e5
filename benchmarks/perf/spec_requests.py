"""Real requests for the speculation benchmarks, taken from run trajectories.

A bench or solve run writes every model request to its trajectory (`request` events:
the messages and sampling). Round 1 asks for a fresh answer; a later round that shows
the model its own file and the compiler's complaint asks for a whole-file repair, the
case prompt lookup speeds up. `repair_requests.json` beside this file is a snapshot of
such requests from a bench run of the 0.5B on the bundled basics suite, so the
benchmarks need no run of their own; `--trajectories DIR` reads fresh ones instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from agent.models.base import Message, Sampling

SNAPSHOT = Path(__file__).with_name("repair_requests.json")

Kind = Literal["fresh", "repair"]


class Request(BaseModel):
    kind: Kind
    source: str  # trajectory file and round it came from
    messages: list[Message]
    sampling: Sampling

    def greedy(self) -> Sampling:
        """The request's own limits and stops, decoded greedily, so on and off give the
        same tokens and their speeds compare like for like."""
        return self.sampling.model_copy(update={"temperature": 0.0, "top_p": 1.0})


def from_trajectory(path: Path) -> list[Request]:
    """Round-1 requests (fresh) and later rounds that resend the model's own answer with
    the checker's feedback (repair) in one trajectory file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        if ev.get("event") != "request":
            continue
        messages = [Message(**m) for m in ev["messages"]]
        repair = ev["round"] > 1 and any(m.role == "assistant" for m in messages)
        if ev["round"] > 1 and not repair:
            continue  # a resample: a fresh answer again, nothing to copy from
        out.append(Request(kind="repair" if repair else "fresh",
                           source=f"{path.name}#round{ev['round']}",
                           messages=messages, sampling=Sampling(**ev["sampling"])))
    return out


def collect(paths: list[Path], per_kind: int) -> list[Request]:
    """Up to `per_kind` fresh and `per_kind` repair requests, each from a different task."""
    chosen: list[Request] = []
    seen: dict[str, set[str]] = {"fresh": set(), "repair": set()}
    for path in sorted(paths):
        task = path.name.split(".")[0]
        for req in from_trajectory(path):
            if len(seen[req.kind]) < per_kind and task not in seen[req.kind]:
                seen[req.kind].add(task)
                chosen.append(req)
    return chosen


def load(trajectories: Path | None = None, per_kind: int = 3) -> list[Request]:
    """Requests from a run directory's trajectories, or the bundled snapshot."""
    if trajectories is None:
        reqs = [Request(**r) for r in json.loads(SNAPSHOT.read_text(encoding="utf-8"))]
        return [r for k in ("fresh", "repair")
                for r in [q for q in reqs if q.kind == k][:per_kind]]
    files = list(trajectories.rglob("*.jsonl"))
    return collect([f for f in files if f.name != "results.jsonl"], per_kind)


def main() -> None:
    """Write the snapshot: python benchmarks/perf/spec_requests.py RUN_DIR [PER_KIND]."""
    import sys

    reqs = load(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    SNAPSHOT.write_text(json.dumps([r.model_dump(mode="json") for r in reqs], indent=1)
                        + "\n", encoding="utf-8")
    for r in reqs:
        print(r.kind, r.source)


if __name__ == "__main__":
    main()
