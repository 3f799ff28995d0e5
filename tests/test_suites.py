"""Suite loading: directories, task files, JSONL, and the research log / HumanEval-X importers.

`tests/data/humaneval_x_go_sample.jsonl` is a hand-written file in HumanEval-X's exact Go
format (the published file cannot be fetched here): seven small tasks of our own, five of
which import too much or too little in the solution or the tests, as the real file does.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from conftest import Recorder, needs_go

from agent.golang.fixes import FIX_NAMES
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import Suite, check_task
from agent.tasks.spec import TaskError
from agent.tasks.suites import (
    TESTIFY,
    detect_format,
    gocode_root,
    load_suite,
)
from agent.tasks.suites import testify_requirements as requirements_for_testify

DATA = Path(__file__).resolve().parent / "data"
HEX = DATA / "humaneval_x_go_sample.jsonl"
HAVE_TESTIFY = (gocode_root() / TESTIFY / "go.mod").is_file()
needs_testify = pytest.mark.skipif(
    not HAVE_TESTIFY, reason="testify sources missing (golang-github-stretchr-testify-dev)")

TASK_YAML = """\
prompt: Write Add.
tests: |
  import "testing"
  func TestAdd(t *testing.T) { if Add(1, 2) != 3 { t.Fatal() } }
reference: "func Add(a, b int) int { return a + b }"
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- native suites --------------------------------------------------------------------------

def test_directory_is_recursive_sorted_and_skips_drafts(tmp_path: Path):
    _write(tmp_path / "b" / "two.yaml", TASK_YAML)
    _write(tmp_path / "a" / "one.yml", TASK_YAML)
    _write(tmp_path / "zero.json", json.dumps({"id": "zero", "prompt": "p", "tests": "t"}))
    _write(tmp_path / "_drafts" / "draft.yaml", "not: [valid")
    _write(tmp_path / ".hidden.yaml", "not: [valid")
    _write(tmp_path / "README.md", "# notes")
    suite = load_suite(tmp_path)
    assert [t.id for t in suite.tasks] == ["one", "two", "zero"]
    assert suite.format == "tasks" and suite.name == tmp_path.name
    assert [t.id for t in load_suite(tmp_path).tasks] == ["one", "two", "zero"]  # stable


def test_duplicate_ids_are_an_error(tmp_path: Path):
    _write(tmp_path / "a" / "add.yaml", TASK_YAML)
    _write(tmp_path / "b" / "add.yaml", TASK_YAML)
    with pytest.raises(TaskError, match=r"b/add.yaml: duplicate task id 'add' \(also in .*a/add"):
        load_suite(tmp_path)


def test_single_files(tmp_path: Path):
    assert [t.id for t in load_suite(_write(tmp_path / "add.yaml", TASK_YAML)).tasks] == ["add"]
    many = _write(tmp_path / "many.json", json.dumps(
        [{"id": "x", "prompt": "p", "tests": "t"}, {"prompt": "p", "tests": "t"}]))
    assert [t.id for t in load_suite(many).tasks] == ["x", "many-1"]


def test_errors_name_file_and_line(tmp_path: Path):
    with pytest.raises(TaskError, match="no such suite"):
        load_suite(tmp_path / "missing")
    with pytest.raises(TaskError, match="no task files"):
        load_suite(_write(tmp_path / "empty" / "x.txt", "").parent)
    bad = _write(tmp_path / "bad.jsonl",
                 '{"id": "a", "prompt": "p", "tests": "t"}\n\n{"id": "b", "prompt": \n')
    with pytest.raises(TaskError, match=r"bad.jsonl:3: invalid JSON"):
        load_suite(bad)
    missing = _write(tmp_path / "m.jsonl", '{"id": "a", "prompt": "p", "tests": "t"}\n'
                                           '{"id": "b", "prompt": "p"}\n')
    with pytest.raises(TaskError, match=r"m.jsonl:2: field 'tests' is required"):
        load_suite(missing)
    yaml_err = _write(tmp_path / "y" / "t.yaml", "prompt: [unclosed\n")
    with pytest.raises(TaskError, match=r"t.yaml: YAML syntax error at line 2"):
        load_suite(yaml_err.parent)
    with pytest.raises(TaskError, match="not a suite file"):
        load_suite(_write(tmp_path / "x.txt", "hello"))


