"""Why a run ended: one typed reason, raised as `RunEnded` wherever the loop decides it.

The values are the words results, trajectories and bench reports have always carried, so
old runs and new ones read alike.
"""

from __future__ import annotations

from enum import Enum


class StopReason(str, Enum):
    solved = "tests pass"
    hidden_tests_fail = "visible tests pass, hidden tests fail"
    tests_fail = "builds, but tests fail"  # compile-only feedback came back green
    stuck = "stuck: same failure again"
    rounds_spent = "round budget spent"
    tokens_spent = "token budget spent"
    time_spent = "time budget spent"
    model_error = "model error"
    broke = "attempt broke"  # bench: an exception inside one attempt

    def __str__(self) -> str:
        return self.value


class RunEnded(Exception):
    """Raised inside a round to end the run for `reason`."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason.value)
        self.reason = reason
