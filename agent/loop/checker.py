"""The seam between the loop and whatever runs the Go checks.

A `Checker` takes the files an answer proposes and returns the toolchain's verdict on one
suite of tests (with `cover`, also which blocks of the code ran). The task harness
(agent.tasks.harness) and `fix`'s package checker (agent.fix.session) are the two real
ones; tests of pure loop logic plug in a fake.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from tools.diagnostics import CheckResult


class Suite(str, Enum):
    visible = "visible"
    hidden = "hidden"
    all = "all"


class Checker(Protocol):
    def check(self, solution: dict[str, str], suite: Suite = Suite.all, *,
              run: str | None = None, cover: bool = False) -> CheckResult: ...

    def close(self) -> None: ...
