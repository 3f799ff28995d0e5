"""The repair loop's levers (never-worse fixes, repeated failing lines), each switched on
and off, driven by scripted (replay) answers through the real Go toolchain."""

from __future__ import annotations

import re

import pytest
from conftest import Recorder, needs_go

from agent.golang.fixes import FIX_NAMES, apply_fixes
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop, failed_lines, progress
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import check_task
from agent.tasks.spec import TaskSpec
from tools.diagnostics import CheckResult, Diagnostic, Kind

pytestmark = needs_go


def _run(task: TaskSpec, responses: list[str], off: tuple[str, ...] = (), **cfg):
    model = Recorder(responses)
    traj = Trajectory()
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], **cfg)
    result = RepairLoop(model, config).run(problem_from_task(task), traj)
    return result, model, traj


def _go(src: str) -> str:
    return f"```go\n{src}```\n"


# -- an int accumulator summing int * float64 --------------------------------------------

TOTAL = TaskSpec(
    id="total",
    prompt="Write `Total(items []Item) float64`, the sum of Qty*Price over the items.",
    support_files={"item.go": "type Item struct {\n\tQty   int\n\tPrice float64\n}\n"},
    tests=('import "testing"\n\nfunc TestTotal(t *testing.T) {\n'
           '\tif got := Total([]Item{{2, 1.25}, {1, 0.5}}); got != 3 {\n'
           '\t\tt.Fatalf("Total = %v, want 3", got)\n\t}\n}\n'),
    reference=("func Total(items []Item) float64 {\n\tt := 0.0\n\tfor _, it := range items {\n"
               "\t\tt += float64(it.Qty) * it.Price\n\t}\n\treturn t\n}\n"),
)
INT_TOTAL = """package sandbox

import "fmt"

func Total(items []Item) float64 {
	total := 0
	for _, it := range items {
		total += it.Qty * it.Price
	}
	return total
}
"""


def test_int_accumulator_is_retyped_never_converted_as_an_assignment_target():
    result, _, traj = _run(TOTAL, [_go(INT_TOTAL)])
    assert result.solved and result.solved_at_round == 1, result.files
    src = result.files["solution.go"]
    assert "total := 0.0" in src
    assert "float64(total) +=" not in src
    details = [f["detail"] for e in traj.events if e["event"] == "fix" for f in e["fixes"]]
    assert "total := 0 → total := 0.0" in details


@pytest.mark.parametrize("decl, want", [
    ("var total int", "var total float64"),
    ("var total int = 0", "var total float64 = 0"),
    ("var total = 0", "var total = 0.0"),
])
def test_var_declarations_are_retyped(decl, want):
    src = INT_TOTAL.replace("total := 0", decl)
    result, _, _ = _run(TOTAL, [_go(src)])
    assert result.solved, result.files
    assert want in result.files["solution.go"]


def test_plain_assignment_of_a_float_to_an_int_local_widens_the_local():
    src = INT_TOTAL.replace("total += it.Qty * it.Price",
                            "total = total + float64(it.Qty)*it.Price")
    before = check_task(TOTAL, {"solution.go": src, "item.go": TOTAL.with_package(
        TOTAL.support_files["item.go"])})
    fixed, fixes = apply_fixes({"solution.go": src}, before.diagnostics)
    new = fixed["solution.go"]
    # Never `int(...)` around the sum (truncating), never a conversion of the target.
    assert "total := 0.0" in new and "int(" not in new, new
    assert any(f.detail == "total := 0 → total := 0.0" for f in fixes)


def test_a_parameter_target_is_left_for_the_model():
    src = ("package sandbox\n\nfunc Add(total int, items []Item) int {\n"
           "\tfor _, it := range items {\n\t\ttotal += it.Qty * it.Price\n\t}\n"
           "\treturn total\n}\n\nfunc Total(items []Item) float64 { return 0 }\n")
    before = check_task(TOTAL, {"solution.go": src, "item.go": TOTAL.with_package(
        TOTAL.support_files["item.go"])})
    fixed, _ = apply_fixes({"solution.go": src}, before.diagnostics)
    assert "float64(total)" not in fixed["solution.go"]
    assert "(total int," in fixed["solution.go"]


