"""one-token: each one-token change to the lines the tests ran, tried by the toolchain."""

from __future__ import annotations

from conftest import Recorder, needs_go, wrong_then_reference

from agent.golang import mutants, trace
from agent.golang.fixes import FIX_NAMES
from agent.loop.checker import Suite
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import HIDDEN_FAIL_NOTE, RepairLoop
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskSpec
from tools.diagnostics import Kind

TASK = TaskSpec(
    id="page_of",
    prompt=("Write a Go function\n\n    func Page(items []int, page, size int) []int\n\n"
            "that returns page number `page` of items, `size` items a page. Pages are "
            "numbered from 1; a page past the end is empty (nil)."),
    visible_tests=('import (\n\t"reflect"\n\t"testing"\n)\n\n'
                   'func TestPageExample(t *testing.T) {\n'
                   '\tif got := Page([]int{1, 2, 3, 4, 5}, 1, 2); '
                   '!reflect.DeepEqual(got, []int{1, 2}) {\n'
                   '\t\tt.Errorf("Page(1..5, 1, 2) = %v, want [1 2]", got)\n\t}\n}\n'),
    tests=('import (\n\t"reflect"\n\t"testing"\n)\n\n'
           'func TestPage(t *testing.T) {\n'
           '\tif got := Page([]int{1, 2, 3, 4, 5}, 3, 2); !reflect.DeepEqual(got, []int{5}) {\n'
           '\t\tt.Fail()\n\t}\n'
           '\tif got := Page([]int{1, 2, 3}, 4, 1); got != nil {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=('func Page(items []int, page, size int) []int {\n'
               '\tstart := (page - 1) * size\n\tif start >= len(items) {\n\t\treturn nil\n\t}\n'
               '\treturn items[start:min(start+size, len(items))]\n}\n'),
)
# Pages taken as numbered from 0: one name off by one.
WRONG = '''package sandbox

// Page returns page `page` of items ("<=" in a comment is no operator).
func Page(items []int, page, size int) []int {
	start := page * size
	if start >= len(items) {
		return nil
	}
	return items[start:min(start+size, len(items))]
}
'''


def test_changes_stay_on_the_lines_that_ran_and_come_likeliest_first():
    found = mutants.mutants({"solution.go": WRONG}, {"solution.go": {5, 6}})
    assert found, "the lines hold a comparison, names and arithmetic"
    assert {m.line for m in found} == {5, 6}
    assert found[0].after == "\tif start > len(items) {"  # a comparison's bound first
    assert "\tstart := (page - 1) * size" in [m.after for m in found]
    for m in found:  # one token changed, the rest of the file as it was
        assert m.source.replace(m.after, m.before, 1) == WRONG
        assert "//" not in m.after
    # The declared name is not changed, nor the comment's "<=".
    assert not any(m.after.startswith("\t(start") for m in found)
    assert mutants.mutants({"solution.go": WRONG}, {"solution.go": {3}}) == []


def test_conditions_turned_round_come_after_the_bounds_and_numbers():
    src = ("package p\n\nfunc F(a, b int) bool {\n\tok := true\n"
           "\tif min(a, b) < 3 && ok {\n\t\treturn false\n\t}\n\treturn a > b\n}\n")
    found = [(m.line, m.after.strip()) for m in
             mutants.mutants({"p.go": src}, {"p.go": {4, 5, 6, 8}})]
    assert found[:2] == [(5, "if min(a, b) <= 3 && ok {"), (8, "return a >= b")]
    flips = {(4, "ok := false"), (5, "if max(a, b) < 3 && ok {"), (5, "if min(a, b) > 3 && ok {"),
             (5, "if min(a, b) < 3 || ok {"), (6, "return true"), (8, "return a < b")}
    assert flips <= set(found)
    assert max(found.index(f) for f in found[:2]) < min(found.index(f) for f in flips)


def test_the_count_is_capped():
    src = "package p\n\nfunc F(a, b int) bool {\n" + "\treturn a < b && a+1 > b-2\n" * 30 + "}\n"
    lines = {"p.go": set(range(4, 34))}
    assert len(mutants.mutants({"p.go": src}, lines)) == mutants.MAX_MUTANTS
    assert len(mutants.mutants({"p.go": src}, lines, limit=5)) == 5


@needs_go
def test_an_off_by_one_answer_is_repaired_without_asking_again():
    result, model, traj = wrong_then_reference(TASK, WRONG)
    assert result.solved and result.solved_at_round == 1
    assert len(model.prompts) == 1  # the second answer was never needed
    assert "(page - 1) * size" in result.files["solution.go"]
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] == ("solution.go line 5: `start := page * size` → "
                          "`start := (page - 1) * size`")
    assert 1 <= ev["tried"] <= ev["candidates"] <= mutants.MAX_MUTANTS
    assert any(f.startswith("one-token solution.go line 5") for f in
               result.rounds_detail[0].fixes)
    assert not result.raw_solved_round1


