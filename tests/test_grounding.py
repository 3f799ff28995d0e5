"""Grounded feedback: facts from the real toolchain's `go doc`, offline, cached per Go
version, never run on an unchecked model-chosen argument."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner
from conftest import Recorder, needs_go

from agent.cli import main
from agent.golang.fixes import FIX_NAMES
from agent.golang.grounding import GoDoc, Grounder, closest, std_path_ok
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import check_task
from agent.tasks.spec import TaskSpec
from tools.go import find_toolchain

pytestmark = needs_go

REVERSE = TaskSpec(
    id="reverse",
    prompt="Write `Reverse(s string) string` returning s with its runes in reverse order.",
    tests=('import "testing"\n\nfunc TestReverse(t *testing.T) {\n'
           '\tif got := Reverse("abc"); got != "cba" {\n\t\tt.Fatalf("got %q", got)\n\t}\n}\n'),
    reference=("func Reverse(s string) string {\n\tr := []rune(s)\n"
               "\tfor i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {\n"
               "\t\tr[i], r[j] = r[j], r[i]\n\t}\n\treturn string(r)\n}\n"),
)
HALLUCINATED = ('package sandbox\n\nimport "strings"\n\n'
                "func Reverse(s string) string {\n\treturn strings.Reverse(s)\n}\n")

MANY = """package sandbox

import (
	"strings"
	"unicode"
)

