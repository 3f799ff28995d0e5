"""`explain-panics`: a runtime panic comes with the rule it broke, from real panics."""

from __future__ import annotations

import pytest
from conftest import Recorder, needs_go

from agent.golang.fixes import FIX_NAMES
from agent.golang.panics import explain
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import check_task
from agent.tasks.spec import TaskSpec
from tools.diagnostics import Diagnostic, Kind

pytestmark = needs_go

CHUNK = TaskSpec(
    id="chunk",
    prompt="Write `Chunk(xs []int, n int) [][]int` splitting xs into pieces of n (the last "
           "may be shorter).",
    tests=('import (\n\t"reflect"\n\t"testing"\n)\n\nfunc TestChunk(t *testing.T) {\n'
           '\tgot := Chunk([]int{1, 2, 3, 4, 5}, 2)\n'
           '\tif !reflect.DeepEqual(got, [][]int{{1, 2}, {3, 4}, {5}}) {\n'
           '\t\tt.Fatalf("got %v", got)\n\t}\n}\n'),
    reference=("func Chunk(xs []int, n int) [][]int {\n\tvar out [][]int\n"
               "\tfor i := 0; i < len(xs); i += n {\n\t\tout = append(out, xs[i:min(i+n, "
               "len(xs))])\n\t}\n\treturn out\n}\n"),
)
PAST_END = ("```go\npackage sandbox\n\nfunc Chunk(xs []int, n int) [][]int {\n"
            "\tvar out [][]int\n\tfor i := 0; i < len(xs); i += n {\n"
            "\t\tout = append(out, xs[i:i+n])\n\t}\n\treturn out\n}\n```\n")
GOOD = "```go\n" + CHUNK.with_package(CHUNK.reference or "") + "```\n"

BODIES = {
    "index": "s := []int{1, 2}\n\ti := 2\n\t_ = s[i]",
    "nil map": "var m map[string]int\n\tm[\"a\"] = 1",
    "nil pointer": "var p *struct{ X int }\n\t_ = p.X",
    "divide": "z := 0\n\t_ = 1 / z",
    "negative end": "s := \"\"\n\t_ = s[:len(s)-1]",
    "negative index": "s := []int{}\n\t_ = s[len(s)-1]",
}


def _panic(body: str) -> list[Diagnostic]:
    task = TaskSpec(id="p", prompt="p",
                    tests='import "testing"\n\nfunc TestP(t *testing.T) { F() }\n')
    src = "package sandbox\n\nfunc F() {\n\t" + body + "\n}\n"
    diags = check_task(task, {"solution.go": src}).diagnostics
    assert any(d.kind is Kind.panic for d in diags), diags
    return diags


@pytest.mark.parametrize(("case", "says"), [
    ("index", "the index 2 is outside 0..1 (length 2)"),
    ("nil map", "a map must be created"),
    ("nil pointer", "a nil pointer was used"),
    ("divide", "by zero"),
    ("negative end", "a slice bound was -1, below 0"),
    ("negative index", "the index -1 is below 0"),
])
def test_real_runtime_panics_are_explained(case, says):
    facts = explain(_panic(BODIES[case]))
    assert len(facts) == 1 and says in facts[0], facts


def test_a_deadlock_is_explained():
    # Under `go test` the testing package's own goroutines keep a deadlock from being
    # detected (it times out instead), so this is the runtime's text for a plain program.
    d = Diagnostic(message="fatal error: all goroutines are asleep - deadlock!",
                   kind=Kind.panic)
    assert "every goroutine was blocked" in explain([d])[0]


def test_anything_else_gets_no_explanation():
    assert explain([Diagnostic(message="panic: boom", kind=Kind.panic),
                    Diagnostic(message="index out of range [3] with length 2",
                               kind=Kind.test_failure)]) == []


def _loop(responses: list[str], off: tuple[str, ...] = ()):
    model = Recorder(responses)
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off])
    result = RepairLoop(model, config).run(problem_from_task(CHUNK), Trajectory())
    return result, model


def test_the_repair_prompt_says_which_rule_the_slice_broke():
    # `one-token` would clamp the end itself and never ask (tests/test_one_token.py).
    result, model = _loop([PAST_END, GOOD], off=("one-token",))
    assert result.solved and result.solved_at_round == 2
    prompt = model.prompts[1][-1].content
    assert "slice bounds out of range" in prompt  # the panic itself, as before
    assert ("The panic means a slice expression s[:6] needs its end at most len(s) "
            "(capacity 5 here)") in prompt
    assert "min(start+size, len(s))" in prompt


def test_switched_off_the_panic_is_shown_bare():
    _, model = _loop([PAST_END, GOOD], off=("explain-panics", "one-token"))
    prompt = model.prompts[1][-1].content
    assert "slice bounds out of range" in prompt and "The panic means" not in prompt