@needs_go
def test_switched_off_or_single_shot_the_answer_stays_the_models():
    result, model, traj = wrong_then_reference(TASK, WRONG, off=("one-token",))
    assert result.solved and result.solved_at_round == 2
    assert "start := page * size" in model.prompts[1][-2].content  # its own code
    assert not [e for e in traj.events if e["event"] == "one_token"]
    # Single shot: one answer, judged as written (after the fixes proper).
    model = Recorder(["```go\n" + WRONG + "```\n"])
    config = LoopConfig(fixes=list(FIX_NAMES), candidates=1, max_rounds=1)
    traj = Trajectory()
    result = RepairLoop(model, config).run(problem_from_task(TASK), traj)
    assert not result.solved
    assert not [e for e in traj.events if e["event"] == "one_token"]


@needs_go
def test_a_change_that_only_passes_some_tests_is_not_kept():
    # Wrong three times over: 0-based pages, one item too many and a page past the end
    # read. Two chained changes cannot fix that, and a change that only makes some tests
    # pass is not kept: the model is asked again, shown its own code.
    wrong = WRONG.replace("start+size", "start+size+1").replace(
        "start >= len(items)", "start > len(items)")
    result, model, traj = wrong_then_reference(TASK, wrong)
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] is None and ev["tried"] == ev["candidates"] > 0
    assert result.solved and result.solved_at_round == 2
    assert "(page - 1)" not in model.prompts[1][-2].content
    # The same code again is not searched again.
    assert len([e for e in traj.events if e["event"] == "one_token"]) == 1


@needs_go
def test_a_change_that_passes_the_examples_but_not_every_test_is_dropped():
    # 0-based pages and no nil past the end: the one-token change passes the example and
    # the hidden tests still fail. On one example such changes are mostly fitted to it
    # (`% 24` → `% 23`), so the model is shown its own code and its real failure, not
    # "other tests fail".
    wrong = WRONG.replace("\tif start >= len(items) {\n\t\treturn nil\n\t}\n", "")
    result, model, traj = wrong_then_reference(TASK, wrong)
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] and "(page - 1)" in ev["kept"]
    verdicts = [e for e in traj.events if e["event"] == "check" and e["stage"] == "verdict"]
    assert verdicts and not verdicts[0]["result"]["passed"]
    dropped = next(e for e in traj.events if e["event"] == "one_token_dropped")
    assert dropped["round"] == 1 and dropped["change"] == ev["kept"]
    first = result.rounds_detail[0]
    assert not first.passed and not first.feedback_passed and first.one_token is None
    assert not any(f.startswith("one-token") for f in first.fixes)
    code, repair = model.prompts[1][-2].content, model.prompts[1][-1].content
    assert "start := page * size" in code and "(page - 1)" not in code
    assert "Page(1..5, 1, 2) = [3 4], want [1 2]" in repair
    assert HIDDEN_FAIL_NOTE not in repair
    # What the change does tell, where the example goes wrong, is said as a fact.
    assert ("`start := page * size` is where TestPageExample's input goes wrong: with "
            "`start := (page - 1) * size` in its place TestPageExample passes, but other "
            "tests of the task fail.") in repair
    assert result.solved and result.solved_at_round == 2


