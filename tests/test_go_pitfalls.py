"""`go-pitfalls`: lines that break a Go rule code passing its examples often breaks."""

from __future__ import annotations

import pytest
from conftest import Recorder, needs_go

from agent.golang.fixes import FIX_NAMES
from agent.golang.pitfalls import find
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import check_task
from agent.tasks.spec import TaskSpec

CODE = '''package sandbox

import "fmt"

// Shift moves each letter; "100%" and '%' in literals are not operators.
func Shift(s string, k int) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		out = append(out, 'a'+(s[i]-'a'+byte(k))%26) // wraps
	}
	return fmt.Sprintf("%s", out)
}

func Abs(n int) int {
	if n < 0 {
		n = -n
	}
	return n
}

func Rotate(xs []int, k int) []int {
	return append(xs[k:], xs[:k]...)
}
'''


def test_each_rule_names_its_first_line():
    found = {p.rule: p for p in find({"solution.go": CODE}, limit=4)}
    assert found["bytes"].line == 8 and "len(s) counts bytes" in found["bytes"].why
    assert found["modulo"].line == 9 and "((a % b) + b) % b" in found["modulo"].why
    assert found["negate"].code == "n = -n" and "math.MinInt64" in found["negate"].why
    assert found["aliasing"].line == 22 and "share xs's array" in found["aliasing"].why
    assert found["modulo"].text().startswith("line 9: `out = append(")


def test_quiet_code_and_tests_give_nothing():
    quiet = ('package sandbox\n\nfunc Pct(x int) string {\n\treturn fmt.Sprintf("%d%%", x)'
             '\n}\n\n// n % 2 in a comment\nfunc Neg(f float64) float64 { return -f }\n')
    assert find({"solution.go": quiet}) == []
    assert find({"solution_test.go": CODE}) == []
    assert len(find({"solution.go": CODE})) == 3  # capped


def test_a_task_that_counts_in_bytes_gets_no_bytes_rule():
    # Told "len(s) counts bytes" on a task asking for byte offsets, the 1.5B swapped
    # len(s) for len([]rune(s)) and broke its bracket checker.
    in_bytes = "Return the byte index of the first unmatched bracket in s."
    assert "bytes" not in {p.rule for p in find({"solution.go": CODE}, goal=in_bytes)}
    assert "bytes" not in {p.rule for p in find({"solution.go": CODE},
                                                goal="The length in bytes of s.")}
    for in_runes in ("Lengths are counted in runes, not bytes.", "Pad to width runes.", ""):
        assert "bytes" in {p.rule for p in find({"solution.go": CODE}, goal=in_runes)}


def test_a_comparison_past_the_64_bit_bound_is_named():
    # The 1.5B's overflow checks: `sum := a + b` then `sum > math.MaxInt64`, never true.
    code = ("package sandbox\n\nimport \"math\"\n\nfunc Add(a, b int64) (int64, bool) {\n"
            "\tsum := a + b\n\tif sum < math.MinInt64 || sum > math.MaxInt64 {\n"
            "\t\treturn 0, false\n\t}\n\treturn sum, true\n}\n")
    (found,) = find({"solution.go": code})
    assert (found.rule, found.line) == ("bound", 7) and "always false" in found.why
    for same in ("math.MaxInt < n", "n < math.MinInt", "math.MinInt64 > n"):
        assert [p.rule for p in find({"solution.go": code.replace(
            "sum < math.MinInt64 || sum > math.MaxInt64", same)})] == ["bound"]
    # Reachable comparisons: the bound itself, a narrower type's bound, a shift.
    for fine in ("sum >= math.MaxInt64", "sum > math.MaxInt32", "a > math.MaxInt64-b",
                 "sum <= math.MinInt64", "sum>>math.MaxInt8 == 0"):
        assert find({"solution.go": code.replace(
            "sum < math.MinInt64 || sum > math.MaxInt64", fine)}) == [], fine


@needs_go
def test_the_rules_are_what_the_toolchain_does():
    # The sentences the model is told, checked against the real compiler and runtime.
    task = TaskSpec(id="rules", prompt="rules", tests='''import (
	"math"
	"testing"
)

func TestRules(t *testing.T) {
	a, b := -7, 26
	if a%b != -7 || ((a%b)+b)%b != 19 {
		t.Error("modulo")
	}
	if len("é") != 2 || len("日") != 3 {
		t.Error("bytes")
	}
	n := math.MinInt64
	if -n >= 0 {
		t.Error("negate")
	}
	big := int64(math.MaxInt64)
	sum := big + int64(a*a) // overflows: wraps, never passes the bound
	if sum > math.MaxInt64 || sum >= 0 {
		t.Error("bound")
	}
	if b, c := int64(1), big; !(b > 0 && c > math.MaxInt64-b) {
		t.Error("bound check before the operation")
	}
	xs := make([]int, 4, 8)
	ys := append(xs[1:], 9)
	ys[0] = 5
	if xs[1] != 5 {
		t.Error("aliasing")
	}
}
''')
    assert check_task(task, {"solution.go": "package sandbox\n"}).passed


