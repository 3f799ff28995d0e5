"""The sandbox itself, level by level, with plain shell commands (no Go needed)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools import isolation
from tools.isolation import Isolation, Level, detect
from tools.sandbox import Limits, run_limited


def _level(name: str) -> Isolation | None:
    """The isolation `name` forces, or None when this machine cannot provide it."""
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
    want = {"bwrap": Level.bubblewrap, "unshare": Level.namespaces}[name]
    return iso if iso.level is want else None


LEVELS = {name: _level(name) for name in ("bwrap", "unshare")}


@pytest.fixture(params=list(LEVELS))
def iso(request: pytest.FixtureRequest) -> Isolation:
    found = LEVELS[request.param]
    if found is None:
        pytest.skip(f"{request.param} isolation not available here")
    return found


@pytest.fixture
def ws() -> Iterator[Path]:
    # Outside /tmp on purpose: the sandbox must bind the workspace in, wherever it is.
    base = Path.cwd() / f".sandbox-test-{uuid.uuid4().hex[:8]}"
    (base / "src").mkdir(parents=True)
    yield base
    for p in sorted(base.rglob("*"), reverse=True):
        p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
    base.rmdir()


def _sh(iso: Isolation, ws: Path, script: str, **limits: object) -> tuple[int | None, str]:
    r = run_limited(["/bin/sh", "-c", script], cwd=ws / "src",
                    env={"PATH": "/usr/bin:/bin", "HOME": str(ws)},
                    limits=Limits(**{"wall_seconds": 20, **limits}),  # type: ignore[arg-type]
                    writable=[ws], isolation=iso)
    return r.exit_code, r.output.decode(errors="replace")


def test_linux_here_detects_a_sandbox() -> None:
    if not os.path.exists("/usr/bin/bwrap"):
        pytest.skip("bwrap not installed")
    assert detect().level is Level.bubblewrap


def test_filesystem_is_read_only_but_the_workspace(iso: Isolation, ws: Path) -> None:
    mark = uuid.uuid4().hex
    code, out = _sh(iso, ws, f"""
        echo ok > {ws}/src/inside && echo wrote-inside
        echo x > /etc/guild-{mark} 2>/dev/null && echo WROTE-ETC
        echo x > /tmp/{mark} && echo private-tmp
        echo x > /root/{mark} 2>/dev/null; ls -A /root
        mount -o remount,rw / 2>/dev/null && echo REMOUNTED
        exit 0""")
    assert code == 0, out
    assert "wrote-inside" in out and (ws / "src" / "inside").exists()
    # /etc stands for any host path: a checkout under /tmp would land in the private tmpfs.
    assert "WROTE-ETC" not in out and not Path(f"/etc/guild-{mark}").exists()
    assert "private-tmp" in out and not Path(f"/tmp/{mark}").exists()
    assert not Path(f"/root/{mark}").exists()
    assert "REMOUNTED" not in out


def test_network_has_only_loopback(iso: Isolation, ws: Path) -> None:
    code, out = _sh(iso, ws, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert code == 0
    assert out.split() == ["lo"]


def test_background_processes_are_killed(iso: Isolation, ws: Path) -> None:
    tag = f"{uuid.uuid4().int % 100000 + 1000}"
    start = time.monotonic()
    code, _ = _sh(iso, ws, f"setsid sleep {tag} >/dev/null 2>&1 & nohup sleep {tag} & echo done")
    assert code == 0
    assert time.monotonic() - start < 5  # not held up by the children keeping the pipe
    time.sleep(0.2)
    alive = [p for p in Path("/proc").iterdir() if p.name.isdigit()
             and _cmdline(p) == f"sleep {tag}"]
    assert not alive


def _cmdline(p: Path) -> str:
    try:
        return p.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_fork_loop_meets_the_process_cap(ws: Path) -> None:
    iso = detect()
    if iso.pids_cgroup is None:
        pytest.skip("no writable pids cgroup")
    start = time.monotonic()
    r = run_limited(["/bin/sh", "-c", "for i in $(seq 200); do sleep 30 & done; wait"],
                    cwd=ws / "src", env={"PATH": "/usr/bin:/bin"},
                    limits=Limits(wall_seconds=3, processes=20), writable=[ws])
    assert time.monotonic() - start < 8
    assert any("process limit reached" in n for n in r.notes), r.notes
    assert not any(_cmdline(p) == "sleep 30" for p in Path("/proc").iterdir()
                   if p.name.isdigit())


def test_limits_only_still_runs(ws: Path) -> None:
    limits_only = Isolation(level=Level.limits, pids_cgroup=detect().pids_cgroup)
    code, out = _sh(limits_only, ws, "echo hello")
    assert code == 0 and out.strip() == "hello"


class _Stop(Exception):
    pass


def test_an_unwinding_caller_does_not_wait_out_the_wall_clock(ws: Path) -> None:
    """SIGTERM or Ctrl-C in the harness: the command dies now, not at its wall clock."""
    import signal

    marker = f"guild-unwind-{uuid.uuid4().hex[:8]}"

    def stop(*_: object) -> None:
        raise _Stop

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(1)
    start = time.monotonic()
    try:
        with pytest.raises(_Stop):
            run_limited(["/bin/sh", "-c", f"sleep 60; echo {marker}"], cwd=ws,
                        env={"PATH": "/usr/bin:/bin"}, limits=Limits(wall_seconds=60))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    alive = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and marker.encode() in (p / "cmdline").read_bytes():
                alive.append(p.name)
        except OSError:
            continue
    assert not alive
