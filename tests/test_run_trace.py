"""`run-trace`: a failing test run again under `-coverprofile` says where the code went."""

from __future__ import annotations

import os

from conftest import needs_go, wrong_then_reference

from agent.golang.trace import describe
from agent.loop.checker import Suite
from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskSpec
from tools.diagnostics import CoverBlock
from tools.runner import COVER_CAP, COVER_FILE, read_profile

TASK = TaskSpec(
    id="parse_sign",
    prompt=("Write a Go function\n\n    func Sign(s string) (int, error)\n\nthat returns -1, 0 "
            "or 1 for a decimal integer s (an optional '-' then digits), and an error for "
            "anything else."),
    visible_tests=('import "testing"\n\nfunc TestSignExample(t *testing.T) {\n'
                   '\tif got, err := Sign("-12"); got != -1 || err != nil {\n'
                   '\t\tt.Errorf("Sign(%q) = %d, %v, want -1, nil", "-12", got, err)\n\t}\n}\n'),
    tests=('import "testing"\n\nfunc TestSign(t *testing.T) {\n'
           '\tif got, _ := Sign("0"); got != 0 {\n\t\tt.Fail()\n\t}\n}\n'),
    reference=('import "strconv"\n\nfunc Sign(s string) (int, error) {\n'
               '\tn, err := strconv.Atoi(s)\n\tif err != nil {\n\t\treturn 0, err\n\t}\n'
               '\tswitch {\n\tcase n < 0:\n\t\treturn -1, nil\n\tcase n > 0:\n'
               '\t\treturn 1, nil\n\t}\n\treturn 0, nil\n}\n'),
)
# The digit check rejects the '-' the task allows: the call returns from line 9.
WRONG = '''package sandbox

import "errors"

func Sign(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
	}
	if s[0] == '-' {
		return -1, nil
	}
	if s == "0" {
		return 0, nil
	}
	return 1, nil
}
'''


@needs_go
def test_the_return_taken_its_branch_and_the_lines_never_run():
    with TaskHarness(TASK) as h:
        res = h.check({"solution.go": WRONG}, Suite.visible, run="^TestSignExample$",
                      cover=True)
    assert res.coverage and not res.passed
    trace = describe({"solution.go": WRONG}, res.coverage, "TestSignExample")
    assert trace is not None
    assert trace.returned == [
        'line 9: `return 0, errors.New("not a number")`, '
        "under line 8: `if c < '0' || c > '9' {`"]
    assert trace.unrun == ["in Sign, lines 12-18 never ran"]


def test_describe_counts_repeated_returns_and_skips_what_the_test_never_called():
    src = "package p\n\nfunc F(n int) int {\n\tif n > 0 {\n\t\treturn n\n\t}\n\treturn 0\n}\n"
    blocks = [CoverBlock(file="m/p/f.go", start=3, end=4, count=3),
              CoverBlock(file="m/p/f.go", start=5, end=5, count=2),
              CoverBlock(file="m/p/f.go", start=7, end=7, count=1)]
    trace = describe({"f.go": src, "f_test.go": src}, blocks, "TestF")
    assert trace is not None and trace.unrun == []
    assert trace.returned == ["line 5: `return n` (2 times), under line 4: `if n > 0 {`",
                              "line 7: `return 0`"]
    branches = ("package p\n\nfunc G(n int) int {\n" + "\tif n == 0 {\n\t\tn++\n\t}\n" * 6
                + "\treturn n\n}\n")
    ran = [CoverBlock(file="p/g.go", start=n, end=n, count=1) for n in (3, 4, 7, 10, 13, 16, 19)]
    dark = [CoverBlock(file="p/g.go", start=5 + 3 * k, end=6 + 3 * k, count=0) for k in range(6)]
    ran.append(CoverBlock(file="p/g.go", start=22, end=23, count=1))
    trace = describe({"g.go": branches}, ran + dark, "TestG")
    assert trace is not None and trace.returned == ["line 22: `return n`"]
    assert trace.unrun == ["in G, lines 5-6, 8-9, 11-12, 14-15, … never ran"]
    never = [CoverBlock(file="m/p/f.go", start=3, end=7, count=0)]
    assert describe({"f.go": src}, never, "TestF") is None
    assert describe({"f.go": src}, [], "TestF") is None


