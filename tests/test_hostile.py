"""Hostile model code, run through the real harness and runner.

Every case checks the same four things: the run ends within its own limit, what happened
comes back as a Diagnostic, nothing the code started is still running afterwards, and
nothing outside the workspace changed. A faked pass must never count as solved.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent.tasks.harness import HIDDEN_TEST, TaskHarness
from agent.tasks.spec import TaskSpec
from tools.diagnostics import CheckResult, Kind
from tools.go import ToolchainError, find_toolchain, go_env
from tools.guard import guard_binary
from tools.isolation import Level, detect
from tools.runner import CheckOptions, GoRunner
from tools.sandbox import Limits

try:
    find_toolchain()
except ToolchainError:  # pragma: no cover
    pytest.skip("no Go toolchain", allow_module_level=True)

ISOLATED = detect().level is not Level.limits
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="no sandbox on this machine")

HIDDEN = """
import "testing"

func TestAnswer(t *testing.T) {
	if Answer() != 42 {
		t.Fatalf("Answer() = %d, want 42", Answer())
	}
}
"""
WRONG = "package sandbox\n\nfunc Answer() int { return 41 }\n"
RIGHT = "package sandbox\n\nfunc Answer() int { return 42 }\n"


def _task(tests: str = HIDDEN, timeout: float = 3.0) -> TaskSpec:
    return TaskSpec(id="hostile", prompt="return 42", tests=tests, test_timeout=timeout)


def _alive_in(root: Path) -> list[str]:
    """Processes whose cwd, command line or environment points into the workspace."""
    needle = str(root)
    found: list[str] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            status = (entry / "status").read_text()
            if "\nState:\tZ" in status:
                continue
            cwd = os.readlink(entry / "cwd")
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in cwd or needle.encode() in blob:
            found.append(f"{entry.name}: {blob[:120]!r}")
    return found


class Run:
    """One harness with its own limit; records what each check took."""

    def __init__(self, task: TaskSpec, limit: float, limits: Limits | None = None) -> None:
        opts = CheckOptions(build_allowance=30.0, limits=limits or Limits())
        self.harness = TaskHarness(task, runner=GoRunner(opts))
        self.limit = limit
        self.seconds = 0.0

    @property
    def root(self) -> Path:
        return self.harness.ws.root

    def check(self, files: dict[str, str]) -> CheckResult:
        start = time.monotonic()
        result = self.harness.check(files)
        self.seconds = time.monotonic() - start
        assert self.seconds < self.limit, f"took {self.seconds:.1f}s, limit {self.limit}s"
        leftover = _wait_gone(self.root)
        assert not leftover, f"still running after the check: {leftover}"
        return result


def _wait_gone(root: Path, wait: float = 2.0) -> list[str]:
    # Killed processes can take a moment to be reaped by their namespace's init.
    deadline = time.monotonic() + wait
    while True:
        left = _alive_in(root)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def run() -> Iterator[type[Run]]:
    made: list[Run] = []

    class Tracked(Run):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Tracked
    for r in made:
        r.harness.close()


def _kinds(result: CheckResult) -> set[Kind]:
    return {d.kind for d in result.diagnostics}


def _report(name: str, r: Run, result: CheckResult) -> None:
    # One line per case, shown with `pytest -s`: the closing note quotes these.
    d = result.diagnostics[0] if result.diagnostics else None
    msg = (d.message.splitlines() or [""])[0][:100] if d else ""
    print(f"\nHOSTILE {name}: {r.seconds:.2f}s passed={result.passed} "
          f"kind={d.kind.value if d else None} msg={msg!r}")


def test_good_solution_passes(run: type[Run]) -> None:
    r = run(_task(), limit=60)
    result = r.check({"solution.go": RIGHT})
    assert result.passed, result.diagnostics


def test_infinite_loop_times_out(run: type[Run]) -> None:
    r = run(_task(timeout=2), limit=40)
    result = r.check({"solution.go": "package sandbox\n\nfunc Answer() int { for {} }\n"})
    _report("infinite-loop", r, result)
    assert not result.passed
    assert Kind.timeout in _kinds(result)


def test_deadlock_times_out_or_is_detected(run: type[Run]) -> None:
    code = ("package sandbox\n\nimport \"sync\"\n\n"
            "func Answer() int { var mu sync.Mutex; mu.Lock(); mu.Lock(); return 42 }\n")
    r = run(_task(timeout=2), limit=40)
    result = r.check({"solution.go": code})
    _report("deadlock", r, result)
    assert not result.passed
    assert _kinds(result) & {Kind.timeout, Kind.panic, Kind.test_failure}


def test_wall_clock_kills_a_test_that_ignores_its_timeout(run: type[Run]) -> None:
    # The test binary's own -timeout is disabled, so only our wall clock can stop it.
    code = ("package sandbox\n\nfunc init() { for {} }\n\nfunc Answer() int { return 42 }\n")
    task = _task(timeout=2)
    r = run(task, limit=30)
    r.harness.runner.options = replace(r.harness.runner.options, build_allowance=4.0)
    result = r.check({"solution.go": code})
    _report("wall-clock", r, result)
    assert not result.passed
    assert Kind.timeout in _kinds(result)


FORK_BOMB = """package sandbox

