"""Tune prompt-lookup speculation: n-gram sizes × draft lengths against speculation off.

Usage: python benchmarks/perf/spec_sweep.py [--model NAME|FILE.gguf] [--ngrams 2,3,4,6]
           [--drafts 8,16,32] [--reps N] [--requests N] [--trajectories RUN_DIR]

One engine without speculation stays loaded; each setting gets its own engine, and the
two alternate on every request (model_speed.ab), so each setting's ratio is measured
against a baseline taken in the same minutes. The best repair ratio whose fresh ratio
stays >= 0.95 is the one to make the default (llama_cpp.Speculation).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_speed import ab, gguf_path, summarize
from spec_requests import load

from agent.models.llama_cpp import LlamaCppModel, Speculation, available_cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--ngrams", default="2,3,4,6,8,12")
    ap.add_argument("--drafts", default="8,16,32,48")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--requests", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--trajectories", type=Path, default=None)
    ap.add_argument("--kinds", default="repair,fresh")
    ap.add_argument("--no-warm", action="store_true",
                    help="skip the unmeasured first run per request (decode speed is "
                         "engine-timed, so prefill does not count either way)")
    args = ap.parse_args()
    requests = load(args.trajectories, args.requests)
    path = gguf_path(args.model)
    off = LlamaCppModel(path, threads=args.threads, speculation=Speculation(mode="off"))
    print(f"{args.model}: {available_cores()} cores, {args.reps} reps, "
          f"{sum(r.kind == 'repair' for r in requests)} repair + "
          f"{sum(r.kind == 'fresh' for r in requests)} fresh requests")
    print(" ngram draft | repair: wall, CPU ratio, acc/drafted | fresh: the same | same")
    for n in (int(x) for x in args.ngrams.split(",")):
        for m in (int(x) for x in args.drafts.split(",")):
            on = LlamaCppModel(path, threads=args.threads,
                               speculation=Speculation(mode="ngram", ngram=n, draft_max=m))
            cells, same = [], True
            for kind in ("repair", "fresh"):
                reqs = [r for r in requests if r.kind == kind]
                if kind not in args.kinds.split(",") or not reqs:
                    cells.append("-")
                    continue
                s = summarize(ab(on, off, reqs, args.reps, warm=not args.no_warm))
                cells.append(f"{s.ratio:5.2f}x cpu {s.cpu_ratio:5.2f}x "
                             f"{s.accepted:4d}/{s.drafted:<4d}")
                same &= s.identical
            print(f" {n:5d} {m:5d} | {cells[0]:>28s} | {cells[1]:>28s} | "
                  f"{'yes' if same else 'NO'}", flush=True)
            del on


if __name__ == "__main__":
    main()
