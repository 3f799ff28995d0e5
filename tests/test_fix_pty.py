"""`guild-agent fix` at a real terminal: the installed command in a pseudo-terminal (pexpect).

click's CliRunner fakes stdin; these catch what only a terminal shows (prompts, Ctrl-C).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pexpect
import pytest
import yaml

from tests.test_fix import BROKEN, FIXED, TESTS, WRONG, fence, make_module, tree_hashes

CLI = Path(sys.prefix) / "bin" / "guild-agent"
PROMPT = r"\[a\]pply / \[s\]how full file / \[k\]eep looping with a note / \[q\]uit"

pytestmark = pytest.mark.skipif(not CLI.exists(), reason="guild-agent is not installed")


def spawn(tmp_path: Path, target: Path, responses: list[str], *extra: str,
          env: dict[str, str] | None = None) -> pexpect.spawn:
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump({"responses": responses}))
    env = {**os.environ, "GUILD_AGENT_FIX_BACKUPS": str(tmp_path / "backups"),
           "TERM": "xterm", "COLUMNS": "160", **(env or {})}
    return pexpect.spawn(str(CLI), ["fix", str(target), "--backend", "replay", "--replay",
                                    str(replay), "--out", str(tmp_path / "run"), *extra],
                         env=env, encoding="utf-8", timeout=90, dimensions=(50, 160),
                         preexec_fn=_default_signals)


def _default_signals() -> None:
    # A shell that starts a job in the background (`cmd &`) makes it ignore SIGINT, and
    # Python keeps an inherited SIG_IGN: the Ctrl-C under test would never arrive.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus if child.exitstatus is not None else 128 + child.signalstatus


def test_show_then_quit_changes_nothing(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    before = tree_hashes(tmp_path / "m")
    child = spawn(tmp_path, target, [fence(FIXED)])
    child.expect("passes")
    child.expect(PROMPT)
    child.sendline("s")
    child.expect("calc.go")
    child.expect("Add returns a plus b")  # a comment: one token, whatever the colors
    child.expect(PROMPT)
    child.sendline("q")
    child.expect("left your files unchanged")
    assert finish(child) == 1
    assert tree_hashes(tmp_path / "m") == before


def test_keep_looping_with_a_note_then_apply(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    child = spawn(tmp_path, target, [fence(WRONG), fence(FIXED)], "--max-rounds", "1")
    child.expect("fails")
    child.expect(PROMPT)
    child.sendline("k")
    child.expect("note for the model")
    child.sendline("Add must add, not subtract.")
    child.expect("passes")
    child.expect(PROMPT)
    child.sendline("a")
    child.expect("applied")
    assert finish(child) == 0
    assert target.read_text() == FIXED
    events = [json.loads(ln) for ln in (tmp_path / "run" / "trajectory.jsonl").open()]
    asked = [e["messages"][1]["content"] for e in events if e["event"] == "request"]
    assert "Note from the user: Add must add, not subtract." in asked[-1]
    # The second loop starts from the first candidate, and is told why it fails.
    assert "a - b" in asked[-1] and "want 5" in asked[-1]


def test_file_changed_before_apply_is_refused(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    child = spawn(tmp_path, target, [fence(FIXED)])
    child.expect(PROMPT)
    target.write_text(BROKEN + "// someone typed this meanwhile\n")
    edited = target.read_bytes()
    child.sendline("a")
    child.expect("changed on disk")
    assert finish(child) == 1
    assert target.read_bytes() == edited


def test_ctrl_c_during_the_loop_and_at_the_prompt(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m", tests=TESTS)
    before = tree_hashes(tmp_path / "m")
    child = spawn(tmp_path, target, [fence(FIXED)])
    child.expect("asking the model")
    child.sendintr()  # while the toolchain checks the answer
    child.expect("interrupted")
    assert finish(child) == 130
    assert tree_hashes(tmp_path / "m") == before

    child = spawn(tmp_path, target, [fence(FIXED)])
    child.expect(PROMPT)
    child.sendintr()
    assert finish(child) in (1, 130)
    assert tree_hashes(tmp_path / "m") == before


def test_hangup_at_the_prompt_removes_the_scratch_copy(tmp_path: Path) -> None:
    target = make_module(tmp_path / "m")
    before = tree_hashes(tmp_path / "m")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    child = spawn(tmp_path, target, [fence(FIXED)], env={"TMPDIR": str(scratch)})
    child.expect(PROMPT)
    assert any(scratch.glob("guild-fix-*"))
    child.kill(signal.SIGHUP)
    assert finish(child) in (1, 130)  # at the prompt it reads as "quit"
    assert not any(scratch.glob("guild-fix-*"))
    assert tree_hashes(tmp_path / "m") == before
