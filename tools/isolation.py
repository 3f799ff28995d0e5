"""Isolation for untrusted commands: bubblewrap, else namespaces via unshare, else none.

Inside the sandbox the whole filesystem is read-only except the paths the caller names as
writable (the workspace and the shared GOCACHE); /tmp is private; the real home
directories are hidden behind empty tmpfs mounts; the network is a namespace with only
loopback; a pid namespace ends every process when its first one exits; capabilities are
dropped so a root sandbox cannot remount anything writable again.

Process counts are bounded with a pids cgroup where one can be created: as root,
RLIMIT_NPROC is not enforced, so it is the only count limit a fork bomb meets.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

ENV_OVERRIDE = "GUILD_AGENT_ISOLATION"  # bwrap | unshare | none | auto (default)
TMPFS_BYTES = 256 * 1024 * 1024  # private /tmp and /dev/shm are RAM: bound them


class Level(str, Enum):
    bubblewrap = "bubblewrap"
    namespaces = "namespaces"  # unshare(1): user?/mount/pid/net namespaces
    limits = "limits-only"


@dataclass(frozen=True)
class Isolation:
    """What this machine supports, found once per process."""

    level: Level
    bwrap: str | None = None
    unshare: str | None = None
    setpriv: str | None = None
    user_ns: bool = False  # unshare needs --user --map-root-user (not running as root)
    pids_cgroup: Path | None = None  # parent directory for per-run pids cgroups
    notes: tuple[str, ...] = ()


# -- pids cgroup ---------------------------------------------------------------------------

def _own_cgroup_dirs() -> list[Path]:
    """Candidate parent directories (where we may mkdir) of pids cgroups, v1 then v2."""
    mounts: dict[str, Path] = {}  # "pids" (v1) or "v2" -> mount point
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            if parts[2] == "cgroup" and "pids" in parts[3].split(","):
                mounts.setdefault("pids", Path(parts[1]))
            elif parts[2] == "cgroup2":
                mounts.setdefault("v2", Path(parts[1]))
    found: list[Path] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hid, controllers, path = line.split(":", 2)
            rel = path.lstrip("/")
            if "pids" in controllers.split(",") and "pids" in mounts:
                found.append(mounts["pids"] / rel)
            elif hid == "0" and "v2" in mounts:
                base = mounts["v2"] / rel
                with contextlib.suppress(OSError):
                    if "pids" in (base / "cgroup.controllers").read_text().split():
                        found.append(base)
    return found


def _probe_pids_cgroup() -> Path | None:
    for parent in _own_cgroup_dirs():
        # Unique per call: a probe left by a killed process must not make this one fail.
        probe = parent / f"guild-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            probe.mkdir()
        except OSError:
            continue
        try:
            (probe / "pids.max").write_text("16\n")
            return parent
        except OSError:
            continue
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
    return None




@dataclass
class PidsCgroup:
    """One run's cgroup: a process cap, and a complete list of what to kill at the end."""

    path: Path

    @classmethod
    def create(cls, parent: Path, max_pids: int) -> PidsCgroup | None:
        # The random part keeps a cgroup left by a killed run (same pid, reused) from
        # costing this run its process cap.
        path = parent / f"guild-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(f"{max_pids}\n")
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path)

    def join_self(self) -> None:
        """Called in the child between fork and exec: everything it starts is counted."""
        with open(self.path / "cgroup.procs", "w") as fh:
            fh.write(str(os.getpid()))

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def forks_refused(self) -> int:
        """How often pids.max refused a fork: a fork bomb leaves a trace here."""
        try:
            for line in (self.path / "pids.events").read_text().splitlines():
                name, _, count = line.partition(" ")
                if name == "max":
                    return int(count)
        except (OSError, ValueError):
            pass
        return 0

    def kill_members(self, wait: float = 2.0) -> int:
        """SIGKILL everything in the cgroup until it is empty; returns how many were alive."""
        killed: set[int] = set()
        kill_file = self.path / "cgroup.kill"  # cgroup v2 kills the lot atomically
        if kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1\n")
        deadline = time.monotonic() + wait
        while True:
            left = self.pids()
            if not left:
                break
            for pid in left:
                killed.add(pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                break
            time.sleep(0.005)
        return len(killed)

    def kill_all(self, wait: float = 2.0) -> int:
        """Stop new forks, kill every member and remove the cgroup; returns how many."""
        # No new processes from here on, so a fork bomb cannot outrun the kill loop.
        with contextlib.suppress(OSError):
            (self.path / "pids.max").write_text("0\n")
        killed = self.kill_members(wait)
        for _ in range(200):  # rmdir fails (EBUSY) until the last zombie is reaped
            try:
                self.path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
        return killed


# -- detection -----------------------------------------------------------------------------

def _probe_ok(argv: list[str]) -> bool:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def _probe_script() -> str:
    # Succeeds only when the isolation really holds: / read-only, no network but loopback.
    return ("if touch /.guild-probe 2>/dev/null; then rm -f /.guild-probe; exit 11; fi; "
            "test -w /tmp || exit 12; exit 0")


@functools.lru_cache(maxsize=1)
def detect() -> Isolation:
    """Find the strongest isolation that works here (cached; GUILD_AGENT_ISOLATION forces)."""
    want = os.environ.get(ENV_OVERRIDE, "auto").strip().lower() or "auto"
    notes: list[str] = []
    cg = _probe_pids_cgroup() if sys.platform.startswith("linux") else None
    if cg is None and sys.platform.startswith("linux"):
        notes.append("no writable pids cgroup: process counts bounded by RLIMIT_NPROC only"
                     + (" (not enforced for root)" if os.geteuid() == 0 else ""))
    base = Isolation(level=Level.limits, pids_cgroup=cg)
    if not sys.platform.startswith("linux") or want == "none":
        why = "forced by " + ENV_OVERRIDE if want == "none" else f"no namespaces on {sys.platform}"
        return _with(base, [*notes, why])
    tmp = Path("/tmp")
    if want in ("auto", "bwrap", "bubblewrap"):
        bwrap = shutil.which("bwrap")
        if bwrap:
            iso = Isolation(level=Level.bubblewrap, bwrap=bwrap, pids_cgroup=cg)
            argv = wrap_argv(iso, ["/bin/sh", "-c", _probe_script()], cwd=tmp, writable=[])
            if _probe_ok(argv):
                return _with(iso, notes)
            notes.append("bwrap is installed but cannot create a sandbox here")
        else:
            notes.append("bwrap not found (Debian/Ubuntu: apt-get install bubblewrap)")
    if want in ("auto", "unshare", "namespaces"):
        unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
        if unshare and setpriv:
            iso = Isolation(level=Level.namespaces, unshare=unshare, setpriv=setpriv,
                            user_ns=os.geteuid() != 0, pids_cgroup=cg)
            argv = wrap_argv(iso, ["/bin/sh", "-c", _probe_script()], cwd=tmp, writable=[])
            if _probe_ok(argv):
                return _with(iso, notes)
            notes.append("unshare cannot create namespaces here")
        else:
            notes.append("unshare/setpriv (util-linux) not found")
    return _with(base, notes)


def _with(iso: Isolation, notes: list[str]) -> Isolation:
    return Isolation(**{**iso.__dict__, "notes": tuple(notes)})


_warned = False


def note_fallback_once(iso: Isolation) -> None:
    """Say once per process that model code runs without filesystem/network isolation."""
    global _warned
    if _warned or iso.level is not Level.limits:
        return
    _warned = True
    why = "; ".join(iso.notes) or "no sandbox available"
    print(f"guild-agent: note: running model code with resource limits only ({why})",
          file=sys.stderr)


# -- building the command ------------------------------------------------------------------

def hidden_dirs() -> list[Path]:
    """Home directories model code must not read (SSH keys, tokens, dotfiles)."""
    dirs = {Path("/root"), Path("/home")}
    for h in (os.environ.get("HOME"), str(Path.home())):
        if h and Path(h) != Path("/") and Path(h).is_dir():
            dirs.add(Path(h))
    return sorted(d for d in dirs if d.is_dir())


def _under(p: Path, parents: Sequence[Path]) -> bool:
    return any(p == q or q in p.parents for q in parents)


@dataclass
class Plan:
    """Mount plan shared by both backends, in the order the mounts must happen."""

    hide: list[Path] = field(default_factory=list)  # empty tmpfs over these
    rebind_ro: list[Path] = field(default_factory=list)  # visible again, read-only
    rebind_rw: list[Path] = field(default_factory=list)  # visible and writable


def plan(writable: Sequence[Path], readable: Sequence[Path]) -> Plan:
    hide = [Path("/tmp"), Path("/var/tmp"), *hidden_dirs()]
    for w in writable:  # a bind needs its source; the go command would create it anyway
        with contextlib.suppress(OSError):
            Path(w).mkdir(parents=True, exist_ok=True)
    rw = sorted({Path(os.path.realpath(p)) for p in writable if Path(p).exists()})
    masked = [h for h in hide if h.exists()]
    ro = sorted({Path(os.path.realpath(p)) for p in readable if Path(p).exists()})
    # Only paths a tmpfs would otherwise cover need binding back.
    ro = [p for p in ro if _under(p, masked) and not _under(p, rw)]
    return Plan(hide=masked, rebind_ro=ro, rebind_rw=rw)


def wrap_argv(
    iso: Isolation,
    argv: list[str],
    *,
    cwd: Path,
    writable: Sequence[Path],
    readable: Sequence[Path] = (),
) -> list[str]:
    """argv run inside the sandbox `iso` describes (unchanged at the limits-only level)."""
    if iso.level is Level.limits:
        return list(argv)
    p = plan(writable, readable)
    if iso.level is Level.bubblewrap:
        return _bwrap_argv(iso, p, argv, cwd)
    return _unshare_argv(iso, p, argv, cwd)


def _bwrap_argv(iso: Isolation, p: Plan, argv: list[str], cwd: Path) -> list[str]:
    assert iso.bwrap
    out = [iso.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--size", str(TMPFS_BYTES), "--tmpfs", "/dev/shm"]
    for h in p.hide:
        out += ["--size", str(TMPFS_BYTES), "--tmpfs", str(h)]
    for r in p.rebind_ro:
        out += ["--ro-bind", str(r), str(r)]
    for w in p.rebind_rw:
        out += ["--bind", str(w), str(w)]
    # /dev is a tmpfs bwrap fills with device nodes: read-only so it cannot eat RAM.
    out += ["--remount-ro", "/dev",
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            # As root bwrap keeps capabilities unless told: with CAP_SYS_ADMIN the code
            # could remount / read-write.
            "--cap-drop", "ALL",
            "--chdir", str(cwd), "--", *argv]
    return out


def _unshare_argv(iso: Isolation, p: Plan, argv: list[str], cwd: Path) -> list[str]:
    """unshare + a small sh script doing the mounts, then setpriv dropping capabilities."""
    assert iso.unshare and iso.setpriv
    keep = p.rebind_ro + p.rebind_rw
    if len(keep) > 7:  # sh can name file descriptors 3..9 only
        raise RuntimeError("too many paths to bind into the namespace sandbox")
    q = shlex.quote
    lines = ["set -e"]
    # Hold each path open before the tmpfs mounts cover it, then bind it back from the fd.
    for i, k in enumerate(keep, start=3):
        lines.append(f"exec {i}<{q(str(k))}")
    for h in p.hide:
        lines.append(f"mount -t tmpfs -o size={TMPFS_BYTES},mode=1777 tmpfs {q(str(h))}")
    lines.append(f"mount -t tmpfs -o size={TMPFS_BYTES},mode=1777 tmpfs /dev/shm || true")
    for i, k in enumerate(keep, start=3):
        lines.append(f"mkdir -p {q(str(k))}")
        lines.append(f"mount --no-canonicalize --bind /proc/self/fd/{i} {q(str(k))}")
        lines.append(f"exec {i}<&-")
    rw = [str(w) for w in p.rebind_rw] + [str(h) for h in p.hide] + ["/dev/shm", "/proc"]
    # Every other mount becomes read-only, deepest last so nothing is skipped.
    lines.append(
        "awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do "
        "m=$(printf '%b' \"$(echo \"$m\" | sed 's/\\\\\\([0-7]\\{3\\}\\)/\\\\0\\1/g')\"); "
        "case \"$m\" in " + "|".join(q(x) for x in rw) + ") continue;; esac; "
        "mount -o remount,bind,ro \"$m\" 2>/dev/null || true; done")
    for h in p.hide:  # private /tmp and friends stay writable, but only their own tmpfs
        lines.append(f"chmod 1777 {q(str(h))} 2>/dev/null || true")
    lines.append("ip link set lo up 2>/dev/null || true")
    lines.append(f"cd {q(str(cwd))}")
    lines.append(f'exec {q(iso.setpriv)} --no-new-privs --inh-caps=-all --bounding-set=-all '
                 '-- "$@"')
    script = "\n".join(lines)
    ns = [iso.unshare, "--mount", "--net", "--pid", "--ipc", "--uts", "--fork",
          "--kill-child", "--mount-proc", "--propagation", "private"]
    if iso.user_ns:
        ns += ["--user", "--map-root-user"]
    return [*ns, "/bin/sh", "-c", script, "guild-sandbox", *argv]
