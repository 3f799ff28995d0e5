"""Hostile inputs to `bench` and `solve` fail safe (issue 11): real CLI processes, real
files, the real Go toolchain; disk full on a real (tiny) tmpfs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from agent.bench.config import LOCK, RESULTS, BenchConfig, Mode
from agent.bench.results import AttemptRecord
from agent.bench.runner import BenchRun
from agent.loop.trajectory import RunResult, file_name
from agent.models import make_model
from agent.tasks.harness import Suite, TaskHarness
from agent.tasks.spec import TaskSpec
from tools.workspace import LOCAL_MODULE_MAX_FILES

ROOT = Path(__file__).resolve().parents[1]
# The CLI of this checkout, as a real process (not the installed script, which may be
# another checkout's).
CLI = [sys.executable, "-c", "from agent.cli import main; main()"]


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e.update(extra)
    return e


def cli(*args: str, cwd: Path | None = None, timeout: float = 300,
        **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd,
                          env=env(**extra), timeout=timeout)


def popen(*args: str, **extra: str) -> subprocess.Popen[str]:
    # Default SIGINT handling even when pytest runs as a background job (which ignores it).
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(**extra),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def one_line_error(proc: subprocess.CompletedProcess[str] | tuple[int, str], code: int
                   ) -> str:
    rc, err = (proc.returncode, proc.stderr) if not isinstance(proc, tuple) else proc
    assert rc == code, err
    assert "Traceback" not in err, err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert lines and lines[-1].startswith("error:"), err
    return lines[-1]


def task(tid: str, fn: str = "Add", body: str = "return a + b", sleep: float = 0) -> dict:
    pause = (f"\ttime.Sleep({int(sleep * 1000)} * time.Millisecond)\n" if sleep else "")
    imports = 'import (\n\t"testing"\n\t"time"\n)\n' if sleep else 'import "testing"\n'
    return {"id": tid, "prompt": f"Write `func {fn}(a, b int) int`.",
            "tests": (f"{imports}\nfunc Test{fn}(t *testing.T) {{\n{pause}"
                      f"\tif {fn}(2, 3) != 5 {{\n\t\tt.Error(\"wrong\")\n\t}}\n}}\n"),
            "reference": f"func {fn}(a, b int) int {{ {body} }}\n"}


def make_suite(root: Path, tasks: list[dict], name: str = "suite") -> Path:
    suite = root / name
    suite.mkdir()
    for i, t in enumerate(tasks):
        (suite / f"{i:02d}.yaml").write_text(yaml.safe_dump(t, sort_keys=False))
    return suite


def fence(code: str, name: str | None = None) -> str:
    head = f"// file: {name}\n" if name else ""
    return f"```go\n{head}package sandbox\n\n{code}\n```\n"


GOOD_ADD = fence("func Add(a, b int) int { return a + b }")
WRONG_ADD = fence("func Add(a, b int) int { return a - b }")
HIDDEN_ADD = fence("func Add(a, b int) int { return a + b }", ".hidden.go")
LONG_ADD = fence("func Add(a, b int) int { return a + b }", "a" * 300 + ".go")


def script(path: Path, responses: list[str]) -> Path:
    path.write_text(yaml.safe_dump({"responses": responses}))
    return path


def results(out: Path) -> list[AttemptRecord]:
    return [AttemptRecord.model_validate_json(x)
            for x in (out / RESULTS).read_text().splitlines()]


def tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(path.rglob("*"))}


# -- 1. an attempt that breaks is an error result; the run goes on ------------------------

def test_a_broken_attempt_is_an_error_result_and_the_run_goes_on(tmp_path, monkeypatch):
    # a1 breaks for real: its `replace` names a Go-sources module without go.mod that is
    # larger than the workspace will copy, which only shows when its workspace is made.
    gocode = tmp_path / "gocode"
    big = gocode / "example.com" / "big"
    big.mkdir(parents=True)
    for i in range(LOCAL_MODULE_MAX_FILES + 5):
        (big / f"f{i}.go").write_bytes(b"package big\n")
    monkeypatch.setenv("GUILD_AGENT_GOCODE", str(gocode))
    broken = task("a1")
    broken["go_mod"] = {"require": [{"module": "example.com/big", "replace": str(big)}]}
    suite = make_suite(tmp_path, [broken, task("a2"), task("a3")])
    # a2's answer names a hidden file: a format error the loop reports, not a breakage.
    replay = script(tmp_path / "s.yaml", [HIDDEN_ADD, GOOD_ADD, GOOD_ADD])
    out = tmp_path / "run"
    res = cli("bench", str(suite), "--replay", str(replay), "--modes", "single",
              "--out", str(out), "--no-warm")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    recs = {r.task: r for r in results(out)}
    assert [recs[t].outcome for t in ("a1", "a2", "a3")] == ["error", "done", "done"]
    assert "entries" in recs["a1"].result.error and "\n" not in recs["a1"].result.error
    assert not recs["a1"].result.solved
    assert recs["a2"].result.rounds_detail[0].format_error and not recs["a2"].result.solved
    assert recs["a3"].result.solved
    s = json.loads((out / "summary.json").read_text())
    single = s["modes"]["single"]
    assert (single["solved"], single["broken"], single["errors"]) == (1, 1, 1)
    assert [b["task"] for b in s["broken"]] == ["a1"]
    report = (out / "report.md").read_text()
    assert "## Broken attempts" in report and "entries" in report
    assert "1 attempt(s) broke" in " ".join(res.stderr.split())
    # Recorded, so a resume does not retry it (the same task would break again).
    again = cli("bench", str(suite), "--replay", str(replay), "--modes", "single",
                "--out", str(out), "--resume", "--no-warm")
    assert again.returncode == 0, again.stderr
    assert "0 attempt(s) to run, 3 recorded" in " ".join(again.stderr.split())


class _BreaksOnMarker(TaskHarness):
    """The real harness, except that an answer holding BREAK raises: a stand-in for any
    bug no input reaches today (every answer that used to break is now a format error)."""

    def check(self, solution, suite=Suite.all, *, run=None, cover=False):
        if any("BREAK" in c for c in solution.values()):
            raise RuntimeError("the harness broke on this answer")
        return super().check(solution, suite, run=run, cover=cover)


def test_repair_breaking_in_round_two_leaves_single_a_plain_failure(tmp_path):
    spec = TaskSpec.model_validate(task("add"))
    replay = script(tmp_path / "s.yaml", [WRONG_ADD, fence("// BREAK\nfunc Add(a, b int) int "
                                                           "{ return a + b }")])
    cfg = BenchConfig(suite="s", tasks=["add"], tasks_digest="d",
                      modes=[Mode.single, Mode.repair], backend="replay", max_rounds=3)
    with BenchRun(cfg, [spec], tmp_path / "run", jobs=1,
                  checker_factory=lambda t: _BreaksOnMarker(t)) as run:
        run.run(make_model("replay", replay=str(replay)))
    recs = {r.mode: r for r in results(tmp_path / "run")}
    assert recs[Mode.repair].outcome == "error" and recs[Mode.repair].result.rounds == 2
    assert "harness broke" in recs[Mode.repair].result.error
    # Round 1 ran and failed before the break: the single-shot verdict is a real one.
    assert recs[Mode.single].outcome == "done" and not recs[Mode.single].result.solved
    assert recs[Mode.single].result.error is None


def test_an_error_line_never_counts_as_a_pass(tmp_path):
    cfg = BenchConfig(suite="s", tasks=["t"], tasks_digest="d", modes=[Mode.single],
                      backend="replay")
    forged = {"task": "t", "mode": "single", "config": cfg.config_hash(), "outcome": "error",
              "result": RunResult(task="t", solved=True, rounds=1, solved_at_round=1,
                                  feedback="all", model="m", backend="replay").model_dump()}
    rec = AttemptRecord.model_validate(forged)
    assert not rec.result.solved and rec.result.solved_at_round is None
    assert rec.result.error


def test_a_lone_surrogate_in_a_record_reads_back(tmp_path):
    # JSON's \udc80 escape is unreadable to the log's reader: it would poison the run.
    cfg = BenchConfig(suite="s", tasks=["t"], tasks_digest="d", modes=[Mode.single],
                      backend="replay")
    result = RunResult(task="t", solved=False, rounds=1, feedback="all", model="m \udc80 x",
                       backend="replay", stop_reason="model error", error="x\ud800y")
    line = AttemptRecord(task="t", mode=Mode.single, config=cfg.config_hash(),
                         result=result).line()
    back = AttemptRecord.model_validate_json(line)
    assert back.result.model == "m ? x" and back.result.error == "x?y"


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_and_sigterm_still_stop_a_bench(tmp_path, sig, code, word):
    suite = make_suite(tmp_path, [task(f"t{i}") for i in range(4)])
    out = tmp_path / "run"
    proc = popen("bench", str(suite), "--backend", "oracle", "--modes", "sample",
                 "--samples", "10", "--out", str(out), "--no-warm", "--jobs", "1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / RESULTS).exists() and (out / RESULTS).read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be stopped"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    line = one_line_error((proc.returncode, err), code)
    assert word in line and "--resume" in line
    recs = results(out)  # whatever finished is recorded, readable, unduplicated
    assert 2 <= len(recs) < 40 and len({r.key for r in recs}) == len(recs)
    assert not list(out.glob("trajectories/*.tmp"))


# -- 2. --out: not someone else's folder, not twice at once, not inside the suite ---------

def test_out_on_a_folder_that_is_not_a_run_is_refused_untouched(tmp_path):
    suite = make_suite(tmp_path, [task("add")])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my own report\n")
    (mine / "summary.json").write_text('{"mine": true}\n')
    before = tree(mine)
    res = cli("bench", str(suite), "--backend", "oracle", "--out", str(mine), "--no-warm")
    assert "holds no bench run" in one_line_error(res, 2)
    assert tree(mine) == before  # not even a lock file left
    # An empty folder, or one a run left only its lock file in, is fine.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / LOCK).write_text("")
    ok = cli("bench", str(suite), "--backend", "oracle", "--modes", "single",
             "--out", str(empty), "--no-warm")
    assert ok.returncode == 0, ok.stderr


def test_out_inside_the_suite_is_refused_and_the_suite_untouched(tmp_path):
    suite = make_suite(tmp_path, [task("add")])
    before = tree(suite)
    link = tmp_path / "alias"
    link.symlink_to(suite / "sub", target_is_directory=True)
    for out in (suite, suite / "run", suite / "deep" / "er", link):
        res = cli("bench", str(suite), "--backend", "oracle", "--out", str(out), "--no-warm")
        assert "inside the suite folder" in one_line_error(res, 2), out
    assert tree(suite) == before


def test_a_second_bench_on_a_running_folder_is_refused_naming_the_holder(tmp_path):
    suite = make_suite(tmp_path, [task(f"t{i}") for i in range(3)])
    out = tmp_path / "run"
    common = ["--backend", "oracle", "--modes", "sample", "--samples", "4", "--jobs", "1",
              "--no-warm", "--out", str(out)]
    first = popen("bench", str(suite), *common)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if (out / RESULTS).exists():
                break
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended too soon"
        second = cli("bench", str(suite), *common, "--resume")
        line = one_line_error(second, 2)
        assert "in use by bench" in line and f"pid {first.pid}" in line
        report = cli("bench", "report", str(out))
        assert f"pid {first.pid}" in one_line_error(report, 2)
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    recs = results(out)
    assert len(recs) == 12 and len({r.key for r in recs}) == 12  # run once, not twice
    # Free again once the holder ended.
    assert cli("bench", "report", str(out)).returncode == 0


# -- 3. bench report: torn means unterminated -------------------------------------------

def test_report_drops_only_an_unterminated_line_and_names_a_corrupt_one(tmp_path):
    suite = make_suite(tmp_path, [task("a1"), task("a2")])
    out = tmp_path / "run"
    res = cli("bench", str(suite), "--backend", "oracle", "--modes", "single",
              "--out", str(out), "--no-warm")
    assert res.returncode == 0, res.stderr
    log = out / RESULTS
    good = log.read_bytes()
    assert good.count(b"\n") == 2
    log.write_bytes(good + b'{"task": "a3", "mode": "sing\n')  # whole line, bad JSON
    res = cli("bench", "report", str(out))
    assert "line 3 is corrupt" in one_line_error(res, 2)
    assert log.read_bytes() == good + b'{"task": "a3", "mode": "sing\n'  # not deleted
    log.write_bytes(good + b'{"task": "a3", "mode": "sing')  # torn: no newline
    res = cli("bench", "report", str(out))
    assert res.returncode == 0, res.stderr
    assert log.read_bytes() == good


# -- 4. disk full -------------------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB tmpfs (needs root); unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root and mount): {exc}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def fill(disk: Path, leave: int = 0) -> None:
    """Fill the disk, leaving `leave` bytes (whole pages) free."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize - leave
    fd = os.open(disk / f"filler-{uuid.uuid4().hex}", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):  # full: exactly what was asked for
            while free > 0:
                free -= os.write(fd, b"\0" * min(free, 1 << 16))
    finally:
        os.close(fd)