def test_a_profile_that_is_a_link_or_too_big_is_ignored(tmp_path):
    good = tmp_path / "good.out"
    good.write_text("mode: count\nm/p/f.go:3.20,4.12 2 1\nm/p/f.go:5.3,5.11 1 0\n")
    assert [(b.start, b.end, b.count) for b in read_profile(good)] == [(3, 4, 1), (5, 5, 0)]
    link = tmp_path / "link.out"
    os.symlink(good, link)
    assert read_profile(link) == []
    big = tmp_path / "big.out"
    big.write_text("mode: count\n" + "m/p/f.go:3.20,4.12 2 1\n" * (COVER_CAP // 20))
    assert read_profile(big) == []
    assert read_profile(tmp_path / "missing.out") == []
    fifo = tmp_path / "fifo.out"  # model code could leave one: opening it must not block
    os.mkfifo(fifo)
    assert read_profile(fifo) == []
    assert read_profile(tmp_path) == []


@needs_go
def test_the_repair_request_says_where_the_failing_test_went():
    # one-token is off: a one-token change passes the example before the request.
    result, model, traj = wrong_then_reference(TASK, WRONG, off=("one-token",))
    assert result.solved and result.solved_at_round == 2
    prompt = model.prompts[1][-1].content
    assert "What your code did when TestSignExample ran" in prompt
    assert "- line 9: `return 0, errors.New(\"not a number\")`, under line 8" in prompt
    assert "- in Sign, lines 12-18 never ran" in prompt
    events = [e for e in traj.events if e["event"] == "trace"]
    assert events and events[0]["test"] == "TestSignExample"


@needs_go
def test_switched_off_the_request_has_no_trace():
    result, model, traj = wrong_then_reference(TASK, WRONG, off=("run-trace", "one-token"))
    assert result.solved and result.solved_at_round == 2
    assert "What your code did" not in model.prompts[1][-1].content
    assert not [e for e in traj.events if e["event"] == "trace"]


# Model code that swaps the profile for a link to a file outside its workspace, before
# the test binary writes it at exit: neither that write nor the host's read may follow it.
PLANTER = WRONG.replace('import "errors"', 'import (\n\t"errors"\n\t"os"\n\t"strings"\n)') + """
func init() {
	// The binary is handed a scratch profile; the go command writes the one the host
	// reads into the run's temp folder, which the code can name.
	for _, p := range []string{os.TempDir() + "/guild-cover.out", coverArg()} {
		if p != "" {
			os.Remove(p)
			os.Symlink(VICTIM, p)
		}
	}
}

func coverArg() string {
	for _, a := range os.Args {
		if p, ok := strings.CutPrefix(a, "-test.coverprofile="); ok {
			return p
		}
	}
	return ""
}
"""


@needs_go
def test_a_profile_swapped_for_a_link_by_model_code_is_neither_written_nor_read(tmp_path):
    victim = tmp_path / "victim.out"
    # A valid profile: if the host followed the link, it would become a trace.
    before = "mode: count\nsandbox/solution.go:9.4,9.40 1 7\n"
    victim.write_text(before)
    src = PLANTER.replace("VICTIM", f'"{victim}"')
    with TaskHarness(TASK) as h:
        res = h.check({"solution.go": src}, Suite.visible, run="^TestSignExample$",
                      cover=True)
        planted = h.ws.tmp / COVER_FILE
        assert planted.is_symlink() and os.readlink(planted) == str(victim)  # it happened
    assert not res.passed
    assert res.coverage == []
    assert victim.read_text() == before
