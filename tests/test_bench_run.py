"""`guild-agent bench SUITE` end to end: real toolchain, oracle and replay models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.bench.config import RESULTS
from agent.bench.results import AttemptRecord
from agent.cli import main

TESTS = {
    "add": ("Add(a, b int) int", "Add(2, 3) != 5 || Add(-1, 1) != 0",
            "func Add(a, b int) int { return a + b }"),
    "neg": ("Neg(x int) int", "Neg(4) != -4 || Neg(-2) != 2",
            "func Neg(x int) int { return -x }"),
    "square": ("Square(x int) int", "Square(3) != 9 || Square(-2) != 4",
               "func Square(x int) int { return x * x }"),
    "double": ("Double(x int) int", "Double(3) != 6 || Double(0) != 0",
               "func Double(x int) int { return 2 * x }"),
}


def make_suite(root: Path, names: list[str]) -> Path:
    suite = root / "suite"
    suite.mkdir()
    for i, name in enumerate(names):
        sig, cond, ref = TESTS[name]
        fn = sig.split("(")[0]
        task = {"id": name, "prompt": f"Write `func {sig}`.",
                "tests": (f'import "testing"\n\nfunc Test{fn}(t *testing.T) {{\n'
                          f'\tif {cond} {{\n\t\tt.Error("wrong")\n\t}}\n}}\n'),
                "reference": ref + "\n"}
        # File names fix the order: load_suite sorts them.
        (suite / f"{i}_{name}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return suite


def invoke(args: list[str]):
    return CliRunner().invoke(main, ["bench", *args], catch_exceptions=False)


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def without_timings(obj):
    """The summary minus what depends on the clock."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if "seconds" not in k}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


# -- oracle: every mode solves everything -----------------------------------------------

