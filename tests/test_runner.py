"""The Go runner against the real toolchain: what each kind of broken code comes back as.

Every check here runs `go test -json` for real on a warm cache (the module fixture warms
it), so each costs well under a second, except the ones that wait for a timeout on
purpose. Limits stay tight: other people run tests on this machine at the same time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.tasks.harness import TaskHarness, check_task
from agent.tasks.spec import TaskSpec, load_task
from tools.diagnostics import CheckResult, Kind, Outcome
from tools.go import ToolchainError, find_toolchain
from tools.runner import CheckOptions, GoRunner, _testify_reports
from tools.sandbox import Limits
from tools.warm import warm_cache
from tools.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent

ADD_TEST = """\
import "testing"

func TestAdd(t *testing.T) {
	if got := Add(1, 2); got != 3 {
		t.Errorf("Add(1, 2) = %d, want 3", got)
	}
}
"""
GOOD = "package sandbox\n\nfunc Add(a, b int) int { return a + b }\n"
# Tight but not flaky: 4 MB of output is plenty for any honest test.
TIGHT = Limits(output_bytes=4 * 1024 * 1024)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    try:
        find_toolchain()
    except ToolchainError as exc:
        pytest.skip(f"no Go toolchain: {exc}")
    # Timing assertions below assume the standard library is already compiled.
    warm_cache()


def check(solution: str, tests: str = ADD_TEST, *, test_timeout: float = 10.0,
          build_allowance: float = 60.0, limits: Limits = TIGHT) -> tuple[CheckResult, float]:
    """Check one solution.go against one hidden test file; return the result and wall time."""
    task = TaskSpec(id="t", prompt="p", tests=tests, test_timeout=test_timeout)
    runner = GoRunner(CheckOptions(limits=limits, build_allowance=build_allowance))
    start = time.monotonic()
    with TaskHarness(task, runner=runner) as h:
        result = h.check({"solution.go": solution})
    return result, time.monotonic() - start


def only(result: CheckResult, kind: Kind):
    found = [d for d in result.diagnostics if d.kind is kind]
    assert found, f"no {kind.value} diagnostic in {result.diagnostics}\n{result.log[-2000:]}"
    return found[0]


# -- passing ---------------------------------------------------------------------------

def test_good_package_passes_through_workspace_and_runner() -> None:
    with Workspace() as ws:
        ws.write("add.go", GOOD)
        ws.write("add_test.go", "package sandbox\n\n" + ADD_TEST)
        result = GoRunner().check(ws, expected_tests=["TestAdd"])
    assert result.passed, result.diagnostics
    assert result.built and result.exit_code == 0
    assert result.diagnostics == []
    assert [(t.name, t.outcome) for t in result.tests] == [("TestAdd", Outcome.passed)]
    assert 0 < result.seconds < 30


def test_example_task_reference_passes() -> None:
    task = load_task(ROOT / "examples" / "reverse_words.yaml")
    result = check_task(task)
    assert result.passed, result.diagnostics
    assert {t.name for t in result.tests} == {"TestReverseWords", "TestReverseWordsExample"}
    assert result.public()["passed"] is True


# -- build failures --------------------------------------------------------------------

def test_compile_error_has_file_line_column_and_message() -> None:
    result, _ = check("package sandbox\n\nfunc Add(a, b int) int {\n\treturn a + c\n}\n")
    assert not result.passed and not result.built
    d = only(result, Kind.compile)
    assert (d.file, d.line, d.column) == ("solution.go", 4, 13)
    assert d.message == "undefined: c"
    assert str(d) == "solution.go:4:13: undefined: c"


def test_type_error() -> None:
    result, _ = check('package sandbox\n\nfunc Add(a, b int) int {\n\treturn a + "b"\n}\n')
    d = only(result, Kind.compile)
    assert (d.file, d.line) == ("solution.go", 4)
    assert "mismatched types" in d.message or "cannot convert" in d.message, d.message
    assert result.tests == []


def test_unused_import_is_reported_as_such() -> None:
    result, _ = check('package sandbox\n\nimport "os"\n\n' + GOOD.split("\n", 2)[2])
    d = only(result, Kind.compile)
    assert (d.file, d.line, d.column) == ("solution.go", 3, 8)
    assert d.message == '"os" imported and not used'


def test_vet_finding_comes_back_as_vet() -> None:
    src = ('package sandbox\n\nimport "fmt"\n\nfunc Add(a, b int) int {\n'
           '\tfmt.Printf("%d\\n", "two")\n\treturn a + b\n}\n')
    result, _ = check(src)
    assert not result.passed
    d = only(result, Kind.vet)
    assert (d.file, d.line) == ("solution.go", 6)
    assert "%d" in d.message and "string" in d.message
    assert not [x for x in result.diagnostics if x.kind is Kind.compile]


# -- test failures ---------------------------------------------------------------------

def test_failing_test_names_the_test_its_message_and_location() -> None:
    result, _ = check("package sandbox\n\nfunc Add(a, b int) int { return a - b }\n")
    assert not result.passed and result.built
    d = only(result, Kind.test_failure)
    assert d.test == "TestAdd"
    assert d.message == "Add(1, 2) = -1, want 3"
    assert (d.file, d.line) == ("hidden_test.go", 7)  # the package clause is prepended
    assert [t.name for t in result.failed_tests] == ["TestAdd"]


def test_a_message_over_several_lines_comes_back_whole() -> None:
    # test2json marks only a message's first line "error"; the rest are "error-continue".
    tests = ADD_TEST.replace('"Add(1, 2) = %d, want 3", got', '"Add(1, 2)\\n got %d\\nwant 3", got')
    result, _ = check("package sandbox\n\nfunc Add(a, b int) int { return a - b }\n", tests)
    d = only(result, Kind.test_failure)
    assert d.message.splitlines() == ["Add(1, 2)", "got -1", "want 3"]
    assert (d.file, d.line) == ("hidden_test.go", 7)


def test_testify_reports_are_one_line_each() -> None:
    out = ["    x_test.go:10: ", "        \tError Trace:\t/tmp/guild-a/src/x_test.go:10",
           "        \tError:      \tNot equal: ", "        \t            \texpected: 14",
           "        \t            \tactual  : 6", "        \tTest:       \tTestX",
           "        \tMessages:   \tsum of squares",
           "    x_test.go:12: ", "        \tError Trace:\t/tmp/guild-a/src/x_test.go:12",
           "        \tError:      \tNot equal: ", "        \t            \texpected: []int{1}",
           "        \t            \tactual  : []int{2}", "        \t            \t",
           "        \t            \tDiff:", "        \t            \t--- Expected",
           "        \tTest:       \tTestX",
           "    x_test.go:20: plain message", "        next line of it"]
    assert _testify_reports(out) == [
        "    x_test.go:10: Not equal: expected: 14, actual: 6, sum of squares",
        "    x_test.go:12: Not equal: expected: []int{1}, actual: []int{2}",
        "    x_test.go:20: plain message", "        next line of it"]


def test_failing_subtest_reports_the_leaf() -> None:
    tests = """\
