"""Model code runs as an unprivileged user and sees only the parts of /etc Go needs.

Run as root (sessions are), capabilities alone do not help: root stays the owner of
root's files. These tests put secrets where a root-run sandbox could read them and check,
through the real sandbox and the real Go toolchain, that model code cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import needs_go

from tools import isolation
from tools.go import find_toolchain, go_env
from tools.isolation import ETC_KEEP, Isolation, Level, detect, hand_over
from tools.runner import CheckOptions, GoRunner
from tools.sandbox import Limits, run_limited
from tools.workspace import Workspace

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="the uid switch only happens for root")
WANT = {"bwrap": Level.bubblewrap, "unshare": Level.namespaces}


def _detect(name: str) -> Isolation | None:
    old = os.environ.get(isolation.ENV_OVERRIDE)
    os.environ[isolation.ENV_OVERRIDE] = name
    isolation.detect.cache_clear()
    try:
        iso = detect()
    finally:
        if old is None:
            del os.environ[isolation.ENV_OVERRIDE]
        else:
            os.environ[isolation.ENV_OVERRIDE] = old
        isolation.detect.cache_clear()
    return iso if iso.level is WANT[name] else None


LEVELS = {name: _detect(name) for name in WANT}


@pytest.fixture(params=list(WANT))
def iso(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Isolation]:
    """A sandbox level, also the one GoRunner picks while the test runs."""
    found = LEVELS[request.param]
    if found is None:
        pytest.skip(f"{request.param} isolation not available here")
    monkeypatch.setenv(isolation.ENV_OVERRIDE, request.param)
    isolation.detect.cache_clear()
    yield found
    isolation.detect.cache_clear()


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory of root's outside /tmp and the homes, where no mask hides anything."""
    base = Path.cwd() / f".sandbox-user-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    secret = base / "secret"
    secret.write_text("TOP-SECRET\n")
    secret.chmod(0o600)
    (base / "drop").mkdir()
    (base / "drop").chmod(0o777)  # world-writable on the host: only the mount stops writes
    yield base
    shutil.rmtree(base)


def _expected_uid(iso: Isolation) -> str | None:
    if ROOT:
        assert iso.run_as is not None and iso.run_as[0] != 0
        return str(iso.run_as[0])
    return str(os.getuid()) if iso.level is Level.bubblewrap else None


def _sh(iso: Isolation, cwd: Path, writable: list[Path], script: str) -> tuple[int | None, str]:
    r = run_limited(["/bin/sh", "-c", script], cwd=cwd,
                    env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
                    limits=Limits(wall_seconds=20), writable=writable, isolation=iso)
    return r.exit_code, r.output.decode(errors="replace")


def test_command_runs_unprivileged_and_reads_no_root_files(iso: Isolation,
                                                           outside: Path) -> None:
    ws = outside / "ws"
    (ws / "src").mkdir(parents=True)
    code, out = _sh(iso, ws / "src", [ws], f"""
        echo "uid=$(id -u)"
        cat /etc/shadow 2>/dev/null && echo READ-SHADOW
        cat {outside}/secret 2>/dev/null && echo READ-SECRET
        echo x > {outside}/drop/x 2>/dev/null && echo WROTE-DROP
        echo x > /etc/guild-x 2>/dev/null && echo WROTE-ETC
        echo ok > {ws}/src/inside && echo wrote-inside
        echo "etc: $(ls -A /etc | tr '\\n' ' ')"
        exit 0""")
    assert code == 0, out
    uid = _expected_uid(iso)
    if uid is not None:
        assert f"uid={uid}\n" in out, out
    assert "READ-SHADOW" not in out and "TOP-SECRET" not in out and "READ-SECRET" not in out
    assert "WROTE-DROP" not in out and not (outside / "drop" / "x").exists()
    assert "WROTE-ETC" not in out
    assert "wrote-inside" in out and (ws / "src" / "inside").read_text() == "ok\n"
    etc = out.split("etc: ", 1)[1].split()
    assert "passwd" in etc and "shadow" not in etc and "gshadow" not in etc
    assert set(etc) <= {name.split("/")[0] for name in ETC_KEEP}


