"""`guild-agent fix`: real modules in temp dirs, the real Go toolchain, scripted answers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import agent.fix.session as fixlib
from agent.cli import main
from agent.fix.session import FixRequest, FixSession, StaleFileError, apply_changes, locate, undo
from agent.golang.edits import EditMode, EditRules, choose_modes, parse_edit_answer
from agent.golang.extract import FormatError

BROKEN = """// Package calc does arithmetic.
package calc

// Add returns a plus b.
func Add(a, b int) int {
\treturn a + b +
}
"""
FIXED = BROKEN.replace("return a + b +", "return a + b")
WRONG = BROKEN.replace("return a + b +", "return a - b")
TESTS = """package calc

import "testing"

func TestAdd(t *testing.T) {
\tif got := Add(2, 3); got != 5 {
\t\tt.Fatalf("Add(2, 3) = %d, want 5", got)
\t}
}
"""


def fence(src: str, name: str | None = None) -> str:
    head = f"// file: {name}\n" if name else ""
    return f"Here is the fix:\n```go\n{head}{src.rstrip()}\n```\n"


# The user's `a - b` is one token from passing, and the search on the code as given
# (round 0) would fix it before any model call; tests of the model's rounds turn it off.
NO_SEARCH = ["--no-fix", "one-token"]


def make_module(root: Path, source: str = BROKEN, tests: str = TESTS) -> Path:
    """A module with the package in a subdirectory (so the package path matters)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text("module example.com/calcmod\n\ngo 1.22\n")
    (root / "calc").mkdir(parents=True)
    (root / "calc" / "calc.go").write_text(source)
    (root / "calc" / "calc_test.go").write_text(tests)
    (root / "README.md").write_text("not Go\n")
    return root / "calc" / "calc.go"


def tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def _backups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "backups"
    monkeypatch.setenv(fixlib.BACKUPS_ENV, str(d))
    return d


def run_fix(tmp_path: Path, args: list[str], responses: list[str],
            input: str | None = None) -> tuple[int, str, list[dict]]:
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump({"responses": responses}))
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["fix", *args, "--backend", "replay", "--replay",
                                    str(replay), "--out", str(out)], input=input)
    traj = out / "trajectory.jsonl"
    events = [json.loads(ln) for ln in traj.read_text().splitlines()] if traj.exists() else []
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output, events


# -- end to end through the command ------------------------------------------------------

