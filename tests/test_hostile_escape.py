"""The two critical holes: escaping through the workspace, and passes that were faked.

Model code runs in round 1 and leaves a trap for the harness (a renamed workspace with a
link in its place, files replaced by links, a rewritten go.mod); round 2 must be checked
in a fresh tree and must not touch anything outside. And no verdict, in any command, may
come from what the test binary prints: only the sentinel's secret counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.tasks.harness import TaskHarness
from agent.tasks.spec import TaskSpec
from tools.go import ToolchainError, find_toolchain

try:
    find_toolchain()
except ToolchainError:  # pragma: no cover
    pytest.skip("no Go toolchain", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent

HIDDEN = """
import "testing"

func TestAnswer(t *testing.T) {
	if Answer() != 42 {
		t.Fatalf("Answer() = %d, want 42", Answer())
	}
}
"""
RIGHT = "package sandbox\n\nfunc Answer() int { return 42 }\n"

# test2json framing of a passing run, as the real binary would print it.
FAKE_EVENTS = [
    {"Action": "start", "Package": "PKG"},
    {"Action": "run", "Package": "PKG", "Test": "TestAnswer"},
    {"Action": "output", "Package": "PKG", "Test": "TestAnswer",
     "Output": "=== RUN   TestAnswer\n"},
    {"Action": "output", "Package": "PKG", "Test": "TestAnswer",
     "Output": "--- PASS: TestAnswer (0.00s)\n"},
    {"Action": "pass", "Package": "PKG", "Test": "TestAnswer", "Elapsed": 0},
    {"Action": "output", "Package": "PKG", "Output": "PASS\n"},
    {"Action": "pass", "Package": "PKG", "Elapsed": 0.01},
]


def _forger(package: str, import_path: str, test: str = "TestAnswer", body: str = "") -> str:
    """Go code that prints a passing run from init and exits 0 before any test runs.

    It also tries every file the harness might read a verdict from: any key or sentinel it
    can find in its workspace is copied to every plausible verdict file.
    """
    events = [json.dumps(ev).replace("PKG", import_path).replace("TestAnswer", test)
              for ev in FAKE_EVENTS]
    # The framing test2json turns into events, plain and with the marker byte that
    # `-test.v=test2json` puts before each framing line; then the events themselves.
    framing = [f"=== RUN   {test}", f"--- PASS: {test} (0.00s)", "PASS"]
    printed = framing + ["\x16" + f for f in framing] + events
    lines = "\n".join(f"\tfmt.Println({json.dumps(x)})" for x in printed)
    return f"""package {package}

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

func init() {{
	hex := regexp.MustCompile(`[0-9a-f]{{32,}}`)
	var found [][]byte
	for _, dir := range []string{{".", os.TempDir(), os.Getenv("HOME"), "..", "../tmp"}} {{
		_ = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {{
			if err != nil || info.IsDir() || info.Size() > 1<<20 {{
				return nil
			}}
			if b, err := os.ReadFile(p); err == nil {{
				found = append(found, hex.FindAll(b, -1)...)
				found = append(found, b)
			}}
			return nil
		}})
	}}
	for _, dir := range []string{{os.TempDir(), "../tmp"}} {{
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {{
			for _, f := range found {{
				_ = os.WriteFile(filepath.Join(dir, e.Name()), f, 0o600)
			}}
		}}
		for _, name := range []string{{"guild-verdict", "verdict"}} {{
			for _, f := range found {{
				_ = os.WriteFile(filepath.Join(dir, name), f, 0o600)
			}}
		}}
	}}
{lines}
	os.Exit(0)
}}
{body}"""


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "keep.go").write_text("package victim\n")
    (victim / "sub" / "deep.go").write_text("package sub\n")
    (victim / "notes.txt").write_text("precious\n")
    return victim


def _trap(victim: Path) -> str:
    """Round-1 code: move the workspace away and put links to the victim in its place."""
    return f"""package sandbox

import (
	"os"
	"path/filepath"
)

func init() {{
	victim := {json.dumps(str(victim))}
	wd, _ := os.Getwd()
	// Every file the harness will write next round becomes a link to the victim.
	for _, name := range []string{{"solution.go", "hidden_test.go", "go.mod"}} {{
		_ = os.Remove(name)
		_ = os.Symlink(filepath.Join(victim, "keep.go"), name)
	}}
	_ = os.WriteFile("go.mod", []byte("module sandbox\\n\\ngo 1.99\\n"), 0o644)
	// The folder itself: renamed away, a link to the victim in its place.
	for _, dir := range []string{{wd, filepath.Dir(wd)}} {{
		if os.Rename(dir, dir+"-old") == nil {{
			_ = os.Symlink(victim, dir)
		}}
	}}
	_ = os.Symlink(victim, filepath.Join(filepath.Dir(wd), "tmp", "escape"))
}}

