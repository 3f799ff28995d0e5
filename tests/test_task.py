"""TaskSpec loading: defaults, file references, JSON, and one clear line for bad files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.tasks.spec import TaskError, TaskSpec, load_task

TESTS = 'import "testing"\n\nfunc TestF(t *testing.T) {}\n'
TESTS_YAML = "tests: |\n" + textwrap.indent(TESTS, "  ")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- loading ---------------------------------------------------------------------------

def test_defaults(tmp_path: Path) -> None:
    task = load_task(write(tmp_path / "sum_pairs.yaml", "prompt: add\n" + TESTS_YAML))
    assert task.id == "sum_pairs"  # the file stem
    assert task.package == "sandbox"
    assert task.files == {} and task.visible_tests is None and task.reference is None
    assert task.budget.rounds is None and task.test_timeout == 10.0
    assert task.hidden_test_file().startswith("package sandbox\n")


def test_explicit_fields(tmp_path: Path) -> None:
    text = """\
id: custom
prompt: Write F.
package: mathx
tests: "func TestF(t *testing.T) {}"
visible_tests: "func TestV(t *testing.T) {}"
files:
  mathx.go: "package mathx\\n"
reference: "func F() int { return 1 }"
budget: {rounds: 3, tokens: 2000, seconds: 60}
test_timeout: 4
tags: [easy]
"""
    task = load_task(write(tmp_path / "t.yaml", text))
    assert (task.id, task.package) == ("custom", "mathx")
    assert task.files == {"mathx.go": "package mathx\n"}
    assert task.budget.rounds == 3 and task.budget.seconds == 60
    assert task.visible_test_file().startswith("package mathx\n")
    assert task.reference_solution() == {
        "solution.go": "package mathx\n\nfunc F() int { return 1 }"}


def test_tests_file_is_relative_to_the_yaml(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "tasks" / "data" / "hidden_test.go", TESTS)
    path = write(tmp_path / "tasks" / "t.yaml", "prompt: p\ntests_file: data/hidden_test.go\n")
    monkeypatch.chdir(tmp_path)  # not the YAML's directory
    assert load_task(path).tests == TESTS
    assert load_task("tasks/t.yaml").tests == TESTS


def test_json_task(tmp_path: Path) -> None:
    path = write(tmp_path / "j.json", json.dumps({"prompt": "p", "tests": TESTS, "id": 7}))
    task = load_task(path)
    assert isinstance(task, TaskSpec)
    assert task.id == "7" and task.tests == TESTS


# -- bad task files --------------------------------------------------------------------

# name -> (file contents or None for a directory, words the message must contain)
BAD: dict[str, tuple[str | None, list[str]]] = {
    "missing_prompt": (TESTS_YAML, ["prompt", "required"]),
    "missing_tests_file": ("prompt: p\ntests_file: nowhere_test.go\n",
                           ["tests_file", "nowhere_test.go", "not found"]),
    "yaml_syntax": ("prompt: p\ntests: [unclosed\n", ["YAML", "line"]),
    "wrong_type": ("prompt: p\nfiles: 3\n" + TESTS_YAML, ["files"]),
    "unknown_key": ("prompt: p\ncolour: blue\n" + TESTS_YAML,
                    ["colour", "unknown"]),
    "empty": ("", ["empty"]),
    "directory": (None, ["directory"]),
}


def make_bad(tmp_path: Path, name: str) -> Path:
    text, _ = BAD[name]
    if text is None:
        d = tmp_path / f"{name}.yaml"
        d.mkdir()
        return d
    return write(tmp_path / f"{name}.yaml", text)


def assert_one_clear_line(message: str, path: Path, words: list[str]) -> None:
    text = message.strip()
    assert "\n" not in text, f"more than one line: {text!r}"
    assert "Traceback" not in text
    assert str(path) in text or path.name in text, f"file not named: {text!r}"
    for w in words:
        assert w.lower() in text.lower(), f"{w!r} not in {text!r}"


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_task_raises_task_error(tmp_path: Path, name: str) -> None:
    path = make_bad(tmp_path, name)
    with pytest.raises(TaskError) as info:
        load_task(path)
    assert_one_clear_line(str(info.value), path, BAD[name][1])


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_task_exits_2_through_the_cli(tmp_path: Path, name: str) -> None:
    path = make_bad(tmp_path, name)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert_one_clear_line(result.stderr, path, BAD[name][1])


def test_bad_task_through_the_console_script(tmp_path: Path) -> None:
    exe = shutil.which("guild-agent", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the guild-agent console script is not installed next to this python")
    path = make_bad(tmp_path, "missing_prompt")
    env = {**os.environ, "COLUMNS": "40"}  # a narrow terminal must not wrap the line
    proc = subprocess.run([exe, "check", str(path)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_clear_line(proc.stderr, path, ["prompt", "required"])
