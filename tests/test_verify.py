"""`bench verify`: the zero-value mutant, per-task verification and the CLI, on the real
toolchain (a few seconds per task on a warm GOCACHE)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import needs_go

from agent.cli import main
from agent.cli.bench import BenchGroup
from agent.tasks.spec import TaskSpec
from agent.tasks.suites import TESTIFY, gocode_root
from agent.tasks.verify import (
    TaskVerification,
    verify_task,
    verify_tasks,
    zero_value_solution,
    zero_value_source,
)
from tools.gofmt import gofmt_source

HEX = Path(__file__).resolve().parent / "data" / "humaneval_x_go_sample.jsonl"

ADD_TESTS = ('import "testing"\n\nfunc TestAdd(t *testing.T) {\n'
             '\tif Add(1, 2) != 3 || Add(-1, 1) != 0 {\n\t\tt.Fatal("wrong")\n\t}\n}\n')
ADD_REF = "func Add(a, b int) int { return a + b }\n"


def _task(id: str = "add", tests: str = ADD_TESTS, reference: str | None = ADD_REF,
          **kw) -> TaskSpec:
    return TaskSpec(id=id, prompt="Write Add.", tests=tests, reference=reference, **kw)


# -- the zero-value solution --------------------------------------------------------------

MANY = """package x

import (
	"errors"
	"strings"
)

type Stack[T any] struct{ items []T }

const Limit = 3

var table = map[string]int{"a": 1}

func (s *Stack[T]) Push(x T) { s.items = append(s.items, x) }

func (s *Stack[T]) Pop() (T, bool) {
	var zero T
	if len(s.items) == 0 {
		return zero, false
	}
	return s.items[0], true
}

func Split(s string) ([]string, map[string]int, error) {
	if s == "" {
		return nil, nil, errors.New("empty")
	}
	return strings.Fields(s), table, nil
}

func DivMod(a, b int) (q, r int) { return a / b, a % b }

func Point() struct{ X, Y float64 } { return struct{ X, Y float64 }{1, 2} }

func Adder() func(int) int { return func(x int) int { return x + Limit } }