def test_fix_searches_the_users_code_before_asking_the_model(tmp_path):
    from test_fix import FIXED, WRONG, fence, make_module, run_fix

    # The user's `a - b`: `-` → `+` passes the package's tests, so the fix is found in
    # round 0, before any model call, shown and written.
    target = make_module(tmp_path / "m", source=WRONG)
    code, out, events = run_fix(tmp_path, [str(target), "--yes"], [fence(WRONG), fence(FIXED)])
    assert code == 0, out
    assert target.read_text() == FIXED
    assert [e for e in events if e["event"] == "request"] == []
    searched = [e for e in events if e["event"] == "one_token"]
    assert [e["round"] for e in searched] == [0]
    result = next(e for e in events if e["event"] == "result")["result"]
    assert result["solved_at_round"] == 0 and result["tokens"]["completion"] == 0
    shown = " ".join(out.split())  # the console wraps long lines
    assert "round 0 one-token changes to the code as given: 5 of 5 tried" in shown
    assert "kept calc.go line 6: `return a - b` → `return a + b`" in shown


def test_fix_asks_the_model_when_the_search_finds_nothing_and_not_again_on_a_copy(tmp_path):
    from test_fix import FIXED, WRONG, fence, make_module, run_fix

    # Two slips in one line: no one or two changes pass. The model hands the file back
    # unchanged first (the search is not run on it again), then writes the fix.
    wrong = WRONG.replace("a - b", "a*0 - b")
    target = make_module(tmp_path / "m", source=wrong)
    code, out, events = run_fix(tmp_path, [str(target), "--yes"], [fence(wrong), fence(FIXED)])
    assert code == 0, out
    assert target.read_text() == FIXED
    assert len([e for e in events if e["event"] == "request"]) == 2
    searched = [e for e in events if e["event"] == "one_token"]
    assert [e["round"] for e in searched] == [0] and searched[0]["kept"] is None
    assert searched[0]["tried"] > 0


def test_fix_with_an_instruction_searches_a_bug_but_not_code_yet_to_write(tmp_path):
    from test_fix import FIXED, TESTS, WRONG, fence, make_module, run_fix

    # A bug report as the instruction: the code builds and fails, and round 0 fixes it.
    target = make_module(tmp_path / "m", source=WRONG)
    code, out, events = run_fix(tmp_path, [str(target), "--yes", "-i", "Add subtracts"],
                                [fence(WRONG)])
    assert code == 0, out
    assert target.read_text() == FIXED
    assert [e["round"] for e in events if e["event"] == "one_token"] == [0]
    assert [e for e in events if e["event"] == "request"] == []

    # An instruction for code not written yet: the tests do not build, nothing is searched
    # and the model writes it.
    again = tmp_path / "again"
    tests = TESTS + ("\nfunc TestSub(t *testing.T) {\n\tif Sub(5, 3) != 2 {\n"
                     "\t\tt.Fatal(\"Sub\")\n\t}\n}\n")
    target = make_module(again / "m", source=WRONG, tests=tests)
    with_sub = FIXED + "\n// Sub returns a minus b.\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n"
    code, out, events = run_fix(again, [str(target), "--yes", "-i", "add Sub; fix Add"],
                                [fence(with_sub)])
    assert code == 0, out
    assert target.read_text() == with_sub
    assert len([e for e in events if e["event"] == "request"]) == 1
    assert [e for e in events if e["event"] == "one_token"] == []


SUM_TASK = TaskSpec(
    id="sum_all", prompt="Write `func Sum(xs []int) int`: the sum of xs.",
    visible_tests=('import "testing"\n\nfunc TestSumExample(t *testing.T) {\n'
                   '\tif got := Sum([]int{1, 2, 3}); got != 6 {\n'
                   '\t\tt.Errorf("Sum = %d, want 6", got)\n\t}\n}\n'),
    tests='import "testing"\n\nfunc TestSum(t *testing.T) {\n\tif Sum(nil) != 0 {\n'
          '\t\tt.Fail()\n\t}\n}\n',
    reference="func Sum(xs []int) int {\n\ts := 0\n\tfor _, x := range xs {\n\t\ts += x\n"
              "\t}\n\treturn s\n}\n")