import "testing"

func TestAdd(t *testing.T) {
	t.Run("group", func(t *testing.T) {
		t.Run("positive", func(t *testing.T) {
			if Add(1, 2) != 3 {
				t.Error("positive broke")
			}
		})
		t.Run("negative", func(t *testing.T) {
			if got := Add(-1, -2); got != -3 {
				t.Errorf("Add(-1, -2) = %d, want -3", got)
			}
		})
	})
}
"""
    src = ("package sandbox\n\nfunc Add(a, b int) int {\n\tif a < 0 {\n\t\treturn 0\n\t}\n"
           "\treturn a + b\n}\n")
    result, _ = check(src, tests)
    fails = [d for d in result.diagnostics if d.kind is Kind.test_failure]
    # One diagnostic, for the leaf: the parents fail only because it did.
    assert [d.test for d in fails] == ["TestAdd/group/negative"]
    assert fails[0].message == "Add(-1, -2) = 0, want -3"
    outcomes = {t.name: t.outcome for t in result.tests}
    assert outcomes["TestAdd/group/positive"] is Outcome.passed
    assert outcomes["TestAdd/group/negative"] is Outcome.failed


def test_panic_is_located_in_the_solution_file() -> None:
    src = ("package sandbox\n\nfunc Add(a, b int) int {\n\tvar m map[int]int\n"
           "\tm[a] = b\n\treturn a + b\n}\n")
    result, _ = check(src)
    assert not result.passed
    d = only(result, Kind.panic)
    assert d.test == "TestAdd"
    assert (d.file, d.line) == ("solution.go", 5)
    # The testing package's "[recovered, repanicked]" bookkeeping is not shown.
    assert d.message == "panic: assignment to entry in nil map"


def test_blocked_test_times_out_at_the_blocking_line() -> None:
    # Go's deadlock detector never fires inside `go test` (the timeout alarm is a live
    # goroutine), so a blocked channel op is a timeout: it must say where it blocked.
    src = "package sandbox\n\nfunc Add(a, b int) int {\n\tch := make(chan int)\n\treturn <-ch\n}\n"
    result, elapsed = check(src, test_timeout=2)
    assert not result.passed
    d = only(result, Kind.timeout)
    assert d.test == "TestAdd"
    assert (d.file, d.line) == ("solution.go", 5)
    assert [t.name for t in result.failed_tests] == ["TestAdd"]
    assert elapsed < 2 + 6, elapsed


def test_os_exit_zero_in_init_is_not_a_pass() -> None:
    src = ('package sandbox\n\nimport "os"\n\nfunc init() { os.Exit(0) }\n\n'
           + GOOD.split("\n", 2)[2])
    result, _ = check(src)
    assert result.exit_code == 0  # the toolchain itself is fooled ...
    assert not result.passed  # ... the runner is not: TestAdd never reported
    d = only(result, Kind.test_failure)
    assert "TestAdd" in d.message and "did not run" in d.message


# -- runaway code ----------------------------------------------------------------------

def test_infinite_loop_times_out_within_its_limit() -> None:
    limit = 2.0
    src = "package sandbox\n\nfunc Add(a, b int) int {\n\tfor {\n\t\ta++\n\t}\n}\n"
    result, elapsed = check(src, test_timeout=limit)
    assert not result.passed and result.timed_out
    d = only(result, Kind.timeout)
    assert d.test == "TestAdd" and "TestAdd" in d.message
    assert elapsed < limit + 6, elapsed  # build + the Go timeout's own reporting


def test_infinite_loop_in_init_is_killed_by_the_wall_clock() -> None:
    # `go test -timeout` only starts counting once tests run; init is before that, so
    # only the runner's wall clock (test timeout + build allowance) can stop this.
    src = "package sandbox\n\nfunc init() {\n\tfor {\n\t}\n}\n\n" + GOOD.split("\n", 2)[2]
    result, elapsed = check(src, test_timeout=2, build_allowance=4)
    assert not result.passed and result.timed_out
    d = only(result, Kind.timeout)
    assert "wall clock" in d.message
    assert 5.5 < elapsed < 6 + 4, elapsed


def test_one_gigabyte_print_is_cut_off() -> None:
    src = """\
