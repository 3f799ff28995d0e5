"""The loop's own logic with a fake Checker: no Go toolchain, every decision visible.

The real-Go tests (test_loop.py, test_repair_levers.py) keep checking the loop end to end;
these pin down what the loop decides from a verdict: how a run ends (one typed reason),
which strategy asks next, and that a problem needs no task file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from agent.loop.checker import Suite
from agent.loop.config import LoopConfig
from agent.loop.problem import Problem, problem_from_task
from agent.loop.repair import RepairLoop, RunState
from agent.loop.stop import StopReason
from agent.loop.strategy import Outcome, Request
from agent.loop.trajectory import FeedbackMode, Trajectory
from agent.models.base import Generation, Message, ModelError, Sampling
from agent.tasks.spec import TaskSpec
from tools.diagnostics import CheckResult, Diagnostic, Kind

GOOD = "package sandbox\n\nfunc Answer() int { return 42 }\n"
BAD = "package sandbox\n\nfunc Answer() int { return 41 }\n"
BROKEN = "package sandbox\n\nfunc Answer() int { return x }\n"


def fence(code: str) -> str:
    return f"```go\n{code}```\n"


@dataclass
class Script:
    """A model answering from a list; ModelError when told to."""

    answers: list[str | Exception]
    name: str = "script"
    backend: str = "replay"
    seen: list[list[Message]] = field(default_factory=list)

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        self.seen.append(list(messages))
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return Generation(text=a, completion_tokens=10, prompt_tokens=20)


@dataclass
class FakeChecker:
    """42 passes every suite; 41 builds and fails a test; anything else does not compile.
    `hidden_only`: 41 passes the visible suite (the hidden tests catch it)."""

    hidden_only: bool = False
    calls: list[Suite] = field(default_factory=list)
    closed: bool = False

    def check(self, solution: dict[str, str], suite: Suite = Suite.all, *,
              run: str | None = None, cover: bool = False) -> CheckResult:
        self.calls.append(suite)
        code = "".join(solution.values())
        if "return 42" in code:
            return CheckResult(passed=True)
        if "return 41" in code:
            if self.hidden_only and suite is Suite.visible:
                return CheckResult(passed=True)
            return CheckResult(passed=False, diagnostics=[Diagnostic(
                kind=Kind.test_failure, test="TestAnswer", message="Answer() = 41, want 42")])
        return CheckResult(passed=False, built=False, diagnostics=[Diagnostic(
            kind=Kind.compile, file="solution.go", line=3, message="undefined: x")])

    def close(self) -> None:
        self.closed = True


def problem(visible: bool = False) -> Problem:
    task = TaskSpec(id="answer", prompt="Return 42.", tests="func TestAnswer(t *T) {}",
                    visible_tests="func TestV(t *T) {}" if visible else None)
    return problem_from_task(task)


def run(answers: list, config: LoopConfig | None = None, checker: FakeChecker | None = None,
        p: Problem | None = None, **kw):
    checker = checker or FakeChecker()
    model = Script(list(answers))
    loop = RepairLoop(model, config or LoopConfig(fixes=[]),
                      checker_factory=lambda _: checker, **kw)
    traj = Trajectory()
    return loop.run(p or problem(), traj), model, checker, traj


def test_solved_in_round_two_ends_with_the_typed_reason():
    result, _, checker, _ = run([fence(BAD), fence(GOOD)])
    assert result.solved and result.solved_at_round == 2
    assert result.stop_reason is StopReason.solved
    assert result.public()["stop_reason"] == "tests pass"  # the words results always had
    assert checker.closed


@pytest.mark.parametrize("answers, cfg, reason", [
    ([fence(BAD)] * 3, LoopConfig(fixes=[], max_rounds=3), StopReason.rounds_spent),
    ([ModelError("server down")], LoopConfig(fixes=[]), StopReason.model_error),
    ([fence(BAD)] * 3, LoopConfig(fixes=[], on_stuck="stop"), StopReason.stuck),
    ([fence(BAD)] * 3, LoopConfig(fixes=[], token_budget=15), StopReason.tokens_spent),
])
def test_every_way_a_run_ends_has_one_reason(answers, cfg, reason):
    result, _, _, _ = run(answers, cfg)
    assert result.stop_reason is reason and not result.solved


def test_visible_green_hidden_red_ends_the_run():
    result, _, checker, _ = run([fence(BAD)], checker=FakeChecker(hidden_only=True),
                                p=problem(visible=True))
    assert result.stop_reason is StopReason.hidden_tests_fail
    assert checker.calls == [Suite.visible, Suite.all]  # feedback suite, then the verdict


def test_a_copy_makes_later_rounds_restart_from_the_task():
    result, model, _, traj = run([fence(BAD), fence(BAD), fence(GOOD)],
                                 LoopConfig(fixes=[], max_rounds=3))
    assert result.solved
    # Round 2 repaired (answer + feedback follow the task); round 3 restarted: the
    # conversation is the system message and a restart prompt only.
    assert len(model.seen[1]) == 4 and len(model.seen[2]) == 2
    kinds = [e["event"] for e in traj.events]
    assert "stuck" in kinds and "copies" in kinds


def test_a_strategy_plugs_in_ahead_of_the_defaults():
    asked: list[int] = []

    class Always:
        def next_request(self, st: RunState, out: Outcome) -> Request | None:
            asked.append(out.rnd)
            return Request(prompt=Message(role="user", content=f"try again ({out.rnd})"))

    result, model, _, _ = run([fence(BROKEN), fence(BAD), fence(GOOD)],
                              LoopConfig(fixes=[], max_rounds=3), strategies=[Always()])
    assert result.solved and asked == [1, 2]
    assert model.seen[1][-1].content == "try again (1)"


def test_a_problem_needs_no_task_file():
    p = Problem(id="fix-calc", package="calc", goal="make it build",
                messages=[Message(role="system", content="s"), Message(role="user", content="u")],
                files={"calc.go": BROKEN.replace("sandbox", "calc")})
    result, _, _, _ = run([fence(GOOD.replace("sandbox", "calc"))], p=p)
    assert result.solved and p.task is None
    assert result.feedback is FeedbackMode.all  # no visible tests: every failure is told


def test_a_problem_without_a_checker_or_task_is_refused():
    p = Problem(id="x", package="p", goal="g", files={},
                messages=[Message(role="system", content="s"), Message(role="user", content="u")])
    with pytest.raises(ValueError, match="no checker"):
        RepairLoop(Script([fence(GOOD)]), LoopConfig(fixes=[])).run(p)