@needs_go
def test_a_panicking_test_leaves_no_profile_and_its_function_is_searched():
    wrong = ("package sandbox\n\nfunc Sum(xs []int) int {\n\ts := 0\n"
             "\tfor i := 0; i <= len(xs); i++ {\n\t\ts += xs[i]\n\t}\n\treturn s\n}\n")
    with TaskHarness(SUM_TASK) as h:
        res = h.check({"solution.go": wrong}, Suite.visible, cover=True)
    assert any(d.kind is Kind.panic for d in res.diagnostics)
    assert trace.ran_lines({"solution.go": wrong}, res.coverage) == {}
    spots = [(d.file, d.line) for d in res.diagnostics if d.file and d.line]
    assert trace.enclosing_lines({"solution.go": wrong}, spots) == {
        "solution.go": set(range(2, 10))}  # from the blank line before the declaration
    result, model, traj = wrong_then_reference(SUM_TASK, wrong)
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] == ("solution.go line 5: `for i := 0; i <= len(xs); i++ {` → "
                          "`for i := 0; i < len(xs); i++ {`")


def test_bench_single_shot_read_off_round_one_does_not_count_the_change(tmp_path):
    import yaml
    from test_bench_run import fence, invoke, make_suite, summary_of

    # Greedy repair's round 1 is the single shot's answer; `a - b` → `a + b` passes it in
    # round 1 of repair, and the single shot stays a failure.
    suite = make_suite(tmp_path, ["add"])
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"responses": [
        fence("func Add(a, b int) int { return a - b }")]}))
    out = tmp_path / "run"
    res = invoke([str(suite), "--replay", str(script), "--modes", "single,repair",
                  "--max-rounds", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    s = summary_of(out)
    assert s["modes"]["repair"]["solved_by_round"]["1"] == 1
    assert s["modes"]["single"]["solved"] == 0
    assert s["modes"]["single"]["first_failures"] == {"test-failure": 1}


WRAP_TASK = TaskSpec(
    id="find_wraps",
    prompt=("Write `func Find(m map[string]int, k string) (int, error)`, whose error for a "
            "missing key wraps ErrMissing as `find \"k\": missing`, and `func Lookup(m "
            "map[string]int, k string) int`, -1 for a missing key."),
    visible_tests=('import (\n\t"errors"\n\t"testing"\n)\n\n'
                   'func TestFindWraps(t *testing.T) {\n'
                   '\t_, err := Find(map[string]int{}, "x")\n'
                   '\tif !errors.Is(err, ErrMissing) || err.Error() != `find "x": missing` {\n'
                   '\t\tt.Errorf("Find = %v", err)\n\t}\n}\n\n'
                   'func TestLookup(t *testing.T) {\n'
                   '\tif got := Lookup(map[string]int{"a": 2}, "x"); got != -1 {\n'
                   '\t\tt.Errorf("Lookup = %d, want -1", got)\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestLookupFound(t *testing.T) {\n'
           '\tif Lookup(map[string]int{"a": 2}, "a") != 2 {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=('import (\n\t"errors"\n\t"fmt"\n)\n\nvar ErrMissing = errors.New("missing")\n\n'
               'func Find(m map[string]int, k string) (int, error) {\n'
               '\tv, ok := m[k]\n\tif !ok {\n'
               '\t\treturn 0, fmt.Errorf("find %q: %w", k, ErrMissing)\n\t}\n'
               '\treturn v, nil\n}\n\n'
               'func Lookup(m map[string]int, k string) int {\n\tv, err := Find(m, k)\n'
               '\tif errors.Is(err, ErrMissing) {\n\t\treturn -1\n\t}\n\treturn v\n}\n'),
)
# The error made with %v, and compared by identity: two slips, each a test's failure.
WRAP_WRONG = ("package sandbox\n\n" + WRAP_TASK.reference
              .replace("%w", "%v").replace("errors.Is(err, ErrMissing)", "err == ErrMissing"))


def test_error_idioms_are_among_the_changes_with_their_import():
    lines = {"e.go": set(range(1, 40))}
    found = {m.after.strip() for m in mutants.mutants({"e.go": WRAP_WRONG}, lines, limit=200)}
    assert 'return 0, fmt.Errorf("find %q: %w", k, ErrMissing)' in found
    assert "if errors.Is(err, ErrMissing) {" in found
    assert 'return 0, fmt.Errorf("find %w: %v", k, ErrMissing)' not in found  # only %v, %s
    # `!=` turns into a negated call; a sentinel on the left is the target; the import
    # is added when the file has none of package errors.
    src = ('package p\n\nimport "io"\n\nfunc Done(err error) bool {\n'
           '\treturn io.EOF != err\n}\n')
    [m] = [m for m in mutants.mutants({"p.go": src}, {"p.go": {6}}) if "errors" in m.after]
    assert m.after == "\treturn !errors.Is(err, io.EOF)"
    assert '"errors"' in m.source and '"io"' in m.source
    # Not a sentinel, or compared with nil: left alone.
    plain = "package p\n\nfunc F(a, err error) bool {\n\treturn a == err || err != nil\n}\n"
    assert not [m for m in mutants.mutants({"p.go": plain}, {"p.go": {4}}) if "errors" in m.after]


@needs_go
def test_two_slips_are_fixed_by_two_chained_changes():
    result, model, traj = wrong_then_reference(WRAP_TASK, WRAP_WRONG)
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] == (
        'solution.go line 13: `return 0, fmt.Errorf("find %q: %v", k, ErrMissing)` → '
        '`return 0, fmt.Errorf("find %q: %w", k, ErrMissing)`; '
        "solution.go line 20: `if err == ErrMissing {` → `if errors.Is(err, ErrMissing) {`")
    assert len([f for f in result.rounds_detail[0].fixes if f.startswith("one-token")]) == 2


COUNT_TASK = TaskSpec(
    id="word_counts",
    prompt="A `Counts` type whose zero value is ready: `Add(w string)`, `N(w string) int`.",
    visible_tests=('import "testing"\n\nfunc TestCounts(t *testing.T) {\n'
                   '\tvar c Counts\n\tc.Add("a")\n\tc.Add("a")\n'
                   '\tif c.N("a") != 2 || c.N("b") != 0 {\n\t\tt.Errorf("N = %d", c.N("a"))\n'
                   '\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestCountsMany(t *testing.T) {\n\tvar c Counts\n'
           '\tfor i := 0; i < 3; i++ {\n\t\tc.Add("x")\n\t}\n'
           '\tif c.N("x") != 3 {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=('type Counts struct {\n\tseen map[string]int // by word\n}\n\n'
               'func (c *Counts) Add(w string) {\n\tif c.seen == nil {\n'
               '\t\tc.seen = make(map[string]int)\n\t}\n\tc.seen[w]++\n}\n\n'
               'func (c *Counts) N(w string) int { return c.seen[w] }\n'),
)

FIELDS_TASK = TaskSpec(
    id="split_pair",
    prompt=("Write `func SplitPair(s string) (key string, n int, err error)`: \"k:3\" "
            "gives k and 3; anything without ':' is an error."),
    visible_tests=('import "testing"\n\nfunc TestSplitPair(t *testing.T) {\n'
                   '\tif k, n, err := SplitPair("a:3"); k != "a" || n != 3 || err != nil {\n'
                   '\t\tt.Errorf("SplitPair(a:3) = %q, %d, %v", k, n, err)\n\t}\n'
                   '\tdefer func() {\n\t\tif r := recover(); r != nil {\n'
                   '\t\t\tt.Errorf("SplitPair(a) panicked: %v", r)\n\t\t}\n\t}()\n'
                   '\tif _, _, err := SplitPair("a"); err == nil {\n'
                   '\t\tt.Error("SplitPair(a): no error")\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestSplitPairNumber(t *testing.T) {\n'
           '\tif _, _, err := SplitPair("b:x"); err == nil {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=('import (\n\t"errors"\n\t"strconv"\n\t"strings"\n)\n\n'
               'func SplitPair(s string) (key string, n int, err error) {\n'
               '\tparts := strings.Split(s, ":")\n\tif len(parts) < 2 {\n'
               '\t\treturn "", 0, errors.New("no colon")\n\t}\n'
               '\tn, err = strconv.Atoi(parts[1])\n\treturn parts[0], n, err\n}\n'),
)


@needs_go
def test_a_panic_names_its_guard_and_the_guard_is_inserted():
    # A nil map written to: made before the write, with the type of its declaration.
    wrong = COUNT_TASK.with_package(COUNT_TASK.reference.replace(
        "\tif c.seen == nil {\n\t\tc.seen = make(map[string]int)\n\t}\n", ""))
    result, model, traj = wrong_then_reference(COUNT_TASK, wrong)
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] == ("solution.go line 8: `c.seen[w]++` → `if c.seen == nil { c.seen = "
                          "make(map[string]int) } c.seen[w]++`")
    # A fixed index past the end, in a function that returns an error: the error. The
    # test recovers from the panic, so only its message says where: the lines that ran.
    wrong = FIELDS_TASK.with_package(FIELDS_TASK.reference.replace(
        '\tif len(parts) < 2 {\n\t\treturn "", 0, errors.New("no colon")\n\t}\n', "")
        .replace('\t"errors"\n', ""))
    result, model, traj = wrong_then_reference(FIELDS_TASK, wrong)
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    code = result.files["solution.go"]
    assert ('\tif len(parts) <= 1 {\n\t\treturn "", 0, errors.New("SplitPair: parts has no '
            'element 1")\n\t}\n\tn, err = strconv.Atoi(parts[1])') in code
    assert '"errors"' in code


def test_guards_take_the_declared_type_and_the_index_the_panic_names():
    src = ("package p\n\ntype T struct{ x int }\n\n"
           "func Put(m map[string][]int, k string) {\n\tm[k] = append(m[k], 1)\n}\n\n"
           "func Get(xs []T, i int) (T, *T, error) {\n\treturn xs[2], &xs[0], nil\n}\n\n"
           "func Bare(xs []int) int {\n\treturn xs[2]\n}\n")
    none: dict[str, set[int]] = {}
    [m] = mutants.guards({"p.go": src}, none, [("p.go", 6, "assignment to entry in nil map")])
    assert m.after == ("\tif m == nil {\n\t\tm = make(map[string][]int)\n\t}\n"
                       "\tm[k] = append(m[k], 1)")
    index = "panic: runtime error: index out of range [2] with length 1"
    [m] = mutants.guards({"p.go": src}, none, [("p.go", 10, index)])
    assert 'return *new(T), nil, errors.New("Get: xs has no element 2")' in m.after
    # No error to return: the zero values.
    [m] = mutants.guards({"p.go": src}, none, [("p.go", 14, index)])
    assert m.after == "\tif len(xs) <= 2 {\n\t\treturn 0\n\t}\n\treturn xs[2]"
    assert mutants.guards({"p.go": src}, none, [("p.go", 14, index.replace("[2]", "[3]"))]) == []
    # A panic a test recovered from has no place: it is looked for on the lines that ran.
    ran = {"p.go": {6, 10, 14}}
    assert [m.line for m in mutants.guards({"p.go": src}, ran, [(None, None, index)])] == [10, 14]
    assert mutants.guards({"p.go": src}, ran, [(None, None, "got 1 want 2")]) == []


def test_a_nil_pointer_or_a_zero_divisor_returns_early():
    src = ('package p\n\nimport "fmt"\n\ntype Node struct {\n\tVal  int\n\tNext *Node\n}\n\n'
           "func Sum(n *Node) int {\n\treturn n.Val + Sum(n.Next)\n}\n\n"
           "func Avg(xs []int, t int) (int, error) {\n\treturn t / len(xs), nil\n}\n\n"
           'func Show(n *Node, k int) {\n\tfmt.Println(n.Next.Val, "a.b", k%n.Val)\n}\n')
    nil = "panic: runtime error: invalid memory address or nil pointer dereference"
    got = [m.after for m in mutants.guards({"p.go": src}, {}, [("p.go", 11, nil)])]
    assert got == ["\tif n == nil {\n\t\treturn 0\n\t}\n\treturn n.Val + Sum(n.Next)"]
    zero = "panic: runtime error: integer divide by zero"
    [m] = mutants.guards({"p.go": src}, {}, [("p.go", 15, zero)])
    assert m.after.startswith('\tif len(xs) == 0 {\n\t\treturn 0, errors.New("Avg: xs is empty")')
    # Either link of a chain may be the nil one; a package name and a string are not.
    got = [m.after.split("\n")[0] for m in mutants.guards({"p.go": src}, {}, [("p.go", 19, nil)])]
    assert got == ["\tif n == nil {", "\tif n.Next == nil {"]
    [m] = mutants.guards({"p.go": src}, {}, [("p.go", 19, zero)])
    assert m.after.startswith("\tif n.Val == 0 {\n\t\treturn\n\t}")


def test_a_slice_bound_outside_the_slice_is_held_inside_it():
    src = ("package p\n\nfunc F(s string, xs []int, i, n int) (string, []int) {\n"
           "\tt := s[:len(s)-1]\n"
           "\treturn s[i+1:], xs[i:i+n] // xs[i:n]\n}\n")

    def clamps(line, message):
        return [m.after.strip() for m in mutants.guards({"p.go": src}, {}, [
            ("p.go", line, "panic: runtime error: slice bounds out of range " + message)])]

    # An end past the end: clamped to len, on the expression with an explicit end only
    # (the comment's look-alike is not code).
    assert clamps(5, "[:7] with capacity 5") == [
        "return s[i+1:], xs[i:min(i+n, len(xs))] // xs[i:n]"]
    assert clamps(5, "[:9] with length 4") == clamps(5, "[:7] with capacity 5")
    # A start past the end (the end left out is len): lowered to the end.
    assert clamps(5, "[4:3]") == ["return s[min(i+1, len(s)):], xs[i:i+n] // xs[i:n]",
                                  "return s[i+1:], xs[min(i, i+n):i+n] // xs[i:n]"]
    # An end below 0 (`s[:len(s)-1]` of ""): raised to 0.
    assert clamps(4, "[:-1]") == ["t := s[:max(len(s)-1, 0)]"]
    # A start below 0: raised to 0, where a start is written.
    assert clamps(5, "[-1:]") == ["return s[max(i+1, 0):], xs[i:i+n] // xs[i:n]",
                                  "return s[i+1:], xs[max(i, 0):i+n] // xs[i:n]"]
    assert clamps(4, "[-1:]") == []
    # Nested brackets and calls inside a bound stay one expression; a full slice
    # expression and a plain index are not slices to clamp.
    src2 = "package p\n\nfunc G(a, b []int, f func(int) int) []int {\n\treturn a[f(b[0]):b[1]]\n}\n"
    [m] = mutants.guards({"p.go": src2}, {}, [
        ("p.go", 4, "slice bounds out of range [:3] with capacity 2")])
    assert m.after == "\treturn a[f(b[0]):min(b[1], len(a))]"
    src3 = "package p\n\nfunc H(a []int) []int {\n\treturn a[1:2:3]\n}\n"
    assert mutants.guards({"p.go": src3}, {}, [
        ("p.go", 4, "slice bounds out of range [:3] with capacity 2")]) == []


def test_a_computed_index_past_the_end_is_checked_first_in_its_condition():
    src = ("package p\n\nfunc Close(s string, i int) bool {\n"
           "\tif s[i+1] == ')' || s[i] == ']' {\n\t\treturn true\n\t}\n"
           "\tx := s[i+2]\n\treturn x == 'a'\n}\n")

    def guards(line, index):
        message = f"panic: runtime error: index out of range [{index}] with length 4"
        return [m.after.strip() for m in mutants.guards({"p.go": src}, {}, [
            ("p.go", line, message)])]

    # Each computed index in turn, first in the condition (an `||` kept whole), then as
    # an early return for the function's zero value.
    assert guards(4, 4) == [
        "if i+1 < len(s) && (s[i+1] == ')' || s[i] == ']') {",
        "if i < len(s) && (s[i+1] == ')' || s[i] == ']') {",
        "if i+1 >= len(s) {\n\t\treturn false\n\t}\n\tif s[i+1] == ')' || s[i] == ']' {",
        "if i >= len(s) {\n\t\treturn false\n\t}\n\tif s[i+1] == ')' || s[i] == ']' {"]
    # Not in a condition: only the early return. Below 0: the other side.
    assert guards(7, 4) == ["if i+2 >= len(s) {\n\t\treturn false\n\t}\n\tx := s[i+2]"]
    assert guards(7, -1) == ["if i+2 < 0 {\n\t\treturn false\n\t}\n\tx := s[i+2]"]
    # The runtime prints a negative index without the length.
    [m] = mutants.guards({"p.go": src}, {}, [
        ("p.go", 7, "panic: runtime error: index out of range [-1]")])
    assert m.after.startswith("\tif i+2 < 0 {")


PAIRS_TASK = TaskSpec(
    id="doubled",
    prompt="Write `func Doubled(s string) int`: how many i have s[i] == s[i+1].",
    visible_tests=('import "testing"\n\nfunc TestDoubled(t *testing.T) {\n'
                   '\tif got := Doubled("aabccc"); got != 3 {\n'
                   '\t\tt.Errorf("Doubled(aabccc) = %d, want 3", got)\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestDoubledEmpty(t *testing.T) {\n'
           '\tif Doubled("") != 0 || Doubled("a") != 0 {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=("func Doubled(s string) int {\n\tn := 0\n\tfor i := 0; i < len(s); i++ {\n"
               "\t\tif i+1 < len(s) && s[i] == s[i+1] {\n\t\t\tn++\n\t\t}\n\t}\n"
               "\treturn n\n}\n"),
)


@needs_go
def test_a_lookahead_past_the_end_is_guarded_in_its_condition_without_asking_again():
    wrong = PAIRS_TASK.with_package(PAIRS_TASK.reference.replace("i+1 < len(s) && ", ""))
    result, model, traj = wrong_then_reference(PAIRS_TASK, wrong)
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] == ("solution.go line 6: `if s[i] == s[i+1] {` → "
                          "`if i+1 < len(s) && s[i] == s[i+1] {`")