def test_native_jsonl(tmp_path: Path):
    lines = [{"id": "a", "prompt": "p", "tests": "t", "package": "lib"},
             {"prompt": "p", "tests": "t"}]
    f = _write(tmp_path / "s.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    suite = load_suite(f)
    assert [t.id for t in suite.tasks] == ["a", "s-2"]
    assert suite.tasks[0].package == "lib" and suite.name == "s"


# -- the research log's format ------------------------------------------------------------

RESEARCH_TESTS = ('package wordfreq\n\nimport "testing"\n\nfunc TestTop(t *testing.T) {\n'
                  '\tif Top("a b a") != "a" {\n\t\tt.Fatal("want a")\n\t}\n}\n')
RESEARCH_REF = ('package wordfreq\n\nimport "strings"\n\nfunc Top(s string) string {\n'
                '\tc := map[string]int{}\n\tbest := ""\n\tfor _, w := range strings.Fields(s) {\n'
                '\t\tc[w]++\n\t\tif c[w] > c[best] {\n\t\t\tbest = w\n\t\t}\n\t}\n'
                '\treturn best\n}\n')


def test_research_log_format(tmp_path: Path):
    row = {"id": "wordfreq-1", "prompt": "Write Top.", "reference": RESEARCH_REF,
           "metadata": {"module": "example.com/wordfreq", "tests": RESEARCH_TESTS}}
    assert detect_format(row) == "research-log"
    f = _write(tmp_path / "log.jsonl", json.dumps(row) + "\n")
    suite = load_suite(f)
    assert suite.format == "research-log"
    task = suite.tasks[0]
    assert (task.id, task.package, task.tests) == ("wordfreq-1", "wordfreq", RESEARCH_TESTS)
    assert task.reference_solution() == {"solution.go": RESEARCH_REF}
    bad = _write(tmp_path / "bad.jsonl", json.dumps({**row, "metadata": {"tests": ""}}) + "\n")
    with pytest.raises(TaskError, match=r"bad.jsonl:1: field 'metadata.tests'"):
        load_suite(bad)


@needs_go
def test_research_log_task_runs():
    row = {"id": "r", "prompt": "p", "reference": RESEARCH_REF,
           "metadata": {"module": "wordfreq", "tests": RESEARCH_TESTS}}
    from agent.tasks.suites import research_log_task
    assert check_task(research_log_task(row, "x:1", "r")).passed


# -- HumanEval-X ----------------------------------------------------------------------------

def _rows() -> list[dict]:
    return [json.loads(line) for line in HEX.read_text().splitlines()]


def test_fixture_is_in_humaneval_x_format():
    keys = {"task_id", "prompt", "import", "docstring", "declaration", "canonical_solution",
            "test", "test_setup", "example_test"}
    for row in _rows():
        assert set(row) == keys and detect_format(row) == "humaneval-x"
        assert "package" not in row["prompt"] and row["test_setup"].startswith("package main")
        assert row["prompt"].endswith(row["declaration"].lstrip("\n"))


@needs_testify
def test_humaneval_x_import(tmp_path: Path):
    suite = load_suite(HEX)
    assert suite.format == "humaneval-x" and suite.name == "humaneval_x_go_sample"
    assert [t.id for t in suite.tasks] == [f"Go/{i}" for i in range(7)]
    t0 = suite.task("Go/0")
    assert t0.package == "main" and "```go\n// Return the sum" in t0.prompt
    # the example test shares the hidden test's name: renamed so both files build together
    assert "func TestAddExamples(t *testing.T)" in t0.visible_tests
    assert "func TestAdd(t *testing.T)" in t0.tests
    assert {r.module for r in t0.go_mod.require} == {
        TESTIFY, "github.com/davecgh/go-spew", "github.com/pmezard/go-difflib",
        "github.com/stretchr/objx", "gopkg.in/yaml.v3"}
    fixes = {tid: sorted((f.file, f.detail) for f in fs) for tid, fs in suite.fixes.items()}
    assert fixes == {
        "Go/1": [("solution.go", 'removed import "math"')],
        "Go/2": [("solution.go", 'added import "strings"')],
        "Go/3": [("hidden_test.go", 'added import "math"'),
                 ("visible_test.go", 'added import "math"')],
        "Go/4": [("hidden_test.go", 'removed import "strings"'),
                 ("visible_test.go", 'removed import "strings"')],
        "Go/5": [("solution.go", 'added import "strconv"')],
    }
    # a parameter named `strings` must not attract an import
    assert "import" not in suite.task("Go/6").reference
    # the gzipped file is read the same way
    gz = tmp_path / "humaneval_go.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(HEX.read_text())
    assert load_suite(gz).tasks == suite.tasks


def test_missing_testify_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GUILD_AGENT_GOCODE", str(tmp_path / "nowhere"))
    with pytest.raises(TaskError, match=r"humaneval_x_go_sample.jsonl:1: the tests import "
                                        r"testify, but .*nowhere.* GUILD_AGENT_GOCODE"):
        load_suite(HEX)
    with pytest.raises(TaskError, match="testify-dev"):
        load_suite(HEX, gocode=tmp_path)


@needs_testify
def test_testify_dependencies_come_from_its_go_mod(tmp_path: Path):
    root = tmp_path / "src"
    shutil.copytree(gocode_root() / TESTIFY, root / TESTIFY)
    with pytest.raises(TaskError, match=r"testify needs github\.com/davecgh/go-spew"):
        requirements_for_testify(root)


@needs_go
@needs_testify
def test_naive_assembly_fails_and_the_import_fixer_repairs_it():
    """Go/3's test uses math without importing it: as published it does not build."""
    row = _rows()[3]
    suite = load_suite(HEX)
    task = suite.task("Go/3")
    naive = task.model_copy(update={"tests": row["test_setup"] + row["test"]})
    reference = {"solution.go": "package main\n\n" + row["prompt"] + row["canonical_solution"]}
    broken = check_task(naive, reference, suite=Suite.hidden)
    assert not broken.built
    assert "undefined: math" in {d.message for d in broken.diagnostics}
    assert check_task(task, suite=Suite.all).passed


@needs_go
@pytest.mark.skipif(not HAVE_TESTIFY, reason="testify sources missing")
def test_a_testify_failure_reaches_the_model_as_its_values_and_line():
    # testify writes its whole report on continuation lines; the model once got only
    # "test failed" for every HumanEval-X Go failure.
    task = next(t for t in load_suite(HEX).tasks if t.id == "Go/1")
    body = "\ts := 0\n\tfor _, n := range numbers {\n\t\ts += {}\n\t}\n\treturn s\n"
    answer = "```go\npackage main\n\nfunc SumSquares(numbers []int) int {\n{}}\n```\n"
    model = Recorder([answer.replace("{}", body.replace("{}", "n"), 1),
                      answer.replace("{}", body.replace("{}", "n * n"), 1)])
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f != "one-token"], candidates=1)
    result = RepairLoop(model, config).run(problem_from_task(task), Trajectory())
    assert result.solved and result.solved_at_round == 2
    prompt = model.prompts[1][-1].content
    assert "Not equal: expected: 14, actual: 6" in prompt
    assert ">  10 |     assert.Equal(14, SumSquares([]int{1, 2, 3}))" in prompt
    assert "Error Trace" not in prompt and "test failed" not in prompt
