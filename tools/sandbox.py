"""Run an untrusted command with limits: rlimits, a wall clock, an output cap, group kill.

With `writable=` the command also runs isolated (see tools.isolation): read-only
filesystem except those paths, no network, its own pid namespace. Wherever a pids cgroup
can be made, every run gets one: it caps the process count (RLIMIT_NPROC does nothing for
root) and lists every process to kill at the end, including ones that left the group.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tools.isolation import Isolation, Level, PidsCgroup, detect, note_fallback_once, wrap_argv

try:  # not on Windows
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 120.0
    output_bytes: int = 8 * 1024 * 1024
    memory_bytes: int | None = 4 * 1024**3  # address space per process
    cpu_seconds: int | None = 300
    processes: int | None = 256
    file_bytes: int | None = 256 * 1024 * 1024
    open_files: int | None = 1024


@dataclass
class ProcResult:
    exit_code: int | None
    output: bytes
    seconds: float
    timed_out: bool = False
    output_truncated: bool = False
    notes: list[str] = field(default_factory=list)
    isolation: str = Level.limits.value  # the level this run actually had
    leftover_processes: int = 0  # processes still alive at the end, then killed


def _apply_rlimits(limits: Limits, *, per_user_procs: bool = True) -> None:
    if resource is None:
        return
    pairs = [
        (getattr(resource, "RLIMIT_AS", None), limits.memory_bytes),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (getattr(resource, "RLIMIT_NPROC", None),
         limits.processes if per_user_procs else None),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in pairs:
        if which is None or value is None:
            continue
        with contextlib.suppress(ValueError, OSError):
            _soft, hard = resource.getrlimit(which)
            new = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (new, new))


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _preexec(limits: Limits, cgroup: PidsCgroup | None) -> None:
    # Runs in the child between fork and exec: join the cgroup first, so every process
    # the command starts is counted and can be found at the end.
    joined = False
    if cgroup is not None:
        with contextlib.suppress(OSError):
            cgroup.join_self()
            joined = True
    # RLIMIT_NPROC counts every process of the user, and every sandbox runs as the same
    # unprivileged user: concurrent runs (bench --jobs, workers) would share one count.
    # The run's own pids cgroup is the cap where there is one.
    _apply_rlimits(limits, per_user_procs=not joined)


def run_limited(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    limits: Limits,
    stdin: bytes | None = None,
    writable: Sequence[Path] | None = None,
    readable: Sequence[Path] = (),
    hidden: Sequence[Path] = (),
    isolation: Isolation | None = None,
) -> ProcResult:
    """Run argv in its own session; kill the whole group on timeout, output cap or exit.

    stdout and stderr are merged and read incrementally, so a program printing gigabytes
    is stopped at `limits.output_bytes` instead of filling memory.

    `writable`: run sandboxed, with these the only writable paths (None: limits only).
    `readable`: paths under hidden directories (/tmp, homes) that must stay visible.
    `hidden`: more folders to cover with an empty tmpfs (a user's project in `fix`).
    `isolation`: the level to use; default the best one this machine supports.
    """
    start = time.monotonic()
    iso = isolation or detect()
    level = Level.limits
    if writable is not None:
        note_fallback_once(iso)
        argv = wrap_argv(iso, argv, cwd=cwd, writable=writable, readable=readable,
                         hidden=hidden)
        level = iso.level
    cgroup = None
    if iso.pids_cgroup is not None and limits.processes is not None:
        cgroup = PidsCgroup.create(iso.pids_cgroup, limits.processes)
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: _preexec(limits, cgroup)) if sys.platform != "win32" else None,
        )
    except BaseException:
        if cgroup is not None:
            cgroup.kill_all()
        raise
    pgid = proc.pid
    if stdin is not None and proc.stdin:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(stdin)
        proc.stdin.close()
    chunks: list[bytes] = []
    size = 0
    timed_out = truncated = False
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    deadline = start + limits.wall_seconds
    finished = False  # the read loop ended on its own, not by an exception (SIGTERM, ^C)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not sel.select(timeout=min(remaining, 0.5)):
                if proc.poll() is not None:
                    # The command is done but something it left behind (setsid, nohup)
                    # holds the pipe open: end it rather than wait for the wall clock.
                    kill_group(pgid)
                    if cgroup is not None:
                        cgroup.kill_members(wait=0.5)
                continue
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not data:
                break
            chunks.append(data)
            size += len(data)
            if size > limits.output_bytes:
                truncated = True
                break
        finished = True
    finally:
        sel.close()
        # The group dies whatever happened: nothing a test started outlives the run, and a
        # caller unwinding (SIGTERM, Ctrl-C) does not wait out the wall clock first.
        if timed_out or truncated or not finished:
            kill_group(pgid)
        try:
            exit_code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(pgid)
            exit_code = proc.wait()
        kill_group(pgid)
        # Processes that called setsid left the group: the cgroup still lists them.
        leftover = refused = 0
        if cgroup is not None:
            refused = cgroup.forks_refused()
            leftover = cgroup.kill_all()
        proc.stdout.close()
    output = b"".join(chunks)[: limits.output_bytes]
    notes: list[str] = []
    if refused:
        notes.append(f"process limit reached: {refused} process/thread creations refused "
                     f"(limit {limits.processes})")
    return ProcResult(
        notes=notes,
        isolation=level.value,
        leftover_processes=leftover,
        exit_code=None if timed_out or truncated else exit_code,
        output=output,
        seconds=time.monotonic() - start,
        timed_out=timed_out,
        output_truncated=truncated,
    )