# -- never worse ---------------------------------------------------------------------------

SCALE = TaskSpec(
    id="scale",
    prompt="Write `Label(a int, b float64) string` returning fmt.Sprint(float64(a) + b).",
    tests=('import "testing"\n\nfunc TestLabel(t *testing.T) {\n'
           '\tif got := Label(1, 0.5); got != "1.5" {\n\t\tt.Fatalf("got %q", got)\n\t}\n}\n'),
    reference=('import "fmt"\n\nfunc Label(a int, b float64) string {\n'
               "\treturn fmt.Sprint(float64(a) + b)\n}\n"),
)
# Converting `a` leaves a float where a string is wanted: one error for another.
NO_BETTER = ("package sandbox\n\nfunc Label(a int, b float64) string {\n"
             "\treturn a + b\n}\n")


def test_a_fix_that_does_not_improve_the_check_is_not_kept():
    result, model, traj = _run(SCALE, [_go(NO_BETTER), _go(SCALE.with_package(
        SCALE.reference or ""))])
    assert result.solved and result.solved_at_round == 2
    assert any(e["event"] == "fix_rejected" for e in traj.events)
    assert not result.rounds_detail[0].fixes
    shown = model.prompts[1][-2]
    assert shown.role == "assistant"
    # The model is shown its own code and the compiler's word on it, not a fix's output.
    assert "return a + b" in shown.content and "float64(a)" not in shown.content
    assert "mismatched types int and float64" in model.prompts[1][-1].content


def test_never_worse_switched_off_keeps_the_fix():
    _, model, traj = _run(SCALE, [_go(NO_BETTER), _go(NO_BETTER)], off=("never-worse",),
                          max_rounds=2)
    assert not any(e["event"] == "fix_rejected" for e in traj.events)
    assert "float64(a) + b" in model.prompts[1][-2].content


SHOUT = TaskSpec(
    id="shout",
    prompt="Write `Shout(s string, n int) string`: s in upper case, then n in digits.",
    tests=('import "testing"\n\nfunc TestShout(t *testing.T) {\n'
           '\tif got := Shout("a", 2); got != "A2" {\n\t\tt.Fatalf("got %q", got)\n\t}\n}\n'),
    reference=('import (\n\t"strconv"\n\t"strings"\n)\n\nfunc Shout(s string, n int) string {\n'
               "\treturn strings.ToUpper(s) + strconv.Itoa(n)\n}\n"),
)
# The import is missing, and once it is there the compiler sees the sum's int: one error
# for one, but the second was there all along, hidden behind the undefined package.
MASKED = ("package sandbox\n\nfunc Shout(s string, n int) string {\n"
          "\treturn strings.ToUpper(s) + n\n}\n")


def test_a_missing_import_is_kept_when_it_uncovers_an_error():
    result, model, traj = _run(SHOUT, [_go(MASKED), _go(SHOUT.with_package(
        SHOUT.reference or ""))])
    assert result.solved and result.solved_at_round == 2
    assert not any(e["event"] == "fix_rejected" for e in traj.events)
    assert result.rounds_detail[0].fixes
    # The model sees its code with the import and the error that was hidden, not
    # `undefined: strings` again.
    assert 'import "strings"' in model.prompts[1][-2].content
    feedback = model.prompts[1][-1].content
    assert "mismatched types string and int" in feedback
    assert "undefined: strings" not in feedback


TWO_STEP = ("package sandbox\n\nfunc Sum(a int, b float64) int {\n"
            "\tx := a + b\n\treturn x\n}\n")


def test_a_two_step_repair_is_kept_when_it_ends_better():
    task = TaskSpec(id="sum", prompt="Write `Sum(a int, b float64) int`, truncating.",
                    tests=('import "testing"\n\nfunc TestSum(t *testing.T) {\n'
                           '\tif Sum(1, 2.5) != 3 {\n\t\tt.Fatal(Sum(1, 2.5))\n\t}\n}\n'))
    result, _, traj = _run(task, [_go(TWO_STEP)])
    assert result.solved, result.files
    assert "int(x)" in result.files["solution.go"]
    assert not any(e["event"] == "fix_rejected" for e in traj.events)


