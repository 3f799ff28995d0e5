"""The user's Go environment as `fix` uses it: offline and read-only.

Their module cache is mounted readable into the sandbox and never written (GOPROXY=off:
nothing is fetched); build tags go into GOFLAGS so `go test` and `go vet` agree; a
dependency the cache lacks is named before any model call, with the command that fetches
it. Also the one way `fix` runs a command of its own (the pattern scan, `--test-cmd`) in
the sandbox, with the paths the Go runner uses.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel, Field

from tools.go import find_toolchain, go_env
from tools.guard import GUARD_ENV, guard_binary
from tools.sandbox import Limits, ProcResult, run_limited
from tools.workspace import Workspace

_CGO_RE = re.compile(r'^\s*import\s+"C"|^\s*"C"\s*$', re.M)
_TAG_RE = re.compile(r"^[\w.\-]+$")
_REQUIRE_BLOCK_RE = re.compile(r"^\s*require\s*\((.*?)^\s*\)", re.M | re.S)
_REQUIRE_LINE_RE = re.compile(r"^\s*require\s+([^\s(]+)\s+(\S+)", re.M)
_REPLACE_RE = re.compile(r"^\s*(?:replace\s+)?([^\s(]+)(?:\s+\S+)?\s+=>\s+(\S+)", re.M)
# What the go command says when a module it needs is not in the cache and may not be fetched.
_MISSING_RES = (
    re.compile(r"([\w.\-~/]+)@(v[\w.\-+]+): module lookup disabled by GOPROXY=off"),
    re.compile(r"missing go\.sum entry for module providing package \S+ \(imported by"),
    re.compile(r"no required module provides package (\S+);"),
    re.compile(r"module ([\w.\-~/]+)@(v[\w.\-+]+) found .* but does not contain package"),
    # The source is not extracted: the go command wants to lock (write) the read-only cache.
    re.compile(r"cache/download/([\w.\-~/!]+)/@v/(v[\w.\-+]+?)\.(?:lock|zip)\S*: "
               r"(?:permission denied|read-only file system)"),
)


class GoEnvError(ValueError):
    """The user's Go environment cannot build the module offline: one line, exit 2."""


class UserGoEnv(BaseModel):
    """What of the user's Go setup a sandboxed run may use."""

    gomodcache: Path | None = None  # their module cache, mounted read-only
    tags: list[str] = Field(default_factory=list)
    vendored: bool = False
    cgo: bool = False  # the package imports "C": built with CGO_ENABLED=1 (needs a C compiler)
    # The user's project, hidden from model code: the copy holds what the build needs, the
    # original (with its .env, .git, keys) stays out of reach even where no home hides it.
    project: Path | None = None

    def env(self) -> dict[str, str]:
        """Environment overrides for the sandboxed go command (applied last)."""
        flags = ["-mod=vendor" if self.vendored else "-mod=mod"]
        if self.tags:
            flags.append("-tags=" + ",".join(self.tags))
        out = {"GOFLAGS": " ".join(flags), "GOPROXY": "off"}
        if self.cgo:
            out["CGO_ENABLED"] = "1"
        if self.gomodcache is not None:
            out["GOMODCACHE"] = str(self.gomodcache)
        return out

    def readable(self) -> list[Path]:
        return [self.gomodcache] if self.gomodcache is not None else []

    def hidden(self) -> list[Path]:
        return [self.project] if self.project is not None else []


def parse_tags(value: str | None) -> list[str]:
    """`--tags a,b` (or spaces): each a plain build tag; anything else is bad input."""
    if not value:
        return []
    tags = [t for t in re.split(r"[,\s]+", value.strip()) if t]
    for t in tags:
        if not _TAG_RE.match(t):
            raise GoEnvError(f"--tags: {t!r} is not a build tag (letters, digits, _ . -)")
    return tags