import (
	"os"
	"os/exec"
	"syscall"
)

func Answer() int {
	for {
		c := exec.Command(os.Args[0], "-test.run=TestAnswer", "-test.timeout=0")
		_ = c.Start()
		_, _ = syscall.ForkExec(os.Args[0], []string{os.Args[0], "-test.timeout=0"}, nil)
	}
}
"""


def test_fork_bomb_is_contained(run: type[Run]) -> None:
    r = run(_task(timeout=3), limit=45, limits=Limits(processes=128))
    result = r.check({"solution.go": FORK_BOMB})
    _report("fork-bomb", r, result)
    assert not result.passed
    # What the diagnostic says depends on who hit the cap first: the test binary ("fatal
    # error: newosproc", a panic) or the go command (its crash text is read as a compile
    # error; see docs/bad-inputs.md). Either way the run is stopped and reported.
    assert result.diagnostics


def test_one_gigabyte_of_output_is_cut_off(run: type[Run]) -> None:
    code = """package sandbox

import (
	"bytes"
	"os"
)

func Answer() int {
	line := bytes.Repeat([]byte("y"), 1<<20)
	for i := 0; i < 1024; i++ {
		os.Stdout.Write(line)
	}
	return 42
}
"""
    r = run(_task(timeout=20), limit=45, limits=Limits(output_bytes=4 * 1024 * 1024))
    result = r.check({"solution.go": code})
    _report("1GB-output", r, result)
    assert not result.passed
    assert Kind.limit in _kinds(result)
    assert len(result.log) <= 128 * 1024


def test_fifty_gigabyte_allocation_fails(run: type[Run]) -> None:
    code = """package sandbox

func Answer() int {
	b := make([]byte, 50<<30)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return 42
}
"""
    r = run(_task(timeout=5), limit=40)
    result = r.check({"solution.go": code})
    _report("50GB-alloc", r, result)
    assert not result.passed
    assert result.diagnostics
    assert _kinds(result) & {Kind.panic, Kind.limit, Kind.test_failure}


def test_goroutine_panicking_after_the_test_passed(run: type[Run]) -> None:
    tests = HIDDEN + """
func TestLater(t *testing.T) {
	time.Sleep(500 * time.Millisecond)
}
"""
    tests = tests.replace('import "testing"', 'import (\n\t"testing"\n\t"time"\n)')
    code = """package sandbox

import "time"

func Answer() int {
	go func() {
		time.Sleep(100 * time.Millisecond)
		panic("late panic from a goroutine")
	}()
	return 42
}
"""
    r = run(_task(tests), limit=40)
    result = r.check({"solution.go": code})
    _report("late-goroutine-panic", r, result)
    assert not result.passed
    assert Kind.panic in _kinds(result)
    assert any("late panic" in d.message for d in result.diagnostics)


# Printed by the program as a Go raw string: the text `go test` itself would print.
FAKE_PASS_TEXT = (
    "=== RUN   TestAnswer\n--- PASS: TestAnswer (0.00s)\nPASS\n"
    '{"Action":"pass","Package":"sandbox","Test":"TestAnswer","Elapsed":0}\n'
    '{"Action":"pass","Package":"sandbox","Elapsed":0}\nok  \tsandbox\t0.001s\n'
)


def test_exit_zero_in_init_is_not_a_pass(run: type[Run]) -> None:
    code = f"""package sandbox

import (
	"fmt"
	"os"
)

func init() {{
	fmt.Print(`{FAKE_PASS_TEXT}`)
	os.Exit(0)
}}

