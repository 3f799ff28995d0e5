"""`fix` on real Go projects: packages and patterns, the user's module cache, vendor,
replace folders, build tags, the user's test command, git and --json.

Real modules in temp dirs, the real toolchain and sandbox, the replay model and the real
CLI as a subprocess.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import needs_go
from tests.test_fix import BROKEN, FIXED, TESTS, WRONG, fence
from tools.go import find_toolchain
from tools.isolation import Level, detect

pytestmark = needs_go
WORKTREE = Path(__file__).resolve().parents[1]

GOOD = """// Package good is fine.
package good

// Twice doubles n.
func Twice(n int) int { return 2 * n }
"""
GOOD_TEST = """package good

import "testing"

func TestTwice(t *testing.T) {
\tif Twice(2) != 4 {
\t\tt.Fatal("Twice")
\t}
}
"""
CALC_TEST = TESTS


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}


def cli(tmp: Path, cwd: Path, args: list[str], responses: list[str],
        env: dict[str, str] | None = None) -> tuple[int, str, str, list[dict]]:
    """The real command in its own process: (exit code, stdout, stderr, trajectory events)."""
    replay = tmp / f"replay-{len(list(tmp.glob('replay-*')))}.yaml"
    replay.write_text(yaml.safe_dump({"responses": responses}))
    out = tmp / f"run-{replay.stem}"
    full_env = {**os.environ, "PYTHONPATH": str(WORKTREE),
                "GUILD_AGENT_FIX_BACKUPS": str(tmp / "backups"), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "fix", "--backend", "replay",
                           "--replay", str(replay), "--out", str(out), *args],
                          cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    traj = out / "trajectory.jsonl"
    events = [json.loads(ln) for ln in traj.read_text().splitlines()] if traj.exists() else []
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr, events


def go(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    tc = find_toolchain()
    full = {**os.environ, "GOFLAGS": "-mod=mod", "GOSUMDB": "off", "GOTOOLCHAIN": "local",
            "GOWORK": "off", **env}
    subprocess.run([str(tc.go), *args], cwd=cwd, env=full, check=True, capture_output=True,
                   timeout=300)


def two_packages(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/two\n\ngo 1.22\n")
    for name, src, test in (("good", GOOD, GOOD_TEST), ("calc", BROKEN, CALC_TEST)):
        (root / name).mkdir()
        (root / name / f"{name}.go").write_text(src)
        (root / name / f"{name}_test.go").write_text(test)
    return root


# -- targets ---------------------------------------------------------------------------

def test_pattern_fixes_only_the_failing_package(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    before = hashes(root)
    code, out, err, events = cli(tmp_path, root, ["./...", "--yes"], [fence(FIXED)])
    assert code == 0, out + err
    assert (root / "calc" / "calc.go").read_text() == FIXED
    after = hashes(root)
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {"calc/calc.go"}
    assert "ok ./good (passes; left alone)" in out
    assert "fails ./calc" in out
    # The model was asked about calc only.
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) == 1 and "package calc" in requests[0]["messages"][-1]["content"]
    assert "package good" not in requests[0]["messages"][-1]["content"]


def test_pattern_with_everything_passing_asks_no_model(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    (root / "calc" / "calc.go").write_text(FIXED)
    before = hashes(root)
    code, out, err, events = cli(tmp_path, root, ["./...", "--yes"], [])
    assert code == 0, out + err
    assert "nothing to fix" in out and hashes(root) == before and not events


def test_vet_failure_counts_as_failing(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    (root / "calc" / "calc.go").write_text(FIXED)
    vetbad = GOOD + ('\n// Show prints n.\n'
                     'func Show(n int) string { return fmt.Sprintf("%s", n) }\n')
    vetbad = vetbad.replace("package good\n", 'package good\n\nimport "fmt"\n')
    (root / "good" / "good.go").write_text(vetbad)
    fixed = vetbad.replace('"%s", n', '"%d", n')
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes"], [fence(fixed)])
    assert code == 0, out + err
    assert "fails ./good" in out and "ok ./calc" in out
    assert (root / "good" / "good.go").read_text() == fixed


def test_package_folder(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    code, out, err, _ = cli(tmp_path, root, ["calc", "--yes"], [fence(FIXED)])
    assert code == 0, out + err
    assert (root / "calc" / "calc.go").read_text() == FIXED
    assert (root / "calc" / "calc_test.go").read_text() == CALC_TEST


def test_several_folders_one_after_another(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    before = hashes(root)
    code, out, err, _ = cli(tmp_path, root, ["good", "calc", "--yes"], [fence(FIXED)])
    assert code == 0, out + err
    assert "package good" in out and "package calc" in out
    after = hashes(root)
    assert {k for k in before if before[k] != after[k]} == {"calc/calc.go"}


def test_several_files_of_one_package(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    extra = "package calc\n\n// Neg negates.\nfunc Neg(a int) int { return -a +  }\n"
    (root / "calc" / "neg.go").write_text(extra)
    neg_fixed = extra.replace("-a +  }", "-a }")
    answer = (f"```go\n// file: calc.go\n{FIXED}```\n\n```go\n// file: neg.go\n"
              f"{neg_fixed}```\n")
    code, out, err, _ = cli(tmp_path, root, ["calc/calc.go", "calc/neg.go", "--yes"],
                            [answer])
    assert code == 0, out + err
    assert (root / "calc" / "calc.go").read_text() == FIXED
    assert (root / "calc" / "neg.go").read_text() == neg_fixed


# -- the user's Go environment -----------------------------------------------------------

DEP = """// Package dep is a third-party dependency.
package dep

