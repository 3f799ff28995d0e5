"""`guild-agent bench ablate`: each round-1 fix switched off on a real run's recorded
answers, checked again by the real toolchain with no model call."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml
from conftest import needs_go
from test_bench_run import GOOD_ADD, NO_CODE, UNUSED_SQ, WRONG_NEG, fence, make_suite
from test_export import run_cli

pytestmark = needs_go

# add passes as written, neg fails, square passes once its unused import goes, double
# has no code: one model call a task.
ANSWERS = [GOOD_ADD, WRONG_NEG, UNUSED_SQ, NO_CODE]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablate")
    env = {**os.environ, "GUILD_AGENT_DATA": str(root / "data")}
    suite = make_suite(root, ["add", "neg", "square", "double"])
    script = root / "script.yaml"
    script.write_text(yaml.safe_dump({"responses": ANSWERS}))
    single = root / "single-run"
    r = run_cli(env, "bench", suite, "--replay", script, "--modes", "single", "--out",
                single, "--no-warm")
    assert r.returncode == 0, r.stderr
    # Single shot read off greedy repair's round 1: the answers are in the repair logs.
    derived = root / "derived-run"
    r = run_cli(env, "bench", suite, "--replay", script, "--modes", "single,repair",
                "--max-rounds", "1", "--candidates", "1", "--out", derived, "--no-warm")
    assert r.returncode == 0, r.stderr
    assert not list((derived / "trajectories").glob("*.single.*"))
    return {"root": root, "env": env, "suite": suite, "single": single, "derived": derived}


@pytest.mark.parametrize("which", ["single", "derived"])
def test_each_fix_switched_off_on_the_recorded_answers(runs, which):
    run = runs[which]
    r = run_cli(runs["env"], "bench", "ablate", run, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    rows = {row["name"]: row for row in got["rows"]}
    assert got["answered"] == ["add", "neg", "square", "double"] and got["missing"] == []
    assert rows["all"]["solved"] == ["add", "square"]
    assert rows["none"]["solved"] == ["add"]  # as generated
    # neg builds and fails its tests; square builds only once the import goes.
    assert rows["all"]["built"] == ["add", "neg", "square"]
    assert rows["none"]["built"] == ["add", "neg"]
    # Off, unused-imports loses the one task it fixed; a fix that acted on nothing
    # changes nothing and is checked on no task again.
    assert rows["unused-imports"] == {"name": "unused-imports", "solved": ["add"],
                                      "built": ["add", "neg"], "touched": ["square"]}
    assert rows["conversions"] == {"name": "conversions", "solved": ["add", "square"],
                                   "built": ["add", "neg", "square"], "touched": []}
    # never-worse judged the kept fix; without it the fix is kept all the same.
    assert rows["never-worse"]["touched"] == ["square"]
    assert rows["never-worse"]["solved"] == ["add", "square"]
    md = (run / "ablation.md").read_text()
    assert "| without `unused-imports` | 1 / 4 | -1 | 2 | 1 | square |  |" in md
    assert "| none (as generated) | 1 / 4 | -1 | 2 |  | square |  |" in md
    assert json.loads((run / "ablation.json").read_text()) == got


def test_one_fix_asked_for_and_the_table_printed(runs):
    whole = runs["single"] / "ablation.md"
    before = whole.read_bytes() if whole.exists() else None
    r = run_cli(runs["env"], "bench", "ablate", runs["single"], "--fix", "unused-imports")
    assert r.returncode == 0, r.stderr
    assert "| all the run had on | 2 / 4 |" in r.stdout
    assert "without `unused-imports`" in r.stdout and "without `gofmt`" not in r.stdout
    # One fix's rows go to a file of their own: the whole table is kept.
    part = runs["single"] / "ablation-unused-imports.md"
    assert "without `unused-imports`" in part.read_text() and "ablation-unused-imports.md" \
        in r.stdout
    assert json.loads((runs["single"] / "ablation-unused-imports.json").read_text())["rows"]
    assert (whole.read_bytes() if whole.exists() else None) == before


def test_a_fix_the_run_had_off_is_added(runs, tmp_path):
    # A run made with a fix off (or before the fix existed) shows what it would add.
    run = tmp_path / "off-run"
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump({"responses": ANSWERS}))
    r = run_cli(runs["env"], "bench", runs["suite"], "--replay", script, "--modes", "single",
                "--no-fix", "unused-imports", "--out", run, "--no-warm")
    assert r.returncode == 0, r.stderr
    r = run_cli(runs["env"], "bench", "ablate", run, "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["all"]["solved"] == ["add"] and "unused-imports" not in rows
    assert rows["+unused-imports"] == {"name": "+unused-imports", "solved": ["add", "square"],
                                       "built": ["add", "neg", "square"],
                                       "touched": ["square"]}
    # A fix the run had on is still switched off, not added.
    assert rows["conversions"] == {"name": "conversions", "solved": ["add"],
                                   "built": ["add", "neg"], "touched": []}
    assert "| all, + `unused-imports` (off in the run) | 2 / 4 | +1 | 3 | 1 |  | square |" \
        in (run / "ablation.md").read_text()


def test_records_claiming_passes_do_not_count(runs, tmp_path):
    # The answers are judged afresh: a results file edited to say every task passed,
    # and a trajectory edited to say so, change nothing.
    run = tmp_path / "edited"
    shutil.copytree(runs["single"], run)
    res = run / "results.jsonl"
    res.write_text(res.read_text().replace('"solved": false', '"solved": true'))
    for p in (run / "trajectories").glob("*.jsonl"):
        p.write_text(p.read_text().replace('"passed": false', '"passed": true'))
    r = run_cli(runs["env"], "bench", "ablate", run, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"][0]["solved"] == ["add", "square"]


def test_one_token_searches_the_answers_a_repair_run_would(runs, tmp_path):
    # `a - b` is one token from passing; `return x` for Neg is not.
    script = tmp_path / "slip.yaml"
    script.write_text(yaml.safe_dump({"responses": [
        fence("func Add(a, b int) int { return a - b }"), WRONG_NEG, UNUSED_SQ, NO_CODE]}))
    run = tmp_path / "slip-run"
    r = run_cli(runs["env"], "bench", runs["suite"], "--replay", script, "--modes", "single",
                "--out", run, "--no-warm")
    assert r.returncode == 0, r.stderr
    r = run_cli(runs["env"], "bench", "ablate", run, "--fix", "gofmt", "--one-token", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["all"]["solved"] == ["square"]
    assert rows["+one-token"] == {"name": "+one-token", "solved": ["add", "square"],
                                  "built": ["add", "neg", "square"],
                                  "touched": ["add", "neg"]}
    md = (run / "ablation-gofmt.md").read_text()  # --fix: a file of its own
    assert not (run / "ablation.md").exists()
    assert ("| all, + `one-token` as in a repair run's round 1 | 2 / 4 | +1 | 3 | 2 searched "
            "|  | add |") in md


def test_bad_input_is_one_line_exit_2(runs, tmp_path):
    (tmp_path / "empty").mkdir()
    bare = tmp_path / "bare"
    shutil.copytree(runs["single"], bare)
    shutil.rmtree(bare / "trajectories")
    cases = [
        ([tmp_path / "empty"], "unreadable run"),
        ([runs["single"], "--fix", "run-trace"], "does not act on a round-1 answer"),
        ([bare], "no recorded round-1 answer"),
        # --fix names a file (ablation-NAME.md): a path in it is refused before any write.
        ([runs["single"], "--fix", "../../escaped"], "does not act on a round-1 answer"),
    ]
    for args, says in cases:
        r = run_cli(runs["env"], "bench", "ablate", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert not list(runs["single"].parent.parent.rglob("*escaped*"))
