"""Hostile task files and suites: everything a task can name or hold fails safe.

Each class of bad input is tried through the loader and, at least once, through the real
CLI in a separate process (`check`, `solve --backend oracle`, `bench verify`): one line on
stderr naming the file and the field, exit 2, no traceback, and nothing opened that can
hang (FIFOs, /dev/zero) or read outside the task's folder without the user's say-so.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import needs_go
from pydantic import ValidationError

from agent.tasks.harness import RESERVED
from agent.tasks.spec import (
    GO_FILE_MAX_BYTES,
    HARNESS_FILES,
    TRUST_PATHS_ENV,
    TaskError,
    TaskSpec,
    check_go_file_name,
    load_task,
)
from agent.tasks.suites import load_suite
from tools import workspace
from tools.workspace import WorkspaceError, _local_module_dir

ROOT = Path(__file__).resolve().parent.parent
HEX = ROOT / "tests" / "data" / "humaneval_x_go_sample.jsonl"
TESTS = 'import "testing"\n\nfunc TestAdd(t *testing.T) { if Add(1, 2) != 3 { t.Fatal() } }\n'
GOOD = textwrap.dedent("""\
    prompt: Write Add.
    tests: |
      import "testing"
      func TestAdd(t *testing.T) { if Add(1, 2) != 3 { t.Fatal() } }
    reference: "func Add(a, b int) int { return a + b }"
    """)
BASE = "prompt: Write Add.\ntests: 'func TestAdd(t *testing.T) {}'\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cli(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real `guild-agent` in a child process, running this checkout's code."""
    full_env = {k: v for k, v in os.environ.items() if k != TRUST_PATHS_ENV}
    full_env.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout)


