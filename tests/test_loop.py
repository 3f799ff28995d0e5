"""The repair loop's logic, driven by scripted (replay) answers and the real Go toolchain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.cli import main
from agent.golang.fixes import FIX_NAMES
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import FeedbackMode, Trajectory
from agent.models.base import Generation, Message, Sampling
from agent.models.replay import ReplayModel
from agent.tasks.spec import TaskSpec

TASK = TaskSpec(
    id="clamp",
    prompt="Write `Clamp(x, lo, hi int) int` returning x limited to the range [lo, hi].",
    visible_tests=(
        'import "testing"\n\nfunc TestClampExample(t *testing.T) {\n'
        '\tif got := Clamp(5, 0, 3); got != 3 {\n'
        '\t\tt.Errorf("Clamp(5, 0, 3) = %d, want 3", got)\n\t}\n}\n'),
    tests=(
        'import "testing"\n\nfunc TestClampHidden(t *testing.T) {\n'
        '\tif got := Clamp(-7, -2, 9); got != -2 {\n'
        '\t\tt.Errorf("SECRET-HIDDEN-MESSAGE Clamp(-7, -2, 9) = %d", got)\n\t}\n}\n'),
    reference=("func Clamp(x, lo, hi int) int {\n\tif x < lo {\n\t\treturn lo\n\t}\n"
               "\tif x > hi {\n\t\treturn hi\n\t}\n\treturn x\n}\n"),
)

GOOD = "```go\n" + TASK.with_package(TASK.reference or "") + "```\n"
# Passes the visible test, fails the hidden one (never clamps from below).
HALF = ("```go\npackage sandbox\n\nfunc Clamp(x, lo, hi int) int {\n\tif x > hi {\n"
        "\t\treturn hi\n\t}\n\treturn x\n}\n```\n")
TYPE_ERROR = ("Here you go:\n```go\npackage sandbox\n\nfunc Clamp(x, lo, hi int) int {\n"
              "\tvar s string = x\n\treturn s\n}\n```\n")
UNUSED_IMPORT = GOOD.replace("package sandbox\n", 'package sandbox\n\nimport "fmt"\n', 1)


class Recorder(ReplayModel):
    """A replay model that keeps every prompt it was shown."""

    def __init__(self, responses: list[str]) -> None:
        super().__init__(responses)
        self.prompts: list[list[Message]] = []
        self.samplings: list[Sampling] = []

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        self.prompts.append(list(messages))
        self.samplings.append(sampling)
        return super().generate(messages, sampling)

    def seen(self) -> str:
        return "\n".join(m.content for ms in self.prompts for m in ms)


def run(responses: list[str], **cfg) -> tuple:
    model = Recorder(responses)
    traj = Trajectory()
    result = RepairLoop(model, LoopConfig(**cfg)).run(problem_from_task(TASK), traj)
    return result, model, traj


def test_wrong_then_right_feeds_back_located_compile_error():
    result, model, traj = run([TYPE_ERROR, GOOD])
    assert result.solved and result.solved_at_round == 2
    assert result.first_failure == "compile"
    repair = model.prompts[1][-1].content
    assert "solution.go:4:17" in repair  # file:line:col of `var s string = x`
    assert "var s string = x" in repair  # the source line itself
    assert ">" in repair and "^" in repair  # the marked line and column caret
    # The assistant turn carries the previous code, not the chatter around it.
    assert model.prompts[1][-2].role == "assistant"
    assert "Here you go" not in model.prompts[1][-2].content
    assert [e["event"] for e in traj.events].count("response") == 2


def test_never_right_spends_the_round_budget():
    result, model, _ = run([TYPE_ERROR] * 3, max_rounds=3, on_stuck="resample")
    assert not result.solved and result.rounds == 3
    assert result.stop_reason == "round budget spent"
    assert model.calls == 3


def test_answer_without_code_is_a_format_error_told_to_the_model():
    result, model, traj = run(["I am sorry, I cannot help with that.", GOOD])
    assert result.solved and result.solved_at_round == 2
    assert result.first_failure == "format"
    assert result.rounds_detail[0].format_error
    assert "no Go code" in model.prompts[1][-1].content
    assert any(e["event"] == "format_error" for e in traj.events)


def test_unused_import_is_fixed_without_a_model_call():
    result, model, traj = run([UNUSED_IMPORT])
    assert result.solved and result.solved_at_round == 1
    assert model.calls == 1
    assert not result.raw_solved_round1  # the raw answer did not build
    fixes = [f for e in traj.events if e["event"] == "fix" for f in e["fixes"]]
    assert fixes and fixes[0]["name"] == "unused-imports"
    assert '"fmt"' not in result.files["solution.go"]


def test_fixes_can_be_switched_off():
    result, model, _ = run([UNUSED_IMPORT, GOOD], fixes=[])
    assert result.solved_at_round == 2
    assert "imported and not used" in model.prompts[1][-1].content


def test_model_written_tests_and_main_are_moved_aside_and_told():
    answer = GOOD.replace("```\n", "\nfunc TestClamp(t *testing.T) {}\n\nfunc main() {}\n```\n")
    answer = answer.replace("package sandbox\n", 'package sandbox\n\nimport "testing"\n', 1)
    result, _, traj = run([answer])
    assert result.solved
    ext = next(e for e in traj.events if e["event"] == "extract")
    assert "func TestClamp" in ext["dropped"] and "func main" in ext["dropped"]


def test_stuck_resamples_at_higher_temperature():
    result, model, traj = run([TYPE_ERROR, TYPE_ERROR, GOOD], max_rounds=3)
    assert result.solved_at_round == 3
    assert model.samplings[0].temperature == 0.0
    assert model.samplings[2].temperature >= 0.7
    assert model.samplings[2].seed != model.samplings[0].seed
    assert any(e["event"] == "stuck" for e in traj.events)


def test_stuck_can_stop():
    result, model, _ = run([TYPE_ERROR, TYPE_ERROR, GOOD], max_rounds=3, on_stuck="stop")
    assert not result.solved and result.stop_reason.startswith("stuck")
    assert model.calls == 2


def test_visible_mode_never_shows_hidden_test_messages():
    # Visible tests pass and hidden ones fail: nothing to repair, so the next round is a
    # fresh sample from the task, told only that other tests fail.
    result, model, traj = run([HALF, GOOD], feedback=FeedbackMode.visible)
    assert result.solved and result.solved_at_round == 2 and model.calls == 2
    restart = model.prompts[1][-1].content
    assert "passed the tests shown but failed other tests" in restart
    assert model.samplings[1].temperature >= 0.7
    assert "SECRET-HIDDEN-MESSAGE" not in model.seen()
    assert "TestClampHidden" not in model.seen()
    assert [e["round"] for e in traj.events if e["event"] == "hidden_fail_resample"] == [1]


def test_visible_green_hidden_red_stops_in_the_last_round_or_with_the_lever_off():
    result, model, _ = run([HALF, GOOD], feedback=FeedbackMode.visible, max_rounds=1)
    assert not result.solved and model.calls == 1
    assert result.stop_reason == "visible tests pass, hidden tests fail"
    result, model, _ = run([HALF, GOOD], feedback=FeedbackMode.visible,
                           fixes=[f for f in FIX_NAMES if f != "hidden-resample"])
    assert not result.solved and model.calls == 1
    assert result.stop_reason == "visible tests pass, hidden tests fail"
    assert "SECRET-HIDDEN-MESSAGE" not in model.seen()


def test_all_mode_feeds_hidden_failures_back():
    result, model, _ = run([HALF, GOOD], feedback=FeedbackMode.all)
    assert result.solved_at_round == 2
    assert "SECRET-HIDDEN-MESSAGE" in model.prompts[1][-1].content
    assert result.feedback is FeedbackMode.all


def test_compile_mode_feeds_only_compiler_output():
    result, model, _ = run([TYPE_ERROR, HALF], feedback=FeedbackMode.compile, max_rounds=2)
    assert not result.solved  # HALF builds; the hidden test then decides: it fails
    assert model.calls == 2
    assert "cannot use" in model.prompts[1][-1].content
    assert "SECRET-HIDDEN-MESSAGE" not in model.seen()
    assert result.stop_reason == "builds, but tests fail"


def test_token_budget_stops_the_loop():
    result, model, _ = run([TYPE_ERROR] * 4, token_budget=1)
    assert model.calls == 1
    assert result.rounds == 1 and result.stop_reason == "token budget spent"


def write_task(tmp_path: Path) -> Path:
    data = TASK.model_dump(exclude_defaults=True)
    p = tmp_path / "clamp.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


@pytest.mark.parametrize("responses,code,solved", [([TYPE_ERROR, GOOD], 0, True),
                                                    ([TYPE_ERROR] * 2, 1, False)])
def test_solve_cli_with_replay(tmp_path, responses, code, solved):
    task = write_task(tmp_path)
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump({"responses": responses}))
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["solve", str(task), "--replay", str(replay),
                                    "--max-rounds", "2", "--out", str(out), "--json"])
    assert res.exit_code == code, res.output
    obj = json.loads(res.stdout.strip().splitlines()[-1])
    assert obj["solved"] is solved and obj["backend"] == "replay"
    assert set(obj) >= {"task", "solved", "rounds", "solved_at_round", "feedback", "model",
                        "backend", "tokens", "seconds"}
    events = [json.loads(ln) for ln in (out / "trajectory.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "result"
    assert json.loads((out / "result.json").read_text())["solved"] is solved
    assert (out / "solution" / "solution.go").is_file()


def test_solve_cli_bad_task_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: [unclosed\n")
    res = CliRunner().invoke(main, ["solve", str(bad), "--backend", "oracle"])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert "bad.yaml" in res.output


def test_answer_cut_by_a_test_stop_before_any_code_is_asked_again():
    cut = '```go\npackage sandbox\n\nimport (\n\t"testing"\n)\n'  # stopped at "\nfunc Test"
    result, model, traj = run([cut, GOOD])
    assert result.solved and result.solved_at_round == 1 and result.rounds == 1
    assert model.calls == 2
    assert model.samplings[0].stop and "\nfunc Test" in model.samplings[0].stop
    assert "\nfunc Test" not in model.samplings[1].stop
    assert any(e["event"] == "retry_without_stops" for e in traj.events)
    # Both answers are paid for in round 1: the per-round records add up to the total.
    assert sum(r.completion_tokens for r in result.rounds_detail) == result.tokens.completion
    assert result.rounds_detail[0].completion_tokens == len(cut) // 4 + len(GOOD) // 4


# Fails the visible test too (never clamps from above), but is different code from HALF.
LOW_ONLY = ("```go\npackage sandbox\n\nfunc Clamp(x, lo, hi int) int {\n\tif x < lo {\n"
            "\t\treturn lo\n\t}\n\treturn x\n}\n```\n")
# Fails differently, and no one-token change (one-token) fixes it.
NEGATED_HI = LOW_ONLY.replace("\treturn x\n", "\tif x > hi {\n\t\treturn -hi\n\t}\n"
                              "\treturn x\n", 1)


def _kinds_of_prompts(model: Recorder) -> list[str]:
    """Per model call after the first: a repair turn, or a restart from the task."""
    return ["repair" if ms[-1].role == "user" and ms[-2].role == "assistant" else "restart"
            for ms in model.prompts[1:]]


def test_after_a_copy_later_rounds_resample_instead_of_repairing():
    # Round 2 copies round 1 (stuck → restart); round 3 is new code that fails differently:
    # with the default policy round 4 is a fresh sample, not a repair of round 3.
    result, model, traj = run([LOW_ONLY, LOW_ONLY, NEGATED_HI, GOOD], max_rounds=4)
    assert result.solved_at_round == 4
    assert _kinds_of_prompts(model) == ["repair", "restart", "restart"]
    assert [e["round"] for e in traj.events if e["event"] == "copies"] == [2]
    restart = model.prompts[3][-1].content
    assert "Earlier attempts at this task failed" in restart
    assert "-hi" not in model.seen()  # the code it would copy is not shown again


def test_after_copy_repair_keeps_the_conversation():
    result, model, traj = run([LOW_ONLY, LOW_ONLY, NEGATED_HI, GOOD], max_rounds=4,
                              after_copy="repair")
    assert result.solved_at_round == 4
    assert _kinds_of_prompts(model) == ["repair", "restart", "repair"]
    assert "-hi" in model.prompts[3][-2].content  # round 3's code, to be edited
    assert not any(e["event"] == "copies" for e in traj.events)


def test_a_model_that_edits_keeps_repairing():
    result, model, _ = run([LOW_ONLY, NEGATED_HI, GOOD], max_rounds=3)
    assert result.solved_at_round == 3
    assert _kinds_of_prompts(model) == ["repair", "repair"]


HELPER_TASK = TASK.model_copy(update={"visible_tests": (
    'import "testing"\n\ntype pair struct{ x, lo, hi, want int }\n\n'
    "func (p pair) String() string { return \"pair\" }\n\n"
    "func TestClampExample(t *testing.T) {\n"
    "\tfor _, p := range []pair{{5, 0, 3, 3}} {\n"
    "\t\tif got := Clamp(p.x, p.lo, p.hi); got != p.want {\n"
    '\t\t\tt.Errorf("%v: got %d", p, got)\n\t\t}\n\t}\n}\n')})


def test_answer_that_copies_the_tests_helpers_before_a_test_stop_is_asked_again():
    # The model re-types the visible test's helper type and method, and the test stop ends
    # the answer there: it has written nothing of its own yet.
    copy = ("```go\npackage sandbox\n\nimport \"testing\"\n\n"
            "type pair struct{ x, lo, hi, want int }\n\n"
            "func (p pair) String() string { return \"pair\" }\n")
    model = Recorder([copy, copy.replace("```go\n", "") + "\n" +
                      GOOD.replace("```go\npackage sandbox\n", "")])
    traj = Trajectory()
    result = RepairLoop(model, LoopConfig()).run(problem_from_task(HELPER_TASK), traj)
    assert model.calls == 2 and result.rounds == 1
    assert any(e["event"] == "retry_without_stops" for e in traj.events)
    # The copies are moved aside (they would redeclare the test's), the code is kept.
    assert result.solved, result.stop_reason
    ext = next(e for e in traj.events if e["event"] == "extract")
    assert "type pair (declared by the provided files)" in ext["dropped"]
    assert "func pair.String (declared by the provided files)" in ext["dropped"]


def test_an_answer_cut_off_by_the_token_limit_is_told_so():
    class Truncating(Recorder):
        def generate(self, messages, sampling):
            gen = super().generate(messages, sampling)
            if self.calls == 1:
                return gen.model_copy(update={"finish_reason": "length"})
            return gen

    unfinished = "```go\npackage sandbox\n\nfunc Clamp(x, lo, hi int) int {\n\tif x < lo {\n"
    model = Truncating([unfinished, GOOD])
    traj = Trajectory()
    result = RepairLoop(model, LoopConfig()).run(problem_from_task(TASK), traj)
    assert result.solved and result.solved_at_round == 2
    told = model.prompts[1][-1].content
    assert "cut off at the" in told and "token limit" in told
