"""`fix` and git: refuse dirty files, commit an applied fix, notice a newer git state on undo.

Only ever the user's own `git` on the named files; nothing is staged or committed unless
they asked (`--commit`), and then only the files the fix wrote.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_TIMEOUT = 30


class GitError(ValueError):
    """A git step failed: one line."""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]}: {exc}") from None


def _rel(root: Path, paths: list[Path]) -> list[str]:
    out = []
    for p in paths:
        try:
            out.append(p.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            out.append(str(p))
    return out


def dirty(root: Path, paths: list[Path]) -> list[str]:
    """Which tracked `paths` have uncommitted changes, staged or not.

    An untracked file is not refused: git holds no version of it to mix a fix into, and
    the backup `fix --undo` restores is its only earlier state either way.
    """
    rels = _rel(root, paths)
    res = _git(root, "status", "--porcelain=v1", "--untracked-files=no", "--", *rels)
    if res.returncode != 0:
        raise GitError(f"git status failed: {res.stderr.strip().splitlines()[-1:]}")
    return [line[3:] for line in res.stdout.splitlines() if line.strip()]


def commit(root: Path, paths: list[Path], message: str) -> str:
    """Commit exactly `paths` (whatever else is staged stays staged); the new commit's id."""
    rels = _rel(root, paths)
    add = _git(root, "add", "--", *rels)
    if add.returncode != 0:
        raise GitError("git add failed: " + _last(add.stderr))
    # The repository's own hooks run: they are the user's policy for a commit.
    res = _git(root, "commit", "-q", "-m", message, "--only", "--", *rels)
    if res.returncode != 0:
        raise GitError("git commit failed: " + _last(res.stderr or res.stdout))
    head = _git(root, "rev-parse", "--short", "HEAD")
    return head.stdout.strip()


def newer_commit(root: Path, path: Path, since: float) -> str | None:
    """The latest commit touching `path` made at or after `since` (e.g. `fix --commit`)."""
    res = _git(root, "log", "-1", "--format=%h %ct %s", "--", *_rel(root, [path]))
    if res.returncode != 0 or not res.stdout.strip():
        return None
    short, when, subject = (res.stdout.strip().split(" ", 2) + ["", ""])[:3]
    try:
        if float(when) + 1 < since:  # commit times are whole seconds
            return None
    except ValueError:
        return None
    return f"{short} {subject}"


def _last(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"