def user_gomodcache() -> Path | None:
    """The user's GOMODCACHE as their own `go env` reports it (their environment, no sandbox:
    `go env` reads settings only)."""
    if os.environ.get("GOMODCACHE"):
        p = Path(os.environ["GOMODCACHE"]).expanduser()
        return p if p.is_dir() else None
    try:
        tc = find_toolchain()
        out = subprocess.run([str(tc.go), "env", "GOMODCACHE"], capture_output=True,
                             text=True, timeout=30, check=False)
        value = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired, ValueError):
        value = ""
    p = Path(value) if value else Path.home() / "go" / "pkg" / "mod"
    return p if p.is_dir() else None


def uses_cgo(package_dir: Path) -> bool:
    """Whether a .go file of the folder imports "C" (read only up to its imports' size)."""
    for p in package_dir.glob("*.go"):
        try:
            # Only regular files, never waited on: a FIFO or device named *.go is skipped.
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            head = os.read(fd, 64 * 1024).decode(errors="replace")
        except OSError:
            continue
        finally:
            os.close(fd)
        if _CGO_RE.search(head):
            return True
    return False


def goflags_tags() -> list[str]:
    """Build tags from the user's GOFLAGS (`-tags=a,b`); its other flags are not taken:
    only tags are safe and meaningful inside the sandbox."""
    tags: list[str] = []
    for word in os.environ.get("GOFLAGS", "").split():
        if word.startswith(("-tags=", "--tags=")):
            tags += [t for t in word.split("=", 1)[1].split(",") if _TAG_RE.match(t)]
    return tags


def for_module(module_root: Path | None, tags: list[str],
               package_dir: Path | None = None) -> UserGoEnv:
    tags = list(dict.fromkeys([*goflags_tags(), *tags]))
    vendored = module_root is not None and (module_root / "vendor" / "modules.txt").is_file()
    return UserGoEnv(gomodcache=None if vendored else user_gomodcache(), tags=tags,
                     vendored=vendored,
                     cgo=package_dir is not None and uses_cgo(package_dir),
                     project=module_root or package_dir)


def _escape(path: str) -> str:
    """A module path as the module cache spells it: upper case as `!` + lower."""
    return re.sub(r"[A-Z]", lambda m: "!" + m.group(0).lower(), path)


def _unescape(path: str) -> str:
    return re.sub(r"!([a-z])", lambda m: m.group(1).upper(), path)


def requirements(go_mod: str) -> list[tuple[str, str]]:
    """(module, version) of every `require` not replaced by a local folder."""
    text = re.sub(r"//[^\n]*", "", go_mod)
    reqs: list[tuple[str, str]] = []
    for block in _REQUIRE_BLOCK_RE.findall(text):
        for line in block.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                reqs.append((parts[0], parts[1]))
    reqs += _REQUIRE_LINE_RE.findall(text)
    local = {m for m, target in _REPLACE_RE.findall(text) if target.startswith((".", "/"))}
    return [(m.strip('"'), v) for m, v in reqs if m.strip('"') not in local]


_USE_BLOCK_RE = re.compile(r"^\s*use\s*\((.*?)^\s*\)", re.M | re.S)
_USE_LINE_RE = re.compile(r"^\s*use\s+([^\s(]+)", re.M)
_MODULE_LINE_RE = re.compile(r"^\s*module\s+\"?([^\s\"]+)", re.M)


def find_go_work(module_root: Path) -> Path | None:
    """The go.work the go command would use for this module (GOWORK, or the nearest one
    above it), or None (GOWORK=off, or none)."""
    env = os.environ.get("GOWORK", "")
    if env == "off":
        return None
    if env:
        return Path(env) if Path(env).is_file() else None
    for d in (module_root, *module_root.parents):
        if (d / "go.work").is_file():
            return d / "go.work"
    return None


