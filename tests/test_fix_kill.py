"""kill -9 during `fix`'s apply never leaves a user's file truncated or half-written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# Two full versions of the user's file; large, so a kill often lands mid-write.
BODY_A = "package shop\n\n" + "".join(f"// line {i} of version A\n" for i in range(60000))
BODY_B = "package shop\n\n" + "".join(f"// line {i} of version B, longer\n"
                                       for i in range(70000))

APPLIER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from agent.fix.session import apply_changes, locate

    target = Path(sys.argv[1])
    versions = [Path(sys.argv[2]).read_text(), Path(sys.argv[3]).read_text()]
    i = 0
    print("ready", flush=True)
    while True:
        site = locate([target])
        current = site.targets[0].text
        new = versions[1] if current == versions[0] else versions[0]
        apply_changes(site, {site.targets[0].name: new})
        i += 1
""")


def test_kill_9_during_apply_leaves_an_old_or_new_file(tmp_path: Path) -> None:
    mod = tmp_path / "shop"
    mod.mkdir()
    (mod / "go.mod").write_text("module shop\n\ngo 1.24\n")
    target = mod / "cart.go"
    target.write_text(BODY_A)
    os.chmod(target, 0o640)
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(BODY_A)
    b.write_text(BODY_B)
    script = tmp_path / "applier.py"
    script.write_text(APPLIER)
    env = {**os.environ, "GUILD_AGENT_FIX_BACKUPS": str(tmp_path / "backups"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    rng = random.Random(7)
    kills = 12
    seen: set[str] = set()
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, str(script), str(target), str(a), str(b)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        text = target.read_text()
        assert text in (BODY_A, BODY_B), f"torn file: {len(text)} bytes"
        seen.add(text[:40] + text[-20:])
        assert (os.stat(target).st_mode & 0o777) == 0o640
    assert len(seen) == 2  # applies really happened between kills: both versions were seen
    # Only whole files were ever visible; leftover temp files are the kill's only trace,
    # and they are hidden dot-files beside the target, never the target itself.
    leftovers = [p.name for p in mod.iterdir() if p.name not in ("go.mod", "cart.go")]
    assert all(n.startswith(".cart.go.") and n.endswith(".tmp") for n in leftovers)