@needs_root
def test_writable_paths_under_a_closed_directory_still_work(iso: Isolation,
                                                            outside: Path) -> None:
    # Separate workspace binds (src, home, tmp) below a 0700 directory of root's that is
    # itself not writable: the sandbox user reaches them, and the parent stays closed.
    root = outside / "closed"
    for d in ("src", "home", "tmp"):
        (root / d).mkdir(parents=True)
    root.chmod(0o700)
    writable = [root / "src", root / "home", root / "tmp"]
    code, out = _sh(iso, root / "src", writable, f"""
        echo a > {root}/src/a && echo a > {root}/tmp/a && echo wrote-both
        mv {root}/src {root}/gone 2>/dev/null && echo RENAMED
        echo x > {root}/new 2>/dev/null && echo WROTE-PARENT
        pwd""")
    assert code == 0, out
    assert "wrote-both" in out and f"{root}/src" in out
    assert "RENAMED" not in out and "WROTE-PARENT" not in out
    assert (root / "src" / "a").is_file() and not (root / "gone").exists()
    assert oct(root.stat().st_mode & 0o777) == oct(0o700)


@needs_root
def test_writable_path_reached_through_a_closed_readable_directory(iso: Isolation,
                                                                  outside: Path) -> None:
    # A cache directory made under umask 077 (0700) that links to the build cache: the
    # user may follow the link, and still cannot list the directory or read its files.
    closed, real = outside / "cachedir", outside / "real-cache"
    closed.mkdir(mode=0o700)
    real.mkdir()
    (closed / "models.key").write_text("private\n")
    (closed / "models.key").chmod(0o600)
    (closed / "go-build").symlink_to(real, target_is_directory=True)
    ws = outside / "ws"
    (ws / "src").mkdir(parents=True)
    r = run_limited(["/bin/sh", "-c", f"""
        echo entry > {closed}/go-build/e && echo wrote-cache
        ls {closed} >/dev/null 2>&1 && echo LISTED
        cat {closed}/models.key 2>/dev/null && echo READ-KEY
        exit 0"""], cwd=ws / "src", env={"PATH": "/usr/bin:/bin"},
        limits=Limits(wall_seconds=20), writable=[ws, closed / "go-build"],
        readable=[closed], isolation=iso)
    out = r.output.decode(errors="replace")
    assert r.exit_code == 0 and "wrote-cache" in out, out
    assert (real / "e").read_text() == "entry\n"
    assert "LISTED" not in out and "READ-KEY" not in out and "private" not in out


@needs_root
def test_hand_over_follows_new_root_files_but_not_hard_links(tmp_path: Path) -> None:
    uid = gid = 65534
    d = tmp_path / "cache" / "ab"
    d.mkdir(parents=True)
    (d / "old").write_text("x")
    past = time.time() - 60
    os.utime(d, (past, past))  # settled: the next call trusts its mtime
    hand_over([tmp_path / "cache"], uid, gid)
    assert (d / "old").stat().st_uid == uid and d.stat().st_uid == uid
    (d / "new").write_text("y")  # a root writer (older version, guard build) after that
    target = tmp_path / "elsewhere"
    target.write_text("not yours")
    os.link(target, d / "linked")
    hand_over([tmp_path / "cache"], uid, gid)
    assert (d / "new").stat().st_uid == uid
    assert target.stat().st_uid == 0  # a hard link is not handed over


