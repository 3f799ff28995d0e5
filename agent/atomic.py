"""Writes that never leave a file half-written: temp file in the same directory, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace `path` with `text` (UTF-8, newlines as given) in one step.

    Keeps the old file's mode unless `mode` is given. Encoding happens before anything is
    written, so text that is not valid Unicode fails without touching the file.
    """
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `data` in one step; keeps the old file's mode (and owner when
    allowed) unless `mode` is given.

    A link at `path` is replaced, not written through: callers that mean the link's target
    pass the resolved path.
    """
    path = Path(path)
    owner: tuple[int, int] | None = None
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    if st is not None:
        owner = (st.st_uid, st.st_gid)
        if mode is None:
            mode = stat.S_IMODE(st.st_mode)
    elif mode is None:
        mode = new_file_mode()  # mkstemp makes 0600; a new file follows the umask as open's
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if owner is not None and owner != (os.geteuid(), os.getegid()):
            # Root fixing someone else's file must not hand it to root; others cannot chown.
            with contextlib.suppress(OSError):
                os.chown(tmp, *owner)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def new_file_mode() -> int:
    """The mode a new file gets under this process's umask (0666 & ~umask)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    # No /proc (macOS): the umask can only be read by setting it, briefly.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask
