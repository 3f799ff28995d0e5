"""Speed of the llama-cpp backend: speculation on vs off, overhead over the raw engine, and
what prefix caching saves.

Usage: python benchmarks/perf/model_speed.py [--models NAME,NAME|FILE.gguf] [--reps N]
           [--only speculation|overhead|prefill] [--trajectories RUN_DIR]

0. Speculation: for each model, fresh answers (round-1 requests) and whole-file repair
   answers (later rounds that resend the model's file with the compiler's complaint),
   taken from real bench trajectories (spec_requests.py), decoded greedily by two engines
   in one process, prompt-lookup speculation on and off. Runs alternate (on, off, off, on…)
   on the same request back to back, so load from other processes hits both alike. We
   print decode tokens/s (engine-timed, the prefix cache makes prefill ~1 token) as
   medians, and the median of the paired on/off ratios; outputs must be byte-identical.
   On a shared machine the wall-clock ratio is noisy; the ratio of tokens per CPU-second
   of this process is not (run with --threads 1, where no thread spins at a barrier).

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
from dataclasses import dataclass, field
from pathlib import Path

from spec_requests import Request, load

from agent.models import Message, Sampling, make_model
from agent.models.base import Generation
from agent.models.catalog import lookup
from agent.models.llama_cpp import LlamaCppModel, Speculation, available_cores, chat_request
from agent.models.mlx import MLXModel
from agent.models.weights import pull_gguf

MODELS = "qwen2.5-coder-0.5b,qwen2.5-coder-1.5b"

SYSTEM = "You are an expert Go programmer. Reply with one ```go block."
TASK = ("Write a Go function `WordFreq(text string) map[string]int` that counts words, "
        "case-insensitively, ignoring punctuation. Include the package clause and imports.")
ERROR = "./solution.go:9:14: undefined: unicode.IsLeter\nFix the error; reply with the whole file."


@dataclass
class Side:
    """One engine's measurements over the reps of one request."""

    tps: list[float] = field(default_factory=list)  # engine-timed decode tokens/s
    cpu: list[float] = field(default_factory=list)  # tokens per CPU-second of the process
    drafted: int = 0
    accepted: int = 0
    tokens: int = 0

    def add(self, g: Generation, cpu_seconds: float) -> None:
        self.tps.append(g.tokens_per_second)
        self.cpu.append(g.completion_tokens / cpu_seconds if cpu_seconds > 0 else 0.0)
        self.drafted += g.drafted_tokens
        self.accepted += g.accepted_tokens
        self.tokens += g.completion_tokens


@dataclass
class Pair:
    """Speculation on and off on one request, run alternately."""

    request: Request
    on: Side = field(default_factory=Side)
    off: Side = field(default_factory=Side)
    identical: bool = True

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.on.tps, self.off.tps, strict=True) if b > 0]

    @property
    def cpu_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.on.cpu, self.off.cpu, strict=True) if b > 0]


def gguf_path(name: str) -> Path:
    """A catalog model's verified file (fetched if missing), or a .gguf path as given."""
    p = Path(name).expanduser()
    return p if p.is_file() else pull_gguf(lookup(name).gguf, show_progress=True)


def ab(on: LlamaCppModel, off: LlamaCppModel, requests: list[Request], reps: int, *,
       warm: bool = True) -> list[Pair]:
    """Each request through both engines, alternating which goes first every rep.

    Decode speed is engine-timed, so prefill never counts; `warm` runs each request once
    unmeasured first, so every measured run meets the same cache state."""
    pairs = []
    for req in requests:
        pair = Pair(req)
        sampling = req.greedy()
        texts = set()
        if warm:
            texts |= {on.generate(req.messages, sampling).text,
                      off.generate(req.messages, sampling).text}
        for i in range(reps):
            for model in ((on, off) if i % 2 == 0 else (off, on)):
                cpu = time.process_time()
                g = model.generate(req.messages, sampling)
                cpu = time.process_time() - cpu
                texts.add(g.text)
                (pair.on if model is on else pair.off).add(g, cpu)
        pair.identical = len(texts) == 1
        pairs.append(pair)
    return pairs


@dataclass
class Summary:
    on: float  # median decode tokens/s, speculation on
    off: float
    ratio: float  # median of the paired on/off ratios
    cpu_ratio: float  # the same in tokens per CPU-second: what load from others can't skew
    drafted: int
    accepted: int
    identical: bool