func F(s string) string {
	m := map[string]int{}
	k := m.Keys()
	var sb strings.Builder
	sb.Add("x")
	n := strings.Split(s)
	ok := unicode.IsLetterOrDigit('a')
	return k + n + ok
}
"""


@pytest.fixture
def grounder(tmp_path):
    return Grounder(GoDoc(tmp_path / "godoc"))


def _facts(grounder: Grounder, src: str) -> list[str]:
    task = TaskSpec(id="g", prompt="p", tests='import "testing"\n\nfunc TestG(t *testing.T) {}\n')
    result = check_task(task, {"solution.go": src})
    return grounder.facts(result.diagnostics, {"solution.go": src})


def test_a_missing_std_function_is_stated_with_real_names(grounder):
    facts = _facts(grounder, HALLUCINATED)
    assert len(facts) == 1
    fact = facts[0]
    assert fact.startswith("package strings has no function or name Reverse.")
    # The same name where it does exist, with its signature from go doc.
    assert "slices.Reverse: func Reverse[S ~[]E, E any](s S)" in fact


def test_methods_on_builtin_and_std_types_and_call_signatures(grounder):
    facts = "\n".join(_facts(grounder, MANY))
    assert "m is a map (map[string]int), a built-in type: it has no methods" in facts
    assert "func Keys[" in facts  # maps.Keys, the real thing
    assert "strings.Builder has no method or field Add" in facts
    assert "func (b *Builder) WriteString(s string) (int, error)" in facts
    assert "strings.Split is declared as:\n    func Split(s, sep string) []string" in facts
    assert "package unicode has no function or name IsLetterOrDigit" in facts
    assert "func IsLetter(r rune) bool" in facts and "func IsDigit(r rune) bool" in facts


def test_closest_prefers_shared_words_and_spelling():
    names = ["IsLetter", "IsDigit", "IsSpace", "ToUpper", "In"]
    assert closest("IsLetterOrDigit", names)[:2] == ["IsLetter", "IsDigit"]
    assert closest("Zzzzzz", names) == []


def test_answers_are_cached_on_disk_per_go_version(tmp_path):
    root = tmp_path / "godoc"
    first = GoDoc(root).query("strings", "Split")
    assert first and "func Split(s, sep string) []string" in first
    version_dir = root / find_toolchain().version
    cached = list(version_dir.iterdir())
    assert len(cached) == 1
    # A second instance answers from the disk cache, not the toolchain.
    cached[0].write_text("func Split(from the cache)")
    assert GoDoc(root).query("strings", "Split") == "func Split(from the cache)"
    # "No such symbol" is an answer too, and cached.
    assert GoDoc(root).query("strings", "Reverse") is None
    assert len(list(version_dir.iterdir())) == 2


@pytest.mark.parametrize("path, symbol", [
    ("-short", None), ("strings", "-u"), ("../../etc", None), ("github.com/x/y", None),
    ("internal/abi", None), ("strings;rm", None), ("nosuchpkg", None), ("strings", "lower"),
    ("strings", "Split Join"), ("cmd/go", None), ("Strings", None), ("", None),
    ("strings", "Split\n-exec"),
])
def test_go_doc_never_runs_on_an_unchecked_argument(tmp_path, monkeypatch, path, symbol):
    find_toolchain()  # located before watching: only go doc calls count
    ran: list = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a) or real(*a, **k))
    doc = GoDoc(tmp_path / "godoc")
    assert doc.query(path, symbol) is None
    assert ran == [] and not (tmp_path / "godoc").exists()


def test_std_path_ok():
    assert std_path_ok("strings") and std_path_ok("unicode/utf8")
    assert not std_path_ok("golang.org/x/exp") and not std_path_ok("crypto/internal/fips140")


HOSTILE = ('package sandbox\n\nimport evil "strings/../../../etc"\n\n'
           "func Reverse(s string) string {\n\treturn evil.Reverse(s)\n}\n")


def test_a_hostile_import_path_gets_no_go_doc(grounder, tmp_path):
    assert _facts(grounder, HOSTILE) == []
    assert not (tmp_path / "godoc").exists()


# -- through the loop, with scripted answers ---------------------------------------------------

def _loop(responses: list[str], off: tuple[str, ...] = (), **cfg):
    model = Recorder(responses)
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], **cfg)
    result = RepairLoop(model, config).run(problem_from_task(REVERSE), Trajectory())
    return result, model


GOOD = "```go\n" + REVERSE.with_package(REVERSE.reference or "") + "```\n"
BAD = "```go\n" + HALLUCINATED + "```\n"


def test_repair_prompt_names_real_functions_for_a_hallucinated_one():
    result, model = _loop([BAD, GOOD])
    assert result.solved
    prompt = model.prompts[1][-1].content
    assert "Facts from the task and the Go documentation:" in prompt
    assert "package strings has no function or name Reverse." in prompt
    assert "slices.Reverse" in prompt


def test_restart_prompt_carries_the_facts():
    _, model = _loop([BAD, BAD, BAD], max_rounds=3)
    restart = model.prompts[2][1].content  # a copy: round 3 starts again from the task
    assert REVERSE.prompt.split()[0] in restart
    assert "package strings has no function or name Reverse." in restart


def test_grounding_switched_off():
    _, model = _loop([BAD, GOOD], off=("grounding",))
    assert "Facts from the task and the Go documentation" not in model.prompts[1][-1].content


def test_solve_accepts_no_fix_for_each_lever(tmp_path):
    task = tmp_path / "t.yaml"
    task.write_text(REVERSE.model_dump_json())
    script = tmp_path / "replay.yaml"
    script.write_text("responses:\n  - |\n" + "".join(
        f"    {ln}\n" for ln in GOOD.splitlines()))
    args = ["solve", str(task), "--backend", "replay", "--replay", str(script),
            "--out", str(tmp_path / "out")]
    for lever in ("never-worse", "grounding", "repeat-lines"):
        args += ["--no-fix", lever]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output


def test_a_restart_keeps_facts_from_earlier_rounds():
    type_error = ("```go\npackage sandbox\n\nfunc Reverse(s string) string {\n"
                  "\tvar n int = s\n\treturn n\n}\n```\n")
    result, model = _loop([BAD, type_error, type_error, GOOD], max_rounds=4)
    assert result.solved and result.solved_at_round == 4
    restart = model.prompts[3][1].content
    assert "package strings has no function or name Reverse." in restart


def test_a_field_and_method_of_one_name_is_explained(grounder):
    src = ("package sandbox\n\ntype Account struct{ Balance int }\n\n"
           "func (a *Account) Balance() int { return a.Balance }\n")
    facts = _facts(grounder, src)
    assert any("cannot have a field and a method both named Balance" in f
               and "`balance`" in f for f in facts), facts


# -- the task's own signatures ---------------------------------------------------------------

COUNT = TaskSpec(
    id="count_words",
    prompt=("Write a Go function\n\n    func CountWords(s string) map[string]int\n\n"
            "that counts how often each space-separated word occurs in s."),
    tests=('import "testing"\n\nfunc TestCountWords(t *testing.T) {\n'
           '\tif got := CountWords("a b a"); got["a"] != 2 || got["b"] != 1 {\n'
           '\t\tt.Fatalf("got %v", got)\n\t}\n}\n'),
    reference=('import "strings"\n\nfunc CountWords(s string) map[string]int {\n'
               "\tm := map[string]int{}\n\tfor _, w := range strings.Fields(s) {\n"
               "\t\tm[w]++\n\t}\n\treturn m\n}\n"),
)
WRONG_RESULT = ('```go\npackage sandbox\n\nimport "strings"\n\n'
                "func CountWords(text string) []string {\n\treturn strings.Fields(text)\n}\n```\n")
RENAMED = ("```go\npackage sandbox\n\nfunc WordCount(s string) map[string]int {\n"
           "\treturn nil\n}\n```\n")


def _count_loop(responses: list[str], off: tuple[str, ...] = ()):
    model = Recorder(responses)
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off], max_rounds=3)
    result = RepairLoop(model, config).run(problem_from_task(COUNT), Trajectory())
    return result, model


def test_a_changed_signature_is_named_against_the_tasks_and_carried_into_restarts():
    good = "```go\n" + COUNT.with_package(COUNT.reference or "") + "```\n"
    result, model = _count_loop([WRONG_RESULT, WRONG_RESULT, good])
    assert result.solved_at_round == 3
    fact = ("The task declares `func CountWords(s string) map[string]int`; solution.go "
            "declares `func CountWords(text string) []string`.")
    assert fact in " ".join(model.prompts[1][-1].content.split())
    # The copy in round 2 makes round 3 a fresh sample: the fact goes with it.
    assert fact in " ".join(model.prompts[2][1].content.split())
    _, model = _count_loop([WRONG_RESULT, good], off=("signatures",))
    assert "The task declares" not in model.prompts[1][-1].content


def test_a_renamed_function_is_named_and_a_renamed_parameter_is_not():
    _, model = _count_loop([RENAMED, RENAMED])
    assert ("The task declares `func CountWords(s string) map[string]int`, and your code "
            "does not define CountWords") in " ".join(model.prompts[1][-1].content.split())
    other_name = WRONG_RESULT.replace("[]string {\n\treturn strings.Fields(text)",
                                      "map[string]int {\n\treturn strings.Fields(text)")
    _, model = _count_loop([other_name, other_name])
    assert "The task declares" not in model.prompts[1][-1].content  # types match: no fact