CHUNK_TASK = TaskSpec(
    id="chunks",
    prompt="Write `func Chunks(xs []int, n int) [][]int`: xs cut into runs of n, the last shorter.",
    visible_tests=('import (\n\t"reflect"\n\t"testing"\n)\n\n'
                   'func TestChunks(t *testing.T) {\n'
                   '\tgot := Chunks([]int{1, 2, 3, 4, 5}, 2)\n'
                   '\tif !reflect.DeepEqual(got, [][]int{{1, 2}, {3, 4}, {5}}) {\n'
                   '\t\tt.Errorf("Chunks = %v", got)\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestChunksEven(t *testing.T) {\n'
           '\tif got := Chunks([]int{1, 2, 3}, 3); len(got) != 1 || len(got[0]) != 3 {\n'
           '\t\tt.Fail()\n\t}\n}\n'),
    reference=("func Chunks(xs []int, n int) [][]int {\n\tvar out [][]int\n"
               "\tfor i := 0; i < len(xs); i += n {\n"
               "\t\tout = append(out, xs[i:min(i+n, len(xs))])\n\t}\n\treturn out\n}\n"),
)


@needs_go
def test_a_chunk_loop_slicing_past_the_end_is_clamped_without_asking_again():
    wrong = CHUNK_TASK.with_package(CHUNK_TASK.reference.replace(
        "xs[i:min(i+n, len(xs))]", "xs[i:i+n]"))
    result, model, traj = wrong_then_reference(CHUNK_TASK, wrong)
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] == ("solution.go line 6: `out = append(out, xs[i:i+n])` → "
                          "`out = append(out, xs[i:min(i+n, len(xs))])`")


