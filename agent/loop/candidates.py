"""Several answers per round (`--candidates N`): how they are asked for and ranked.

The loop (agent.loop.repair) asks the model N times with one request, checks each distinct
answer exactly as it would check a single one, and continues with the best as if it had
been the round's only answer. This module holds the parts that need no loop state: the
candidates' sampling, generating a batch (concurrently where the engine can), the events
each candidate holds back until the round picks one, and the ranking.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.models.base import Generation, Message, Model, ModelError, Sampling

if TYPE_CHECKING:
    from agent.loop.config import LoopConfig
    from agent.loop.repair import Judged


class Held:
    """A candidate's trajectory events, kept back until the round has chosen: the chosen
    one's are replayed into the trajectory, so it reads as a round with one answer."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, kind: str, **data: Any) -> dict[str, Any]:
        self.events.append((kind, data))
        return {"event": kind, **data}


@dataclass
class Candidate:
    index: int
    sampling: Sampling
    gen: Generation
    tokens: int  # completion tokens, a retried answer's included
    held: Held = field(default_factory=Held)
    digest: str = ""  # of the proposed files (of the text, for a format error)
    judged: Judged | None = None  # None: a format error, or never checked
    format_error: Exception | None = None
    progress: tuple[int, int] = (-1, 0)  # agent.loop.repair.progress of the feedback check
    same_as: int | None = None  # an earlier candidate with the same files: its check reused
    fresh: bool = False  # asked the task afresh after another candidate copied (switch-on-copy)

    def rank(self) -> tuple[bool, bool, tuple[int, int], int, int]:
        """Higher is better: verdict passes, feedback passes, later stage with fewer
        problems, fewer failing tests, then the earlier candidate."""
        j = self.judged
        if j is None:
            return (False, False, (-1, 0), 0, -self.index)
        return (j.verdict.passed, j.fb.passed, self.progress, -len(j.fb.failed_tests),
                -self.index)

    def summary(self) -> dict[str, Any]:
        """The candidate in the round's `candidates` event."""
        j = self.judged
        return {"index": self.index, "digest": self.digest[:12],
                "temperature": self.sampling.temperature, "seed": self.sampling.seed,
                "tokens": self.tokens, "prompt_tokens": self.gen.prompt_tokens,
                "cached_tokens": self.gen.cached_tokens, "seconds": round(self.gen.seconds, 3),
                "format_error": self.format_error is not None,
                "checked": j is not None and self.same_as is None, "same_as": self.same_as,
                "fresh": self.fresh,
                "passed": bool(j and j.verdict.passed),
                "feedback_passed": bool(j and j.fb.passed),
                "progress": list(self.progress),
                "failed_tests": len(j.fb.failed_tests) if j else 0}


def candidate_seed(run_seed: int, rnd: int, index: int) -> int:
    """A seed of its own for candidate `index` of round `rnd`, the same on every rerun
    (31 bits: engines read seeds as 32-bit, some as signed)."""
    h = hashlib.sha256(f"{run_seed}:{rnd}:{index}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def candidate_samplings(base: Sampling, config: LoopConfig, rnd: int) -> list[Sampling]:
    """Candidate 0 is the round's own request (what one answer would be); in round 1 the
    others sample at the resampling temperature around it. In repair rounds they sample
    at least at the repair temperature and, with the `spread` lever, on a ladder from
    there up to the resampling temperature: at the repair temperature alone a small
    model hands back the same file to every candidate (the 0.5B did in round 2 for 8 of
    17 basics tasks), and an answer seen twice is paid for but checked once."""
    out = [base]
    n = config.candidates
    for i in range(1, n):
        if rnd == 1:
            t = max(base.temperature, config.resample_temperature)
        else:
            low = max(base.temperature, config.repair_temperature)
            high = max(low, config.resample_temperature)
            t = low + (high - low) * i / (n - 1) if config.lever("spread") else low
            t = round(t, 3)
        out.append(base.model_copy(update={
            "temperature": t, "top_p": config.top_p if t else 1.0,
            "seed": candidate_seed(config.seed, rnd, i)}))
    return out


def batch_size(model: Model, left: int, tokens_left: int, max_tokens: int) -> int:
    """How many candidates to ask for at once: one at a time from an engine that cannot
    overlap them (or the first pass would be paid for twice), else as many as the token
    budget can surely pay for, at least one."""
    if not callable(getattr(model, "generate_many", None)):
        return 1
    return max(1, min(left, tokens_left // max(1, max_tokens)))


def generate_batch(model: Model, messages: list[Message],
                   samplings: list[Sampling]) -> list[Generation]:
    """One answer per sampling, through the engine's `generate_many` when it has one."""
    many = getattr(model, "generate_many", None)
    if len(samplings) == 1 or not callable(many):
        return [model.generate(messages, s) for s in samplings]
    gens = list(many(messages, samplings))
    if len(gens) != len(samplings):
        raise ModelError(f"{model.name}: asked for {len(samplings)} answers, got {len(gens)}")
    return gens