func Answer() int {{ return 41 }}
"""
    r = run(_task(), limit=40)
    result = r.check({"solution.go": code})
    _report("exit0-in-init", r, result)
    assert not result.passed
    assert result.diagnostics and result.diagnostics[0].kind is Kind.test_failure


def test_exit_zero_in_testmain_is_not_a_pass(run: type[Run]) -> None:
    evil = f"""package sandbox

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {{
	fmt.Print(`{FAKE_PASS_TEXT}`)
	os.Exit(0)
}}
"""
    r = run(_task(), limit=40)
    result = r.check({"solution.go": WRONG, "main_test.go": evil})
    _report("exit0-in-TestMain", r, result)
    assert not result.passed
    assert result.diagnostics


def test_fake_json_written_to_the_go_command_output_is_not_a_pass(run: type[Run]) -> None:
    """The test binary writes fake events straight into `go test`'s own stdout."""
    code = """package sandbox

import (
	"fmt"
	"os"
)

func init() {
	ev := `{"Action":"pass","Package":"sandbox","Test":"TestAnswer","Elapsed":0}` + "\\n" +
		`{"Action":"pass","Package":"sandbox","Elapsed":0}` + "\\n"
	// The go command is our parent: its stdout is the pipe the runner parses.
	if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/1", os.Getppid()), os.O_WRONLY, 0);
		err == nil {
		f.WriteString(ev)
	}
	os.Exit(0)
}

func Answer() int { return 41 }
"""
    r = run(_task(), limit=40)
    result = r.check({"solution.go": code})
    _report("fake-json-to-parent-stdout", r, result)
    assert not result.passed


@pytest.fixture
def marker() -> str:
    return f"guild-hostile-{uuid.uuid4().hex[:10]}"


@needs_isolation
def test_writes_outside_the_workspace_change_nothing(run: type[Run], marker: str) -> None:
    code = f"""package sandbox

import (
	"os"
	"path/filepath"
)

func init() {{
	os.WriteFile(filepath.Join(os.Getenv("HOME"), "{marker}"), []byte("x"), 0o644)
	os.WriteFile("/tmp/{marker}", []byte("x"), 0o644)
	os.WriteFile("/root/{marker}", []byte("x"), 0o644)
	os.WriteFile("/var/tmp/{marker}", []byte("x"), 0o644)
	os.WriteFile("{Path.cwd()}/{marker}", []byte("x"), 0o644)
	// The hidden test lives next to us: replace it with one that always passes.
	os.WriteFile("{HIDDEN_TEST}", []byte("package sandbox\\n"), 0o644)
}}

func Answer() int {{ return 41 }}
"""
    r = run(_task(), limit=60)
    first = r.check({"solution.go": code})
    second = r.check({"solution.go": code})
    _report("write-outside", r, second)
    for p in (Path("/tmp"), Path("/root"), Path("/var/tmp"), Path.cwd()):
        assert not (p / marker).exists(), f"{p / marker} was written"
    # HOME is the workspace's own: writing there is allowed and stays inside it.
    assert (r.harness.ws.home / marker).exists()
    assert not first.passed and not second.passed
    assert [t.name for t in second.failed_tests] == ["TestAnswer"]
    # The harness wrote the real hidden test again before the second run, so the tampered
    # copy the first run left behind did not turn it into a pass.
    assert second.diagnostics[0].kind is Kind.test_failure


@pytest.mark.skipif(guard_binary() is None, reason="no Landlock on this kernel")
def test_the_test_binary_cannot_write_the_shared_build_cache(run: type[Run],
                                                               marker: str) -> None:
    # The go command must write GOCACHE; the code it runs must not (a poisoned entry
    # would change later verdicts). Both the new file and an existing one are tried.
    cache = Path(go_env(Path("/nonexistent"), Path("/nonexistent"))["GOCACHE"])
    readme = cache / "README"
    before = readme.read_bytes()
    code = f"""package sandbox

import (
	"os"
	"path/filepath"
)

var errs []error

func init() {{
	dir := os.Getenv("GOCACHE")
	errs = append(errs, os.WriteFile(filepath.Join(dir, "{marker}"), []byte("x"), 0o644))
	errs = append(errs, os.WriteFile(filepath.Join(dir, "README"), []byte("poison"), 0o644))
	errs = append(errs, os.Mkdir(filepath.Join(dir, "{marker}-d"), 0o755))
}}

func Answer() int {{
	for _, err := range errs {{
		if err == nil {{
			return 0
		}}
	}}
	return 42
}}
"""
    r = run(_task(), limit=60)
    result = r.check({"solution.go": code})
    _report("write-gocache", r, result)
    assert not (cache / marker).exists() and not (cache / f"{marker}-d").exists()
    assert readme.read_bytes() == before
    # Every write was refused (Answer() is 42 only then), and the run itself was normal.
    assert result.passed, result.diagnostics