def test_disk_full_at_bench_start_is_one_line(tmp_path, tiny_disk):
    suite = make_suite(tmp_path, [task("add")])
    fill(tiny_disk)
    out = tiny_disk / "run"
    res = cli("bench", str(suite), "--backend", "oracle", "--out", str(out), "--no-warm")
    line = one_line_error(res, 3)
    assert "No space left on device" in line
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def test_disk_full_at_plot_and_report_time_is_one_line_and_keeps_results(tmp_path, tiny_disk):
    suite = make_suite(tmp_path, [task("a1"), task("a2")])
    done = tmp_path / "done"
    res = cli("bench", str(suite), "--backend", "oracle", "--modes", "single,repair",
              "--out", str(done), "--no-warm")
    assert res.returncode == 0, res.stderr
    out = tiny_disk / "run"
    out.mkdir()
    for name in ("run.json", RESULTS):
        shutil.copy(done / name, out / name)
    log = (out / RESULTS).read_bytes()
    page = os.statvfs(tiny_disk).f_frsize

    def pages(n: int) -> int:
        return -(-n // page)

    # Room for the lock file, summary.json and report.md, not for the plot (tens of KiB).
    room = 1 + pages((done / "summary.json").stat().st_size + 200) + pages(
        (done / "report.md").stat().st_size + 400)
    assert (done / "plot.png").stat().st_size > (room + 2) * page
    fill(tiny_disk, leave=room * page)
    res = cli("bench", "report", str(out))
    line = one_line_error(res, 3)
    assert "No space left on device" in line and "is unchanged" in line
    assert (out / RESULTS).read_bytes() == log
    assert json.loads((out / "summary.json").read_text())["attempts_done"] == 4
    assert "plot not written" in (out / "report.md").read_text()
    assert not (out / "plot.png").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    # Nothing left at all: even summary.json cannot be written; the old files stay whole.
    before = tree(out)
    fill(tiny_disk)
    res = cli("bench", "report", str(out))
    assert "No space left on device" in one_line_error(res, 3)
    after = tree(out)
    assert after.pop(LOCK).startswith(b"bench report (pid ")  # the lock's note, rewritten
    before.pop(LOCK)
    assert after == before


def test_disk_full_mid_run_stops_the_run_instead_of_breaking_every_attempt(tmp_path,
                                                                           tiny_disk):
    suite = make_suite(tmp_path, [task(f"t{i}") for i in range(3)])
    out = tmp_path / "run"
    # The workspaces' temp folder is full but for one page (Python's tempfile probes a
    # folder with a small write and falls back to /tmp if it fails); the run folder is not.
    fill(tiny_disk, leave=os.statvfs(tiny_disk).f_frsize)
    res = cli("bench", str(suite), "--backend", "oracle", "--modes", "single",
              "--out", str(out), "--no-warm", TMPDIR=str(tiny_disk))
    line = one_line_error(res, 3)
    assert "No space left on device" in line and "--resume" in line
    assert not (out / RESULTS).exists() or not results(out)  # no attempt blamed
    assert (out / "run.json").is_file()  # and the run can be resumed once there is room


# -- 5. task ids become safe, unique file names -------------------------------------------

def test_file_names_from_ids_are_safe_and_unique():
    ids = ["x/y", "x_y", "x?y", "x/../../../NAME", "..", ".", "", "a" * 300, "ü", "x\0y",
           "x_y.0123456789ab", "Go/0"]
    names = [file_name(i) for i in ids]
    assert len(set(names)) == len(names)
    for n in names:
        assert n and "/" not in n and "\0" not in n and n not in (".", "..")
        assert not n.startswith(".") and len(n) <= 100
    assert file_name("x_y") == "x_y" and file_name("add-2") == "add-2"  # plain ids kept


def test_hostile_ids_stay_inside_the_run_and_do_not_share_a_file(tmp_path):
    ids = ["x/y", "x_y", "x?y", "x/../../../ESCAPED"]
    suite = make_suite(tmp_path, [task(i) for i in ids])
    out = tmp_path / "work" / "run"
    res = cli("bench", str(suite), "--backend", "oracle", "--modes", "single",
              "--out", str(out), "--no-warm")
    assert res.returncode == 0, res.stderr
    trajs = sorted((out / "trajectories").iterdir())
    assert len(trajs) == 4  # one file per attempt, none overwritten
    starts = {json.loads(p.read_text().splitlines()[0])["task"] for p in trajs}
    assert starts == set(ids)
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["run"]
    assert not list(tmp_path.rglob("ESCAPED*"))


def test_solve_default_out_keeps_a_hostile_id_inside_runs(tmp_path):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(task("x/../../../ESCAPED")))
    replay = script(tmp_path / "s.yaml", [GOOD_ADD])
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    res = cli("solve", str(tmp_path / "t.yaml"), "--replay", str(replay), cwd=work)
    assert res.returncode == 0, res.stderr
    (run,) = (work / "runs").iterdir()
    assert (run / "result.json").is_file() and "ESCAPED" in run.name
    assert not list(tmp_path.rglob("ESCAPED")) and sorted(os.listdir(work)) == ["runs"]
    # The same task again in the same second gets its own folder, not a shared log.
    again = cli("solve", str(tmp_path / "t.yaml"), "--replay", str(replay), cwd=work)
    assert again.returncode == 0, again.stderr
    runs = sorted((work / "runs").iterdir())
    assert len(runs) == 2
    for r in runs:
        events = [json.loads(x)["event"] for x in
                  (r / "trajectory.jsonl").read_text().splitlines()]
        assert events.count("start") == 1


# -- 6. SIGTERM during solve leaves no temp workspace --------------------------------------

def test_sigterm_during_solve_removes_its_workspace(tmp_path):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(task("slow", sleep=4)))
    replay = script(tmp_path / "s.yaml", [GOOD_ADD])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = popen("solve", str(tmp_path / "t.yaml"), "--replay", str(replay),
                 "--out", str(tmp_path / "out"), TMPDIR=str(tmp))
    deadline = time.monotonic() + 120
    seen: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        seen = [p for p in tmp.glob("guild-*") if (p / "src" / "hidden_test.go").exists()]
        if seen:
            break
        time.sleep(0.05)
    assert seen and proc.poll() is None, "the check never started"
    time.sleep(1.0)  # inside the slow test now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert "terminated" in one_line_error((proc.returncode, err), 143)
    assert not list(tmp.glob("guild-*")), "the temp workspace was left behind"
    events = [json.loads(x)["event"] for x in
              (tmp_path / "out" / "trajectory.jsonl").read_text().splitlines()]
    assert events[-1] == "terminated"
