"""`run-values`: the failing test run once more with a print after each assignment; the
repair request shows what each line computed before the failure."""

from __future__ import annotations

from conftest import Recorder, needs_go, wrong_then_reference

from agent.golang import values
from agent.golang.fixes import FIX_NAMES
from agent.loop.checker import Suite
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskSpec

TASK = TaskSpec(
    id="add_seconds",
    prompt=("Write a Go function\n\n    func AddSeconds(mmss string, delta int) string\n\n"
            "that adds delta seconds to a time of day given as minutes and seconds "
            "\"MM:SS\" (the minutes wrap after 59) and returns it in the same form."),
    visible_tests=('import "testing"\n\nfunc TestAddSecondsExample(t *testing.T) {\n'
                   '\tif got := AddSeconds("59:50", 15); got != "00:05" {\n'
                   '\t\tt.Errorf("AddSeconds(%q, 15) = %q, want %q", "59:50", got, "00:05")'
                   '\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestAddSeconds(t *testing.T) {\n'
           '\tif got := AddSeconds("00:00", 61); got != "01:01" {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=('import (\n\t"fmt"\n\t"strconv"\n)\n\nfunc AddSeconds(mmss string, delta int) '
               'string {\n\tm, _ := strconv.Atoi(mmss[:2])\n\ts, _ := strconv.Atoi(mmss[3:])\n'
               '\tt := ((m*60+s+delta)%3600 + 3600) % 3600\n'
               '\treturn fmt.Sprintf("%02d:%02d", t/60, t%60)\n}\n'),
)
# The carry is taken from seconds already reduced modulo 60: always 0.
WRONG = '''package sandbox

import (
	"fmt"
	"strconv"
)

// AddSeconds adds delta seconds to "MM:SS".
func AddSeconds(mmss string, delta int) string {
	m, _ := strconv.Atoi(mmss[:2]) // minutes
	s, _ := strconv.Atoi(mmss[3:])
	s = (s + delta) % 60
	m = (m + s/60) % 60
	parts := []string{
		"a",
		"b",
	}
	_ = parts
	label := `raw
x = 1`
	for i := 0; i < 3; i++ {
		s++
	}
	s -= 3
	return fmt.Sprintf("%02d:%02d", m, s) + label[:0]
}
'''


def test_points_are_the_one_line_assignments_inside_function_bodies():
    found = values.points(WRONG)
    assert found == {10: ["m"], 11: ["s"], 12: ["s"], 13: ["m"], 22: ["s"], 24: ["s"]}
    # Not a package-level var, a multi-line literal, a raw string's inside, a loop clause.
    assert values.points("package p\n\nvar x = 1\n") == {}
    # A local var with a value, not one left at its zero value.
    assert values.points("package p\n\nfunc F() {\n\tvar a, b = 1, 2\n\tvar c int\n"
                         "\tvar d []int = nil\n\t_, _, _, _ = a, b, c, d\n}\n") == {
        4: ["a", "b"], 6: ["d"]}


def test_instrumented_code_keeps_every_line_number_and_comment():
    marked, placed = values.instrument({"solution.go": WRONG})
    assert placed == 6
    old, new = WRONG.split("\n"), marked["solution.go"].split("\n")
    assert new[9] == ('\tm, _ := strconv.Atoi(mmss[:2]); guildValue("solution.go", 10, "m", m)'
                      ' // minutes')
    assert new[19] == "x = 1`"  # inside a raw string: untouched
    # The body's opening line marks a call from outside, appended after its `{`.
    assert new[8] == old[8] + " guildEnter(); defer guildLeave();"
    for i, line in enumerate(old):
        if i + 1 not in values.points(WRONG) and i not in (0, 8):
            assert new[i] == line


