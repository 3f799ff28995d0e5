"""The oracle: answers with the task's own reference solution, fenced as the model would.

It checks suites and the harness end to end (every task must pass with its reference)
without a model in the way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agent.models.base import Generation, Message, ModelError, Sampling

if TYPE_CHECKING:
    from agent.tasks.spec import TaskSpec


def _fence_for(source: str) -> str:
    """A fence longer than any backtick run in `source` (a raw string may hold ```)."""
    longest = max((len(m) for m in re.findall(r"`+", source)), default=0)
    return "`" * max(3, longest + 1)


def fence_solution(files: dict[str, str]) -> str:
    """Files as ```go blocks; with several, each preceded by a `// file: NAME` line."""
    if len(files) == 1:
        (source,) = files.values()
        f = _fence_for(source)
        return f"{f}go\n{source.rstrip()}\n{f}\n"
    return "\n".join(f"// file: {name}\n{_fence_for(src)}go\n{src.rstrip()}\n"
                     f"{_fence_for(src)}\n" for name, src in files.items())


class OracleModel:
    """Returns the reference solution of the task given to `start`."""

    backend = "oracle"

    def __init__(self, name: str = "oracle") -> None:
        self.name = name
        self._task: TaskSpec | None = None

    def start(self, task: TaskSpec | None) -> None:
        self._task = task

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