func Keys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func init() { table["b"] = 2 }
"""


def test_zero_value_source_blanks_every_body():
    out = zero_value_source(MANY)
    for expected in (
        "func (s *Stack[T]) Push(x T) {}",
        "func (s *Stack[T]) Pop() (T, bool) {\n\treturn *new(T), false\n}",
        "func Split(s string) ([]string, map[string]int, error) {\n"
        "\treturn *new([]string), *new(map[string]int), nil\n}",
        "func DivMod(a, b int) (q, r int) {\n\treturn\n}",
        "func Point() struct{ X, Y float64 } {\n\treturn *new(struct{ X, Y float64 })\n}",
        "func Adder() func(int) int {\n\treturn *new(func(int) int)\n}",
        "func Keys[K comparable, V any](m map[K]V) []K {\n\treturn *new([]K)\n}",
        "func init() {}",
        "type Stack[T any] struct{ items []T }", "const Limit = 3",
    ):
        assert expected in out
    assert "append" not in out and "strings.Fields" not in out


@needs_go
def test_zero_value_solution_parses_and_drops_unused_imports():
    out = zero_value_solution({"x.go": MANY})["x.go"]
    assert "import" not in out
    assert gofmt_source(out) is not None


def test_zero_value_leaves_bodyless_declarations_and_literals():
    src = "package x\n\nfunc asm(x int) int\n\nvar F = func() int { return 1 }\n"
    assert zero_value_source(src) == src


# -- verifying tasks ----------------------------------------------------------------------

@needs_go
def test_sound_task():
    v = verify_task(_task())
    assert v.ok and v.reference_passed and v.wrong_failed and v.wrong_built
    assert v.problem is None and v.fixes == []


@needs_go
def test_weak_tests_are_caught():
    weak = 'import "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(0, 0) != 0 {\n' \
           '\t\tt.Fatal("wrong")\n\t}\n}\n'
    v = verify_task(_task(tests=weak))
    assert not v.ok and v.reference_passed and v.wrong_failed is False
    assert v.problem == "a solution returning zero values passes every test"


@needs_go
def test_broken_reference_is_caught():
    v = verify_task(_task(reference="func Add(a, b int) int { return a - b }\n"))
    assert not v.ok and v.reference_passed is False and v.wrong_failed is None
    assert v.problem == "the reference fails its tests"
    assert any("wrong" in d for d in v.details)
    v = verify_task(_task(reference="func Add(a, b int) int { return a +  }\n"))
    assert v.problem == "the reference does not build" and "solution.go:" in v.details[0]
    v = verify_task(_task(reference=None))
    assert not v.ok and v.problem == "the task has no reference"


@needs_go
def test_edit_task_starter_must_fail():
    buggy = {"add.go": "package sandbox\n\nfunc Add(a, b int) int { return a - b }\n"}
    v = verify_task(_task(files=buggy))
    assert v.ok and v.starter_failed is True
    v = verify_task(_task(files={"add.go": "package sandbox\n\n" + ADD_REF}))
    assert not v.ok and v.starter_failed is False
    assert v.problem == "the starter files (the code to fix) already pass every test"


@needs_go
def test_compiler_driven_import_fixes_rescue_a_reference():
    # `math` is shadowed by a local, so only the compiler can tell the import is unused.
    ref = 'import "math"\n\nfunc Add(a, b int) int {\n\tmath := a\n\treturn math + b\n}\n'
    v = verify_task(_task(reference=ref))
    assert v.ok
    assert [(f.name, f.file, f.detail) for f in v.fixes] == [
        ("unused-imports", "solution.go", 'removed import "math"')]


@needs_go
def test_verify_tasks_keeps_order_and_reports_progress():
    seen: list[str] = []
    tasks = [_task("a"), _task("b", reference="func Add(a, b int) int { return 0 }\n"),
             _task("c")]
    result = verify_tasks(tasks, suite="s", workers=2, on_result=lambda r: seen.append(r.task))
    assert [t.task for t in result.tasks] == ["a", "b", "c"]
    assert sorted(seen) == ["a", "b", "c"]
    assert not result.ok and [t.task for t in result.failures] == ["b"]
    public = result.public()
    assert public["ok"] is False and public["failed"] == 1 and public["tasks"] == 3
    TaskVerification.model_validate(public["results"][0])


# -- the CLI ------------------------------------------------------------------------------

def test_bench_group_falls_through_to_run_only_when_registered():
    @click.group(cls=BenchGroup)
    def grp() -> None:
        pass

    @grp.command()
    def verify() -> None:
        click.echo("verify")

    runner = CliRunner()
    assert runner.invoke(grp, ["verify"]).output == "verify\n"
    assert runner.invoke(grp, ["suite/dir"]).exit_code == 2  # no `run` yet: no such command

    @grp.command()
    @click.argument("suite")
    @click.option("--k", default=1)
    def run(suite: str, k: int) -> None:
        click.echo(f"run {suite} {k}")

    assert runner.invoke(grp, ["suite/dir", "--k", "3"]).output == "run suite/dir 3\n"
    assert runner.invoke(grp, ["verify"]).output == "verify\n"
    assert "Commands:" in runner.invoke(grp, ["--help"]).output


def _suite_dir(tmp_path: Path, *, weak: bool) -> Path:
    good = {"id": "good", "prompt": "p", "tests": ADD_TESTS, "reference": ADD_REF}
    (tmp_path / "good.json").write_text(json.dumps(good))
    if weak:
        weak_tests = ('import "testing"\n\nfunc TestAdd(t *testing.T) {\n'
                      '\tif Add(0, 0) != 0 {\n\t\tt.Fatal()\n\t}\n}\n')
        (tmp_path / "weak.json").write_text(json.dumps({**good, "id": "weak",
                                                        "tests": weak_tests}))
    return tmp_path


@needs_go
def test_cli_verify_json_and_exit_codes(tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(main, ["bench", "verify", str(_suite_dir(tmp_path, weak=True)),
                               "--json"])
    assert res.exit_code == 1, res.output
    data = json.loads(res.output)
    assert data["ok"] is False and data["tasks"] == 2 and data["failed"] == 1
    by_id = {r["task"]: r for r in data["results"]}
    assert by_id["good"]["ok"] and not by_id["weak"]["ok"]
    assert by_id["weak"]["problem"] == "a solution returning zero values passes every test"

    res = runner.invoke(main, ["bench", "verify", str(tmp_path), "--task", "good"])
    assert res.exit_code == 0, res.output
    assert "good" in res.output and "1/1 tasks sound" in res.output


def test_cli_verify_bad_input(tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(main, ["bench", "verify", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such suite" in res.output
    (tmp_path / "s.jsonl").write_text('{"id": "a", "prompt": "p", "tests": "t"}\n')
    res = runner.invoke(main, ["bench", "verify", str(tmp_path / "s.jsonl"), "--task", "zz"])
    assert res.exit_code == 2 and "no task with id 'zz'" in res.output


@needs_go
@pytest.mark.skipif(not (gocode_root() / TESTIFY / "go.mod").is_file(),
                    reason="testify sources missing (golang-github-stretchr-testify-dev)")
def test_cli_verify_humaneval_x_sample():
    """The tasks whose tests import too little or too much pass after the import fixes."""
    res = CliRunner().invoke(main, ["bench", "verify", str(HEX), "--json",
                                    "--task", "Go/3", "--task", "Go/4"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["ok"] and [r["task"] for r in data["results"]] == ["Go/3", "Go/4"]
    assert all(r["fixes"] for r in data["results"])
