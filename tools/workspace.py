"""A scratch Go module: the only place model-written code is put and run."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path, PurePosixPath

from pydantic import BaseModel

from tools.paths import cache_dir

DEFAULT_GO_VERSION = "1.24"


class WorkspaceError(ValueError):
    """A file name or module setting that cannot be used in a workspace."""


class Requirement(BaseModel):
    """A module the code may import, served from a local directory (no network)."""

    module: str
    version: str = "v0.0.0"
    replace: str | None = None  # local directory holding the module's source


# A `replace` tree copied into the cache (below) may hold at most this much.
LOCAL_MODULE_MAX_FILES = 10_000
LOCAL_MODULE_MAX_BYTES = 200 * 2**20


def _local_module_dir(src: Path, module: str) -> Path:
    """A directory usable as a `replace` target: it must hold a go.mod.

    Debian's /usr/share/gocode ships some modules without go.mod; those are copied once
    into the cache with a synthesized one. The copy takes regular files and folders only
    (links, hidden entries, FIFOs and devices are left out, so it never leaves the tree
    or hangs) and stops with WorkspaceError past LOCAL_MODULE_MAX_FILES / _BYTES.
    """
    if (src / "go.mod").is_file():
        return src
    if not src.is_dir():
        raise WorkspaceError(f"replace target for {module} is not a directory: {src}")
    digest = hashlib.sha256(f"{src.resolve()}|{module}".encode()).hexdigest()[:12]
    dest = cache_dir() / "deps" / f"{module.replace('/', '_')}-{digest}"
    if not (dest / "go.mod").is_file():
        tmp = Path(tempfile.mkdtemp(prefix="dep-", dir=cache_dir()))
        try:
            files = size = 0
            todo = [(src.resolve(), tmp / "m")]
            while todo:
                here, there = todo.pop()
                there.mkdir()
                for e in here.iterdir():
                    # is_dir/is_file follow links, so links are ruled out first.
                    if e.name.startswith(".") or e.is_symlink():
                        continue
                    files += 1
                    if e.is_dir():
                        todo.append((e, there / e.name))
                    elif e.is_file():
                        size += e.lstat().st_size
                        if size <= LOCAL_MODULE_MAX_BYTES:
                            shutil.copyfile(e, there / e.name, follow_symlinks=False)
                    if files > LOCAL_MODULE_MAX_FILES or size > LOCAL_MODULE_MAX_BYTES:
                        raise WorkspaceError(
                            f"replace target {src} for {module} is too large to copy "
                            f"(limit {LOCAL_MODULE_MAX_FILES} entries, "
                            f"{LOCAL_MODULE_MAX_BYTES // 2**20} MB)")
            (tmp / "m" / "go.mod").write_text(f"module {module}\n\ngo 1.13\n")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # another process made it first
                (tmp / "m").rename(dest)
        except OSError as exc:
            raise WorkspaceError(f"cannot copy replace target {src} for {module}: "
                                 f"{exc.strerror or exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def safe_relpath(name: str) -> PurePosixPath:
    """A file name relative to the module root that cannot climb out of it."""
    p = PurePosixPath(name.replace("\\", "/"))
    if not name or p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] in (".", ""):
        raise WorkspaceError(f"file name {name!r} must be a relative path inside the module")
    if any(part.startswith(".") for part in p.parts):
        raise WorkspaceError(f"file name {name!r} may not name a hidden file or directory")
    return p


class Workspace:
    """A temporary module, rebuilt from the harness's own copy before every run.

    `base/` is the harness's copy (go.mod and every file) and is never visible inside the
    sandbox; `src/`, `home/` and `tmp/` are what a run sees and may write. Model code can
    leave anything behind in them (links, renamed folders, FIFOs, a rewritten go.mod), so
    `prepare()` throws all three away and copies `base/` again, and the harness reads
    nothing back from them except through `read_output`.

    Deleted on exit unless `keep` is set (for debugging a run).
    """

    def __init__(
        self,
        *,
        module: str = "sandbox",
        requires: list[Requirement] | None = None,
        go_version: str = DEFAULT_GO_VERSION,
        root: Path | None = None,
        keep: bool = False,
        prefix: str = "guild-ws-",
    ) -> None:
        self.keep = keep
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix=prefix))
        else:
            self.root = Path(root)
            self.root.mkdir(parents=True, exist_ok=True)
        self.base = self.root / "base"
        self.src = self.root / "src"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        for d in (self.base, self.src, self.home, self.tmp):
            d.mkdir(exist_ok=True)
        self.nonce = secrets.token_hex(8)  # names this workspace's verdict helper package
        self.module = module
        self.requires = list(requires or [])
        self.go_version = go_version
        self.write_go_mod()

    def write_go_mod(self) -> None:
        lines = [f"module {self.module}", "", f"go {self.go_version}", ""]
        if self.requires:
            lines.append("require (")
            lines += [f"\t{r.module} {r.version}" for r in self.requires]
            lines += [")", ""]
            for r in self.requires:
                if r.replace:
                    target = _local_module_dir(Path(r.replace), r.module)
                    lines.append(f"replace {r.module} => {target}")
        write_nofollow(self.base, PurePosixPath("go.mod"), "\n".join(lines) + "\n")

    # -- the harness's copy ----------------------------------------------------
    def write(self, name: str, content: str | bytes) -> Path:
        rel = safe_relpath(name)
        if rel.name in ("go.mod", "go.sum"):
            raise WorkspaceError(f"{name}: go.mod and go.sum are managed by the workspace")
        return write_nofollow(self.base, rel, content)

    def read(self, name: str) -> str:
        return read_nofollow(self.base / safe_relpath(name)).decode(errors="replace")

    def remove(self, name: str) -> None:
        path = self.base / safe_relpath(name)
        if path.is_symlink() or path.is_file():
            path.unlink()

    def _go_paths(self, under: str, recursive: bool) -> list[tuple[str, Path]]:
        top = self.base if under == "." else self.base / safe_relpath(under)
        out = []
        for p in sorted(top.rglob("*.go") if recursive else top.glob("*.go")):
            inner = p.relative_to(top).parts[:-1]
            if any(part.startswith((".", "_")) or part in ("testdata", "vendor")
                   for part in inner):
                continue
            if p.is_symlink() or not p.is_file():
                continue
            out.append((p.relative_to(self.base).as_posix(), p))
        return out

    def go_files(self, under: str = ".", *, recursive: bool = True) -> dict[str, str]:
        """Every .go file of the module (or of the folder `under`, with or without its
        subfolders), by path from the root."""
        return {rel: read_nofollow(p).decode(errors="replace")
                for rel, p in self._go_paths(under, recursive)}

    def clear_go_files(self, keep: set[str] = frozenset()) -> None:
        for name, _ in self._go_paths(".", True):
            if name not in keep:
                self.remove(name)

    # -- what a run sees -------------------------------------------------------
    def prepare(self, extra: dict[str, str] | None = None) -> None:
        """Rebuild src/, home/ and tmp/ from the harness's copy; `extra` files go into src
        only (this run's sentinel), never into the copy."""
        for d in (self.src, self.home, self.tmp):
            _remove_tree(d)
            d.mkdir()
        shutil.copytree(self.base, self.src, symlinks=True, dirs_exist_ok=True)
        for name, content in (extra or {}).items():
            write_nofollow(self.src, safe_relpath(name), content)

    def read_output(self, name: str, limit: int = 4096) -> bytes | None:
        """A small file a run left in tmp/, read without following links or blocking."""
        try:
            return read_nofollow(self.tmp / safe_relpath(name), limit=limit)
        except (OSError, WorkspaceError):
            return None

    # -- lifetime ------------------------------------------------------------
    def cleanup(self) -> None:
        if not self.keep:
            _remove_tree(self.root)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _remove_tree(path: Path) -> None:
    """Remove a folder model code may have filled with links: never follows one."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
        return
    if path.exists():
        # rmtree works through directory descriptors and unlinks links, never their targets.
        shutil.rmtree(path, ignore_errors=True)


def write_nofollow(top: Path, rel: PurePosixPath, content: str | bytes) -> Path:
    """Write top/rel atomically; every folder on the way must be a real folder, not a link."""
    data = content.encode() if isinstance(content, str) else content
    dir_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in rel.parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=dir_fd)
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError as exc:
                raise WorkspaceError(f"{rel}: {part} is not a folder inside the module") from exc
            os.close(dir_fd)
            dir_fd = nxt
        tmp = f".{rel.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                     dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            # rename replaces a link at the final name rather than writing through it.
            os.rename(tmp, rel.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)
    return top / rel


def read_nofollow(path: Path, *, limit: int = 4 * 1024 * 1024) -> bytes:
    """A regular file's first `limit` bytes; a link, FIFO or device is refused, not opened."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise WorkspaceError(f"{path.name}: not a regular file") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WorkspaceError(f"{path.name}: not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(1 << 16, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