func Answer() int {{ return 41 }}
"""


def test_round_one_traps_do_not_reach_round_two(tmp_path: Path) -> None:
    victim = _victim(tmp_path)
    before = _tree(victim)
    task = TaskSpec(id="escape", prompt="return 42", tests=HIDDEN, test_timeout=5)
    with TaskHarness(task) as h:
        first = h.check({"solution.go": _trap(victim)})
        assert not first.passed
        second = h.check({"solution.go": RIGHT})
        # A fresh tree: the rewritten go.mod, the links and the renamed folder are gone.
        assert second.passed, second.diagnostics
        assert not h.ws.src.is_symlink() and h.ws.src.is_dir()
    assert _tree(victim) == before
    assert sorted(p.name for p in victim.iterdir()) == ["keep.go", "notes.txt", "sub"]
    assert not victim.with_name("victim-old").exists()


def test_own_testmain_task_cannot_be_passed_by_printed_events() -> None:
    tests = HIDDEN + """
func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
"""
    tests = tests.replace('import "testing"', 'import (\n\t"os"\n\t"testing"\n)')
    task = TaskSpec(id="own-main", prompt="return 42", tests=tests, test_timeout=5)
    with TaskHarness(task) as h:
        forged = h.check({"solution.go": _forger("sandbox", "sandbox",
                                                 body="func Answer() int { return 41 }\n")})
        assert not forged.passed
        assert any("not counted as a pass" in d.message for d in forged.diagnostics)
        # The task's own TestMain still works for honest code (no false failure).
        honest = h.check({"solution.go": RIGHT})
        assert honest.passed, honest.diagnostics


def test_testmain_in_external_test_package_still_decides(tmp_path: Path) -> None:
    tests = """package sandbox_test

import (
	"os"
	"testing"

	"sandbox"
)

var ready bool

func TestMain(m *testing.M) {
	ready = true
	code := m.Run()
	os.Exit(code)
}

func TestAnswer(t *testing.T) {
	if !ready || sandbox.Answer() != 42 {
		t.Fatal("wrong")
	}
}
"""
    task = TaskSpec(id="ext-main", prompt="return 42", tests=tests, test_timeout=5)
    with TaskHarness(task) as h:
        assert h.check({"solution.go": RIGHT}).passed
        wrong = h.check({"solution.go": RIGHT.replace("42", "41")})
        assert not wrong.passed and wrong.failed_tests
        forged = h.check({"solution.go": _forger("sandbox", "sandbox_test",
                                                 body="func Answer() int { return 41 }\n")})
        assert not forged.passed


def test_forged_pass_with_a_run_filter() -> None:
    task = TaskSpec(id="forge-run", prompt="return 42", tests=HIDDEN, test_timeout=5)
    with TaskHarness(task) as h:
        forged = h.check({"solution.go": _forger("sandbox", "sandbox",
                                                 body="func Answer() int { return 41 }\n")},
                         run="TestAnswer")
        assert not forged.passed


def test_stand_in_test_functions_do_not_count() -> None:
    """Code that swaps the test binary's tests for its own, under the same names."""
    code = """package sandbox

import (
	"reflect"
	"testing"
	"unsafe"
)

func Answer() int { return 41 }

var Swap = func(m *testing.M) {
	v := reflect.ValueOf(m).Elem().FieldByName("tests")
	v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	for i := 0; i < v.Len(); i++ {
		v.Index(i).Field(1).Set(reflect.ValueOf(func(*testing.T) {}))
	}
}
"""
    # The swap needs the M, which only a TestMain sees: a task whose TestMain hands it
    # to package code stands in for any way of reaching it.
    tests = HIDDEN.replace('import "testing"', 'import "testing"\n\nimport "os"') + """
func TestMain(m *testing.M) {
	Swap(m)
	os.Exit(m.Run())
}
"""
    task = TaskSpec(id="swap", prompt="return 42", tests=tests, test_timeout=5)
    with TaskHarness(task) as h:
        result = h.check({"solution.go": code})
        assert not result.passed


# -- through the real CLI ----------------------------------------------------------------

def _cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=600)


def _module(root: Path) -> Path:
    (root / "calc").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/calcmod\n\ngo 1.22\n")
    (root / "calc" / "calc.go").write_text(
        "package calc\n\nfunc Add(a, b int) int { return a - b }\n")
    (root / "calc" / "calc_test.go").write_text(
        'package calc\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n'
        '\tif Add(2, 3) != 5 {\n\t\tt.Fatal("Add(2, 3) != 5")\n\t}\n}\n')
    return root / "calc" / "calc.go"


def _replay(path: Path, answers: list[str]) -> Path:
    path.write_text(yaml.safe_dump({"responses": answers}))
    return path


