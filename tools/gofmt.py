"""gofmt as a function: format Go source, or say it does not parse."""

from __future__ import annotations

import subprocess

from tools.go import ToolchainError, find_toolchain

GOFMT_TIMEOUT = 10.0


def gofmt_source(src: str) -> str | None:
    """`src` formatted by the toolchain's gofmt, or None if gofmt cannot parse it.

    Raises ToolchainError when there is no gofmt to run (or it hangs).
    """
    gofmt = find_toolchain().gofmt
    if gofmt is None:
        raise ToolchainError("the Go toolchain has no gofmt binary")
    try:
        proc = subprocess.run([str(gofmt)], input=src.encode(), capture_output=True,
                              timeout=GOFMT_TIMEOUT, env={"PATH": "/usr/bin:/bin"})
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"gofmt did not finish within {GOFMT_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise ToolchainError(f"cannot run gofmt: {exc}") from None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode(errors="replace")