GO_PROBE = """package sandbox

import (
\t"net"
\t"os"
\t"os/user"
\t"strconv"
\t"testing"
\t"time"
)

func TestConfined(t *testing.T) {
\tif b, err := os.ReadFile("/etc/shadow"); err == nil {
\t\tt.Fatalf("read /etc/shadow: %d bytes", len(b))
\t}
\tif _, err := os.ReadFile(SECRET); err == nil {
\t\tt.Fatal("read a 0600 file of root's")
\t}
\tif err := os.WriteFile(DROP+"/x", []byte("x"), 0o644); err == nil {
\t\tt.Fatal("wrote outside the workspace")
\t}
\tif want := WANT_UID; want != "" && strconv.Itoa(os.Getuid()) != want {
\t\tt.Fatalf("uid %d, want %s", os.Getuid(), want)
\t}
\tif u, err := user.Current(); err != nil || u.Uid != strconv.Itoa(os.Getuid()) {
\t\tt.Fatalf("os/user: %v %v", u, err)
\t}
\tif _, err := time.LoadLocation("Local"); err != nil {
\t\tt.Fatal(err)
\t}
\tif addrs, err := net.LookupHost("localhost"); err != nil || len(addrs) == 0 {
\t\tt.Fatalf("localhost: %v %v", addrs, err)
\t}
\tln, err := net.Listen("tcp", "127.0.0.1:0")
\tif err != nil {
\t\tt.Fatal(err)
\t}
\tln.Close()
}
"""

RACY = """package sandbox

import "sync"

func Count() int {
\tvar mu sync.Mutex
\tn := 0
\tvar wg sync.WaitGroup
\tfor i := 0; i < 4; i++ {
\t\twg.Add(1)
\t\tgo func() { defer wg.Done(); mu.Lock(); n++; mu.Unlock() }()
\t}
\twg.Wait()
\treturn n
}
"""


def _probe_sources(iso: Isolation, outside: Path) -> dict[str, str]:
    test = (GO_PROBE.replace("SECRET", f'"{outside}/secret"')
            .replace("DROP", f'"{outside}/drop"')
            .replace("WANT_UID", f'"{_expected_uid(iso) or ""}"'))
    return {"racy.go": RACY, "confined_test.go": test}


@needs_go
@pytest.mark.parametrize("race", [False, True], ids=["plain", "race"])
def test_go_toolchain_works_as_the_sandbox_user(iso: Isolation, outside: Path,
                                                race: bool) -> None:
    if race and not shutil.which("gcc"):
        pytest.skip("no C compiler for -race")
    with Workspace() as ws:
        for name, content in _probe_sources(iso, outside).items():
            ws.write(name, content)
        result = GoRunner(CheckOptions(race=race, full_vet=True, test_timeout=60)).check(
            ws, expected_tests=["TestConfined"])
    assert result.passed, (result.diagnostics, result.log[-3000:])
    assert not (outside / "drop" / "x").exists()


def _root_owned(tree: Path) -> set[Path]:
    found: set[Path] = set()
    for p in tree.rglob("*"):
        try:
            if p.lstat().st_uid == 0:
                found.add(p)
        except OSError:  # trimmed by a concurrent go command
            continue
    return found


@needs_go
@needs_root
def test_shared_cache_stays_writable_and_warm(iso: Isolation) -> None:
    tc = find_toolchain()
    tag = uuid.uuid4().hex[:8]
    with Workspace() as ws:
        ws.write("w.go", f'package sandbox\n\nconst Tag = "{tag}"\n')
        ws.write("w_test.go", 'package sandbox\n\nimport "testing"\n\n'
                 'func TestTag(t *testing.T) { if Tag == "" { t.Fatal() } }\n')
        ws.prepare()  # the tree a run sees, built from the harness's copy
        env = go_env(ws.home, ws.tmp)
        cache = Path(env["GOCACHE"])
        # As an older version (or the exec guard's build) did: go run as root, unsandboxed,
        # leaves root-owned entries in the shared cache.
        subprocess.run([str(tc.go), "build", "./..."], cwd=ws.src, env=env, check=True,
                       capture_output=True, timeout=300)
        left_by_root = _root_owned(cache)
        # The cache is walked again only 30 s after its last hand-over (a walk every round
        # cost ~65 ms): a run within that window leaves them to the next walk. As after it:
        isolation._recent.clear()
        outs = []
        for _ in range(2):
            r = run_limited([str(tc.go), "test", "./..."], cwd=ws.src, env=env,
                            limits=Limits(wall_seconds=300),
                            writable=[ws.src, ws.home, ws.tmp, cache],
                            readable=[tc.goroot, tc.bin_dir, cache.parent], isolation=iso)
            outs.append(r.output.decode(errors="replace"))
            assert r.exit_code == 0, outs[-1]
    assert "(cached)" not in outs[0] and "(cached)" in outs[1], outs
    still_root = {p for p in left_by_root if p.exists() and p.lstat().st_uid == 0}
    assert not still_root, sorted(still_root)[:5]