def test_compile_error_fixed_applied_and_undone(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    before = target.read_bytes()
    os.chmod(target, 0o640)
    code, out, events = run_fix(tmp_path, [str(target), "--yes"], [fence(FIXED)])
    assert code == 0, out
    assert target.read_text() == FIXED
    assert oct(target.stat().st_mode & 0o777) == "0o640"  # mode kept
    assert re.search(r"^\+\s+return a \+ b$", out, re.M) and "applied" in out
    start = next(e for e in events if e["event"] == "fix_start")
    assert start["edit_modes"] == {"calc.go": "whole"}
    code, out, _ = run_fix(tmp_path, [str(target), "--undo"], [])
    assert code == 0, out
    assert target.read_bytes() == before
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    code, out, _ = run_fix(tmp_path, [str(target), "--undo"], [])
    assert code == 2 and "no backup" in out


def test_failing_test_fixed_after_feedback(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m", source=WRONG)
    # First answer is still wrong: the test failure must go back to the model.
    code, out, events = run_fix(tmp_path, [str(target), "--yes", *NO_SEARCH],
                                [fence(WRONG.replace("a - b", "a * b")), fence(FIXED)])
    assert code == 0, out
    assert target.read_text() == FIXED
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) == 2
    first_prompt = requests[0]["messages"][-1]["content"]
    assert "Add(2, 3) = -1, want 5" in first_prompt  # the initial check is in the task
    assert "TestAdd" in requests[1]["messages"][-1]["content"]


def test_the_failing_test_is_traced_in_the_users_package(tmp_path: Path) -> None:
    # run-trace in a package below the module root: the profile names the file by its
    # import path, the model knows it by its name in the package.
    target = make_module(tmp_path / "m", source=WRONG)
    code, out, events = run_fix(tmp_path, [str(target), "--yes", *NO_SEARCH],
                                [fence(WRONG.replace("a - b", "a * b")), fence(FIXED)])
    assert code == 0, out
    traced = [e for e in events if e["event"] == "trace"]
    assert traced and traced[0]["test"] == "TestAdd"
    prompt = [e for e in events if e["event"] == "request"][1]["messages"][-1]["content"]
    assert "What your code did when TestAdd ran" in prompt
    assert "- line 6: `return a * b`" in prompt


def test_the_users_code_shows_its_values_and_is_written_without_our_prints(tmp_path: Path
                                                                          ) -> None:
    # run-values in a user's package: the request shows what each line computed; the
    # prints live only in the sandbox's copy, never in the user's file.
    halved = BROKEN.replace("return a + b +", "s := (a + b) / 2\n\treturn s")
    target = make_module(tmp_path / "m", source=halved)
    answer = halved.replace("(a + b) / 2", "a * b * 2")  # no one-token change fixes it
    code, out, events = run_fix(tmp_path, [str(target), "--yes", *NO_SEARCH],
                                [fence(answer), fence(FIXED)])
    assert code == 0, out
    assert target.read_text() == FIXED
    prompt = [e for e in events if e["event"] == "request"][1]["messages"][-1]["content"]
    assert "- line 6: `s := a * b * 2` → s = 12" in prompt
    assert not [p for p in (tmp_path / "m").rglob("*") if p.is_file()
                and b"guildValue" in p.read_bytes()]


def test_tests_are_quoted_not_shown_whole_unless_asked(tmp_path: Path) -> None:
    # A second test the failure does not touch: its body must not reach the prompt.
    tests = TESTS + (
        "\nfunc TestUntouched(t *testing.T) {\n\tif Add(0, 0) != 0 {\n"
        "\t\tt.Fatal(\"zero\")\n\t}\n}\n")
    target = make_module(tmp_path / "m", source=WRONG, tests=tests)
    code, out, events = run_fix(tmp_path, [str(target), "--yes", *NO_SEARCH],
                                [fence(WRONG.replace("a - b", "a * b")), fence(FIXED)])
    assert code == 0, out
    requests = [e for e in events if e["event"] == "request"]
    first, second = (r["messages"][-1]["content"] for r in requests)
    assert "// file: calc_test.go" not in first and "TestUntouched" not in first
    # The failing check's own line is quoted, in the task and in the repair feedback.
    assert 't.Fatalf("Add(2, 3) = %d, want 5", got)' in first
    assert 't.Fatalf("Add(2, 3) = %d, want 5", got)' in second
    assert "TestUntouched" not in second

    again = tmp_path / "again"
    target = make_module(again / "m", source=WRONG, tests=tests)
    code, out, events = run_fix(again, [str(target), "--yes", "--show-tests", *NO_SEARCH],
                                [fence(FIXED)])
    assert code == 0, out
    first = next(e for e in events if e["event"] == "request")["messages"][-1]["content"]
    assert "// file: calc_test.go" in first and "TestUntouched" in first


def test_a_do_nothing_unused_variable_is_removed_even_if_the_model_copies_it(
        tmp_path: Path) -> None:
    unused = FIXED.replace("\treturn a + b\n", "\tcount := 0\n\treturn a + b\n")
    target = make_module(tmp_path / "m", source=unused)
    # The model hands the file back unchanged; the deterministic fix does the rest.
    code, out, events = run_fix(tmp_path, [str(target), "--yes"], [fence(unused)])
    assert code == 0, out
    assert target.read_text() == FIXED  # the line is gone, no `_ = count`
    fixes = [f["name"] for e in events if e["event"] == "fix" for f in e["fixes"]]
    assert fixes == ["unused-decls"]


def test_instruction_applied(tmp_path: Path) -> None:
    tests = TESTS + ("\nfunc TestSub(t *testing.T) {\n\tif Sub(5, 3) != 2 {\n"
                     "\t\tt.Fatal(\"Sub\")\n\t}\n}\n")
    target = make_module(tmp_path / "m", source=FIXED, tests=tests)
    git = shutil.which("git")
    if git:
        subprocess.run([git, "init", "-q", str(tmp_path / "m")], check=True)
    new = FIXED + "\n// Sub returns a minus b.\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n"
    code, out, events = run_fix(tmp_path, [str(target), "--instruction",
                                           "Add a Sub(a, b int) int function.", "--yes"],
                                [fence(new)])
    assert code == 0, out
    assert target.read_text() == new
    prompt = next(e for e in events if e["event"] == "request")["messages"][-1]["content"]
    assert "Add a Sub(a, b int) int function." in prompt
    if git:
        assert "git: changed calc/calc.go" in out


def test_unformatted_file_is_not_reformatted(tmp_path: Path) -> None:
    messy = WRONG.replace("func Add(a, b int) int {", "func Add(a, b int) int{")
    target = make_module(tmp_path / "m", source=messy)
    answer = messy.replace("a - b", "a + b")
    code, out, _ = run_fix(tmp_path, [str(target), "--yes"], [fence(answer)])
    assert code == 0, out
    assert target.read_text() == answer  # only the fix, not gofmt's opinion


def test_quit_leaves_every_byte(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    before = tree_hashes(tmp_path / "m")
    code, out, events = run_fix(tmp_path, [str(target)], [fence(FIXED)], input="q\n")
    assert code == 1, out
    assert "left your files unchanged" in out
    assert tree_hashes(tmp_path / "m") == before
    assert {"event": "decision", "action": "quit"}.items() <= events[-1].items() or any(
        e.get("action") == "quit" for e in events)


def test_dry_run_and_yes_refuse_failing(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    before = tree_hashes(tmp_path / "m")
    code, out, _ = run_fix(tmp_path, [str(target), "--dry-run"], [fence(FIXED)])
    assert code == 0 and "dry run" in out
    code, out, _ = run_fix(tmp_path, [str(target), "--yes", "--max-rounds", "1"],
                           [fence(WRONG)])
    assert code == 1 and "does not pass" in out
    assert tree_hashes(tmp_path / "m") == before


def test_edit_to_test_file_is_refused_and_told(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m", source=WRONG)
    tests_before = (tmp_path / "m" / "calc" / "calc_test.go").read_bytes()
    cheat = fence(TESTS.replace("!= 5", "!= -1"), name="calc_test.go")
    code, out, events = run_fix(tmp_path, [str(target), "--yes", *NO_SEARCH],
                                [cheat, fence(FIXED)])
    assert code == 0, out
    assert (tmp_path / "m" / "calc" / "calc_test.go").read_bytes() == tests_before
    requests = [e for e in events if e["event"] == "request"]
    told = requests[1]["messages"][-1]["content"]
    assert "calc_test.go (the tests may not be changed; change only calc.go)" in told


def test_lone_file_without_go_mod(tmp_path: Path) -> None:
    d = tmp_path / "lone"
    d.mkdir()
    src = 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi" + 1)\n}\n'
    good = src.replace('"hi" + 1', '"hi", 1')
    (d / "main.go").write_text(src)
    code, out, _ = run_fix(tmp_path, [str(d / "main.go"), "--yes"], [fence(good)])
    assert code == 0, out
    assert (d / "main.go").read_text() == good
    assert sorted(p.name for p in d.iterdir()) == ["main.go"]  # no go.mod left behind


def test_large_file_uses_search_replace_blocks(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    answer = ("<<<<<<< SEARCH calc.go\n    return a + b +\n=======\n\treturn a + b\n"
              ">>>>>>> REPLACE\n")
    code, out, events = run_fix(tmp_path, [str(target), "--yes", "--block-lines", "3"],
                                [answer])
    assert code == 0, out
    assert target.read_text() == FIXED
    start = next(e for e in events if e["event"] == "fix_start")
    assert start["edit_modes"] == {"calc.go": "blocks"}
    prompt = next(e for e in events if e["event"] == "request")["messages"][-1]["content"]
    assert "<<<<<<< SEARCH calc.go" in prompt


def test_run_filters_the_tests(tmp_path: Path) -> None:
    other = TESTS + '\nfunc TestOther(t *testing.T) { t.Fatal("unrelated and broken") }\n'
    target = make_module(tmp_path / "m", tests=other)
    code, out, _ = run_fix(tmp_path, [str(target), "--yes", "--run", "^TestAdd$"],
                           [fence(FIXED)])
    assert code == 0, out
    assert target.read_text() == FIXED


def test_nothing_to_fix(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m", source=FIXED)
    code, out, _ = run_fix(tmp_path, [str(target)], [])
    assert code == 0 and "nothing to fix" in out


@pytest.mark.parametrize("args, message", [
    (["nope.go"], "no such file"),
    (["."], "is a directory"),
    (["README.md"], "not a .go file"),
    (["calc/calc.go", "other/o.go"], "one package directory"),
    ([], "at least one .go file"),
])
def test_bad_input_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               args: list[str], message: str) -> None:
    make_module(tmp_path / "m")
    (tmp_path / "m" / "other").mkdir()
    (tmp_path / "m" / "other" / "o.go").write_text("package other\n")
    monkeypatch.chdir(tmp_path / "m")
    res = CliRunner().invoke(main, ["fix", *args, "--backend", "replay", "--replay", "x"])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


# -- the library ---------------------------------------------------------------------------

def test_changed_on_disk_is_refused(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    site = locate([target])
    assert site.package == "calc" and site.package_rel == "calc"
    target.write_text(BROKEN + "// edited meanwhile\n")
    edited = target.read_bytes()
    with pytest.raises(StaleFileError, match="changed on disk"):
        apply_changes(site, {"calc.go": FIXED})
    assert target.read_bytes() == edited
    assert fixlib.list_backups(target) == []


def test_interrupt_during_apply_restores_all(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "m"
    target = make_module(root)
    second = root / "calc" / "more.go"
    second.write_text("package calc\n\nfunc More() {}\n")
    site = locate([target, second])
    before = tree_hashes(root)
    real = fixlib.write_text_atomic
    calls: list[Path] = []

    def write_then_interrupt(path: Path, text: str, *, mode: int | None = None) -> None:
        real(path, text, mode=mode)
        calls.append(path)
        if path == target:  # Ctrl-C after the first user file was written
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(fixlib, "write_text_atomic", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        apply_changes(site, {"calc.go": FIXED, "more.go": "package calc\n"})
    assert target in calls
    assert tree_hashes(root) == before
    assert fixlib.list_backups(target) == []


def test_scratch_copy_keeps_user_tree(tmp_path: Path) -> None:
    root = tmp_path / "m"
    target = make_module(root)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = tree_hashes(root)
    with FixSession(locate([target]), FixRequest()) as s:
        assert not (s.ws.base / ".git").exists()
        assert (s.ws.base / "calc" / "calc_test.go").is_file()
        result = s.checker.check({"calc.go": FIXED, "calc_test.go": "package calc\n"})
        assert result.passed, result.diagnostics  # the test file was not overwritten
        assert s.checker.check({"calc.go": BROKEN}).diagnostics[0].file == "calc.go"
        # A person's unused variable is the model's to resolve, never silenced by `_ = x`.
        assert "unused-imports" in s.loop_fixes() and "unused-vars" not in s.loop_fixes()
    assert tree_hashes(root) == before


def test_undo_refuses_when_edited_after_fix(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    apply_changes(locate([target]), {"calc.go": FIXED})
    target.write_text(FIXED + "// mine\n")
    with pytest.raises(fixlib.FixError, match="edited since"):
        undo(target)
    undo(target, force=True)
    assert target.read_text() == BROKEN


# -- edits ---------------------------------------------------------------------------------

RULES = EditRules(package="calc", editable=["calc.go"], protected=["calc_test.go"])


def test_blocks_match_despite_indentation_and_report_misses() -> None:
    cur = {"calc.go": BROKEN}
    ans = "<<<<<<< SEARCH\nreturn a + b +\n=======\n\treturn a + b\n>>>>>>> REPLACE"
    assert parse_edit_answer(ans, cur, RULES).files == {"calc.go": FIXED}
    with pytest.raises(FormatError, match="not found"):
        parse_edit_answer(ans.replace("a + b +", "x + y"), cur, RULES)
    twice = {"calc.go": BROKEN + "\nfunc B() int {\n\treturn a + b +\n}\n"}
    with pytest.raises(FormatError, match="occurs 2 times"):
        parse_edit_answer(ans, twice, RULES)


def test_snippet_replaces_only_named_declarations() -> None:
    cur = {"calc.go": BROKEN + "\n// Keep stays.\nfunc Keep() {}\n"}
    snippet = "```go\nfunc Add(a, b int) int {\n\treturn a + b\n}\n```"
    got = parse_edit_answer(snippet, cur, RULES).files["calc.go"]
    assert "return a + b\n}" in got and "// Keep stays.\nfunc Keep() {}" in got
    assert got.startswith("// Package calc does arithmetic.\npackage calc\n")


def test_whole_file_keeps_comments_and_drops_added_tests() -> None:
    answer = fence(FIXED + "\nfunc TestMine(t *testing.T) {}\n")
    ext = parse_edit_answer(answer, {"calc.go": BROKEN}, RULES)
    assert ext.files["calc.go"] == FIXED
    assert ext.dropped == ["func TestMine"]


def test_refused_files_only() -> None:
    with pytest.raises(FormatError, match="tests may not be changed"):
        parse_edit_answer(fence(TESTS, name="calc_test.go"), {"calc.go": BROKEN}, RULES)
    ext = parse_edit_answer(fence(FIXED) + fence("package calc\n", name="util.go"),
                            {"calc.go": BROKEN}, RULES)
    assert ext.files == {"calc.go": FIXED}
    assert ext.dropped == ["file util.go (not one of the files you may change: calc.go)"]


def test_choose_modes_by_size() -> None:
    modes = choose_modes({"a.go": "x\n" * 10, "b.go": "x\n" * 200})
    assert modes == {"a.go": EditMode.whole, "b.go": EditMode.blocks}


def test_edit_answer_without_an_opening_fence_is_used():
    from agent.golang.edits import EditRules, parse_edit_answer

    current = {"grade.go": "package sandbox\n\nfunc Grade(s int) string {\n\treturn \"\"\n}\n"}
    answer = 'package sandbox\n\nfunc Grade(s int) string {\n\treturn "A"\n}\n```'
    rules = EditRules(editable=["grade.go"], package="sandbox")
    ext = parse_edit_answer(answer, current, rules)
    assert 'return "A"' in ext.files["grade.go"]


def test_answer_with_only_a_test_does_not_wipe_the_file():
    from agent.golang.edits import EditRules, parse_edit_answer
    from agent.golang.extract import FormatError

    current = {"grade.go": "package sandbox\n\nfunc Grade(s int) string {\n\treturn \"\"\n}\n"}
    answer = ('```go\npackage sandbox\n\nimport "testing"\n\n'
              "func TestGrade(t *testing.T) {}\n```")
    rules = EditRules(editable=["grade.go"], package="sandbox")
    with pytest.raises(FormatError, match="only tests"):
        parse_edit_answer(answer, current, rules)