MOD = TaskSpec(
    id="wrap",
    prompt=("Write a Go function\n\n    func Wrap(i, n int) int\n\nthat returns i modulo n "
            "in 0..n-1 for n > 0, also for negative i."),
    visible_tests=('import "testing"\n\nfunc TestWrapExample(t *testing.T) {\n'
                   '\tif Wrap(7, 5) != 2 {\n\t\tt.Fail()\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestWrap(t *testing.T) {\n'
           '\tif Wrap(-1, 5) != 4 {\n\t\tt.Fail()\n\t}\n}\n'),
    reference="func Wrap(i, n int) int {\n\treturn ((i % n) + n) % n\n}\n",
)
NAIVE = "```go\npackage sandbox\n\nfunc Wrap(i, n int) int {\n\treturn i % n\n}\n```\n"
GOOD = "```go\n" + MOD.with_package(MOD.reference or "") + "```\n"


def _loop(off: tuple[str, ...] = ()):
    model = Recorder([NAIVE, GOOD])
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], candidates=1)
    result = RepairLoop(model, config).run(problem_from_task(MOD), Trajectory())
    return result, model


@needs_go
def test_after_a_hidden_failure_the_code_and_the_rule_it_breaks_are_shown():
    result, model = _loop()
    assert result.solved and result.solved_at_round == 2
    asked = model.prompts[1]
    assert "return i % n" in asked[-2].content  # its code, to fix
    prompt = asked[-1].content
    assert "line 4: `return i % n`: in Go, a % b takes the sign of a" in prompt
    # The probe moves n to 0 too, outside what the task allows: the model is told the
    # call panicked, and that a panic the task asks for is no bug.
    assert "`Wrap(7, 0)` panicked: runtime error: integer divide by zero" in prompt
    assert "Also check these lines against Go's rules" in prompt


@needs_go
def test_switched_off_only_the_probe_speaks_and_with_both_off_the_task_is_asked_afresh():
    _, model = _loop(off=("go-pitfalls",))
    prompt = model.prompts[1][-1].content
    assert "takes the sign" not in prompt and "`Wrap(7, 0)` panicked" in prompt
    _, model = _loop(off=("go-pitfalls", "probe-edges"))
    prompt = model.prompts[1][-1].content
    assert "takes the sign" not in prompt and "fresh solution" in prompt


ADD = TaskSpec(
    id="add_checked",
    prompt=("Write a Go function\n\n    func Add(a, b int64) (int64, bool)\n\nthat returns "
            "a + b and true, or 0 and false when the sum overflows int64."),
    visible_tests=('import (\n\t"math"\n\t"testing"\n)\n\nfunc TestAddExample(t *testing.T) {\n'
                   '\tif _, ok := Add(math.MaxInt64, 1); ok {\n\t\tt.Fail()\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestAdd(t *testing.T) {\n'
           '\tif s, ok := Add(1, 2); s != 3 || !ok {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=("import \"math\"\n\nfunc Add(a, b int64) (int64, bool) {\n"
               "\tif (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {\n"
               "\t\treturn 0, false\n\t}\n\treturn a + b, true\n}\n"),
)
WRAPS = ("```go\npackage sandbox\n\nimport \"math\"\n\nfunc Add(a, b int64) (int64, bool) {\n"
         "\tsum := a + b\n\tif sum > math.MaxInt64 {\n\t\treturn 0, false\n\t}\n"
         "\treturn sum, true\n}\n```\n")


@needs_go
@pytest.mark.parametrize("lever", [True, False])
def test_an_always_false_bound_check_is_named_when_the_example_fails(lever):
    # A finding that is a bug whatever the task says is worth saying before the examples
    # pass; the suspects (modulo, bytes...) wait for a hidden failure.
    off = () if lever else ("go-pitfalls",)
    model = Recorder([WRAPS, "```go\n" + ADD.with_package(ADD.reference or "") + "```\n"])
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], candidates=1)
    result = RepairLoop(model, config).run(problem_from_task(ADD), Trajectory())
    assert result.solved and result.solved_at_round == 2
    prompt = model.prompts[1][-1].content
    assert "TestAddExample" in prompt
    said = "Go rule, line 7: `if sum > math.MaxInt64 {`: an int or int64 is never above"
    assert (said in prompt) is lever
