"""A scratch Go module: the only place model-written code is put and run."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from pydantic import BaseModel

from tools.go import cache_dir

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
    """A temporary module: `src/` holds go.mod and the package; `home/`, `tmp/` stay private.

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
        self.src = self.root / "src"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        for d in (self.src, self.home, self.tmp):
            d.mkdir(exist_ok=True)
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
        (self.src / "go.mod").write_text("\n".join(lines) + "\n")

    # -- files ---------------------------------------------------------------
    def write(self, name: str, content: str) -> Path:
        rel = safe_relpath(name)
        if rel.name in ("go.mod", "go.sum"):
            raise WorkspaceError(f"{name}: go.mod and go.sum are managed by the workspace")
        path = self.src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def read(self, name: str) -> str:
        return (self.src / safe_relpath(name)).read_text()

    def remove(self, name: str) -> None:
        (self.src / safe_relpath(name)).unlink(missing_ok=True)

    def go_files(self) -> dict[str, str]:
        """Every .go file in the module, by path relative to the module root."""
        out: dict[str, str] = {}
        for p in sorted(self.src.rglob("*.go")):
            rel = p.relative_to(self.src)
            if any(part.startswith((".", "_")) or part in ("testdata", "vendor")
                   for part in rel.parts[:-1]):
                continue
            out[rel.as_posix()] = p.read_text(errors="replace")
        return out

    def clear_go_files(self, keep: set[str] = frozenset()) -> None:
        for name in list(self.go_files()):
            if name not in keep:
                self.remove(name)

    # -- lifetime ------------------------------------------------------------
    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