def workspace_modules(module_root: Path) -> dict[str, Path]:
    """Module path -> folder of every other module the go.work `use`s."""
    work = find_go_work(module_root)
    if work is None:
        return {}
    try:
        text = re.sub(r"//[^\n]*", "", work.read_text(errors="replace"))
    except OSError:
        return {}
    dirs = [ln.strip().strip('"') for block in _USE_BLOCK_RE.findall(text)
            for ln in block.splitlines() if ln.strip()]
    dirs += [d.strip('"') for d in _USE_LINE_RE.findall(text)]
    out: dict[str, Path] = {}
    for d in dirs:
        folder = Path(os.path.realpath(work.parent / d))
        if folder == Path(os.path.realpath(module_root)):
            continue
        try:
            m = _MODULE_LINE_RE.search((folder / "go.mod").read_text(errors="replace"))
        except OSError:
            continue
        if m:
            out[m.group(1)] = folder
    return out


def with_workspace(go_mod: str, module_root: Path) -> str:
    """go.mod with a `replace` to each go.work module it requires and does not replace:
    the copy builds without go.work (GOWORK=off) yet from the same sources."""
    replaced = {m for m, _ in _REPLACE_RE.findall(re.sub(r"//[^\n]*", "", go_mod))}
    required = {m for m, _ in requirements(go_mod)}
    extra = [f"replace {mod} => {folder}"
             for mod, folder in sorted(workspace_modules(module_root).items())
             if mod in required and mod not in replaced]
    return go_mod.rstrip("\n") + "\n\n" + "\n".join(extra) + "\n" if extra else go_mod


def fetch_hint(module_root: Path) -> str:
    return f"fetch it with `go mod download` in {module_root}, then run fix again"


def check_offline(module_root: Path | None, env: UserGoEnv) -> None:
    """Raise GoEnvError naming the first required module the sandbox cannot read."""
    if module_root is None or env.vendored:
        return
    try:
        go_mod = (module_root / "go.mod").read_text(errors="replace")
    except OSError:
        return
    for mod, ver in requirements(with_workspace(go_mod, module_root)):
        cached = env.gomodcache is not None and (
            env.gomodcache / "cache" / "download" / _escape(mod) / "@v" / f"{ver}.mod"
        ).is_file()
        if not cached:
            where = (f"not in your module cache {env.gomodcache}" if env.gomodcache
                     else "no module cache found (GOMODCACHE)")
            raise GoEnvError(f"missing dependency {mod}@{ver} ({where}); "
                             + fetch_hint(module_root))


def missing_from_output(log: str, module_root: Path) -> str | None:
    """The one-line error for a go command that failed on a missing dependency, if it did."""
    for rx in _MISSING_RES:
        m = rx.search(log)
        if m:
            what = "@".join(_unescape(g) for g in m.groups() if g) if m.groups() else ""
            head = f"missing dependency {what}" if what else "a dependency is missing"
            return f"{head} (the go command may not download inside fix); " + fetch_hint(
                module_root)
    return None


def sandboxed(ws: Workspace, argv: list[str], env: UserGoEnv, *, limits: Limits,
              cwd: Path | None = None, shell: bool = False) -> ProcResult:
    """Run argv (the go command, or a user's shell command) in the sandbox on `ws.src`.

    The same environment and mounts as `GoRunner.check`: only the copy, its home and temp
    and the build cache are writable; the toolchain and the user's module cache readable.
    """
    tc = find_toolchain()
    full = go_env(ws.home, ws.tmp)
    full.update(env.env())
    if shell:
        argv = ["/bin/sh", "-c", *argv]
    elif (guard := guard_binary()) is not None and argv[1:2] == ["test"]:
        argv = [*argv[:2], f"-exec={shlex.quote(str(guard))}", *argv[2:]]
        full[GUARD_ENV] = os.pathsep.join(str(d) for d in (ws.src, ws.home, ws.tmp))
    writable = [ws.src, ws.home, ws.tmp, Path(full["GOCACHE"])]
    readable = [tc.goroot, tc.bin_dir, Path(full["GOCACHE"]).parent, *env.readable()]
    return run_limited(argv, cwd=cwd or ws.src, env=full, limits=limits, writable=writable,
                       readable=readable, hidden=env.hidden())


def with_wall(limits: Limits, seconds: float) -> Limits:
    return replace(limits, wall_seconds=seconds)
