"""Atomic writes: new files follow the umask (report.md, summary.json, result.json …)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.atomic import write_text_atomic


def test_new_files_follow_the_umask_and_old_ones_keep_their_mode(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "new.json", "{}\n")
        kept = tmp_path / "kept.md"
        kept.write_text("x")
        kept.chmod(0o600)
        write_text_atomic(kept, "y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text() == "y"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
