"""`runs`, `runs show`, `bench compare` and provenance, on real runs (oracle and replay
backends, the real Go toolchain), each CLI call a real process with its own data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from test_bench_run import GOOD_ADD, GOOD_SQ, NO_CODE, WRONG_ADD, WRONG_NEG, make_suite

from agent.runs.index import data_dir, read_index


def run_cli(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "agent.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One data folder holding a solve run and two bench runs of one suite."""
    root = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "GUILD_AGENT_DATA": str(root / "data"), "COLUMNS": "200"}
    suite = make_suite(root, ["add", "neg", "square"])
    script = root / "script.yaml"
    # single is read off repair's round 1: add fails then passes, neg never, square at once.
    script.write_text(yaml.safe_dump({"responses": [WRONG_ADD, GOOD_ADD, NO_CODE, WRONG_NEG,
                                                    GOOD_SQ]}))
    replay = root / "replay-run"
    r = run_cli(env, "bench", suite, "--replay", script, "--modes", "single,repair",
                "--max-rounds", "2", "--out", replay, "--no-warm")
    assert r.returncode == 0, r.stderr
    oracle = root / "oracle-run"
    r = run_cli(env, "bench", suite, "--backend", "oracle", "--modes", "single,repair",
                "--max-rounds", "2", "--out", oracle, "--no-warm")
    assert r.returncode == 0, r.stderr
    (root / "task.yaml").write_text((suite / "0_add.yaml").read_text())
    solve_script = root / "solve.yaml"
    solve_script.write_text(yaml.safe_dump({"responses": [WRONG_ADD, GOOD_ADD]}))
    solve = root / "solve-run"
    r = run_cli(env, "solve", root / "task.yaml", "--replay", solve_script, "--out", solve)
    assert r.returncode == 0, r.stderr
    return {"root": root, "env": env, "suite": suite, "replay": replay, "oracle": oracle,
            "solve": solve}