package sandbox

import "os"

func Add(a, b int) int {
	line := make([]byte, 1<<20)
	for i := range line {
		line[i] = 'x'
	}
	for i := 0; i < 1024; i++ { // 1 GB in total
		os.Stdout.Write(line)
	}
	return a + b
}
"""
    result, elapsed = check(src)
    assert not result.passed
    d = only(result, Kind.limit)
    assert "output" in d.message
    assert len(result.log) <= 2 * 64 * 1024 + 100  # the kept log is capped too
    assert elapsed < 15, elapsed


def test_huge_allocation_is_contained() -> None:
    # 50 GB, touched page by page: without the address-space limit this would eat the
    # machine's memory; with it the runtime's first mmap fails.
    src = """\
package sandbox

func Add(a, b int) int {
	buf := make([]byte, 50<<30)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	return a + b + int(buf[0]) - 1
}
"""
    result, elapsed = check(src, limits=Limits(output_bytes=4 << 20, memory_bytes=2 << 30))
    assert not result.passed
    d = only(result, Kind.limit)
    assert "out of memory" in d.message
    assert (d.file, d.line, d.test) == ("solution.go", 4, "TestAdd")
    assert elapsed < 15, elapsed


MARKER = "4242.25"  # an odd sleep length: finds the bomb's children in /proc


def _survivors() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if MARKER.encode() in argv:
            pids.append(int(proc.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_fork_bomb_is_contained() -> None:
    # Spawns processes until the sandbox refuses. A safety cap keeps it harmless where
    # nothing refuses (root without a pids cgroup ignores RLIMIT_NPROC): then it blocks
    # and the timeout ends it. Either way it must fail fast and leave nothing behind.
    bomb = f"""\
