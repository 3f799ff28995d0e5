"""Shared test markers, and a data folder of their own for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.golang.fixes import FIX_NAMES
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.models.base import Generation, Message, Sampling
from agent.models.replay import ReplayModel
from agent.tasks.spec import TaskSpec
from tools.go import ToolchainError, find_toolchain

try:
    find_toolchain()
    HAVE_GO = True
except ToolchainError:
    HAVE_GO = False

needs_go = pytest.mark.skipif(not HAVE_GO, reason="no Go toolchain")


@pytest.fixture(autouse=True, scope="session")
def _test_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Session-wide, so module-scoped fixtures that run commands see it too.
    mp = pytest.MonkeyPatch()
    # Every run a test makes is indexed in the data folder: never the user's own.
    mp.setenv("GUILD_AGENT_DATA", str(tmp_path_factory.mktemp("data")))
    # The commands ask for several answers a round; the CLI tests script one answer per
    # round. tests/test_candidates.py covers several, and the default itself.
    mp.setenv("GUILD_AGENT_CANDIDATES", "1")
    yield
    mp.undo()


class Recorder(ReplayModel):
    """Scripted answers that keep every conversation they were sent."""

    def __init__(self, responses: list[str]) -> None:
        super().__init__(responses)
        self.prompts: list[list[Message]] = []

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        self.prompts.append(list(messages))
        return super().generate(messages, sampling)


def wrong_then_reference(task: TaskSpec, wrong: str, off: tuple[str, ...] = ()):
    """One repair loop on `task`: round 1 answers `wrong`, round 2 the reference.

    Every fix is on except those named in `off`, with one candidate a round, so the
    second prompt is the repair request built from the first answer.
    """
    good = "```go\n" + task.with_package(task.reference or "") + "```\n"
    model = Recorder(["```go\n" + wrong + "```\n", good])
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], candidates=1)
    traj = Trajectory()
    result = RepairLoop(model, config).run(problem_from_task(task), traj)
    return result, model, traj