def test_progress_orders_stages_then_counts():
    def res(*kinds: Kind, passed: bool = False) -> CheckResult:
        return CheckResult(passed=passed, built=Kind.compile not in kinds,
                           diagnostics=[Diagnostic(message="m", kind=k) for k in kinds])
    assert progress(res(Kind.compile)) > progress(res(Kind.compile, Kind.compile))
    assert progress(res(Kind.vet, Kind.vet)) > progress(res(Kind.compile))
    assert progress(res(Kind.test_failure, Kind.test_failure)) > progress(res(Kind.vet))
    assert progress(res(passed=True)) > progress(res(Kind.test_failure))
    assert not progress(res(Kind.compile)) > progress(res(Kind.compile))


# -- repeated failing lines ---------------------------------------------------------------

CLAMP = TaskSpec(
    id="clamp",
    prompt="Write `Clamp(x, lo, hi int) int` returning x limited to [lo, hi].",
    tests=('import "testing"\n\nfunc TestClamp(t *testing.T) {\n'
           '\tif Clamp(5, 0, 3) != 3 {\n\t\tt.Fatal("Clamp")\n\t}\n}\n'),
    reference=("func Clamp(x, lo, hi int) int {\n\treturn min(max(x, lo), hi)\n}\n"),
)
BAD_LINE = "\tvar s string = x\n"
FIRST = ("package sandbox\n\nfunc Clamp(x, lo, hi int) int {\n" + BAD_LINE +
         "\t_ = s\n\treturn hi\n}\n")
SECOND = ("package sandbox\n\n// Clamp limits x.\nfunc Clamp(x, lo, hi int) int {\n"
          "\tif x < lo {\n\t\treturn lo\n\t}\n" + BAD_LINE + "\t_ = s\n\treturn hi\n}\n")


def test_an_answer_repeating_a_failing_line_is_told_which_and_why():
    _, model, traj = _run(CLAMP, [_go(FIRST), _go(SECOND), _go(SECOND)], max_rounds=3,
                          after_copy="repair")
    round3 = model.prompts[2][-1].content
    assert "repeats a line that already failed" in round3
    assert "`var s string = x`" in round3
    assert "cannot use x (variable of type int) as string value" in round3
    assert any(e["event"] == "repeated_lines" for e in traj.events)
    # Round 2's prompt had nothing repeated to report.
    assert "already failed" not in model.prompts[1][-1].content


def test_repeat_lines_switched_off():
    _, model, _ = _run(CLAMP, [_go(FIRST), _go(SECOND), _go(SECOND)], max_rounds=3,
                       after_copy="repair", off=("repeat-lines",))
    assert "already failed" not in model.prompts[2][-1].content


def test_a_restart_lists_the_lines_that_failed():
    # The same answer twice is a copy: the next round restarts from the task.
    _, model, _ = _run(CLAMP, [_go(FIRST), _go(FIRST), _go(FIRST)], max_rounds=3)
    restart = model.prompts[2][1].content
    assert "do not write them again" in restart
    assert "`var s string = x`" in restart


def test_failed_lines_skip_test_files_and_short_lines():
    res = CheckResult(passed=False, built=False, diagnostics=[
        Diagnostic(file="a.go", line=2, message="boom\nmore", kind=Kind.compile),
        Diagnostic(file="a_test.go", line=1, message="x", kind=Kind.compile),
        Diagnostic(file="a.go", line=1, message="short", kind=Kind.compile),
        Diagnostic(file="a.go", line=9, message="past the end", kind=Kind.compile)])
    got = failed_lines(res, {"a.go": "}\n\tx := y + 1\n", "a_test.go": "package a\n"})
    assert [(f.line, f.text, f.why) for f in got] == [(2, "x := y + 1", "boom")]


# -- local repair ---------------------------------------------------------------------------