@needs_go
def test_the_values_before_the_failure_are_read_back():
    marked, _ = values.instrument({"solution.go": WRONG})
    with TaskHarness(TASK) as h:
        res = h.check(marked, Suite.visible, run="^TestAddSecondsExample$", cover=True)
    assert res.built and not res.passed
    got = values.read(res.log, "TestAddSecondsExample")
    assert [(v.line, v.name, v.value) for v in got] == [
        (10, "m", "59"), (11, "s", "50"), (12, "s", "5"), (13, "m", "59"),
        (22, "s", "6"), (22, "s", "7"), (22, "s", "8"), (24, "s", "5")]
    shown = values.describe({"solution.go": WRONG}, got)
    assert shown[2] == "line 12: `s = (s + delta) % 60` → s = 5"
    assert shown[3] == "line 13: `m = (m + s/60) % 60` → m = 59"
    assert shown[4] == "line 22: `s++` → s = 6; then s = 7; then s = 8"


def test_a_forged_print_names_no_line_of_the_code():
    log = "\n".join([
        '{"Action":"output","Test":"TestX","Output":"@@guild-value solution.go 12 s 99\\n"}',
        '{"Action":"output","Test":"TestX","Output":"@@guild-value solution.go 3 s 1\\n"}',
        '{"Action":"output","Test":"TestX","Output":"@@guild-value other.go 12 s 1\\n"}',
        '{"Action":"output","Test":"TestX","Output":"    x_test.go:7: got 1\\n"}',
        '{"Action":"output","Test":"TestX","Output":"@@guild-value solution.go 13 m 0\\n"}',
    ])
    got = values.read(log, "TestX")
    assert [v.line for v in got] == [12, 3, 12]  # nothing after the failure
    assert values.describe({"solution.go": WRONG}, got) == [
        "line 12: `s = (s + delta) % 60` → s = 99"]


@needs_go
def test_the_repair_request_shows_the_values_before_the_failure():
    # one-token is off: a one-token change passes the example before the request.
    result, model, traj = wrong_then_reference(TASK, WRONG, off=("one-token",))
    assert result.solved and result.solved_at_round == 2
    prompt = model.prompts[1][-1].content
    assert "The values your code computed in TestAddSecondsExample before it failed:" in prompt
    assert "- line 13: `m = (m + s/60) % 60` → m = 59" in prompt
    assert "guildValue" not in prompt  # the model is shown its own code, not ours
    events = [e for e in traj.events if e["event"] == "values"]
    assert events and events[0]["test"] == "TestAddSecondsExample"
    assert "line 12: `s = (s + delta) % 60` → s = 5" in events[0]["lines"]


@needs_go
def test_switched_off_the_request_has_no_values_and_keeps_the_trace():
    result, model, _ = wrong_then_reference(TASK, WRONG, off=("run-values", "one-token"))
    assert result.solved
    prompt = model.prompts[1][-1].content
    assert "The values your code computed" not in prompt
    assert "What your code did when TestAddSecondsExample ran" in prompt


@needs_go
def test_code_our_prints_cannot_build_with_is_traced_as_it_is():
    # A name of ours taken by the model's code: the marked copy fails to build, so the
    # trace comes from the code as written, and the request shows no values.
    clash = WRONG + "\nvar guildValueCount = 3\n"
    marked, placed = values.instrument({"solution.go": clash})
    assert placed
    with TaskHarness(TASK) as h:
        assert not h.check(marked, Suite.visible, run="^TestAddSecondsExample$").built
    good = "```go\n" + TASK.with_package(TASK.reference or "") + "```\n"
    model = Recorder(["```go\n" + clash + "```\n", good])
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f != "one-token"], candidates=1)
    result = RepairLoop(model, config).run(problem_from_task(TASK), Trajectory())
    assert result.solved
    prompt = model.prompts[1][-1].content
    assert "The values your code computed" not in prompt
    assert "What your code did when TestAddSecondsExample ran" in prompt


@needs_go
def test_literals_and_comments_that_look_like_code_are_left_as_they_are():
    src = '''/*
package decoy
x = 1
*/
package sandbox // the package

func AddSeconds(mmss string, delta int) string {
	u := "http://x" // a comment
	w := `//` + mmss
	v := u /* note */ + w
	return v
}
'''
    marked, placed = values.instrument({"solution.go": src})
    assert placed == 3
    lines = marked["solution.go"].split("\n")
    assert lines[1:4] == ["package decoy", "x = 1", "*/"]
    assert lines[4].startswith("package sandbox; import (") and lines[4].endswith(
        " // the package")
    assert lines[7] == '\tu := "http://x"; guildValue("solution.go", 8, "u", u) // a comment'
    assert lines[8] == '\tw := `//` + mmss; guildValue("solution.go", 9, "w", w)'
    with TaskHarness(TASK) as h:
        res = h.check(marked, Suite.visible, run="^TestAddSecondsExample$")
    assert res.built
    got = values.read(res.log, "TestAddSecondsExample")
    assert [(v.line, v.value) for v in got] == [
        (8, '"http://x"'), (9, '"//59:50"'), (10, '"http://x//59:50"')]


