"""The Landlock exec guard that keeps test binaries from writing outside their workspace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import needs_go

from tools.guard import GUARD_ENV, OFF_ENV, guard_binary, guard_status, landlock_abi

needs_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="no Landlock on this kernel")


@needs_go
@needs_landlock
def test_guard_allows_writes_only_beneath_the_listed_directories(tmp_path: Path) -> None:
    guard = guard_binary()
    assert guard is not None and guard.is_file()
    inside, outside = tmp_path / "ws", tmp_path / "cache"
    inside.mkdir()
    outside.mkdir()
    (outside / "entry").write_text("original")
    script = (f"echo ok > {inside}/new && mkdir {inside}/d && echo x > /dev/null; "
              f"echo poison > {outside}/entry; echo x > {outside}/new; rm -f {outside}/entry; "
              f"mkdir {outside}/d; exit 0")
    proc = subprocess.run([str(guard), "/bin/sh", "-c", script], capture_output=True,
                          env={GUARD_ENV: str(inside), "PATH": "/usr/bin:/bin"}, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (inside / "new").read_text() == "ok\n" and (inside / "d").is_dir()
    assert (outside / "entry").read_text() == "original"
    assert sorted(p.name for p in outside.iterdir()) == ["entry"]
    assert b"Permission denied" in proc.stderr


@needs_go
@needs_landlock
def test_guard_without_a_program_is_a_usage_error_not_a_run() -> None:
    guard = guard_binary()
    assert guard is not None
    proc = subprocess.run([str(guard)], capture_output=True, timeout=30)
    assert proc.returncode == 125 and b"usage: exec-guard" in proc.stderr


def test_guard_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OFF_ENV, "off")
    assert guard_binary() is None
    assert "switched off" in guard_status()