PAIR = TaskSpec(
    id="pair",
    prompt="Write `Double(x int) int` and `Half(x int) int`.",
    tests=('import "testing"\n\nfunc TestPair(t *testing.T) {\n'
           '\tif Double(3) != 6 || Half(6) != 3 {\n\t\tt.Fatal("pair")\n\t}\n}\n'),
    reference="func Double(x int) int { return 2 * x }\n\nfunc Half(x int) int { return x / 2 }\n",
)
BROKEN_HALF = ("package sandbox\n\nfunc Double(x int) int {\n\treturn 2 * x\n}\n\n"
               "func Half(x int) int {\n\tvar s string = x\n\treturn s\n}\n")
ONLY_HALF = "```go\nfunc Half(x int) int {\n\treturn x / 2\n}\n```\n"


def test_local_repair_asks_for_the_one_function_and_splices_it_back():
    model = Recorder([_go(BROKEN_HALF), ONLY_HALF])
    traj = Trajectory()
    result = RepairLoop(model, LoopConfig(local_repair=True)).run(problem_from_task(PAIR), traj)
    assert result.solved and result.solved_at_round == 2, result.files
    prompt = model.prompts[1][-1].content
    assert "The problems are in `Half`" in prompt and "Reply with only the corrected" in prompt
    src = result.files["solution.go"]
    assert "return 2 * x" in src and "return x / 2" in src
    assert any(e["event"] == "splice" for e in traj.events)


def test_local_repair_takes_a_whole_file_answer_as_a_whole_file():
    whole = _go(PAIR.with_package(PAIR.reference or ""))
    model = Recorder([_go(BROKEN_HALF), whole])
    traj = Trajectory()
    result = RepairLoop(model, LoopConfig(local_repair=True)).run(problem_from_task(PAIR), traj)
    assert result.solved and result.solved_at_round == 2
    assert not any(e["event"] == "splice" for e in traj.events)


def test_local_repair_off_by_default_asks_for_the_file():
    model = Recorder([_go(BROKEN_HALF), _go(PAIR.with_package(PAIR.reference or ""))])
    RepairLoop(model, LoopConfig()).run(problem_from_task(PAIR), Trajectory())
    assert "complete corrected file" in model.prompts[1][-1].content


# -- test feedback a small model can act on ------------------------------------------------

TABLE = TaskSpec(
    id="abs",
    prompt="Write `Abs(x int) int`.",
    visible_tests=('import "testing"\n\nfunc TestAbs(t *testing.T) {\n'
                   '\tcases := []struct {\n\t\tname string\n\t\tin, want int\n\t}{\n'
                   '\t\t{"positive", 3, 3},\n\t\t{"negative input", -4, 4},\n\t}\n'
                   '\tfor _, c := range cases {\n\t\tt.Run(c.name, func(t *testing.T) {\n'
                   '\t\t\tif got := Abs(c.in); got != c.want {\n'
                   '\t\t\t\tt.Errorf("got %d, want %d", got, c.want)\n\t\t\t}\n\t\t})\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestAbsHidden(t *testing.T) {\n'
           '\tif got := Abs(-9); got != 9 {\n\t\tt.Errorf("SECRET got %d", got)\n\t}\n}\n'),
    reference="func Abs(x int) int {\n\tif x < 0 {\n\t\treturn -x\n\t}\n\treturn x\n}\n",
)
IDENTITY = "```go\npackage sandbox\n\nfunc Abs(x int) int {\n\treturn x\n}\n```\n"


def test_a_failed_subtest_is_shown_with_its_table_row():
    _, model, _ = _run(TABLE, [IDENTITY, _go(TABLE.with_package(TABLE.reference or ""))])
    prompt = model.prompts[1][-1].content
    assert "Test TestAbs/negative_input failed" in prompt
    assert re.search(r"The failing case, visible_test.go line \d+:\n> *\d+ \| .*negative input",
                     prompt)
    assert '{"negative input", -4, 4},' in prompt
    assert "Abs(-9)" not in prompt and "SECRET" not in prompt  # hidden: never in visible mode


def test_all_mode_shows_the_hidden_assertion_line():
    _, model, _ = _run(TABLE, [IDENTITY, _go(TABLE.with_package(TABLE.reference or ""))],
                       feedback="all")
    prompt = model.prompts[1][-1].content
    assert "if got := Abs(-9); got != 9 {" in prompt


