"""How much the llama-cpp backend costs over the raw engine, and what prefix caching saves.

Usage: python benchmarks/perf/model_speed.py [--model NAME|FILE.gguf] [--tokens N] [--reps N]

1. Throughput: the same prompt, greedy, N tokens, through `LlamaCppModel.generate` and
   through a plain `xllamacpp.Server.handle_chat_completions(dict)` call on the same
   engine (two engines would fight over the cores, whose threads spin between calls).
   Runs alternate (raw, ours, ours, raw…) so load from other processes hits both alike;
   we report the median wall-clock tokens/s and the ratio (target: ours ≥ 95% of raw).
2. Prefill: round 2 of a repair conversation (round 1 + the model's answer + a compiler
   error), with the engine's prompt-prefix cache on versus off: prompt tokens prefilled
   and prompt seconds. `--mlx MODEL` measures the same through the mlx backend.
"""

from __future__ import annotations

import argparse
import statistics
import time

from agent.models import DEFAULT_MODEL, Message, Sampling, make_model
from agent.models.llama_cpp import LlamaCppModel, available_cores, chat_request
from agent.models.mlx import MLXModel

SYSTEM = "You are an expert Go programmer. Reply with one ```go block."
TASK = ("Write a Go function `WordFreq(text string) map[string]int` that counts words, "
        "case-insensitively, ignoring punctuation. Include the package clause and imports.")
ERROR = "./solution.go:9:14: undefined: unicode.IsLeter\nFix the error; reply with the whole file."


def throughput(model: LlamaCppModel, reps: int, tokens: int) -> None:
    # The raw call goes to the very engine our backend holds, so both sides share weights,
    # threads and prompt cache: the difference is exactly our code around the call.
    raw = model._server
    messages = [Message(role="system", content=SYSTEM), Message(role="user", content=TASK)]
    sampling = Sampling(max_tokens=tokens, temperature=0.0, seed=0)
    body = chat_request(messages, sampling)
    ours_tps, raw_tps, engine_ours, engine_raw = [], [], [], []

    def run_raw() -> None:
        t0 = time.perf_counter()
        data = raw.handle_chat_completions(dict(body))
        wall = time.perf_counter() - t0
        raw_tps.append(data["usage"]["completion_tokens"] / wall)
        engine_raw.append(data["timings"]["predicted_per_second"])

    def run_ours() -> None:
        t0 = time.perf_counter()
        g = model.generate(messages, sampling)
        wall = time.perf_counter() - t0
        ours_tps.append(g.completion_tokens / wall)
        engine_ours.append(g.tokens_per_second)

    run_raw()  # warm-up: page the weights in, fill each engine's prompt cache
    run_ours()
    ours_tps.clear(), raw_tps.clear(), engine_ours.clear(), engine_raw.clear()
    for i in range(reps):
        order = (run_raw, run_ours) if i % 2 == 0 else (run_ours, run_raw)
        for fn in order:
            fn()
    r, o = statistics.median(raw_tps), statistics.median(ours_tps)
    print(f"throughput ({tokens} tokens, greedy, {model.threads} threads, {reps} reps, "
          "median wall-clock):")
    print(f"  raw xllamacpp      {r:7.2f} tok/s   (engine-timed decode "
          f"{statistics.median(engine_raw):.2f} tok/s)")
    print(f"  our llama-cpp      {o:7.2f} tok/s   (engine-timed decode "
          f"{statistics.median(engine_ours):.2f} tok/s)")
    verdict = "ok" if o / r >= 0.95 else "BELOW TARGET"
    print(f"  ratio ours/raw     {o / r:7.1%}   (target >= 95%: {verdict})")


def prefill(model: LlamaCppModel | MLXModel, tokens: int) -> None:
    first = [Message(role="system", content=SYSTEM), Message(role="user", content=TASK)]
    sampling = Sampling(max_tokens=tokens, temperature=0.0, seed=0)
    print(f"round 2 of a repair conversation through {model.backend} "
          "(prompt tokens prefilled):")
    for cache in (True, False):
        if isinstance(model, LlamaCppModel):
            model.cache_prompt = cache
        else:
            model.reuse_cache = cache
        model.start(None)
        # Put something else in the slot first, so round 1 starts cold in both runs.
        model.generate([Message(role="user", content="Say hi.")], Sampling(max_tokens=1))
        answer = model.generate(first, sampling)
        round2 = [*first, Message(role="assistant", content=answer.text),
                  Message(role="user", content=ERROR)]
        g = model.generate(round2, Sampling(max_tokens=1))
        prefilled = g.prompt_tokens - g.cached_tokens
        label = "with cache reuse   " if cache else "without cache reuse"
        print(f"  {label} {prefilled:5d} of {g.prompt_tokens} prefilled "
              f"({g.cached_tokens} cached), prompt time {g.prompt_seconds * 1000:7.1f} ms")
    if isinstance(model, LlamaCppModel):
        model.cache_prompt = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="catalog name or .gguf path")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--mlx", metavar="MODEL", default=None,
                    help="also measure round-2 prefill through the mlx backend (dir or repo)")
    args = ap.parse_args()
    model = make_model("llama-cpp", args.model, threads=args.threads)
    assert isinstance(model, LlamaCppModel)
    print(f"model {model.name} ({model.path}), cores available {available_cores()}")
    throughput(model, args.reps, args.tokens)
    prefill(model, args.tokens)
    if args.mlx:
        prefill(MLXModel(args.mlx), args.tokens)


if __name__ == "__main__":
    main()