def test_oracle_solves_everything_in_every_mode(tmp_path):
    suite = make_suite(tmp_path, ["add", "neg", "square"])
    out = tmp_path / "run"
    res = invoke([str(suite), "--backend", "oracle", "--samples", "2", "--out", str(out),
                  "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout.strip().splitlines()[-1])
    assert s == summary_of(out)
    assert set(s["modes"]) == {"single", "repair", "sample"}
    for ms in s["modes"].values():
        assert (ms["tasks"], ms["solved"], ms["pass_rate"]) == (3, 3, 1.0)
    assert s["modes"]["single"]["raw_solved"] == 3
    assert s["modes"]["repair"]["solved_by_round"] == {"1": 3, "2": 3, "3": 3, "4": 3}
    assert s["modes"]["sample"]["pass_at_k"] == {"1": 1.0, "2": 1.0}
    lines = (out / RESULTS).read_text().splitlines()
    assert len(lines) == 3 * (1 + 1 + 2)
    # Single-shot attempts are read off repair's first round: they have no trajectory.
    assert len(list((out / "trajectories").glob("*.jsonl"))) == len(lines) - 3
    report = (out / "report.md").read_text()
    assert "guild-agent bench" in report and "## Equal budget" in report
    assert (out / "plot.png").stat().st_size > 1000
    # A complete run resumed does nothing and summarises the same.
    again = invoke([str(suite), "--backend", "oracle", "--samples", "2", "--out", str(out),
                    "--resume"])
    assert again.exit_code == 0, again.output
    assert (out / RESULTS).read_text().splitlines() == lines
    assert without_timings(summary_of(out)) == without_timings(s)


# -- replay: per-round accounting with exact numbers --------------------------------------

def fence(code: str) -> str:
    return f"```go\npackage sandbox\n\n{code}\n```\n"


# Wrong in a way no one-token change fixes (`a - b` would become `a + b`).
WRONG_ADD = fence("func Add(a, b int) int { return a * b }")
GOOD_ADD = fence("func Add(a, b int) int { return a + b }")
NO_CODE = "I am not able to write that function."
COMPILE_NEG = fence("func Neg(x int) int { return y }")
WRONG_NEG = fence("func Neg(x int) int { return x }")
WRONG_NEG2 = fence("func Neg(x int) int { return 0 }")
UNUSED_SQ = fence('import "fmt"\n\nfunc Square(x int) int { return x * x }')
GOOD_SQ = fence("func Square(x int) int { return x * x }")

# Task-major, modes in order single, repair, sample (2 samples), one model call per line.
SCRIPT = {
    ("add", "single"): [WRONG_ADD],
    ("add", "repair"): [WRONG_ADD, GOOD_ADD],  # solved at round 2
    ("add", "sample"): [GOOD_ADD, NO_CODE],  # 1 of 2
    ("neg", "single"): [NO_CODE],  # format error
    ("neg", "repair"): [COMPILE_NEG, WRONG_NEG, WRONG_NEG2],  # never solved
    ("neg", "sample"): [WRONG_NEG, WRONG_NEG],
    ("square", "single"): [UNUSED_SQ],  # solved only after the import fix
    ("square", "repair"): [GOOD_SQ],
    ("square", "sample"): [GOOD_SQ, GOOD_SQ],
}


def tokens(texts: list[str]) -> int:
    return sum(max(1, len(t) // 4) for t in texts)  # the replay model's count


def test_replay_drives_the_per_round_accounting(tmp_path):
    suite = make_suite(tmp_path, ["add", "neg", "square"])
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"responses": [r for rs in SCRIPT.values() for r in rs]}))
    out = tmp_path / "run"
    res = invoke([str(suite), "--replay", str(script), "--samples", "2", "--max-rounds", "3",
                  "--separate-single", "--out", str(out),
                  "--jobs", "4"])  # replay runs one job regardless
    assert res.exit_code == 0, res.output
    s = summary_of(out)
    single, repair, sample = (s["modes"][m] for m in ("single", "repair", "sample"))

    assert (single["tasks"], single["solved"], single["raw_solved"]) == (3, 1, 0)
    assert single["pass_rate"] == pytest.approx(1 / 3)
    assert single["first_failures"] == {"test-failure": 1, "format": 1}
    assert single["rounds"] == 3

    assert (repair["solved"], repair["rounds"]) == (2, 2 + 3 + 1)
    assert repair["solved_by_round"] == {"1": 1, "2": 2, "3": 2}
    assert repair["first_failures"] == {"compile": 1}
    per_round = [tokens([WRONG_ADD, COMPILE_NEG, GOOD_SQ]),
                 tokens([GOOD_ADD, WRONG_NEG]), tokens([WRONG_NEG2])]
    assert [p["completion_tokens"] for p in repair["budget_curve"]] == [
        per_round[0], per_round[0] + per_round[1], sum(per_round)]

    assert (sample["solved"], sample["attempts"]) == (2, 6)
    assert sample["pass_at_k"]["1"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert sample["pass_at_k"]["2"] == pytest.approx(2 / 3)
    assert sample["first_failures"] == {"format": 1, "test-failure": 2}

    for (task, mode), texts in SCRIPT.items():
        row = next(r for r in s["per_task"] if r["task"] == task)["modes"][mode]
        assert row["completion_tokens"] == tokens(texts), (task, mode)
    for mode in ("single", "repair", "sample"):
        want = sum(tokens(t) for (_, m), t in SCRIPT.items() if m == mode)
        assert s["modes"][mode]["completion_tokens"] == want
    rows = {r["task"]: r["modes"] for r in s["per_task"]}
    assert rows["add"]["repair"]["solved_at_round"] == 2
    assert rows["neg"]["repair"] | {"seconds": 0} == {
        "solved": False, "raw_solved": None, "solved_at_round": None, "samples_solved": None,
        "rounds": 3, "first_failure": "compile", "stop_reason": "round budget spent",
        "completion_tokens": tokens(SCRIPT[("neg", "repair")]), "seconds": 0}
    assert rows["square"]["single"]["raw_solved"] is False
    assert rows["square"]["single"]["solved"] is True


def test_single_is_read_off_greedy_repair_round_one(tmp_path):
    suite = make_suite(tmp_path, ["add", "neg", "square"])
    script = tmp_path / "script.yaml"
    # Only repair generates: each task's single-shot attempt is its repair round 1.
    responses = [r for (_, m), rs in SCRIPT.items() if m == "repair" for r in rs]
    script.write_text(yaml.safe_dump({"responses": responses}))
    out = tmp_path / "run"
    res = invoke([str(suite), "--replay", str(script), "--modes", "single,repair",
                  "--max-rounds", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    s = summary_of(out)
    single, repair = s["modes"]["single"], s["modes"]["repair"]
    assert single["solved"] == repair["solved_by_round"]["1"] == 1
    assert single["rounds"] == 3 and single["completion_tokens"] == tokens(
        [WRONG_ADD, COMPILE_NEG, GOOD_SQ])
    assert single["first_failures"] == {"test-failure": 1, "compile": 1}
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6 and len(set(lines)) == 6


def test_a_model_that_never_answers_exits_3_and_records_nothing(tmp_path):
    suite = make_suite(tmp_path, ["add"])
    script = tmp_path / "short.yaml"
    script.write_text(yaml.safe_dump({"responses": [GOOD_ADD]}))
    out = tmp_path / "run"
    res = invoke([str(suite), "--replay", str(script), "--modes", "single,sample",
                  "--samples", "2", "--out", str(out)])
    assert res.exit_code == 3
    assert "ran out of responses" in res.stderr and "--resume" in res.stderr
    # The answered attempt is kept; the unanswered ones will be retried on resume.
    assert len((out / RESULTS).read_text().splitlines()) == 1


# -- bad input ----------------------------------------------------------------------------

def test_bad_input_is_one_line_and_exit_2(tmp_path):
    suite = make_suite(tmp_path, ["add"])
    cases = [
        [str(tmp_path / "missing"), "--backend", "oracle"],
        [str(suite), "--backend", "oracle", "--modes", "single,best"],
        [str(suite), "--backend", "oracle", "--tasks", "nomatch*"],
        [str(suite), "--backend", "oracle", "--resume"],
    ]
    for args in cases:
        res = invoke(args)
        assert res.exit_code == 2, (args, res.output)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert res.stderr.startswith("error:")


def test_resume_with_another_config_is_refused(tmp_path):
    suite = make_suite(tmp_path, ["add"])
    out = tmp_path / "run"
    first = invoke([str(suite), "--backend", "oracle", "--modes", "single", "--out", str(out)])
    assert first.exit_code == 0, first.output
    base = [str(suite), "--backend", "oracle", "--out", str(out)]
    other = invoke([*base, "--modes", "single,repair", "--resume"])
    assert other.exit_code == 2
    assert "different config (differs in: modes)" in other.stderr
    fresh = invoke([*base, "--modes", "single"])  # same config, but no --resume
    assert fresh.exit_code == 2
    assert "already holds a run; pass --resume" in fresh.stderr


def test_missing_replay_file_exits_3(tmp_path):
    suite = make_suite(tmp_path, ["add"])
    res = invoke([str(suite), "--replay", str(tmp_path / "none.yaml"), "--out",
                  str(tmp_path / "r")])
    assert res.exit_code == 3
    assert "no such replay file" in res.stderr


# -- kill -9, then --resume ---------------------------------------------------------------

def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path):
    suite = make_suite(tmp_path, ["add", "neg", "square", "double"])
    common = [str(suite), "--backend", "oracle", "--modes", "single,sample", "--samples", "3"]
    killed = tmp_path / "killed"
    exe = Path(sys.executable).with_name("guild-agent")
    proc = subprocess.Popen([str(exe), "bench", *common, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = killed / RESULTS
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_bytes().splitlines()) >= 3:
            break
        if proc.poll() is not None:
            pytest.fail("the run finished before it could be killed")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(results.read_text().splitlines())
    assert 3 <= n_before < 16
    # As if the kill had landed mid-write: half a line at the end.
    with open(results, "a") as fh:
        fh.write('{"config": "x", "mode": "sample", "res')

    resumed = invoke([*common, "--out", str(killed), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert f"{16 - n_before} attempt(s) to run, {n_before} recorded" in " ".join(
        resumed.stderr.split())

    clean = tmp_path / "clean"
    straight = invoke([*common, "--out", str(clean)])
    assert straight.exit_code == 0, straight.output

    lines = results.read_text().splitlines()
    recs = [AttemptRecord.model_validate_json(x) for x in lines]  # none corrupt
    assert len(recs) == 16 and len({r.key for r in recs}) == 16  # none duplicated
    assert without_timings(summary_of(killed)) == without_timings(summary_of(clean))


def test_report_rebuilds_the_summary_from_recorded_results_alone(tmp_path):
    suite = make_suite(tmp_path, ["add", "neg"])
    out = tmp_path / "run"
    res = invoke([str(suite), "--backend", "oracle", "--modes", "single,repair",
                  "--out", str(out)])
    assert res.exit_code == 0, res.output
    before = summary_of(out)
    (out / "summary.json").unlink()
    (out / "report.md").unlink()
    rebuilt = invoke(["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "repair: 2/2 solved" in rebuilt.output
    assert without_timings(summary_of(out)) == without_timings(before)
    assert "## Why attempts stopped" in (out / "report.md").read_text()
    # A partial run (as after a kill) reports what it has, and says so.
    lines = (out / RESULTS).read_text().splitlines(keepends=True)
    (out / RESULTS).write_text("".join(lines[:2]))
    partial = invoke(["report", str(out)])
    assert partial.exit_code == 0 and "incomplete: 2/4 attempts" in partial.output
    missing = invoke(["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "holds no run" in missing.output


def test_repeated_kill_9_and_resume_loses_and_duplicates_nothing(tmp_path):
    """Kill the run at random points several times, resuming each time (issue: safety)."""
    import random

    tasks = ["add", "neg", "square", "double"]
    suite = make_suite(tmp_path, tasks)
    common = [str(suite), "--backend", "oracle", "--modes", "single,repair,sample",
              "--samples", "2"]
    total = len(tasks) * (1 + 1 + 2)
    out = tmp_path / "killed"
    exe = Path(sys.executable).with_name("guild-agent")
    results = out / RESULTS
    rng = random.Random(11)
    kills = 0
    for _ in range(4):
        args = [str(exe), "bench", *common, "--out", str(out)]
        if (out / "run.json").exists():
            args.append("--resume")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        have = len(results.read_bytes().splitlines()) if results.exists() else 0
        want = have + rng.randint(1, 4)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and len(results.read_bytes().splitlines()) >= want:
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 3
    final = invoke([*common, "--out", str(out), "--resume"])
    assert final.exit_code == 0, final.output
    lines = results.read_text().splitlines()
    recs = [AttemptRecord.model_validate_json(x) for x in lines]
    assert len(recs) == total and len({r.key for r in recs}) == total
    clean = tmp_path / "clean"
    assert invoke([*common, "--out", str(clean)]).exit_code == 0
    assert without_timings(summary_of(out)) == without_timings(summary_of(clean))


def _hold_lock(path: Path, holder: str, seconds: float) -> subprocess.Popen:
    """Another process holding the run lock for `seconds`, the lock file naming `holder`."""
    code = ("import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'r+')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "f.truncate(0); f.write(sys.argv[2]); f.flush()\n"
            "print('held', flush=True)\n"
            "time.sleep(float(sys.argv[3]))\n")
    path.touch()
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), holder, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_waits_for_a_dead_holders_children_and_not_for_a_live_holder(tmp_path):
    import socket

    from agent.bench.runner import LOCK, BenchError, RunLock

    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    # The recorded holder is gone; what still holds the lock (its forked child, here a
    # stand-in) lets go within the grace: the lock is taken, not refused.
    child = _hold_lock(tmp_path / LOCK, f"bench (pid {dead} on {host}, since x)\n", 1.0)
    t0 = time.monotonic()
    RunLock(tmp_path, "bench").release()
    assert 0.3 < time.monotonic() - t0 < 3.0
    child.wait()
    # A live holder is named at once.
    live = _hold_lock(tmp_path / LOCK, f"bench (pid {os.getpid()} on {host}, since x)\n", 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(BenchError, match=f"in use by bench \\(pid {os.getpid()}"):
            RunLock(tmp_path, "bench")
        assert time.monotonic() - t0 < 1.0
    finally:
        live.kill()
        live.wait()