def summarize(pairs: list[Pair]) -> Summary:
    return Summary(
        on=statistics.median(t for p in pairs for t in p.on.tps),
        off=statistics.median(t for p in pairs for t in p.off.tps),
        ratio=statistics.median(r for p in pairs for r in p.ratios),
        cpu_ratio=statistics.median(r for p in pairs for r in p.cpu_ratios),
        drafted=sum(p.on.drafted for p in pairs), accepted=sum(p.on.accepted for p in pairs),
        identical=all(p.identical for p in pairs))


def speculation(name: str, threads: int | None, requests: list[Request], reps: int,
                spec: Speculation) -> None:
    path = gguf_path(name)
    on = LlamaCppModel(path, name=name, threads=threads, speculation=spec)
    off = LlamaCppModel(path, name=name, threads=threads,
                        speculation=Speculation(mode="off"))
    print(f"{name}: speculation ngram={spec.ngram} draft_max={spec.draft_max} vs off, "
          f"{on.threads} threads, {reps} reps per request, greedy, decode tok/s medians")
    for kind, label in (("fresh", "fresh answer"), ("repair", "whole-file repair")):
        reqs = [r for r in requests if r.kind == kind]
        if not reqs:
            continue
        pairs = ab(on, off, reqs, reps)
        s = summarize(pairs)
        tokens = sum(p.on.tokens for p in pairs) // max(1, reps)
        print(f"  {label:18s} on {s.on:6.1f}  off {s.off:6.1f} tok/s  ratio {s.ratio:5.2f}x  "
              f"(per CPU-second {s.cpu_ratio:5.2f}x)  {len(reqs)} requests, {tokens} tokens "
              f"a pass, accepted {s.accepted}/{s.drafted} drafted, output identical: "
              f"{'yes' if s.identical else 'NO'}")
    del on, off


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
        getattr(model, "reset", lambda: None)()  # mlx: forget the prompt cache
        # Put something else in the slot first, so round 1 starts cold in both runs.
        model.generate([Message(role="user", content="Say hi.")], Sampling(max_tokens=1))
        answer = model.generate(first, sampling)
        round2 = [*first, Message(role="assistant", content=answer.text),
                  Message(role="user", content=ERROR)]
        # Sampled, as the loop's repair rounds are: a greedy request is prefilled whole.
        g = model.generate(round2, Sampling(max_tokens=1, temperature=0.3, seed=0))
        prefilled = g.prompt_tokens - g.cached_tokens
        label = "with cache reuse   " if cache else "without cache reuse"
        print(f"  {label} {prefilled:5d} of {g.prompt_tokens} prefilled "
              f"({g.cached_tokens} cached), prompt time {g.prompt_seconds * 1000:7.1f} ms")
    if isinstance(model, LlamaCppModel):
        model.cache_prompt = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=MODELS,
                    help="comma-separated catalog names or .gguf paths")
    ap.add_argument("--only", choices=["speculation", "overhead", "prefill"], default=None)
    ap.add_argument("--tokens", type=int, default=128, help="answer length (overhead)")
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--requests", type=int, default=3,
                    help="fresh and repair requests each (speculation)")
    ap.add_argument("--trajectories", type=Path, default=None,
                    help="a run directory to take requests from (default: the snapshot)")
    ap.add_argument("--ngram", type=int, default=None)
    ap.add_argument("--draft-max", type=int, default=None)
    ap.add_argument("--mlx", metavar="MODEL", default=None,
                    help="also measure round-2 prefill through the mlx backend (dir or repo)")
    args = ap.parse_args()
    print(f"cores available {available_cores()}")
    spec = Speculation(mode="ngram", **{k: v for k, v in (("ngram", args.ngram),
                                                          ("draft_max", args.draft_max)) if v})
    for name in args.models.split(","):
        if args.only in (None, "speculation"):
            speculation(name, args.threads, load(args.trajectories, args.requests),
                        args.reps, spec)
        if args.only in (None, "overhead", "prefill"):
            model = make_model("llama-cpp", name, threads=args.threads)
            assert isinstance(model, LlamaCppModel)
            print(f"model {model.name} ({model.path})")
            if args.only in (None, "overhead"):
                throughput(model, args.reps, args.tokens)
            if args.only in (None, "prefill"):
                prefill(model, args.tokens)
            del model
    if args.mlx:
        prefill(MLXModel(args.mlx), args.tokens)


if __name__ == "__main__":
    main()
