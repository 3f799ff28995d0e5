"""Isolation for untrusted commands: bubblewrap, else namespaces via unshare, else none.

Inside the sandbox the whole filesystem is read-only except the paths the caller names as
writable (the workspace and the shared GOCACHE); /tmp is private; the real home
directories are hidden behind empty tmpfs mounts, and so is /etc, with only the few files
Go and a C compiler read bound back; the network is a namespace with only loopback; a pid
namespace ends every process when its first one exits; capabilities are dropped so a
root sandbox cannot remount anything writable again.

Run by root, the command also runs as an unprivileged user (nobody, or
GUILD_AGENT_SANDBOX_UID): without capabilities root is still the owner of root's files,
so /etc/shadow and any 0600 file of root's would be readable. The writable paths are
handed over to that user first (`hand_over`). Run by anyone else, the command already
runs as that user inside a user namespace.

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
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

ENV_OVERRIDE = "GUILD_AGENT_ISOLATION"  # bwrap | unshare | none | auto (default)
UID_ENV = "GUILD_AGENT_SANDBOX_UID"  # "uid" or "uid:gid" model code runs as (root only)
DEFAULT_SANDBOX_ID = 65534  # nobody / nogroup
TMPFS_BYTES = 256 * 1024 * 1024  # private /tmp and /dev/shm are RAM: bound them
MASK_BYTES = 1024 * 1024  # an empty tmpfs over a hidden directory holds only mount points
SCRATCH = (Path("/tmp"), Path("/var/tmp"))  # hidden and private, but writable
# What of /etc stays visible: user and group names (os/user), name resolution for
# loopback, port names, the dynamic loader's cache and the compiler's alternatives (cgo,
# -race), the time zone and the CA roots. Everything else there (shadow, ssh keys,
# tokens, the host's configuration) is hidden. Each entry is a bind mount, and each costs
# every sandbox start about a millisecond: nothing here that Go does not read.
ETC_KEEP = ("passwd", "group", "hosts", "nsswitch.conf", "services", "localtime",
            "ld.so.cache", "alternatives", "ssl/certs")


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
    run_as: tuple[int, int] | None = None  # (uid, gid) model code runs as; None: the caller's
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


def _probe_script(iso: Isolation) -> str:
    # Succeeds only when the isolation really holds: / read-only, /tmp private and
    # writable, and (as root) the command no longer root.
    uid = f'test "$(id -u)" = {iso.run_as[0]} || exit 13; ' if iso.run_as else ""
    return ("if touch /.guild-probe 2>/dev/null; then rm -f /.guild-probe; exit 11; fi; "
            f"test -w /tmp || exit 12; {uid}exit 0")


def _probe(iso: Isolation) -> bool:
    argv = wrap_argv(iso, ["/bin/sh", "-c", _probe_script(iso)], cwd=Path("/"), writable=[])
    return _probe_ok(argv)


def sandbox_ids(notes: list[str] | None = None) -> tuple[int, int] | None:
    """The (uid, gid) model code runs as when the caller is root; None otherwise."""
    if os.geteuid() != 0:
        return None  # a user namespace keeps the caller's own, unprivileged, uid
    raw = os.environ.get(UID_ENV, "").strip()
    if raw:
        uid_s, _, gid_s = raw.partition(":")
        try:
            uid, gid = int(uid_s), int(gid_s or uid_s)
        except ValueError:
            uid = gid = -1
        if uid > 0 and gid > 0:
            return uid, gid
        if notes is not None:
            notes.append(f"{UID_ENV}={raw!r} ignored (want a non-zero uid or uid:gid)")
    return DEFAULT_SANDBOX_ID, DEFAULT_SANDBOX_ID


def _usable(iso: Isolation, notes: list[str]) -> Isolation | None:
    """`iso` if it works here; as root without a working uid switch, `iso` as root."""
    if _probe(iso):
        return iso
    if iso.run_as is None:
        return None
    as_root = Isolation(**{**iso.__dict__, "run_as": None})
    if _probe(as_root):
        notes.append(f"cannot switch to uid {iso.run_as[0]} in the sandbox (setpriv "
                     "missing or refused): model code runs as root without capabilities")
        return as_root
    return None


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
    run_as = sandbox_ids(notes)
    setpriv = shutil.which("setpriv")
    if want in ("auto", "bwrap", "bubblewrap"):
        bwrap = shutil.which("bwrap")
        if bwrap:
            iso = Isolation(level=Level.bubblewrap, bwrap=bwrap, setpriv=setpriv,
                            run_as=run_as if setpriv else None, pids_cgroup=cg)
            found = _usable(iso, notes)
            if found is not None:
                if run_as and not setpriv:
                    notes.append("setpriv (util-linux) not found: model code runs as root "
                                 "without capabilities")
                return _with(found, notes)
            notes.append("bwrap is installed but cannot create a sandbox here")
        else:
            notes.append("bwrap not found (Debian/Ubuntu: apt-get install bubblewrap)")
    if want in ("auto", "unshare", "namespaces"):
        unshare = shutil.which("unshare")
        if unshare and setpriv:
            iso = Isolation(level=Level.namespaces, unshare=unshare, setpriv=setpriv,
                            user_ns=os.geteuid() != 0, run_as=run_as, pids_cgroup=cg)
            found = _usable(iso, notes)
            if found is not None:
                return _with(found, notes)
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
    """p is one of `parents` or beneath one (by name: every path here is absolute)."""
    s = str(p)
    return any(s == q or s.startswith(q.rstrip("/") + "/") for q in map(str, parents))


@dataclass
class Plan:
    """Mount plan shared by both backends, in the order the mounts must happen."""

    hide: list[Path] = field(default_factory=list)  # empty tmpfs over these
    rebind_ro: list[Path] = field(default_factory=list)  # visible again, read-only
    rebind_rw: list[Path] = field(default_factory=list)  # visible and writable
    links: list[tuple[Path, str]] = field(default_factory=list)  # symlinks to recreate

    def scratch(self, h: Path) -> bool:
        """A hidden directory the command may write (a private, size-bounded tmpfs)."""
        return h in SCRATCH

    def mount_parents(self) -> list[Path]:
        """Directories to create inside the masks so the paths bound back are reachable."""
        dirs: set[Path] = set()
        for k in [*self.rebind_ro, *self.rebind_rw, *(link for link, _ in self.links)]:
            for a in k.parents:
                if a in self.hide or not _under(a, self.hide):
                    break
                dirs.add(a)
        return sorted(dirs)


def _can_search(path: Path, uid: int, gid: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True  # nothing there to protect; the bind reports its own error
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == gid:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def _unreachable(paths: Sequence[Path], covered: list[Path], ids: tuple[int, int]) -> list[Path]:
    """Outermost real directories above `paths` the sandbox user may not pass through.

    A workspace made by mkdtemp outside /tmp sits in a 0700 directory of root's: an empty
    tmpfs over it (the user could see nothing there anyway) gives the bound-back paths
    searchable parents.
    """
    out: list[Path] = []
    for p in paths:
        for a in reversed(p.parents):
            if _under(a, [*covered, *out]):
                break
            if not _can_search(a, *ids):
                out.append(a)
                break
    return out


@functools.lru_cache(maxsize=1)
def _etc_parts() -> tuple[list[Path], list[tuple[Path, str]]]:
    """The ETC_KEEP entries present here: those to bind back, and links to recreate."""
    etc = Path("/etc")
    present = [etc / name for name in ETC_KEEP if os.path.lexists(etc / name)]
    return ([k for k in present if not k.is_symlink()],
            [(k, os.readlink(k)) for k in present if k.is_symlink()])


def plan(writable: Sequence[Path], readable: Sequence[Path],
         run_as: tuple[int, int] | None = None, hidden: Sequence[Path] = ()) -> Plan:
    for w in writable:  # a bind needs its source; the go command would create it anyway
        with contextlib.suppress(OSError):
            Path(w).mkdir(parents=True, exist_ok=True)
    rw = sorted({Path(os.path.realpath(p)) for p in writable if Path(p).exists()})
    etc = Path("/etc")
    keep, links = _etc_parts()
    wanted = {Path(os.path.realpath(p)) for p in readable if Path(p).exists()}
    extra = {Path(os.path.realpath(h)) for h in hidden}
    masked = sorted({h for h in (*SCRATCH, *hidden_dirs(), etc, *extra) if h.exists()})
    masked = [h for i, h in enumerate(masked) if not _under(h, masked[:i])]  # one covers all
    if run_as is not None:
        masked += _unreachable([*rw, *wanted], masked, run_as)
    # Only paths a tmpfs would otherwise cover need binding back, and one bind covers
    # everything beneath it.
    ro = sorted(p for p in wanted if _under(p, masked) and not _under(p, rw))
    ro = [p for i, p in enumerate(ro) if not _under(p, ro[:i])]
    return Plan(hide=masked, rebind_ro=[*ro, *keep], rebind_rw=rw, links=links)


# -- handing the writable paths to the sandbox user ----------------------------------------

_RACY_NS = 2_000_000_000  # a directory modified this recently may change within its mtime
# Directories found with nothing left to hand over: (st_dev, st_ino) -> (mtime, subdirs).
_handed: dict[tuple[int, int], tuple[int, list[str]]] = {}  # subdirs as full paths
# Top-level paths handed over lately: (st_dev, st_ino) -> when. The shared GOCACHE is the
# same folder every run and the go command, running as the sandbox user, writes its own
# entries; only a go run as root (warm-up, the guard's build, go doc) leaves others. A
# full walk of the cache cost ~65 ms a round (measured: toolchain_round.py), so it is
# walked again only after a while; a workspace folder is new every round and always walked.
_RECENT_NS = 30_000_000_000
_recent: dict[tuple[int, int, int], int] = {}  # with st_ctime_ns: a folder made anew
                                                # on a reused inode is not "recent"


def hand_over(paths: Sequence[Path], uid: int, gid: int) -> None:
    """Make everything the caller owns under `paths` the sandbox user's.

    The workspace gets new files from the harness every round, and the shared GOCACHE
    gets entries from anything that ran go as root (an older version, the exec guard's
    build): the go command, running as `uid`, must be able to write all of it or it
    silently stops caching. A directory whose mtime is unchanged since it was last found
    clean is not listed again, so a large warm cache costs a stat per directory.
    Hard-linked files are left alone: a link to a file elsewhere is not ours to give.
    """
    me = os.geteuid()
    now = time.time_ns()
    if len(_handed) > 100_000:  # workspaces come and go; keep the memo bounded
        _handed.clear()
        _recent.clear()
    stack: list[str] = []
    for p in paths:
        try:
            top = os.lstat(p)
        except OSError:
            continue
        top_key = (top.st_dev, top.st_ino, top.st_ctime_ns)
        if now - _recent.get(top_key, -_RECENT_NS) < _RECENT_NS:
            continue
        _recent[top_key] = now
        stack.append(str(p))
    while stack:
        d = stack.pop()
        try:
            st = os.lstat(d)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        if st.st_uid == me:
            with contextlib.suppress(OSError):
                os.chown(d, uid, gid, follow_symlinks=False)
        key = (st.st_dev, st.st_ino)
        seen = _handed.get(key)
        if seen is not None and seen[0] == st.st_mtime_ns:
            stack += seen[1]
            continue
        subdirs: list[str] = []
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        est = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(est.st_mode):
                        subdirs.append(e.path)
                    elif (est.st_uid == me and stat.S_ISREG(est.st_mode)
                          and est.st_nlink == 1):
                        with contextlib.suppress(OSError):
                            os.chown(e.path, uid, gid, follow_symlinks=False)
        except OSError:
            continue
        if st.st_mtime_ns < now - _RACY_NS:
            _handed[key] = (st.st_mtime_ns, subdirs)
        stack += subdirs


def _let_through(p: Plan, writable: Sequence[Path], ids: tuple[int, int]) -> None:
    """Let the sandbox user pass the closed directories of ours above a writable path.

    Closed parents of the bound paths outside the masks already got a tmpfs (`plan`).
    One the sandbox still sees, because it is bound back read-only or holds the link the
    caller named (a 0700 cache directory with GOCACHE in it, or a link to it), cannot be
    covered without hiding what it holds: it gets search permission for others, so names
    in it can be followed, not listed.
    """
    me = os.geteuid()
    for w in [*writable, *p.rebind_rw]:
        for a in w.parents:
            seen = not _under(a, p.hide) or _under(a, p.rebind_ro)
            if not seen or _can_search(a, *ids):
                continue
            with contextlib.suppress(OSError):
                st = os.stat(a)
                if st.st_uid == me:
                    os.chmod(a, stat.S_IMODE(st.st_mode) | 0o001)


# -- building the command ------------------------------------------------------------------

def wrap_argv(
    iso: Isolation,
    argv: list[str],
    *,
    cwd: Path,
    writable: Sequence[Path],
    readable: Sequence[Path] = (),
    hidden: Sequence[Path] = (),
) -> list[str]:
    """argv run inside the sandbox `iso` describes (unchanged at the limits-only level).

    `hidden`: folders the caller's own files live in (fix: the user's project), covered
    like the home folders. As root, the writable paths are handed to the sandbox user here.
    """
    if iso.level is Level.limits:
        return list(argv)
    p = plan(writable, readable, iso.run_as, hidden)
    if iso.run_as is not None:
        hand_over(p.rebind_rw, *iso.run_as)
        _let_through(p, [Path(os.path.abspath(w)) for w in writable], iso.run_as)
    if iso.level is Level.bubblewrap:
        return _bwrap_argv(iso, p, argv, cwd)
    return _unshare_argv(iso, p, argv, cwd)


def _drop_to_user(iso: Isolation) -> list[str]:
    """setpriv prefix: the sandbox user, no groups, no capabilities, no way back."""
    assert iso.setpriv
    ids = [f"--reuid={iso.run_as[0]}", f"--regid={iso.run_as[1]}", "--clear-groups"] \
        if iso.run_as else []
    return [iso.setpriv, *ids, "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all",
            "--"]


def _bwrap_argv(iso: Isolation, p: Plan, argv: list[str], cwd: Path) -> list[str]:
    assert iso.bwrap
    out = [iso.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
           "--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/dev/shm"]
    for h in p.hide:
        if p.scratch(h):
            out += ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", str(h)]
        else:
            out += ["--perms", "0755", "--size", str(MASK_BYTES), "--tmpfs", str(h)]
    for d in p.mount_parents():  # bwrap would make them 0700: closed to the sandbox user
        out += ["--perms", "0755", "--dir", str(d)]
    for r in p.rebind_ro:
        out += ["--ro-bind", str(r), str(r)]
    for w in p.rebind_rw:
        out += ["--bind", str(w), str(w)]
    for link, target in p.links:
        out += ["--symlink", target, str(link)]
    # /dev is a tmpfs bwrap fills with device nodes: read-only so it cannot eat RAM; the
    # masks only hold mount points.
    out += ["--remount-ro", "/dev"]
    for h in p.hide:
        if not p.scratch(h):
            out += ["--remount-ro", str(h)]
    out += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            # As root bwrap keeps capabilities unless told: with CAP_SYS_ADMIN the code
            # could remount / read-write. setpriv needs the uid ones to leave root, and
            # drops every one before the command starts.
            "--cap-drop", "ALL"]
    if iso.run_as is None:
        return [*out, "--chdir", str(cwd), "--", *argv]
    # bwrap changes directory with the capabilities it keeps, and a workspace directory
    # handed to the sandbox user may be closed (0700) to root without them.
    out += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP",
            "--cap-add", "CAP_DAC_READ_SEARCH"]
    return [*out, "--chdir", str(cwd), "--", *_drop_to_user(iso), *argv]


def _unshare_argv(iso: Isolation, p: Plan, argv: list[str], cwd: Path) -> list[str]:
    """unshare + a small sh script doing the mounts, then setpriv dropping privileges.

    Every path to bind back is first bound into a staging tmpfs (the tmpfs masks cover
    the originals), then from there to its place; the staging area is gone before the
    command starts.
    """
    assert iso.unshare and iso.setpriv
    q = shlex.quote
    stage = "/dev/shm"
    lines = ["set -e", "umask 022",
             f"mount -t tmpfs -o size={MASK_BYTES},mode=0700 tmpfs {stage}"]
    keep = [*p.rebind_ro, *p.rebind_rw]
    for i, k in enumerate(keep):
        make = "mkdir" if k.is_dir() else ":>"
        lines.append(f"{make} {stage}/{i}")
        lines.append(f"mount --no-canonicalize --bind {q(str(k))} {stage}/{i}")
    for h in p.hide:
        size, mode = (TMPFS_BYTES, "1777") if p.scratch(h) else (MASK_BYTES, "0755")
        lines.append(f"mount -t tmpfs -o size={size},mode={mode} tmpfs {q(str(h))}")
    for i, k in enumerate(keep):
        if k.is_dir():
            lines.append(f"mkdir -p {q(str(k))}")
        else:
            lines.append(f"mkdir -p {q(str(k.parent))}; :> {q(str(k))}")
        lines.append(f"mount --no-canonicalize --bind {stage}/{i} {q(str(k))}")
    for link, target in p.links:
        lines.append(f"mkdir -p {q(str(link.parent))}; ln -s {q(target)} {q(str(link))}")
    lines.append(f"umount -l {stage}")
    lines.append(f"mount -t tmpfs -o size={TMPFS_BYTES},mode=1777 tmpfs /dev/shm || true")
    rw = [str(w) for w in p.rebind_rw] + [str(h) for h in p.hide if p.scratch(h)] + [
        "/dev/shm", "/proc"]
    # Every other mount becomes read-only, deepest last so nothing is skipped.
    lines.append(
        "awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do "
        "m=$(printf '%b' \"$(echo \"$m\" | sed 's/\\\\\\([0-7]\\{3\\}\\)/\\\\0\\1/g')\"); "
        "case \"$m\" in " + "|".join(q(x) for x in rw) + ") continue;; esac; "
        "mount -o remount,bind,ro \"$m\" 2>/dev/null || true; done")
    lines.append("ip link set lo up 2>/dev/null || true")
    lines.append(f"cd {q(str(cwd))}")
    # Root changed directory above; the sandbox user keeps that working directory.
    lines.append(f'exec {" ".join(q(a) for a in _drop_to_user(iso))} "$@"')
    script = "\n".join(lines)
    ns = [iso.unshare, "--mount", "--net", "--pid", "--ipc", "--uts", "--fork",
          "--kill-child", "--mount-proc", "--propagation", "private"]
    if iso.user_ns:
        ns += ["--user", "--map-root-user"]
    return [*ns, "/bin/sh", "-c", script, "guild-sandbox", *argv]