def test_runs_lists_every_run_from_the_data_folder(world):
    r = run_cli(world["env"], "runs", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    by_dir = {row["dir"]: row for row in rows}
    rep, orc, sol = (by_dir[str(world[k].resolve())] for k in ("replay", "oracle", "solve"))
    assert rep["kind"] == orc["kind"] == "bench" and sol["kind"] == "solve"
    assert rep["outcome"] == "single 1/3 · repair 2/3"
    assert orc["outcome"] == "single 3/3 · repair 3/3"
    assert sol["outcome"] == "solved r2" and sol["solved"] is True and sol["subject"] == "add"
    assert rep["model"] == "replay:script.yaml" and orc["model"] == "oracle"
    human = run_cli(world["env"], "runs")
    assert human.returncode == 0 and sol["id"] in human.stdout and "solved r2" in human.stdout
    only = run_cli(world["env"], "runs", "--kind", "solve", "--json")
    assert [json.loads(x)["kind"] for x in only.stdout.splitlines()] == ["solve"]


def test_runs_show_prints_rounds_diffs_and_diagnostics(world):
    env = world["env"]
    sol_id = next(e.id for e in read_index(data_dir_of(env))
                  if e.dir == str(world["solve"].resolve()))
    r = run_cli(env, "runs", "show", sol_id[:5])
    assert r.returncode == 0, r.stderr
    assert "round 1" in r.stdout and "round 2" in r.stdout
    assert "-func Add(a, b int) int { return a * b }" in r.stdout
    assert "+func Add(a, b int) int { return a + b }" in r.stdout
    assert "test-failure" in r.stdout
    b = run_cli(env, "runs", "show", world["replay"], "--task", "neg")
    assert b.returncode == 0, b.stderr
    assert "neg · repair" in b.stdout and "format error" in b.stdout
    assert "add · repair" not in b.stdout


def data_dir_of(env):
    old = os.environ.get("GUILD_AGENT_DATA")
    os.environ["GUILD_AGENT_DATA"] = env["GUILD_AGENT_DATA"]
    try:
        return data_dir()
    finally:
        if old is None:
            del os.environ["GUILD_AGENT_DATA"]
        else:
            os.environ["GUILD_AGENT_DATA"] = old


def test_runs_show_html_writes_the_page_of_a_solve_run(world):
    r = run_cli(world["env"], "runs", "show", world["solve"], "--html")
    assert r.returncode == 0, r.stderr
    page = world["solve"] / "report.html"
    text = page.read_text()
    assert "solve: add" in text and "return a + b" in text
    assert page.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_bad_refs_are_one_line_exit_2(world, tmp_path):
    env = world["env"]
    (tmp_path / "empty").mkdir()
    for ref in ["nosuchid", str(tmp_path / "empty")]:
        r = run_cli(env, "runs", "show", ref)
        assert r.returncode == 2, (ref, r.stdout)
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")
    r = run_cli(env, "runs", "show", world["replay"], "--task", "nope")
    assert r.returncode == 2 and "no attempt of task 'nope'" in r.stderr


def test_a_corrupt_index_and_a_deleted_run_do_not_break_the_list(world, tmp_path):
    env = {**world["env"], "GUILD_AGENT_DATA": str(tmp_path / "data")}
    (tmp_path / "data").mkdir()
    index = tmp_path / "data" / "runs.jsonl"
    gone = tmp_path / "gone"
    index.write_text("not json\n" + json.dumps(
        {"id": "deadbeef", "kind": "solve", "dir": str(gone)}) + "\n{\"id\": 3}\n"
        + json.dumps({"id": "cafecafe", "kind": "bench", "dir": str(world["oracle"])}) + "\n")
    r = run_cli(env, "runs", "--json")
    assert r.returncode == 0, r.stderr
    rows = {json.loads(x)["id"]: json.loads(x) for x in r.stdout.splitlines()}
    assert rows["deadbeef"]["outcome"] == "missing" and not rows["deadbeef"]["exists"]
    assert rows["cafecafe"]["outcome"] == "single 3/3 · repair 3/3"
    r = run_cli(env, "runs", "show", "deadbeef")
    assert r.returncode == 2 and "is gone" in r.stderr


def test_a_torn_trajectory_still_shows_what_was_written(world, tmp_path):
    import shutil

    run = tmp_path / "torn"
    shutil.copytree(world["solve"], run)
    traj = run / "trajectory.jsonl"
    traj.write_text(traj.read_text() + '{"event": "request", "round": 3, "mess')
    r = run_cli(world["env"], "runs", "show", run)
    assert r.returncode == 0, r.stderr
    assert "1 unreadable trajectory line(s) skipped" in r.stdout and "round 2" in r.stdout


# -- provenance -------------------------------------------------------------------------

def test_provenance_in_run_json_every_result_and_solve(world):
    run = json.loads((world["replay"] / "run.json").read_text())
    prov = run["provenance"]
    assert prov["backend"] == "replay" and prov["go_version"].startswith("go")
    assert prov["cpus"] == os.cpu_count() and prov["seeds"] == [0]
    assert len(prov["replay_sha256"]) == 64 and prov["platform"]
    lines = (world["replay"] / "results.jsonl").read_text().splitlines()
    assert lines and all(json.loads(x)["provenance"] == prov for x in lines)
    res = json.loads((world["solve"] / "result.json").read_text())
    assert res["provenance"]["backend"] == "replay" and res["kind"] == "solve"
    assert res["task_file"].endswith("task.yaml")
    # The run's config hash ignores provenance: the same options resume the same run.
    r = run_cli(world["env"], "bench", world["suite"], "--backend", "oracle", "--modes",
                "single,repair", "--max-rounds", "2", "--out", world["oracle"], "--resume",
                "--no-warm")
    assert r.returncode == 0, r.stderr


# -- bench compare ------------------------------------------------------------------------

def test_compare_counts_wins_and_losses_per_task(world, tmp_path):
    svg = tmp_path / "cmp.svg"
    r = run_cli(world["env"], "bench", "compare", world["replay"], world["oracle"], "--json",
                "--svg", svg)
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    rows = {(m["run"].split()[0], m["mode"]): m for m in c["modes"]}
    assert rows[("oracle", "repair")]["wins"] == 1  # neg
    assert rows[("oracle", "single")]["wins"] == 2  # add, neg
    assert rows[("oracle", "single")]["losses"] == 0
    assert (rows[("replay:script.yaml", "repair")]["solved"],
            rows[("oracle", "repair")]["solved"]) == (2, 3)
    assert c["outcomes"]["neg"][c["runs"][0]["label"]] == {"single": False, "repair": False}
    assert svg.read_text().startswith("<svg") and "tasks solved per run" in svg.read_text()
    human = run_cli(world["env"], "bench", "compare", world["replay"], world["oracle"])
    assert human.returncode == 0 and "+1 / -0" in human.stdout and "neg" in human.stdout


def test_compare_refuses_other_suites_unless_forced(world, tmp_path):
    other = make_suite(tmp_path, ["add", "double"])
    out = tmp_path / "other-run"
    r = run_cli(world["env"], "bench", other, "--backend", "oracle", "--modes", "single",
                "--out", out, "--no-warm")
    assert r.returncode == 0, r.stderr
    r = run_cli(world["env"], "bench", "compare", world["oracle"], out)
    assert r.returncode == 2 and "--force" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli(world["env"], "bench", "compare", world["oracle"], out, "--force", "--json")
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    assert not c["same_suite"] and set(c["tasks"]) == {"add", "neg", "square", "double"}
    for bad in ([world["oracle"]], [world["oracle"], tmp_path]):
        r = run_cli(world["env"], "bench", "compare", *bad)
        assert r.returncode == 2 and r.stderr.startswith("error:"), r.stderr
