"""Confine what a test binary may write to its own workspace, with Landlock.

The sandbox must let the go command write the shared build cache (that is what makes a
round cost 0.3 s instead of 15), but the test binary the go command then runs is the
model's code, and it must not write there: a poisoned cache entry would change the
verdicts of every later run. `go test -exec GUARD` runs each test binary through a
small Go program (tools/exec_guard) that gives up write access everywhere but the
workspace before it starts the binary, irrevocably, for every process it may start.

Linux 5.13+ only. Where Landlock is missing the guard is not used and `guild-agent
doctor` says so; the bubblewrap sandbox still bounds everything else.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.go import ToolchainError, find_toolchain, go_env
from tools.locks import file_lock
from tools.paths import cache_dir

GUARD_ENV = "GUILD_GUARD_WRITABLE"  # os.pathsep-separated directories the binary may write
OFF_ENV = "GUILD_AGENT_GUARD"  # "off": run test binaries without the guard (doctor says so)
SOURCE = Path(__file__).parent / "exec_guard" / "main.go"
_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every Linux architecture
_CREATE_RULESET_VERSION = 1


@functools.lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when there is none (or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        abi = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                           ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


@functools.lru_cache(maxsize=1)
def _digest() -> str:
    return hashlib.sha256(SOURCE.read_bytes() + find_toolchain().version.encode()
                          ).hexdigest()[:12]


def _guard_path() -> Path:
    # Not cached: the cache directory may change (GUILD_AGENT_CACHE) within a process.
    return cache_dir() / "guard" / f"exec-guard-{_digest()}"


_FAILED: set[Path] = set()  # builds that failed in this process: not retried every check


def _works(binary: Path) -> bool:
    """The guard runs a program, and that program cannot write outside what it allows."""
    with tempfile.TemporaryDirectory(prefix="guild-guard-") as d:
        inside, outside = Path(d) / "in", Path(d) / "out"
        inside.mkdir()
        script = f"echo x > {inside}/ok && ! (echo x > {outside}) 2>/dev/null"
        try:
            proc = subprocess.run([str(binary), "/bin/sh", "-c", script], timeout=30,
                                  env={GUARD_ENV: str(inside), "PATH": "/usr/bin:/bin"},
                                  capture_output=True)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0 and (inside / "ok").is_file() and not outside.exists()


def guard_binary() -> Path | None:
    """The guard, built once per toolchain and source version; None when this machine
    cannot enforce it (no Landlock, or it failed its own self-test) or it is switched off."""
    if landlock_abi() < 1 or os.environ.get(OFF_ENV, "").strip().lower() == "off":
        return None
    try:
        out = _guard_path()
    except (ToolchainError, OSError):
        return None
    if out.is_file():
        return out
    if out in _FAILED:
        return None
    with file_lock(out.parent / ".lock"):
        if out.is_file():
            return out
        with tempfile.TemporaryDirectory(prefix="guild-guard-build-") as d:
            home, tmp = Path(d) / "home", Path(d) / "tmp"
            home.mkdir()
            tmp.mkdir()
            built = Path(d) / "exec-guard"
            env = {**go_env(home, tmp), "GOFLAGS": ""}
            try:
                proc = subprocess.run(
                    [str(find_toolchain().go), "build", "-trimpath", "-o", str(built),
                     str(SOURCE)], cwd=d, env=env, capture_output=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired):
                return None
            if proc.returncode != 0 or not _works(built):
                _FAILED.add(out)
                return None
            partial = out.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(built.read_bytes())
            partial.chmod(0o755)
            partial.replace(out)  # atomic: a reader sees no guard or a whole one
    return out


def guard_status() -> str:
    """One line for `guild-agent doctor`."""
    abi = landlock_abi()
    if os.environ.get(OFF_ENV, "").strip().lower() == "off":
        return f"switched off ({OFF_ENV}=off): test binaries may write the shared build cache"
    if abi < 1:
        return "test binaries may write the shared build cache (no Landlock on this kernel)"
    if guard_binary() is None:
        return f"Landlock ABI {abi} present, but the exec guard could not be built or failed"
    return f"test binaries write only in their workspace (Landlock ABI {abi})"
