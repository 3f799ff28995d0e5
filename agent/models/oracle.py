"""The oracle: answers with the task's own reference solution, fenced as the model would.

It checks suites and the harness end to end (every task must pass with its reference)
without a model in the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.golang.extract import fence_files
from agent.models.base import Generation, Message, ModelError, Sampling

if TYPE_CHECKING:
    from agent.loop.problem import Problem
    from agent.tasks.spec import TaskSpec


def fence_solution(files: dict[str, str]) -> str:
    """The reference as a model would answer: fenced Go, named when there are several."""
    return fence_files(files) + "\n"


class OracleModel:
    """Returns the reference solution of the task it is bound to (`for_problem`)."""

    backend = "oracle"

    def __init__(self, name: str = "oracle", task: TaskSpec | None = None) -> None:
        self.name = name
        self._task = task

    def for_problem(self, problem: Problem) -> OracleModel:
        return OracleModel(self.name, problem.task)

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        if self._task is None:
            raise ModelError("the oracle has no task: it answers only inside solve/bench/check")
        files = self._task.reference_solution()
        if not files:
            raise ModelError(
                f"task {self._task.id!r} has no reference solution for the oracle; "
                "add `reference:` or `reference_files:` to the task")
        text = fence_solution(files)
        return Generation(text=text, completion_tokens=max(1, len(text) // 4))