def test_fix_dry_run_cannot_be_turned_onto_the_users_tree(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    target = _module(project)
    victim = _victim(tmp_path)
    before, victim_before = _tree(project), _tree(victim)
    # Round 1 moves the scratch package away and links the user's real package (and the
    # victim) in its place; round 2 is an ordinary answer the harness would write there.
    trap = _trap(project / "calc").replace("package sandbox", "package calc").replace(
        "func Answer() int { return 41 }", "func Add(a, b int) int { return a * b }")
    answers = [f"```go\n{trap}```\n",
               "```go\npackage calc\n\nfunc Add(a, b int) int { return a + b + 0 }\n```\n"]
    replay = _replay(tmp_path / "replay.yaml", answers + answers)
    res = _cli("fix", str(target), "--dry-run", "--max-rounds", "2", "--backend", "replay",
               "--replay", str(replay), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert "Traceback" not in res.stderr, res.stderr
    assert _tree(project) == before, "fix --dry-run wrote the user's tree"
    assert _tree(victim) == victim_before
    assert sorted(p.name for p in (project / "calc").iterdir()) == ["calc.go", "calc_test.go"]


def test_fix_yes_does_not_apply_a_forged_pass(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    target = _module(project)
    before = target.read_text()
    forged = _forger("calc", "example.com/calcmod/calc", test="TestAdd",
                     body="func Add(a, b int) int { return a * b }\n")
    replay = _replay(tmp_path / "replay.yaml", [f"```go\n{forged}```\n"] * 4)
    # One token from passing, the user's code would be fixed in round 0, before the forger
    # is asked: the search is off so that the model's code is what gets judged.
    res = _cli("fix", str(target), "--yes", "--max-rounds", "2", "--backend", "replay",
               "--replay", str(replay), "--out", str(tmp_path / "run"),
               "--no-fix", "one-token", cwd=tmp_path)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode != 0, res.stdout
    assert target.read_text() == before, "fix --yes applied code that only printed PASS"


def test_check_cli_with_own_testmain_refuses_a_forged_pass(tmp_path: Path) -> None:
    tests = HIDDEN.replace('import "testing"', 'import (\n\t"os"\n\t"testing"\n)') + (
        "\nfunc TestMain(m *testing.M) { os.Exit(m.Run()) }\n")
    task = tmp_path / "task.yaml"
    task.write_text(yaml.safe_dump({"id": "own-main", "prompt": "return 42", "tests": tests,
                                    "reference": RIGHT}))
    solution = tmp_path / "forged.go"
    solution.write_text(_forger("sandbox", "sandbox", body="func Answer() int { return 41 }\n"))
    res = _cli("check", str(task), "--solution", str(solution), "--json", cwd=tmp_path)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert json.loads(res.stdout)["passed"] is False
    ok = _cli("check", str(task), "--json", cwd=tmp_path)
    assert ok.returncode == 0 and json.loads(ok.stdout)["passed"] is True


def test_a_huge_one_line_panic_becomes_feedback_of_bounded_size() -> None:
    """A 3 MB one-line panic once became a ~786k-token prompt: every piece is capped."""
    from agent.golang.feedback import MAX_FEEDBACK_CHARS, render_feedback, summary_line

    code = ('package sandbox\n\nimport "strings"\n\n'
            'func Answer() int { panic(strings.Repeat("x", 3<<20)) }\n')
    task = TaskSpec(id="flood", prompt="return 42", tests=HIDDEN, test_timeout=20)
    with TaskHarness(task) as h:
        result = h.check({"solution.go": code})
    assert not result.passed
    assert sum(len(d.message) for d in result.diagnostics) > 1 << 20  # the flood arrived
    text, count = render_feedback(result, {"solution.go": code})
    assert count >= 1 and "panic" in text.lower()
    assert len(text) <= MAX_FEEDBACK_CHARS + 100
    assert len(summary_line(result)) < 300


def test_vet_after_the_tests_sees_the_answer_not_what_its_run_left() -> None:
    """fix's extra `go vet` runs after the test binary: code that rewrites its own source
    at run time into something vet accepts must not slip its vet problem past it."""
    from tools.runner import CheckOptions, GoRunner
    from tools.workspace import Workspace

    clean = 'package sandbox\n\nfunc Answer() int { return 42 }\n'
    code = f"""package sandbox

import "os"

func init() {{
	_ = os.WriteFile("solution.go", []byte({json.dumps(clean)}), 0o644)
}}

// go test's own vet subset lets this pass; the full `go vet` does not.
func Twice(x int) int {{
	x = x
	return 2 * x
}}

func Answer() int {{ return 42 }}
"""
    with Workspace() as ws:
        ws.write("solution.go", code)
        ws.write("answer_test.go", "package sandbox\n" + HIDDEN)
        result = GoRunner().check(ws, expected_tests=["TestAnswer"],
                                  options=CheckOptions(full_vet=True, test_timeout=10))
    assert not result.passed
    assert any(d.kind.value == "vet" and "self-assignment" in d.message
               for d in result.diagnostics), result.diagnostics