@needs_isolation
def test_home_and_ssh_keys_are_not_readable(
    run: type[Run], marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A HOME-like directory we control, outside /tmp (which is hidden anyway).
    base = Path("/srv") if os.access("/srv", os.W_OK) else Path.cwd()
    home = base / marker
    (home / ".ssh").mkdir(parents=True)
    secret = f"SECRET-{marker}"
    (home / ".ssh" / "id_ed25519").write_text(secret)
    # The shared GOCACHE is found through HOME: pin it, or this run compiles cold.
    from tools.paths import cache_dir
    monkeypatch.setenv("GUILD_AGENT_CACHE", str(cache_dir()))
    monkeypatch.setenv("HOME", str(home))
    tests = f"""
import (
	"os"
	"testing"
)

func TestAnswer(t *testing.T) {{
	for _, p := range []string{{"{home}/.ssh/id_ed25519", "/root/.ssh/id_rsa", "/root/.bashrc"}} {{
		if b, err := os.ReadFile(p); err == nil {{
			t.Errorf("read %s: %s", p, b)
		}}
	}}
	// Only the path down to the shared cache (GOCACHE, read-only toolchain data) is bound in.
	for _, dir := range []string{{"/root", "{home}"}} {{
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {{
			if e.Name() != ".cache" {{
				t.Errorf("%s is visible: %v", dir, e.Name())
			}}
		}}
	}}
}}
"""
    try:
        r = run(_task(tests), limit=60)
        result = r.check({"solution.go": RIGHT})
        _report("read-ssh", r, result)
        assert secret not in result.log
        assert result.passed, result.diagnostics
    finally:
        for p in sorted(home.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        home.rmdir()


@needs_isolation
def test_network_is_off(run: type[Run]) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    tests = f"""
import (
	"net"
	"testing"
	"time"
)

func TestAnswer(t *testing.T) {{
	c, err := net.DialTimeout("tcp", "127.0.0.1:{port}", 2*time.Second)
	if err != nil {{
		t.Fatalf("dial: %v", err)
	}}
	c.Close()
}}
"""
    try:
        r = run(_task(tests), limit=40)
        result = r.check({"solution.go": RIGHT})
        _report("network", r, result)
    finally:
        stop.set()
        t.join()
        server.close()
    assert not accepted, "the sandboxed test reached a server outside"
    assert not result.passed
    assert result.diagnostics[0].kind is Kind.test_failure
    assert "dial" in result.diagnostics[0].message


def test_background_process_does_not_outlive_the_run(run: type[Run]) -> None:
    code = """package sandbox

import (
	"os/exec"
	"syscall"
)

func Answer() int {
	c := exec.Command("sleep", "300")
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	c.Start()
	d := exec.Command("sh", "-c", "nohup sleep 301 >/dev/null 2>&1 &")
	d.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	d.Run()
	return 42
}
"""
    r = run(_task(), limit=40)
    result = r.check({"solution.go": code})  # asserts nothing is left running
    _report("background-process", r, result)
    assert result.passed, result.diagnostics


def test_api_keys_are_not_visible_to_go_code(
    run: type[Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = {"OPENAI_API_KEY": "secret-value-1", "AWS_SECRET_ACCESS_KEY": "secret-value-2",
            "GITHUB_TOKEN": "secret-value-3", "ANTHROPIC_API_KEY": "secret-value-4"}
    for k, v in keys.items():
        monkeypatch.setenv(k, v)
    tests = """
import (
	"os"
	"strings"
	"testing"
)

func TestAnswer(t *testing.T) {
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(value, "secret-value-") || strings.Contains(name, "KEY") ||
			strings.Contains(name, "TOKEN") || strings.Contains(name, "SECRET") {
			t.Errorf("leaked: %s", kv)
		}
	}
}
"""
    r = run(_task(tests), limit=40)
    result = r.check({"solution.go": RIGHT})
    assert result.passed, result.diagnostics
    for v in keys.values():
        assert v not in result.log