LIST_TASK = TaskSpec(
    id="list_len",
    prompt="Write `func Len(n *Node) int`, the length of the list from n (nil is empty).",
    visible_tests=('import "testing"\n\nfunc TestLen(t *testing.T) {\n'
                   '\tif got := Len(&Node{Next: &Node{}}); got != 2 {\n'
                   '\t\tt.Errorf("Len = %d, want 2", got)\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestLenNil(t *testing.T) {\n'
           '\tif Len(nil) != 0 {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=("type Node struct {\n\tNext *Node\n}\n\nfunc Len(n *Node) int {\n"
               "\tif n == nil {\n\t\treturn 0\n\t}\n\treturn 1 + Len(n.Next)\n}\n"),
)


@needs_go
def test_a_nil_pointer_panic_is_guarded_and_judged_by_every_test():
    wrong = LIST_TASK.with_package(LIST_TASK.reference.replace(
        "\tif n == nil {\n\t\treturn 0\n\t}\n", ""))
    result, model, traj = wrong_then_reference(LIST_TASK, wrong)
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    ev = next(e for e in traj.events if e["event"] == "one_token")
    assert ev["kept"] == ("solution.go line 8: `return 1 + Len(n.Next)` → "
                          "`if n == nil { return 0 } return 1 + Len(n.Next)`")
