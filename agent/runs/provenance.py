"""What produced a result: product, toolchain, engine, model weights, machine, seeds.

A number in a report is only worth as much as one's ability to say what made it. Every
run records one `Provenance` (bench: in run.json and on every results line; solve: in
result.json). Collecting it never fails a run: a part that cannot be found is left None.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform as _platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent import __version__

_REPO = Path(__file__).resolve().parent.parent  # the checkout, when run from one


class Provenance(BaseModel):
    product: str = "guild-agent"
    version: str = __version__
    git_commit: str | None = None
    git_dirty: bool | None = None  # uncommitted changes: the commit alone does not say it
    go_version: str | None = None
    backend: str | None = None
    engine: str | None = None  # the package that ran the model, with its version
    model: str | None = None  # the model's name as the engine reported it
    model_path: str | None = None
    model_sha256: str | None = None  # of the weights file (or of a folder's files)
    adapter_sha256: str | None = None
    server: str | None = None  # openai backend: the endpoint (the weights are not ours)
    replay_sha256: str | None = None
    python: str = Field(default_factory=_platform.python_version)
    platform: str = Field(default_factory=_platform.platform)
    machine: str = Field(default_factory=_platform.machine)
    cpus: int | None = Field(default_factory=os.cpu_count)
    seeds: list[int] = Field(default_factory=list)

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def git_state(repo: Path = _REPO) -> tuple[str | None, bool | None]:
    """HEAD's commit and whether the work tree has changes; (None, None) outside git."""
    if not (repo / ".git").exists():
        return None, None
    env = {"PATH": os.environ.get("PATH", ""), "GIT_OPTIONAL_LOCKS": "0",
           "HOME": os.environ.get("HOME", "/")}
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], env=env,
                              capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                 "--untracked-files=no"], env=env, capture_output=True,
                                text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip() or None, dirty


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


_ENGINES = {"mlx": ("mlx-lm", "mlx"), "llama-cpp": ("xllamacpp",)}


def engine_of(backend: str) -> str | None:
    dists = _ENGINES.get(backend)
    if dists is None:
        # Oracle and replay run inside this product; openai's engine is behind a server.
        return None if backend == "openai" else f"guild-agent {__version__}"
    return ", ".join(f"{d} {_version(d) or '?'}" for d in dists)


def sha256_path(path: Path) -> str | None:
    """A file's sha256, or for a folder the sha256 of its files' names and hashes.

    A GGUF file hashed by `models pull` has a stamp beside it: reused when it still
    matches the file's size and mtime, so a bench start does not re-read gigabytes.
    """
    try:
        if path.is_file():
            return _file_sha(path)
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                h.update(f.relative_to(path).as_posix().encode() + b"\0"
                         + _file_sha(f).encode() + b"\0")
            return h.hexdigest()
    except OSError:
        return None
    return None


def _file_sha(path: Path) -> str:
    st = path.stat()
    with contextlib.suppress(OSError, ValueError, TypeError):
        stamp = json.loads(path.with_name(path.name + ".verified").read_text())
        if (stamp.get("size"), stamp.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
            return str(stamp["sha256"])
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def collect(model: Any, *, seeds: list[int] | None = None, go_version: str | None = None
            ) -> Provenance:
    """The provenance of a run of `model` (any object with `name` and `backend`)."""
    backend = getattr(model, "backend", None)
    prov = Provenance(backend=backend, model=getattr(model, "name", None),
                      engine=engine_of(backend) if backend else None,
                      seeds=sorted(set(seeds or [])))
    prov.git_commit, prov.git_dirty = git_state()
    if go_version is None:
        with contextlib.suppress(Exception):
            from tools.go import find_toolchain

            go_version = find_toolchain().version
    prov.go_version = go_version
    path = getattr(model, "path", None)
    if path:
        p = Path(path).expanduser()
        # An mlx Hub repo id is not a local path: then the name is all there is.
        if p.exists():
            prov.model_path = str(p.resolve())
            prov.model_sha256 = sha256_path(p)
    adapter = getattr(model, "adapter", None)
    if adapter:
        prov.adapter_sha256 = sha256_path(Path(adapter))
    if backend == "openai":
        prov.server = getattr(model, "url", None)
    if backend == "replay":
        source = getattr(model, "source", None)
        if source and Path(source).is_file():
            prov.replay_sha256 = sha256_path(Path(source))
    return prov