@needs_root
@pytest.mark.parametrize("name", list(WANT))
def test_a_normal_user_keeps_its_own_sandbox(name: str, outside: Path) -> None:
    """Run by a user, the sandbox uses a user namespace and the code keeps that user."""
    if LEVELS[name] is None or not shutil.which("setpriv"):
        pytest.skip(f"{name} isolation not available here")
    home = outside / "home"
    (home / "ws" / "src").mkdir(parents=True)
    for p in (home, home / "ws", home / "ws" / "src"):
        os.chown(p, 65534, 65534)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tools.isolation import detect\n"
        "from tools.sandbox import Limits, run_limited\n"
        "iso = detect()\n"
        "ws = Path(sys.argv[1])\n"
        "r = run_limited(['/bin/sh', '-c', 'cat /etc/shadow && echo READ-SHADOW; "
        f"echo hi > f && echo wrote; echo x > {outside}/drop/y 2>/dev/null && echo WROTE; exit 0'],"
        " cwd=ws / 'src', env={'PATH': '/usr/bin:/bin'}, limits=Limits(wall_seconds=20),"
        " writable=[ws])\n"
        "print(iso.level.value, iso.run_as, r.exit_code, r.output.decode())\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), isolation.ENV_OVERRIDE: name,
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-c", script, str(home / "ws")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{WANT[name].value} None 0"), proc.stdout + proc.stderr
    assert "wrote" in proc.stdout and "READ-SHADOW" not in proc.stdout
    assert "WROTE" not in proc.stdout and not (outside / "drop" / "y").exists()
    assert (home / "ws" / "src" / "f").stat().st_uid == 65534


def test_doctor_names_the_uid_model_code_runs_as() -> None:
    from agent.cli.doctor import _isolation

    iso = detect()
    want = iso.run_as[0] if iso.run_as else os.geteuid()
    assert _isolation()["runs_as_uid"] == want
    if ROOT and iso.level is not Level.limits:
        assert want != 0


@needs_go
@needs_root
def test_the_shared_cache_is_not_walked_every_round(iso: Isolation) -> None:
    """Within 30 s of a hand-over the cache folder is skipped; a new folder never is."""
    with Workspace() as ws:
        env = go_env(ws.home, ws.tmp)
        cache = Path(env["GOCACHE"])
        isolation._recent.clear()
        hand_over([cache], 65534, 65534)
        # Where the go command puts entries: in the cache's subfolders, not at its top.
        sub = next(d for d in sorted(cache.iterdir()) if d.is_dir())
        marker = sub / f"zz-root-{uuid.uuid4().hex[:8]}"
        marker.write_text("x")
        try:
            hand_over([cache], 65534, 65534)  # skipped: walked a moment ago
            assert marker.stat().st_uid == 0
            ws.prepare()
            (ws.src / "new.go").write_text("package sandbox\n")
            hand_over([ws.src], 65534, 65534)  # a folder made this round: walked
            assert (ws.src / "new.go").stat().st_uid == 65534
            isolation._recent.clear()  # as 30 s later
            hand_over([cache], 65534, 65534)
            assert marker.stat().st_uid == 65534
        finally:
            marker.unlink(missing_ok=True)