def test_splice_replaces_a_method_by_name_and_appends_helpers():
    from agent.golang.source import enclosing_decl, splice_decls
    src = ("package p\n\nimport \"fmt\"\n\ntype T struct{ n int }\n\n// M doubles.\n"
           "func (t *T) M() int {\n\treturn t.n +\n}\n\nfunc F() string { return fmt.Sprint(1) }\n")
    assert enclosing_decl(src, 9).name == "T.M"
    assert enclosing_decl(src, 12).name == "F"
    answer = ('import "strconv"\n\nfunc (t *T) M() int {\n\treturn twice(t.n)\n}\n\n'
              "func twice(n int) int { return 2 * n }\n\nfunc TestX(t *testing.T) {}\n")
    new = splice_decls(src, answer, "T.M")
    assert new is not None
    assert "return twice(t.n)" in new and "return t.n +" not in new
    assert "func twice(n int) int" in new and "TestX" not in new
    assert '"fmt"' in new and '"strconv"' in new and "func F() string" in new
    assert new.index("type T struct") < new.index("func (t *T) M()") < new.index("func F()")
    # Not the name asked for, or the whole file again: no splice.
    assert splice_decls(src, "func G() {}\n", "T.M") is None
    assert splice_decls(src, src.replace("t.n +", "t.n"), "T.M") is None


# -- code first: a repair answer that opens with a test is resampled, stops kept ------------

def _run_recorded(responses: list[str], off: tuple[str, ...] = (), **cfg):
    """The loop on test_loop's task, with the replay model that keeps every sampling."""
    from test_loop import TASK
    from test_loop import Recorder as SamplingRecorder

    model = SamplingRecorder(responses)
    traj = Trajectory()
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], **cfg)
    return RepairLoop(model, config).run(problem_from_task(TASK), traj), model, traj

def test_a_repair_answer_opening_with_a_test_is_resampled_with_its_stops():
    from test_loop import GOOD, LOW_ONLY

    cut = '```go\npackage sandbox\n\nimport (\n\t"testing"\n)\n'  # stopped at "\nfunc Test"
    result, model, traj = _run_recorded( [LOW_ONLY, cut, GOOD], max_rounds=2)
    assert result.solved and result.solved_at_round == 2 and model.calls == 3
    first, again = model.samplings[1], model.samplings[2]
    assert "\nfunc Test" in again.stop  # stops kept: no whole test file this time
    assert again.seed != first.seed and again.temperature >= 0.7
    assert [e["event"] for e in traj.events].count("resample_after_test") == 1
    assert "retry_without_stops" not in [e["event"] for e in traj.events]
    # The cut answer is paid for in round 2.
    assert result.rounds_detail[1].completion_tokens == len(cut) // 4 + len(GOOD) // 4
    assert sum(r.completion_tokens for r in result.rounds_detail) == result.tokens.completion


def test_code_first_falls_back_to_letting_the_model_run_on_and_can_be_switched_off():
    from test_loop import GOOD, LOW_ONLY

    cut = '```go\npackage sandbox\n\nimport (\n\t"testing"\n)\n'
    # Both the answer and its resample open with a test: then the stops go, as before.
    result, model, traj = _run_recorded( [LOW_ONLY, cut, cut, GOOD], max_rounds=2)
    assert result.solved and model.calls == 4
    assert "\nfunc Test" not in model.samplings[3].stop
    assert result.rounds_detail[1].completion_tokens == 2 * (len(cut) // 4) + len(GOOD) // 4
    # Switched off, and in round 1 (single shot stays what it was): straight to run-on.
    result, model, traj = _run_recorded( [LOW_ONLY, cut, GOOD], max_rounds=2,
                               off=("code-first",))
    assert result.solved and "\nfunc Test" not in model.samplings[2].stop
    assert "resample_after_test" not in [e["event"] for e in traj.events]
    result, model, traj = _run_recorded( [cut, GOOD], max_rounds=1)
    assert result.solved and "\nfunc Test" not in model.samplings[1].stop