// Double doubles n.
func Double(n int) int { return 2 * n }
"""
USES_DEP = """// Package app uses dep.
package app

import "example.com/dep"

// Quad returns 4n.
func Quad(n int) int {
\treturn dep.Double(dep.Double(n)) +
}
"""
USES_DEP_TEST = """package app

import "testing"

func TestQuad(t *testing.T) {
\tif Quad(3) != 12 {
\t\tt.Fatal("Quad")
\t}
}
"""


def file_proxy(root: Path) -> Path:
    """A GOPROXY folder serving example.com/dep v1.0.0."""
    d = root / "example.com" / "dep" / "@v"
    d.mkdir(parents=True)
    (d / "list").write_text("v1.0.0\n")
    (d / "v1.0.0.info").write_text('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}')
    mod = "module example.com/dep\n\ngo 1.22\n"
    (d / "v1.0.0.mod").write_text(mod)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("example.com/dep@v1.0.0/go.mod", mod)
        z.writestr("example.com/dep@v1.0.0/dep.go", DEP)
    (d / "v1.0.0.zip").write_bytes(buf.getvalue())
    return root


def dep_module(tmp: Path) -> tuple[Path, Path]:
    """A module needing example.com/dep, with the dependency in a module cache made here."""
    proxy = file_proxy(tmp / "proxy")
    cache = tmp / "gomodcache"
    root = tmp / "m"
    (root / "app").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/m\n\ngo 1.22\n\nrequire example.com/dep "
                                 "v1.0.0\n")
    (root / "app" / "app.go").write_text(USES_DEP.replace(" +\n}", "\n}"))
    (root / "app" / "app_test.go").write_text(USES_DEP_TEST)
    go(["mod", "download"], root, {"GOPROXY": f"file://{proxy}", "GOMODCACHE": str(cache)})
    go(["mod", "tidy"], root, {"GOPROXY": f"file://{proxy}", "GOMODCACHE": str(cache)})
    (root / "app" / "app.go").write_text(USES_DEP)
    return root, cache


def test_dependency_from_the_users_module_cache(tmp_path: Path) -> None:
    root, cache = dep_module(tmp_path)
    before = hashes(cache)
    fixed = USES_DEP.replace(" +\n}", "\n}")
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes"], [fence(fixed)],
                            env={"GOMODCACHE": str(cache), "GOPROXY": "off"})
    assert code == 0, out + err
    assert (root / "app" / "app.go").read_text() == fixed
    assert hashes(cache) == before  # read, never written


def test_missing_dependency_is_one_line_before_any_model_call(tmp_path: Path) -> None:
    root, _ = dep_module(tmp_path)
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    for args in (["./...", "--yes"], ["app/app.go", "--yes"], ["app", "--yes"]):
        code, out, err, events = cli(tmp_path, root, args, [fence(USES_DEP)],
                                     env={"GOMODCACHE": str(empty)})
        assert code == 2, out + err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "example.com/dep@v1.0.0" in lines[0], err
        assert "go mod download" in lines[0]
        assert not [e for e in events if e["event"] == "request"]


def test_vendored_module(tmp_path: Path) -> None:
    root, cache = dep_module(tmp_path)
    go(["mod", "vendor"], root, {"GOPROXY": "off", "GOMODCACHE": str(cache)})
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    fixed = USES_DEP.replace(" +\n}", "\n}")
    code, out, err, _ = cli(tmp_path, root, ["app/app.go", "--yes"], [fence(fixed)],
                            env={"GOMODCACHE": str(empty)})
    assert code == 0, out + err
    assert (root / "app" / "app.go").read_text() == fixed


def test_local_replace_outside_the_module(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "go.mod").write_text("module example.com/dep\n\ngo 1.22\n")
    (lib / "dep.go").write_text(DEP)
    lib_before = hashes(lib)
    root = tmp_path / "m"
    (root / "app").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/m\n\ngo 1.22\n\nrequire example.com/dep "
                                 "v0.0.0\n\nreplace example.com/dep => ../lib\n")
    (root / "app" / "app.go").write_text(USES_DEP)
    (root / "app" / "app_test.go").write_text(USES_DEP_TEST)
    fixed = USES_DEP.replace(" +\n}", "\n}")
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes"], [fence(fixed)],
                            env={"GOMODCACHE": str(empty)})
    assert code == 0, out + err
    assert (root / "app" / "app.go").read_text() == fixed
    assert hashes(lib) == lib_before


def test_build_tags(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    (root / "calc" / "calc.go").write_text(FIXED)
    tagged = ("//go:build integration\n\npackage calc\n\n// Sub subtracts.\n"
              "func Sub(a, b int) int {\n\treturn a - b -\n}\n")
    (root / "calc" / "sub.go").write_text(tagged)
    fixed = tagged.replace("a - b -", "a - b")
    # Without the tag the file is not built: nothing to fix, no model call.
    code, out, err, events = cli(tmp_path, root, ["calc/sub.go", "--yes"], [fence(fixed)])
    assert code == 0 and "nothing to fix" in out, out + err
    assert not [e for e in events if e["event"] == "request"]
    assert (root / "calc" / "sub.go").read_text() == tagged
    code, out, err, _ = cli(tmp_path, root, ["calc/sub.go", "--yes", "--tags", "integration"],
                            [fence(fixed)])
    assert code == 0, out + err
    assert (root / "calc" / "sub.go").read_text() == fixed
    # The user's GOFLAGS tags count too; its other flags (-toolexec …) are not passed on.
    (root / "calc" / "sub.go").write_text(tagged)
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes"], [fence("// file: sub.go\n"
                                                                       + fixed)],
                            env={"GOFLAGS": "-tags=integration -toolexec=/bin/false"})
    assert code == 0 and "fails ./calc" in out, out + err
    assert (root / "calc" / "sub.go").read_text() == fixed


# -- the user's test command ---------------------------------------------------------------

def test_failing_test_cmd_is_the_verdict_and_the_feedback(tmp_path: Path) -> None:
    root = tmp_path / "m"
    (root / "calc").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/c\n\ngo 1.22\n")
    (root / "calc" / "calc.go").write_text(WRONG)  # builds, no Go tests: go test passes
    cmd = ("go build ./... && grep -q 'return a + b$' calc/calc.go || "
           "{ echo 'ADD-CHECK: Add must add'; exit 3; }")
    still_wrong = WRONG.replace("a - b", "a * b")
    code, out, err, events = cli(tmp_path, root, ["calc/calc.go", "--yes", "--test-cmd", cmd,
                                                  "--max-rounds", "3"],
                                 [fence(still_wrong), fence(FIXED)])
    assert code == 0, out + err
    assert (root / "calc" / "calc.go").read_text() == FIXED
    first = next(e for e in events if e["event"] == "initial_check")
    assert not first["result"]["passed"]
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) == 2
    assert "ADD-CHECK: Add must add" in requests[1]["messages"][-1]["content"]
    assert "tested with its own command" in requests[0]["messages"][-1]["content"]
    assert "grep -q 'return a + b$'" in requests[0]["messages"][-1]["content"]


@pytest.mark.skipif(detect().level is Level.limits, reason="no sandbox on this machine")
def test_test_cmd_runs_in_the_sandbox_on_the_copy(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    outside = tmp_path / "outside.txt"
    cmd = f"touch calc/MARK; echo pwned > {outside}; exit 1"
    code, out, err, _ = cli(tmp_path, root, ["calc/calc.go", "--dry-run", "--test-cmd", cmd],
                            [fence(FIXED)])
    assert code == 1, out + err  # the command always fails: not fixed
    assert not (root / "calc" / "MARK").exists()
    assert not outside.exists()


def test_lint_cmd_must_pass_too(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    lint = "! grep -n TODO calc/calc.go"
    with_todo = FIXED.replace("// Add returns", "// TODO: remove\n// Add returns")
    code, out, err, events = cli(tmp_path, root, ["calc/calc.go", "--yes", "--lint-cmd", lint,
                                                  "--max-rounds", "3"],
                                 [fence(with_todo), fence(FIXED)])
    assert code == 0, out + err
    assert (root / "calc" / "calc.go").read_text() == FIXED
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) == 2 and "--lint-cmd" in requests[1]["messages"][-1]["content"]


# -- git --------------------------------------------------------------------------------

def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=T", "-c",
                           "user.email=t@example.com", *args], check=True, capture_output=True,
                          text=True).stdout


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="no git")


def git_module(tmp: Path) -> Path:
    root = two_packages(tmp / "m")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    return root


GIT_ENV = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com"}


@needs_git
def test_dirty_file_is_refused_unless_allowed(tmp_path: Path) -> None:
    root = git_module(tmp_path)
    edited = BROKEN + "\n// user's work in progress\n"
    (root / "calc" / "calc.go").write_text(edited)
    code, out, err, events = cli(tmp_path, root, ["calc/calc.go", "--yes"], [fence(FIXED)])
    assert code == 2 and "uncommitted changes in calc/calc.go" in err, out + err
    assert "--allow-dirty" in err and not events
    assert (root / "calc" / "calc.go").read_text() == edited
    # A dirty file elsewhere in the repository does not matter.
    code, out, err, _ = cli(tmp_path, root, ["good/good.go", "--yes"], [])
    assert code == 0 and "nothing to fix" in out, out + err
    code, out, err, _ = cli(tmp_path, root, ["calc/calc.go", "--yes", "--allow-dirty"],
                            [fence(FIXED + "\n// user's work in progress\n")])
    assert code == 0, out + err
    assert "user's work in progress" in (root / "calc" / "calc.go").read_text()


@needs_git
def test_commit_makes_one_commit_of_the_fix(tmp_path: Path) -> None:
    root = git_module(tmp_path)
    (root / "notes.txt").write_text("staged, not part of the fix\n")
    git(root, "add", "notes.txt")
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes", "--commit"], [fence(FIXED)],
                            env=GIT_ENV)
    assert code == 0, out + err
    log = git(root, "log", "--format=%s%n%b%x00").split("\x00")
    assert len([c for c in log if c.strip()]) == 2
    message = log[0]
    assert message.strip().startswith("calc: fix ")
    assert "replay" in message and "Fixed by guild-agent fix" in message
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["calc/calc.go"]
    assert git(root, "diff", "--cached", "--name-only").split() == ["notes.txt"]
    assert git(root, "show", "HEAD:calc/calc.go") == FIXED
    # --undo restores from the backup and says git has the fixed version committed.
    code, out, err, _ = cli(tmp_path, root, ["--undo", "calc/calc.go"], [])
    assert code == 0, out + err
    assert (root / "calc" / "calc.go").read_text() == BROKEN
    assert "git: commit" in out and "after that fix" in out


@needs_git
def test_commit_outside_git_is_refused(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    code, out, err, events = cli(tmp_path, root, ["calc", "--yes", "--commit"], [fence(FIXED)])
    assert code == 2 and "not in a git work tree" in err and not events, out


# -- --json ---------------------------------------------------------------------------------

def test_json_prints_one_result_object(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes", "--json"], [fence(FIXED)])
    assert code == 0, err
    obj = json.loads(out)  # stdout holds exactly one object
    assert obj["command"] == "fix" and obj["status"] == "fixed" and obj["exit_code"] == 0
    assert obj["model"].startswith("replay")
    [pkg] = obj["packages"]
    assert pkg["package"] == "calc" and pkg["applied"] and pkg["passed"]
    assert pkg["run"]["solved"] and pkg["run"]["rounds"] == 1
    assert "return a + b" in pkg["diff"] and not pkg["initial"]["passed"]
    assert "fails ./calc" in err  # the human view goes to stderr


@pytest.mark.parametrize("args, message", [
    (["./...", "--json"], "--json needs --yes or --dry-run"),
    (["./...", "--yes", "--tags", "a;rm -rf"], "is not a build tag"),
    (["./...", "calc/calc.go"], "not both"),
    (["--yes", "--", "-toolexec=/bin/sh"], "not a package pattern"),
    (["./nothing/...", "--yes"], "no packages to fix"),
    (["calc", "--yes", "--test-cmd", " "], "--test-cmd is empty"),
    (["calc", "--dry-run", "--commit"], "contradict"),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    root = two_packages(tmp_path / "m")
    code, out, err, events = cli(tmp_path, root, args, [])
    assert code == 2, out + err
    assert message in err and len([ln for ln in err.splitlines() if ln.strip()]) == 1
    assert not events


def test_pattern_without_a_module_is_one_line(tmp_path: Path) -> None:
    d = tmp_path / "loose"
    d.mkdir()
    (d / "x.go").write_text("package x\n")
    code, out, err, _ = cli(tmp_path, d, ["./...", "--yes"], [])
    assert code == 2 and "needs a Go module" in err, out + err


# -- hostile: model code and the user's commands stay in the sandbox ------------------------

@pytest.mark.skipif(detect().level is Level.limits, reason="no sandbox on this machine")
def test_model_code_cannot_write_the_users_module_cache(tmp_path: Path) -> None:
    root, cache = dep_module(tmp_path)
    before = hashes(cache)
    fixed = USES_DEP.replace(" +\n}", "\n}")
    hostile = fixed.replace('import "example.com/dep"', 'import (\n\t"os"\n\n'
                            '\t"example.com/dep"\n)') + (
        "\nfunc init() {\n"
        f'\t_ = os.WriteFile("{cache}/pwned", []byte("x"), 0o644)\n'
        f'\t_ = os.WriteFile(os.Getenv("GOMODCACHE")+"/pwned2", []byte("x"), 0o644)\n'
        f'\t_ = os.RemoveAll("{cache}/cache")\n'
        "}\n")
    code, out, err, _ = cli(tmp_path, root, ["app/app.go", "--dry-run"], [fence(hostile)],
                            env={"GOMODCACHE": str(cache)})
    assert code == 0, out + err  # it builds and passes: only the writes were refused
    assert hashes(cache) == before
    assert not (cache / "pwned").exists() and not (cache / "pwned2").exists()


@pytest.mark.skipif(detect().level is Level.limits, reason="no sandbox on this machine")
def test_pattern_scan_runs_the_users_tests_in_the_sandbox(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    outside = tmp_path / "scan-wrote-here"
    (root / "good" / "side_test.go").write_text(
        'package good\n\nimport "os"\n\nfunc init() {\n'
        f'\t_ = os.WriteFile("{outside}", []byte("x"), 0o644)\n}}\n')
    code, out, err, _ = cli(tmp_path, root, ["./...", "--dry-run"], [fence(FIXED)])
    assert code == 0, out + err
    assert not outside.exists()


def test_test_cmd_output_is_capped_in_the_feedback(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    cmd = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo LAST-LINE; exit 1"
    code, out, err, events = cli(tmp_path, root, ["calc/calc.go", "--yes", "--test-cmd", cmd,
                                                  "--max-rounds", "2"],
                                 [fence(FIXED), fence(FIXED)])
    assert code == 1, out + err  # the command never passes: not applied
    assert (root / "calc" / "calc.go").read_text() == BROKEN
    requests = [e for e in events if e["event"] == "request"]
    assert len(requests) == 2
    content = requests[1]["messages"][-1]["content"]
    assert "LAST-LINE" in content and "earlier output cut" in content
    assert content.count("x" * 1000) < 10


def test_dependency_source_missing_from_the_cache_is_one_line(tmp_path: Path) -> None:
    """go.mod's requirement is cached but its source is not: the go command's own
    complaint becomes the one-line error, still before any model call."""
    root, cache = dep_module(tmp_path)
    for p in [cache, *cache.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(cache / "example.com" / "dep@v1.0.0")
    for z in (cache / "cache" / "download" / "example.com" / "dep" / "@v").glob("*.zip*"):
        z.unlink()
    code, out, err, events = cli(tmp_path, root, ["app/app.go", "--yes"], [fence(USES_DEP)],
                                 env={"GOMODCACHE": str(cache)})
    assert code == 2, out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "example.com/dep@v1.0.0" in lines[0], err
    assert "go mod download" in lines[0]
    assert not [e for e in events if e["event"] == "request"]


CGO = """// Package cx wraps a C function.
package cx

