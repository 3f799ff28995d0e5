"""What the loop works on, whoever asked: a benchmark task, a task file, a user's package.

`solve` and `bench` build one from a task (`problem_from_task`); `fix` builds one from the
user's package. The loop sees nothing else: no task file, no placeholder tests.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.loop.prompts import render
from agent.models.base import Message
from agent.tasks.harness import HIDDEN_TEST, VISIBLE_TEST
from agent.tasks.spec import Budget, TaskSpec
from tools.diagnostics import CheckResult


class Problem(BaseModel):
    """The messages to start from, what may change, what is fixed, the checks, the budget."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    package: str
    messages: list[Message]  # system and task: the conversation every round starts from
    goal: str  # the goal in words (the fix that declares a spec's names reads it)
    # The request alone, without code, feedback or how to answer (fix: the user's
    # instruction); None: the goal is that already.
    brief: str | None = None
    files: dict[str, str]  # the files the model may change, as they stand
    support_files: dict[str, str] = Field(default_factory=dict)  # shown, never changed
    visible_tests: dict[str, str] = Field(default_factory=dict)  # shown and fed back
    hidden_tests: dict[str, str] = Field(default_factory=dict)  # fed back in `all` mode only
    multi_file: bool = False
    budget: Budget = Field(default_factory=Budget)
    answer_chars: int = 0  # the size of what the model is given: room for its answer
    format_hint: str | None = None  # how to answer, when not whole files (fix's edit blocks)
    # `files` are code to repair, not a stub to complete (fix), and this is their check:
    # the loop searches them with the toolchain before it asks the model anything.
    given: CheckResult | None = Field(default=None, exclude=True, repr=False)
    # The task this came from, for a checker that runs its tests and for the oracle.
    task: TaskSpec | None = Field(default=None, exclude=True, repr=False)


def problem_from_task(task: TaskSpec) -> Problem:
    """The problem a task poses: its prompt, starter and support files, and its tests."""
    multi = len(task.files) > 1 or len(task.reference_files) > 1
    messages = [
        Message(role="system", content=render("system", package=task.package,
                                              multi_file=multi)),
        Message(role="user", content=render(
            "task", package=task.package, prompt=task.prompt, files=task.files,
            support_files=task.support_files, visible_tests=task.visible_tests)),
    ]
    visible = task.visible_test_file()
    return Problem(
        id=task.id, package=task.package, messages=messages, goal=task.prompt,
        files={n: task.with_package(c) for n, c in task.files.items()},
        support_files=dict(task.support_files),
        visible_tests={VISIBLE_TEST: visible} if visible else {},
        hidden_tests={HIDDEN_TEST: task.hidden_test_file()} if task.tests else {},
        multi_file=multi, budget=task.budget,
        answer_chars=len(task.prompt) + sum(len(v) for v in task.files.values()),
        task=task)
