"""Does a second llama.cpp engine in the process slow the first one down?

Usage: python benchmarks/perf/two_engines.py [--model FILE.gguf|NAME] [--reps N]

`--spec sampled` keeps two engines (one plain, one speculating), and so does
model_speed.py's speculation table. Engine A decodes the same greedy repair request
alone, then with an idle engine B loaded, then alone again, in one process; we print A's
decode tokens/s each time. On 2 cores, with libgomp's defaults, the idle B cost A 18%
(50 -> 41 tok/s); agent/models/llama_cpp.py sets OMP_WAIT_POLICY/GOMP_SPINCOUNT so it
does not. Run with `OMP_WAIT_POLICY= GOMP_SPINCOUNT=` set empty to see the old figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.models.llama_cpp import Speculation, engine_params  # noqa: E402 - sets the OMP env

REQUESTS = Path(__file__).with_name("repair_requests.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=200)
    args = ap.parse_args()

    import xllamacpp

    from agent.models.catalog import lookup
    from agent.models.weights import pull_gguf

    given = Path(args.model).expanduser()
    path = given if given.is_file() else pull_gguf(lookup(args.model).gguf)
    req = next(r for r in json.loads(REQUESTS.read_text()) if r["kind"] == "repair")

    def rates(engine: object) -> list[float]:
        out = []
        for i in range(args.reps):
            data = engine.handle_chat_completions({  # type: ignore[attr-defined]
                "messages": req["messages"], "max_tokens": args.tokens, "temperature": 0.0,
                "seed": i, "cache_prompt": True, "repeat_penalty": 1.05})
            out.append(round(data["timings"]["predicted_per_second"], 1))
        return out

    def load(mode: str) -> object:
        return xllamacpp.Server(engine_params(path, speculation=Speculation(mode=mode)))

    a = load("off")
    alone = rates(a)
    b = load("ngram")
    beside = rates(a)
    del b
    gc.collect()
    after = rates(a)
    print(f"model {Path(path).name}, OMP_WAIT_POLICY={_env('OMP_WAIT_POLICY')}, "
          f"GOMP_SPINCOUNT={_env('GOMP_SPINCOUNT')}")
    for name, r in (("A alone", alone), ("A, B loaded", beside), ("A, B gone", after)):
        print(f"  {name:12} decode tok/s {r}  median {statistics.median(r):.1f}")
    print(f"  with B loaded / alone: {statistics.median(beside) / statistics.median(alone):.2f}x")


def _env(name: str) -> str:
    import os

    return os.environ.get(name, "") or "(unset)"


if __name__ == "__main__":
    main()