package sandbox

import (
	"fmt"
	"os/exec"
	"time"
)

func Add(a, b int) int {{
	for n := 0; n < 600; n++ {{
		if err := exec.Command("sleep", "{MARKER}").Start(); err != nil {{
			panic(fmt.Sprintf("spawn %d refused: %v", n, err))
		}}
	}}
	time.Sleep(time.Hour)
	return a + b
}}
"""
    limit = 3.0
    result, elapsed = check(bomb, test_timeout=limit, build_allowance=20,
                            limits=Limits(output_bytes=4 << 20, processes=128))
    assert not result.passed
    assert elapsed < limit + 10, elapsed
    kinds = {d.kind for d in result.diagnostics}
    assert kinds & {Kind.panic, Kind.timeout, Kind.limit}, result.diagnostics
    if os.geteuid() != 0:  # the process limit applies: the spawning itself is refused
        assert Kind.panic in kinds, result.diagnostics
    deadline = time.monotonic() + 5
    while _survivors() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _survivors() == [], "the bomb's processes outlived the run"


def test_data_race_names_both_accesses():
    from agent.tasks.harness import check_task
    from agent.tasks.spec import TaskSpec

    task = TaskSpec(
        id="racy", race=True, prompt="x",
        tests=('import (\n\t"sync"\n\t"testing"\n)\n\nfunc TestRace(t *testing.T) {\n'
               '\tc := &C{}\n\tvar wg sync.WaitGroup\n\tfor i := 0; i < 4; i++ {\n'
               '\t\twg.Add(1)\n\t\tgo func() { defer wg.Done(); c.Inc() }()\n\t}\n'
               '\twg.Wait()\n}\n'),
        reference="type C struct{ n int }\n\nfunc (c *C) Inc() { c.n++ }\n")
    result = check_task(task)
    assert not result.passed
    d = result.diagnostics[0]
    assert d.message.startswith("data race")
    assert (d.file, d.line) == ("solution.go", 5)
    assert "(*C).Inc" in d.message


def test_a_race_checked_run_records_coverage_too():
    # The race detector refuses count mode; the profile must still come back (run-trace).
    from agent.loop.checker import Suite
    from agent.tasks.harness import TaskHarness
    from agent.tasks.spec import TaskSpec

    task = TaskSpec(
        id="racefree", race=True, prompt="x",
        tests=('import "testing"\n\nfunc TestInc(t *testing.T) {\n\tc := &C{}\n\tc.Inc()\n'
               '\tif c.n != 2 {\n\t\tt.Fatal(c.n)\n\t}\n}\n'),
        reference="type C struct{ n int }\n\nfunc (c *C) Inc() { c.n++ }\n")
    with TaskHarness(task) as h:
        res = h.check({"solution.go": task.with_package(task.reference or "")}, Suite.all,
                      run="^TestInc$", cover=True)
    assert [d.message for d in res.diagnostics] == ["1"]
    assert [(b.start, b.count) for b in res.coverage] == [(5, 1)]
