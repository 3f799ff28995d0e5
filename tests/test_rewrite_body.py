"""`rewrite-body`: a function the failing tests call, handed back exactly as the model was
given it, is asked for anew with its body left out, so that it cannot be copied again."""

from __future__ import annotations

from pathlib import Path

from conftest import Recorder, needs_go
from test_fix import FIXED, WRONG, fence, make_module, run_fix

from agent.golang.fixes import FIX_NAMES
from agent.golang.source import split_decls, without_body
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.strategy import LEFT_OUT
from agent.loop.trajectory import Trajectory
from agent.tasks.spec import TaskSpec

pytestmark = needs_go

ADD_ONLY = "```go\nfunc Add(a, b int) int {\n\treturn a + b\n}\n```\n"


def _requests(events: list[dict]) -> list[str]:
    return [e["messages"][-1]["content"] for e in events if e["event"] == "request"
            and "messages" in e]


def test_fix_asks_for_the_copied_function_with_its_body_left_out(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m", source=WRONG)
    # Round 1 hands the user's file back unchanged; round 2 may only write Add anew. (A
    # one-token change, `-` → `+`, would fix it before the model is asked again.)
    code, out, events = run_fix(tmp_path, [str(target), "--yes", "--no-fix", "one-token"],
                                [fence(WRONG), ADD_ONLY])
    assert code == 0, out
    first, second = _requests(events)[:2]
    assert "return a - b" in first
    assert "return a - b" not in second  # the failing body is nowhere in the request
    assert "The body of `Add` is left out of calc.go" in second
    assert LEFT_OUT in second and "// Add returns a plus b." in second
    assert "Add(2, 3) = -1, want 5" in second  # what failed is still said
    assert [e["rewrite"] for e in events if e["event"] == "feedback"] == ["Add"]
    # The function-only answer is put back in place; its doc comment stays.
    assert target.read_text() == FIXED


def test_switched_off_the_copied_body_is_shown_again(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m", source=WRONG)
    code, out, events = run_fix(tmp_path, [str(target), "--yes", "--no-fix", "rewrite-body",
                                            "--no-fix", "one-token"],
                                [fence(WRONG), fence(FIXED)])
    assert code == 0, out
    second = _requests(events)[1]
    assert "left out" not in second and "return a - b" in second
    assert not any("rewrite" in e for e in events if e["event"] == "feedback")


# -- the same in `solve`, for a task's starting files ------------------------------------

STUB = "// Double returns twice x.\nfunc Double(x int) int {\n\treturn 0\n}\n\nfunc Unused() {}\n"
TASK = TaskSpec(
    id="double", prompt="Complete Double.", files={"solution.go": STUB},
    tests=('import "testing"\n\nfunc TestDouble(t *testing.T) {\n'
           '\tif got := Double(4); got != 8 {\n\t\tt.Fatalf("Double(4) = %d, want 8", got)\n'
           "\t}\n}\n"))
GIVEN = "```go\npackage sandbox\n\n" + STUB + "```\n"
CHANGED = GIVEN.replace("return 0", "return x")
DOUBLE = "```go\nfunc Double(x int) int {\n\treturn 2 * x\n}\n```\n"


def _loop(responses: list[str]):
    model = Recorder(responses)
    traj = Trajectory()
    result = RepairLoop(model, LoopConfig(fixes=list(FIX_NAMES))).run(
        problem_from_task(TASK), traj)
    return result, model


def test_a_starting_function_left_as_given_is_asked_for_anew():
    result, model = _loop([GIVEN, DOUBLE])
    assert result.solved
    second = model.prompts[1]
    assert len(second) == 2  # system and the rewrite request: no earlier answer to copy
    text = second[-1].content
    assert "The body of `Double` is left out of solution.go" in text
    assert "return 0" not in text and LEFT_OUT in text
    assert "func Unused() {}" in text  # the rest of the file stays in view


def test_a_function_the_model_changed_gets_the_usual_repair():
    result, model = _loop([CHANGED, DOUBLE.replace("```go\n", "```go\npackage sandbox\n\n")])
    assert result.solved
    assert "left out" not in model.prompts[1][-1].content
    assert "return x" in model.prompts[1][-2].content  # its answer, shown for repair


def test_without_body_keeps_the_signature_and_doc():
    src = ("package p\n\n// F maps.\nfunc F(m map[string]struct{}) (interface{}, error) {\n"
           "\treturn nil, nil\n}\n")
    decl = next(d for d in split_decls(src) if d.kind == "func")
    blank = without_body(decl, "gone")
    assert blank is not None
    assert "// F maps.\nfunc F(m map[string]struct{}) (interface{}, error) {\n\t// gone\n}" in blank
    assert "return nil, nil" not in blank
    # A doc comment that says "func" and opens a brace does not move the body's start.
    doc = "package p\n\n// G is a func {like this one}.\nfunc G() int {\n\treturn 1\n}\n"
    g = next(d for d in split_decls(doc) if d.kind == "func")
    assert without_body(g, "gone") == (
        "\n// G is a func {like this one}.\nfunc G() int {\n\t// gone\n}\n")


STACK = ("type Stack struct{ xs []int }\n\n// NewStack returns an empty stack.\n"
         "func NewStack() *Stack { return &Stack{} }\n\n"
         "func (s *Stack) Push(x int) { s.xs = append(s.xs, x) }\n\n"
         "// Pop removes and returns the top element.\nfunc (s *Stack) Pop() int {\n"
         "\treturn s.xs[0]\n}\n")
STACK_TASK = TaskSpec(
    id="stack", prompt="Fix Pop.", files={"solution.go": STACK},
    tests=('import "testing"\n\nfunc TestPop(t *testing.T) {\n\ts := NewStack()\n'
           "\ts.Push(1)\n\ts.Push(2)\n"
           '\tif got := s.Pop(); got != 2 {\n\t\tt.Fatalf("Pop() = %d, want 2", got)\n\t}\n}\n'))


def test_the_function_the_failure_names_is_chosen_over_the_first_one_called():
    model = Recorder(["```go\npackage sandbox\n\n" + STACK + "```\n",
                      "```go\nfunc (s *Stack) Pop() int {\n\tx := s.xs[len(s.xs)-1]\n"
                      "\ts.xs = s.xs[:len(s.xs)-1]\n\treturn x\n}\n```\n"])
    # `xs[0]` → `xs[1]` passes this one test: one-token is off, to see the request.
    fixes = [f for f in FIX_NAMES if f != "one-token"]
    result = RepairLoop(model, LoopConfig(fixes=fixes)).run(
        problem_from_task(STACK_TASK), Trajectory())
    assert result.solved
    text = model.prompts[1][-1].content
    assert "The body of `Pop` is left out" in text
    assert "return s.xs[0]" not in text and "return &Stack{}" in text


def test_a_function_is_asked_for_anew_once():
    # The model writes the given body again without seeing it: next it gets the usual
    # repair, its code and the failure in view, not the same blank again.
    model = Recorder([GIVEN, GIVEN, DOUBLE.replace("```go\n", "```go\npackage sandbox\n\n")])
    result = RepairLoop(model, LoopConfig(fixes=list(FIX_NAMES), max_rounds=3)).run(
        problem_from_task(TASK), Trajectory())
    assert result.solved and result.solved_at_round == 3
    assert "left out" in model.prompts[1][-1].content
    assert "left out" not in model.prompts[2][-1].content


COUNTER = ("type Counter struct{ n int }\n\nfunc (c *Counter) Inc() { c.n++ }\n")
COUNTER_TASK = TaskSpec(
    id="counter", prompt="Add `Reset() int` to Counter: it sets the count to zero and "
    "returns the count it had.", files={"solution.go": COUNTER},
    tests=('import "testing"\n\nfunc TestReset(t *testing.T) {\n\tvar c Counter\n\tc.Inc()\n'
           '\tc.Inc()\n\tif got := c.Reset(); got != 2 {\n'
           '\t\tt.Fatalf("Reset = %d, want 2", got)\n\t}\n}\n'))


def test_an_answer_that_changed_the_file_keeps_its_given_functions_out_of_suspicion():
    # The answer adds the asked-for method, wrongly; Inc, given and correct, is called
    # first but named nowhere in the failure: it is not asked for anew.
    wrong = ("```go\npackage sandbox\n\n" + COUNTER
             + "\nfunc (c *Counter) Reset() int {\n\tc.n = 0\n\treturn c.n\n}\n```\n")
    right = wrong.replace("\tc.n = 0\n\treturn c.n\n", "\tn := c.n\n\tc.n = 0\n\treturn n\n")
    model = Recorder([wrong, right])
    result = RepairLoop(model, LoopConfig(fixes=list(FIX_NAMES))).run(
        problem_from_task(COUNTER_TASK), Trajectory())
    assert result.solved
    assert "left out" not in model.prompts[1][-1].content