// int twice(int n) { return 2 * n; }
import "C"

// Twice doubles n in C.
func Twice(n int) int {
\treturn int(C.twice(C.int(n))) +
}
"""
CGO_TEST = """package cx

import "testing"

func TestTwice(t *testing.T) {
\tif Twice(4) != 8 {
\t\tt.Fatal("Twice")
\t}
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_cgo_package(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    (root / "calc" / "calc.go").write_text(FIXED)
    (root / "cx").mkdir()
    (root / "cx" / "cx.go").write_text(CGO)
    (root / "cx" / "cx_test.go").write_text(CGO_TEST)
    fixed = CGO.replace(" +\n}", "\n}")
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes"], [fence(fixed)])
    assert code == 0, out + err
    assert "fails ./cx" in out and "ok ./calc" in out
    assert (root / "cx" / "cx.go").read_text() == fixed


def test_a_package_not_fixed_does_not_stop_the_next(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    (root / "good" / "good.go").write_text(GOOD.replace("return 2 * n", "return 2 * n +"))
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes", "--max-rounds", "1"],
                            [fence(WRONG), fence(GOOD)])  # calc first (go list order)
    assert code == 1, out + err  # one package was not fixed
    assert (root / "calc" / "calc.go").read_text() == BROKEN  # a failing answer: not applied
    assert (root / "good" / "good.go").read_text() == GOOD


def test_a_fifo_in_a_folder_or_pattern_is_never_opened(tmp_path: Path) -> None:
    root = two_packages(tmp_path / "m")
    os.mkfifo(root / "calc" / "pipe.go")
    (root / "calc" / "zero.go").symlink_to("/dev/zero")
    code, out, err, _ = cli(tmp_path, root, ["calc", "--dry-run"], [fence(FIXED)])
    assert code == 0, out + err
    code, out, err, _ = cli(tmp_path, root, ["./...", "--yes"], [fence(FIXED)])
    assert code == 0, out + err
    assert (root / "calc" / "calc.go").read_text() == FIXED


def test_go_work_module_used_from_its_folder(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "lib").mkdir(parents=True)
    (ws / "lib" / "go.mod").write_text("module example.com/dep\n\ngo 1.22\n")
    (ws / "lib" / "dep.go").write_text(DEP)
    (ws / "app" / "app").mkdir(parents=True)
    (ws / "app" / "go.mod").write_text("module example.com/m\n\ngo 1.22\n\nrequire "
                                       "example.com/dep v0.0.0\n")
    (ws / "app" / "app" / "app.go").write_text(USES_DEP)
    (ws / "app" / "app" / "app_test.go").write_text(USES_DEP_TEST)
    (ws / "go.work").write_text("go 1.22\n\nuse (\n\t./app\n\t./lib\n)\n")
    lib_before = hashes(ws / "lib")
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    fixed = USES_DEP.replace(" +\n}", "\n}")
    code, out, err, _ = cli(tmp_path, ws / "app", ["./...", "--yes"], [fence(fixed)],
                            env={"GOMODCACHE": str(empty), "GOWORK": ""})
    assert code == 0, out + err
    assert (ws / "app" / "app" / "app.go").read_text() == fixed
    assert hashes(ws / "lib") == lib_before
    assert (ws / "app" / "go.mod").read_text().count("replace") == 0  # the user's go.mod
    # Without the go.work the dependency is missing: the one-line error.
    (ws / "go.work").unlink()
    (ws / "app" / "app" / "app.go").write_text(USES_DEP)
    code, out, err, _ = cli(tmp_path, ws / "app", ["./...", "--yes"], [fence(fixed)],
                            env={"GOMODCACHE": str(empty), "GOWORK": ""})
    assert code == 2 and "missing dependency example.com/dep@v0.0.0" in err, out + err
