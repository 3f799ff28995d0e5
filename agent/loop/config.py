"""The loop's settings: the one place their defaults live (the CLI and bench read them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.golang.fixes import FIX_NAMES
from agent.loop.trajectory import FeedbackMode


class LoopConfig(BaseModel):
    max_rounds: int = Field(default=4, ge=1)
    feedback: FeedbackMode | None = None  # None: visible when the task has visible tests
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = 0
    max_tokens: int | None = Field(default=None, ge=16)  # None: sized to the task
    repetition_penalty: float | None = 1.05
    fixes: list[str] = Field(default_factory=lambda: list(FIX_NAMES))
    on_stuck: Literal["resample", "stop"] = "resample"
    # Measured on the 0.5B: 80-93% of its answers to a repair prompt were code it had
    # already written, and every round the loop won came from a fresh sample. Once a run
    # shows the model copying, later rounds resample from the task (told what failed)
    # instead of asking it for another edit; a model that does edit keeps repairing.
    after_copy: Literal["resample", "repair"] = "resample"
    resample_temperature: float = 0.7
    # Greedy repair rounds tend to copy the code they are shown verbatim; a little
    # sampling breaks that while staying close to the model's best answer.
    repair_temperature: float = Field(default=0.3, ge=0.0)
    history: int = 3  # earlier rounds summarised in the repair prompt
    token_budget: int | None = None  # completion tokens for the whole task
    seconds_budget: float | None = None
    # When every compile problem sits in one declaration, ask for that declaration only
    # and splice the answer back by name: a model that tends to hand back the file it is
    # shown cannot answer a one-function request with the old file. Not yet measured, so
    # off by default.
    local_repair: bool = False
    # Answers asked for per round, all checked, the best kept (agent.loop.candidates):
    # several samples find a compiling or passing answer a single one misses, and every
    # candidate's tokens count against the budget. 1 is the plain loop.
    candidates: int = Field(default=1, ge=1, le=16)

    def lever(self, name: str) -> bool:
        """A loop lever (agent.golang.fixes.LEVERS) is on: they share the `--no-fix` switch."""
        return name in self.fixes


# What `solve`, `bench` and `fix` ask for unless told: on the 0.5B's basics tier three
# candidates a round took repair@4 from 7 to 12 of 26 (README, "The repair levers"); a
# round stops asking once one passes, so an easy task costs what one answer does. The
# library's LoopConfig stays at one answer a round, the plain loop.
COMMAND_CANDIDATES = 3


def default(name: str) -> Any:
    """A LoopConfig field's default, for the CLI's options and bench's config."""
    field = LoopConfig.model_fields[name]
    return field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