@needs_go
def test_in_a_table_of_cases_the_values_are_those_of_the_failing_call():
    table = TASK.model_copy(update={"visible_tests": (
        'import "testing"\n\nfunc TestAddSecondsTable(t *testing.T) {\n'
        '\tfor _, c := range []struct{ in, want string }{{"00:10", "00:25"}, '
        '{"59:50", "00:05"}, {"00:00", "00:15"}} {\n'
        '\t\tif got := AddSeconds(c.in, 15); got != c.want {\n'
        '\t\t\tt.Errorf("AddSeconds(%q, 15) = %q, want %q", c.in, got, c.want)\n\t\t}\n'
        '\t}\n}\n')})
    marked, _ = values.instrument({"solution.go": WRONG})
    assert "func AddSeconds(mmss string, delta int) string { guildEnter(); defer guildLeave();" \
        in marked["solution.go"]
    with TaskHarness(table) as h:
        res = h.check(marked, Suite.visible, run="^TestAddSecondsTable$")
    assert res.built and not res.passed
    got = values.read(res.log, "TestAddSecondsTable")
    assert [(v.line, v.value) for v in got][:4] == [
        (10, "59"), (11, "50"), (12, "5"), (13, "59")]  # the second case's, not the first's


def test_the_round_view_says_what_was_traced(tmp_path):
    from rich.console import Console

    from agent.cli.solve import RoundPrinter

    console = Console(record=True, width=200)
    show = RoundPrinter(console, verbose=True)
    show({"event": "values", "round": 1, "test": "TestX",
          "lines": ["line 12: `s = (s + delta) % 60` → s = 5"]})
    show({"event": "values", "round": 2, "test": "TestX", "lines": []})
    out = console.export_text()
    assert "values TestX: values before the failure, 1 line(s)" in out
    assert "line 12: `s = (s + delta) % 60` → s = 5" in out
    assert out.count("TestX") == 1  # nothing found: nothing said


LAST = TaskSpec(
    id="last_item",
    prompt="Write a Go function\n\n    func Last(xs []int) int\n\nthat returns the last element.",
    visible_tests=('import "testing"\n\nfunc TestLastExample(t *testing.T) {\n'
                   '\tif got := Last([]int{4, 5, 6}); got != 6 {\n'
                   '\t\tt.Errorf("Last = %d, want 6", got)\n\t}\n}\n'),
    tests='import "testing"\n\nfunc TestLast(t *testing.T) {\n\tif Last([]int{1}) != 1 {\n'
          '\t\tt.Fail()\n\t}\n}\n',
    reference="func Last(xs []int) int { return xs[len(xs)-1] }\n",
)


@needs_go
def test_a_panic_is_shown_with_the_values_that_led_to_it():
    wrong = "package sandbox\n\nfunc Last(xs []int) int {\n\ti := len(xs)\n\treturn xs[i]\n}\n"
    good = "```go\n" + LAST.with_package(LAST.reference or "") + "```\n"
    # `len(xs)` → `len(xs) - 1` is one token: one-token is off, to see the request.
    for off, shown in ((("one-token",), True), (("run-values", "one-token"), False)):
        model = Recorder(["```go\n" + wrong + "```\n", good])
        config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], candidates=1)
        traj = Trajectory()
        result = RepairLoop(model, config).run(problem_from_task(LAST), traj)
        assert result.solved and result.solved_at_round == 2
        prompt = model.prompts[1][-1].content
        assert "index out of range [3] with length 3" in prompt
        assert ("- line 4: `i := len(xs)` → i = 3" in prompt) is shown
        # No profile after a panic: the trace says nothing rather than something wrong.
        assert "What your code did" not in prompt