def assert_exit_2(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err and "\n" not in err, err
    assert err.startswith("error: "), err
    for w in words:
        assert w.lower() in err.lower(), f"{w!r} not in {err!r}"
    return err


def load_error(path: Path, *words: str) -> str:
    with pytest.raises(TaskError) as info:
        load_task(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in {msg!r}"
    return msg


@pytest.fixture(autouse=True)
def _untrusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRUST_PATHS_ENV, raising=False)


# -- 1. paths a task file names: tests_file, visible_tests_file, reference_file -------------

@pytest.mark.parametrize("field", ["tests_file", "visible_tests_file", "reference_file"])
def test_absolute_and_escaping_paths_are_refused(tmp_path: Path, field: str) -> None:
    outside = write(tmp_path / "outside_test.go", TESTS)
    task_dir = tmp_path / "tasks"
    extra = "" if field == "tests_file" else "tests: x\n"
    for raw, why in [(str(outside), "absolute"), ("../outside_test.go", "outside"),
                     ("sub/../../outside_test.go", "outside")]:
        p = write(task_dir / "t.yaml", f"prompt: p\n{extra}{field}: '{raw}'\n")
        load_error(p, field, why, TRUST_PATHS_ENV)


def test_a_link_that_leads_outside_is_refused(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", "the user's secret\n")
    task_dir = tmp_path / "tasks"
    task_dir.mkdir()
    (task_dir / "hidden_test.go").symlink_to(secret)
    p = write(task_dir / "t.yaml", "prompt: p\ntests_file: hidden_test.go\n")
    msg = load_error(p, "tests_file", "outside")
    assert "the user's secret" not in msg
    # A link that stays inside the folder is fine.
    write(task_dir / "real_test.go", TESTS)
    (task_dir / "inner_test.go").symlink_to("real_test.go")
    write(p, "prompt: p\ntests_file: inner_test.go\n")
    assert load_task(p).tests == TESTS


def test_opting_out_allows_outside_paths_but_not_devices(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    outside = write(tmp_path / "outside_test.go", TESTS)
    p = write(tmp_path / "tasks" / "t.yaml", f"prompt: p\ntests_file: {outside}\n")
    load_error(p, "absolute")
    monkeypatch.setenv(TRUST_PATHS_ENV, "1")
    assert load_task(p).tests == TESTS
    write(p, "prompt: p\ntests_file: /dev/zero\n")
    load_error(p, "tests_file", "device")


@pytest.mark.parametrize("kind", ["fifo", "directory", "huge", "not_utf8", "empty_path",
                                  "nul_in_path"])
def test_only_small_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    name = "hidden_test.go"
    target = tmp_path / name
    if kind == "fifo":
        os.mkfifo(target)  # opening it for reading would block forever
        words = ["FIFO"]
    elif kind == "directory":
        target.mkdir()
        words = ["directory"]
    elif kind == "huge":
        target.write_bytes(b"/" * (GO_FILE_MAX_BYTES + 1))
        words = ["too large", str(GO_FILE_MAX_BYTES)]
    elif kind == "not_utf8":
        target.write_bytes(b"package x\n\xff\xfe\n")
        words = ["UTF-8"]
    elif kind == "empty_path":
        name, words = "", ["empty"]
    else:
        name, words = "a\\0b.go", ["NUL"]
    p = write(tmp_path / "t.yaml", f'prompt: p\ntests_file: "{name}"\n')
    load_error(p, "tests_file", *words)


@pytest.mark.parametrize("task", [
    {"prompt": "p", "tests_file": "\ud800.go"},
    {"prompt": "p", "tests": "t", "go_mod": {"require": [
        {"module": "example.com/m", "replace": "\ud800"}]}}], ids=["tests_file", "replace"])
def test_paths_that_are_not_valid_text(tmp_path: Path, task: dict[str, object]) -> None:
    load_error(write(tmp_path / "t.json", json.dumps(task)), "not valid text")


def test_paths_through_the_cli(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo_test.go")
    for raw, words in [("/etc/passwd", ["absolute"]), ("../../../etc/passwd", ["outside"]),
                       ("/dev/zero", ["absolute"]), ("fifo_test.go", ["FIFO"])]:
        p = write(tmp_path / "t.yaml", f"prompt: p\ntests_file: '{raw}'\n")
        assert_exit_2(cli("check", p), str(p), "tests_file", *words)
    write(tmp_path / "t.yaml", "prompt: p\ntests_file: /dev/zero\n")
    assert_exit_2(cli("check", tmp_path / "t.yaml", env={TRUST_PATHS_ENV: "1"}),
                  "tests_file", "device")


# -- 2. file names in files / support_files / reference_files -------------------------------

BAD_NAMES = {
    "../x.go": "relative path", "/tmp/x.go": "absolute", "a/../../x.go": "relative path",
    "a\0b.go": "control character", "a\\b.go": "backslash", "sub\\..\\..\\x.go": "backslash",
    ".hidden.go": "hidden", "sub/.git/x.go": "hidden", "_ignored.go": "hidden",
    "x.txt": "not a .go file", "notes": "not a .go file", "go.mod": "managed",
    "sub/go.sum": "managed", "a" * 256 + ".go": "255", ("d/" * 300) + "x.go": "nested",
    "a" * 1100 + ".go": "longer",
    "a//b.go": "relative path", "./a.go": "relative path", "": "empty",
    "hidden_test.go": "reserved", "zz_guild_0123abcd_test.go": "reserved",
    "testdata/x.go": "testdata",
    "a\nb.go": "control character", "x:y.go": "character", 'a"b.go': "character",
}


@pytest.mark.parametrize("name", sorted(BAD_NAMES), ids=lambda n: repr(n)[:40])
def test_bad_file_names_are_refused(name: str) -> None:
    problem = check_go_file_name(name)
    assert problem is not None and BAD_NAMES[name].lower() in problem.lower(), problem


@pytest.mark.parametrize("field", ["files", "support_files", "reference_files"])
@pytest.mark.parametrize("name", ["../x.go", "/etc/x.go", "a\0b.go", "go.mod", ".h.go",
                                  "x.sh", "a" * 300 + ".go"], ids=lambda n: repr(n)[:20])
def test_bad_names_stop_at_load(tmp_path: Path, field: str, name: str) -> None:
    p = write(tmp_path / "t.json", json.dumps(
        {"prompt": "p", "tests": "func TestAdd(t *testing.T) {}", field: {name: "x"}}))
    load_error(p, field, "file name")


def test_good_names_still_load(tmp_path: Path) -> None:
    files = {"add.go": "x", "internal/util/u.go": "y", "ünï.go": "z", "add_test.go": "w"}
    p = write(tmp_path / "t.json", json.dumps({"prompt": "p", "tests": "t", "files": files}))
    assert load_task(p).files == files


def test_caps_on_held_text_apply_to_task_files_only() -> None:
    # `fix` builds its task from a user's own package: big files, many files, long prompt.
    files = {f"f{i}.go": "package p\n" + "//" * 600_000 for i in range(120)}
    task = TaskSpec(id="fix-" + "x" * 300, prompt="p" * 300_000, tests="t", files=files)
    assert len(task.files) == 120
    with pytest.raises(ValidationError):  # the safety checks still hold there
        TaskSpec(id="fix", prompt="p", tests="t", files={"../escape.go": "x"})


def test_the_harness_reserves_what_the_loader_refuses() -> None:
    assert RESERVED <= HARNESS_FILES


def test_a_support_file_cannot_also_be_a_solution_file(tmp_path: Path) -> None:
    p = write(tmp_path / "t.json", json.dumps({
        "prompt": "p", "tests": "t", "support_files": {"a.go": "x"},
        "reference_files": {"a.go": "y"}}))
    load_error(p, "support_files", "reference_files", "a.go")


def test_file_names_through_the_cli(tmp_path: Path) -> None:
    for name, word in [("../../x.go", "relative path"), ("go.mod", "managed"),
                       (".hidden.go", "hidden"), ("/abs/x.go", "absolute")]:
        p = write(tmp_path / "t.json", json.dumps(
            {"prompt": "p", "tests": "t", "reference": "r", "files": {name: "x"}}))
        assert_exit_2(cli("check", p), str(p), "files", word)
    p = write(tmp_path / "s.json", json.dumps(
        {"prompt": "p", "tests": "t", "reference": "r", "support_files": {"a\0.go": "x"}}))
    assert_exit_2(cli("solve", "--backend", "oracle", p), "support_files", "control")


# -- 3., 4. test_timeout and go_mod.go ----------------------------------------------------

@pytest.mark.parametrize("value,word", [
    ("0", "greater than 0"), ("-1", "greater than 0"), ("3601", "less than or equal"),
    (".inf", "finite"), (".nan", "number"), ("true", "number"),
    ("fast", "number")])
def test_test_timeout_must_be_sane(tmp_path: Path, value: str, word: str) -> None:
    load_error(write(tmp_path / "t.yaml", f"{BASE}test_timeout: {value}\n"),
               "test_timeout", word)


def test_sub_second_timeouts_load_as_given(tmp_path: Path) -> None:
    # The runner turns them into a duration; the loader must not round them away.
    assert load_task(write(tmp_path / "t.yaml", f"{BASE}test_timeout: 0.5\n")
                     ).test_timeout == 0.5


@pytest.mark.parametrize("version", ["banana", "2", "1", "1.", "v1.22", "1.22.3.4",
                                     "1.22\nreplace x => /", "1.22 ", "01.22", "1.2x"])
def test_go_version_is_validated(tmp_path: Path, version: str) -> None:
    p = write(tmp_path / "t.json", json.dumps(
        {"prompt": "p", "tests": "t", "go_mod": {"go": version}}))
    load_error(p, "go_mod.go", "not a Go version")


@pytest.mark.parametrize("version", ["1.21", "1.22.3", "1.23rc1", "1.24", "1.9"])
def test_real_go_versions_load(tmp_path: Path, version: str) -> None:
    p = write(tmp_path / "t.json", json.dumps(
        {"prompt": "p", "tests": "t", "go_mod": {"go": version}}))
    assert load_task(p).go_mod.go == version


def test_timeout_and_go_version_through_the_cli(tmp_path: Path) -> None:
    p = write(tmp_path / "t.yaml", GOOD + "go_mod: {go: banana}\n")
    assert_exit_2(cli("check", p), "go_mod.go", "banana")
    p = write(tmp_path / "u.yaml", GOOD + "test_timeout: 0\n")
    assert_exit_2(cli("solve", "--backend", "oracle", p), "test_timeout")


# -- 5. go_mod.require: module lines, versions, replace directories ------------------------

def _require(tmp_path: Path, req: dict[str, object], name: str = "t.json") -> Path:
    return write(tmp_path / name, json.dumps(
        {"prompt": "p", "tests": "t", "go_mod": {"require": [req]}}))


@pytest.mark.parametrize("req,word", [
    ({"module": "example.com/m\nreplace evil => /"}, "module path"),
    ({"module": "example.com/m v1.0.0\n"}, "module path"),
    ({"module": "example.com/../m"}, "module path"),
    ({"module": ""}, "module path"),
    ({"module": "example.com/m", "version": "v1.0.0\nreplace x => /"}, "version"),
    ({"module": "example.com/m", "version": "latest"}, "version"),
    ({"module": "example.com/m", "version": "v2.0.0"}, "/v2"),
    ({"module": "example.com/m", "bogus": 1}, "unknown"),
])
def test_requirements_cannot_inject_go_mod_lines(tmp_path: Path, req: dict[str, object],
                                                 word: str) -> None:
    load_error(_require(tmp_path, req), "go_mod.require", word)


def _module(path: Path, module: str = "example.com/m") -> Path:
    write(path / "go.mod", f"module {module}\n\ngo 1.21\n")
    write(path / "m.go", "package m\n\nfunc Two() int { return 2 }\n")
    return path


@pytest.mark.parametrize("case", ["missing", "loop", "dangling", "file", "no_go_mod",
                                  "outside", "absolute", "wrong_module", "go_mod_fifo"])
def test_bad_replace_targets(tmp_path: Path, case: str) -> None:
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    target: str = "dep"
    words = ["go_mod.require.0.replace"]
    if case == "missing":
        words.append("not found")
    elif case == "loop":
        (task_dir / "dep").symlink_to("dep")
        words.append("symbolic links")
    elif case == "dangling":
        (task_dir / "dep").symlink_to("gone")
        words.append("dangling")
    elif case == "file":
        write(task_dir / "dep", "x")
        words.append("not a directory")
    elif case == "no_go_mod":
        write(task_dir / "dep" / "m.go", "package m\n")
        words.append("no go.mod")
    elif case == "outside":
        _module(tmp_path / "elsewhere")
        target = "../elsewhere"
        words.append("outside")
    elif case == "absolute":
        target = str(_module(tmp_path / "elsewhere"))
        words.append("absolute")
    elif case == "wrong_module":
        _module(task_dir / "dep", "example.com/other")
        words += ["example.com/other", "declares"]
    else:
        (task_dir / "dep").mkdir()
        os.mkfifo(task_dir / "dep" / "go.mod")
        words.append("FIFO")
    load_error(_require(task_dir, {"module": "example.com/m", "replace": target}), *words)


def test_replace_targets_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "dangling").symlink_to("nowhere")
    for target, word in [("missing", "not found"), ("loop", "symbolic links"),
                         ("dangling", "dangling"), ("/usr", "absolute")]:
        p = write(tmp_path / "t.yaml", GOOD + "go_mod:\n  require:\n"
                  f"    - {{module: example.com/m, replace: '{target}'}}\n")
        assert_exit_2(cli("check", p), str(p), "replace", word)


@needs_go
def test_a_good_replace_module_inside_the_task_folder_works(tmp_path: Path) -> None:
    _module(tmp_path / "dep")
    p = write(tmp_path / "t.yaml", textwrap.dedent("""\
        prompt: p
        tests: |
          import "testing"
          func TestTwo(t *testing.T) { if Four() != 4 { t.Fatal() } }
        reference: |
          import "example.com/m"
          func Four() int { return m.Two() * 2 }
        go_mod:
          require:
            - {module: example.com/m, replace: dep}
        """))
    proc = cli("check", p)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout


def _gocode_tree(root: Path) -> Path:
    """A Debian-like source tree whose module has no go.mod and hostile links inside."""
    src = root / "example.com" / "nomod"
    write(src / "nomod.go", "package nomod\n\nfunc Three() int { return 3 }\n")
    write(src / "sub" / "deep.go", "package sub\n")
    write(root / "secret.txt", "outside the module\n")
    (src / "up").symlink_to("..")  # a loop: would copy forever if followed
    (src / "sub" / "loop").symlink_to("../..")
    (src / "leak.go").symlink_to(root / "secret.txt")
    (src / "dangling.go").symlink_to("nowhere")
    os.mkfifo(src / "pipe.go")
    write(src / ".git" / "config", "hidden\n")
    return src


def test_copying_a_module_without_go_mod_never_follows_links(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("GUILD_AGENT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    src = _gocode_tree(tmp_path / "gocode")
    dest = _local_module_dir(src, "example.com/nomod")
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))
    assert got == ["go.mod", "nomod.go", "sub", "sub/deep.go"]
    assert not any(p.is_symlink() for p in dest.rglob("*"))


def test_copying_a_module_is_size_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("GUILD_AGENT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    src = tmp_path / "big"
    for i in range(6):
        write(src / f"f{i}.go", "package big\n" + "//" * 100 + "\n")
    monkeypatch.setattr(workspace, "LOCAL_MODULE_MAX_FILES", 5)
    with pytest.raises(WorkspaceError, match="too large to copy"):
        _local_module_dir(src, "example.com/big")
    monkeypatch.setattr(workspace, "LOCAL_MODULE_MAX_FILES", 100)
    monkeypatch.setattr(workspace, "LOCAL_MODULE_MAX_BYTES", 500)
    with pytest.raises(WorkspaceError, match="too large to copy"):
        _local_module_dir(src, "example.com/big")
    assert not list((tmp_path / "cache").glob("deps/*")), "a refused copy left files behind"
    with pytest.raises(WorkspaceError, match="not a directory"):
        _local_module_dir(tmp_path / "nowhere", "example.com/x")


@needs_go
def test_a_gocode_module_without_go_mod_works_through_the_cli(tmp_path: Path) -> None:
    gocode = tmp_path / "gocode"
    src = _gocode_tree(gocode)
    p = write(tmp_path / "task" / "t.yaml", textwrap.dedent(f"""\
        prompt: p
        tests: |
          import "testing"
          func TestSix(t *testing.T) {{ if Six() != 6 {{ t.Fatal() }} }}
        reference: |
          import "example.com/nomod"
          func Six() int {{ return nomod.Three() * 2 }}
        go_mod:
          require:
            - {{module: example.com/nomod, replace: '{src}'}}
        """))
    # Outside the gocode tree, a folder without go.mod is refused ...
    proc = cli("check", p, env={"GUILD_AGENT_GOCODE": str(tmp_path / "elsewhere")})
    assert_exit_2(proc, "absolute")
    # ... inside it, it is copied (without the links) and builds.
    try:
        proc = cli("check", p, env={"GUILD_AGENT_GOCODE": str(gocode)})
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:  # the copy went to the real cache (a fresh one would mean a cold GOCACHE)
        shutil.rmtree(_local_module_dir(src, "example.com/nomod"), ignore_errors=True)


def test_a_gocode_tree_too_large_to_copy_through_the_cli(tmp_path: Path) -> None:
    gocode = tmp_path / "gocode"
    src = gocode / "example.com" / "huge"
    src.mkdir(parents=True)
    for i in range(workspace.LOCAL_MODULE_MAX_FILES + 1):
        (src / f"f{i}.go").touch()
    p = write(tmp_path / "task" / "t.yaml", GOOD + "go_mod:\n  require:\n"
              f"    - {{module: example.com/huge, replace: '{src}'}}\n")
    proc = cli("check", p, env={"GUILD_AGENT_GOCODE": str(gocode)})
    assert_exit_2(proc, str(p), "too large to copy", "10000 entries")


# -- 6. suite importers -------------------------------------------------------------------

def _hex_record() -> dict[str, object]:
    return json.loads(HEX.read_text().splitlines()[0])


@pytest.mark.parametrize("case", ["truncated", "corrupt", "not_gzip", "bomb"])
def test_bad_gzip_suites(tmp_path: Path, case: str) -> None:
    data = gzip.compress(HEX.read_bytes())
    p = tmp_path / "suite.jsonl.gz"
    if case == "truncated":
        p.write_bytes(data[: len(data) // 2])
    elif case == "corrupt":
        p.write_bytes(data[:20] + bytes(b ^ 0x5A for b in data[20:200]) + data[200:])
    elif case == "not_gzip":
        p.write_bytes(b"just text\n")
    else:
        p.write_bytes(gzip.compress(b"\n" * (65 * 2**20)))
    with pytest.raises(TaskError) as info:
        load_suite(p)
    msg = str(info.value)
    assert msg.startswith(str(p)) and "\n" not in msg, msg


@pytest.mark.parametrize("field,value", [
    ("test_setup", 5), ("test_setup", ["x"]), ("example_test", {"a": 1}),
    ("task_id", 7), ("prompt", None), ("canonical_solution", 3.5), ("test", True),
    ("task_id", ""), ("task_id", "x\ny")])
def test_humaneval_x_records_of_the_wrong_shape(tmp_path: Path, field: str,
                                                value: object) -> None:
    rec = _hex_record()
    rec[field] = value
    p = write(tmp_path / "hx.jsonl", json.dumps(_hex_record()) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(TaskError) as info:
        load_suite(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:2: ") and "\n" not in msg, msg


@pytest.mark.parametrize("line", [
    "[1, 2]", "5", '"text"', "null", "[" * 50000,
    json.dumps({"id": "x", "prompt": "p", "reference": 5, "metadata": {"tests": "t"}}),
    json.dumps({"id": ["x"], "prompt": "p", "metadata": {"tests": "t"}}),
    json.dumps({"id": "x", "prompt": "p", "metadata": {"tests": 7}}),
    json.dumps({"prompt": "p", "tests_file": "/etc/passwd"}),
    json.dumps({"prompt": "p", "tests": "t", "files": {"../x.go": "x"}}),
], ids=lambda s: s[:30])
def test_json_records_of_the_wrong_shape(tmp_path: Path, line: str) -> None:
    p = write(tmp_path / "s.jsonl", line + "\n")
    with pytest.raises(TaskError) as info:
        load_suite(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:1: ") and "\n" not in msg, msg


def test_suites_through_the_cli(tmp_path: Path) -> None:
    p = tmp_path / "suite.jsonl.gz"
    p.write_bytes(gzip.compress(HEX.read_bytes())[:-30])
    assert_exit_2(cli("bench", "verify", p), str(p), "gzip")
    rec = _hex_record()
    rec["test_setup"] = 5
    p = write(tmp_path / "hx.jsonl", json.dumps(rec) + "\n")
    assert_exit_2(cli("bench", "verify", p), f"{p}:1", "test_setup")
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    assert_exit_2(cli("bench", "verify", fifo, timeout=30), str(fifo), "FIFO")


# -- 7. check --solution ------------------------------------------------------------------

@pytest.mark.parametrize("case", ["dev_zero", "fifo", "directory", "huge", "bad_name",
                                  "reserved", "twice", "nul"])
def test_check_solution_must_be_a_small_go_file(tmp_path: Path, case: str) -> None:
    task = write(tmp_path / "t.yaml", GOOD)
    sol = tmp_path / "solution.go"
    extra: list[Path] = []
    if case == "dev_zero":
        sol, words = Path("/dev/zero"), ["device"]
    elif case == "fifo":
        os.mkfifo(sol)
        words = ["FIFO"]
    elif case == "directory":
        sol.mkdir()
        words = ["directory"]
    elif case == "huge":
        sol.write_bytes(b"/" * (GO_FILE_MAX_BYTES + 1))
        words = ["too large"]
    elif case == "bad_name":
        sol = write(tmp_path / ".hidden.go", "package sandbox\n")
        words = ["hidden"]
    elif case == "reserved":
        sol = write(tmp_path / "hidden_test.go", "package sandbox\n")
        words = ["reserved"]
    elif case == "twice":
        write(sol, "package sandbox\n")
        extra = [write(tmp_path / "other" / "solution.go", "package sandbox\n")]
        words = ["two"]
    else:
        sol.write_bytes(b"package sandbox\n\x00\n")
        words = ["NUL"]
    args: list[str | Path] = ["check", task, "--solution", sol]
    for e in extra:
        args += ["--solution", e]
    assert_exit_2(cli(*args, timeout=30), "solution", *words)


# -- 8. the task file itself, and what else it holds --------------------------------------

@pytest.mark.parametrize("case", ["dev_zero", "fifo", "huge", "deep_yaml", "deep_json",
                                  "keyword_package", "control_id", "nul_source",
                                  "budget_nan", "lone_surrogate", "long_prompt",
                                  "too_many_files", "duplicate_require"])
def test_hostile_task_files(tmp_path: Path, case: str) -> None:
    p = tmp_path / "t.yaml"
    if case == "dev_zero":
        p, words = Path("/dev/zero"), ["device"]
    elif case == "fifo":
        os.mkfifo(p)
        words = ["FIFO"]
    elif case == "huge":
        p.write_text(BASE + "tags: [" + "x, " * 2_000_000 + "]\n")
        words = ["too large"]
    elif case == "deep_yaml":
        p.write_text("[" * 100_000)
        words = ["nested"]
    elif case == "deep_json":
        p = write(tmp_path / "t.json", "[" * 100_000 + "]" * 100_000)
        words = ["nested"]
    elif case == "keyword_package":
        write(p, BASE + "package: func\n")
        words = ["package"]
    elif case == "control_id":
        write(p, BASE + 'id: "a\\x1bb"\n')
        words = ["id", "control"]
    elif case == "nul_source":
        write(p, 'prompt: p\ntests: "a\\0b"\n')
        words = ["tests", "NUL"]
    elif case == "budget_nan":
        write(p, BASE + "budget: {seconds: .nan}\n")
        words = ["budget.seconds"]
    elif case == "lone_surrogate":
        p = write(tmp_path / "t.json", '{"prompt": "p", "tests": "\\ud800"}')
        words = ["tests"]
    elif case == "long_prompt":
        write(p, "prompt: " + "x" * 300_000 + "\ntests: t\n")
        words = ["prompt"]
    elif case == "too_many_files":
        p = write(tmp_path / "t.json", json.dumps(
            {"prompt": "p", "tests": "t", "files": {f"f{i}.go": "x" for i in range(101)}}))
        words = ["files", "more than"]
    else:
        p = write(tmp_path / "t.json", json.dumps({"prompt": "p", "tests": "t", "go_mod": {
            "require": [{"module": "example.com/m"}, {"module": "example.com/m"}]}}))
        words = ["twice"]
    load_error(p, *words)
    if case in ("dev_zero", "fifo", "deep_yaml", "lone_surrogate"):
        assert_exit_2(cli("check", p, timeout=30), str(p), *words)


def test_yaml_alias_bombs_stay_small(tmp_path: Path) -> None:
    # 9**9 strings if expanded; loading and validation must not expand them.
    items = ['  - &a0 ["x","x","x","x","x","x","x","x","x"]']
    items += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    p = write(tmp_path / "t.yaml", BASE + "tags:\n" + "\n".join(items) + "\n")
    load_error(p, "tags", "valid string")
