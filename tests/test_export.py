"""`guild-agent export`: verified chat samples from real solve and bench runs, end to end.

Every exported sample's code is checked again with `guild-agent check` against the task's
hidden tests; a trajectory edited to claim a pass its code does not earn is not exported;
and mlx_lm.lora trains two iterations on the tiny test model with the exported data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from test_bench_run import (
    COMPILE_NEG,
    GOOD_ADD,
    NO_CODE,
    UNUSED_SQ,
    WRONG_ADD,
    WRONG_NEG,
    make_suite,
)

from agent.runs.export import Sample, split_by_task


def run_cli(env, *args):
    return subprocess.run([sys.executable, "-m", "agent.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    env = {**os.environ, "GUILD_AGENT_DATA": str(root / "data")}
    suite = make_suite(root, ["add", "neg", "square", "double"])
    script = root / "script.yaml"
    # repair (single read off round 1): add at round 2, neg never, square only after the
    # unused-import fix, double never (no code).
    script.write_text(yaml.safe_dump({"responses": [
        WRONG_ADD, GOOD_ADD, COMPILE_NEG, WRONG_NEG, UNUSED_SQ, NO_CODE, NO_CODE]}))
    replay = root / "replay-run"
    r = run_cli(env, "bench", suite, "--replay", script, "--modes", "single,repair",
                "--max-rounds", "2", "--out", replay, "--no-warm")
    assert r.returncode == 0, r.stderr
    oracle = root / "oracle-run"
    r = run_cli(env, "bench", suite, "--backend", "oracle", "--modes", "repair",
                "--out", oracle, "--no-warm")
    assert r.returncode == 0, r.stderr
    (root / "task.yaml").write_text((suite / "0_add.yaml").read_text())
    solve_script = root / "solve.yaml"
    solve_script.write_text(yaml.safe_dump({"responses": [GOOD_ADD]}))
    solve = root / "solve-run"
    r = run_cli(env, "solve", root / "task.yaml", "--replay", solve_script, "--out", solve)
    assert r.returncode == 0, r.stderr
    return {"root": root, "env": env, "suite": suite, "replay": replay, "oracle": oracle,
            "solve": solve}


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def code_of(sample: dict) -> str:
    answer = sample["messages"][-1]
    assert answer["role"] == "assistant"
    m = re.fullmatch(r"```go\n(.*)\n```", answer["content"], re.S)
    assert m, answer["content"]
    return m.group(1) + "\n"


@pytest.fixture(scope="module")
def exported(runs):
    out = runs["root"] / "data-out"
    r = run_cli(runs["env"], "export", runs["replay"], runs["oracle"], runs["solve"],
                "--format", "mlx-chat", "--out", out, "--with-repairs", "--valid-fraction",
                "0.3", "--json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout.strip().splitlines()[-1])


def test_export_writes_verified_deduplicated_samples_split_by_task(runs, exported):
    out, counts = exported
    train, valid = lines(out / "train.jsonl"), lines(out / "valid.jsonl")
    manifest = json.loads((out / "export.json").read_text())
    assert counts["train"] == len(train) and counts["valid"] == len(valid)
    assert valid, "two or more tasks always hold one out"
    # Tasks, never samples, are split.
    assert not set(manifest["train_tasks"]) & set(manifest["valid_tasks"])
    assert set(manifest["train_tasks"]) | set(manifest["valid_tasks"]) == {
        "add", "neg", "square", "double"}
    every = train + valid
    keys = [json.dumps(s, sort_keys=True) for s in every]
    assert len(keys) == len(set(keys))
    # oracle add == solve add == replay add's final code: one sample, two duplicates.
    assert counts["duplicates"] >= 2
    for s in every:
        roles = [m["role"] for m in s["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant" and "user" in roles
    # The repair turn that led to add's pass is there, the feedback included.
    repairs = [s for s in every if len(s["messages"]) > 3]
    assert len(repairs) == 1 and "return a * b" in repairs[0]["messages"][2]["content"]
    # square passed only after the unused-import fix: the exported code is the fixed one.
    square = [code_of(s) for s in every if "Square" in s["messages"][1]["content"]]
    assert square and all('"fmt"' not in c for c in square)


def test_every_exported_sample_passes_guild_agent_check(runs, exported, tmp_path):
    out, _ = exported
    tasks = {t: next(runs["suite"].glob(f"*_{t}.yaml")) for t in
             ("add", "neg", "square", "double")}
    for i, s in enumerate(lines(out / "train.jsonl") + lines(out / "valid.jsonl")):
        prompt = s["messages"][1]["content"]
        name = next(t for t in tasks if f"func {t.capitalize()}(" in prompt)
        sol = tmp_path / f"s{i}" / "solution.go"
        sol.parent.mkdir()
        sol.write_text(code_of(s))
        r = run_cli(runs["env"], "check", tasks[name], "--solution", sol, "--json")
        assert r.returncode == 0, (name, r.stdout, r.stderr)
        assert json.loads(r.stdout)["passed"] is True


def test_a_tampered_trajectory_is_not_exported(runs, tmp_path):
    """A run folder claims add was solved; its trajectory's code is wrong: re-checked, it
    fails, and nothing is written for it."""
    run = tmp_path / "tampered"
    shutil.copytree(runs["oracle"], run)
    for traj in (run / "trajectories").glob("*.jsonl"):
        text = traj.read_text()
        text = text.replace("return a + b", "return a - b").replace("return -x", "return x")
        text = text.replace("return x * x", "return x + x").replace("return 2 * x",
                                                                    "return x")
        traj.write_text(text)
    out = tmp_path / "out"
    r = run_cli(runs["env"], "export", run, "--out", out, "--json", "--suite", runs["suite"])
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert counts == {"train": 0, "valid": 0, "skipped": 4, "duplicates": 0}
    assert (out / "train.jsonl").read_text() == ""
    reasons = {s["reason"] for s in json.loads((out / "export.json").read_text())["skipped"]}
    assert reasons == {"the final code does not pass the task's tests now"}


def test_bad_input_is_one_line_exit_2(runs, exported, tmp_path):
    out, _ = exported
    (tmp_path / "empty").mkdir()
    edited = tmp_path / "edited"
    shutil.copytree(runs["suite"], edited)
    (edited / "0_add.yaml").write_text((edited / "0_add.yaml").read_text().replace(
        "Add(2, 3) != 5", "Add(2, 3) != 6"))
    cases = [
        [runs["replay"], "--out", out],  # already holds training data
        [tmp_path / "empty", "--out", tmp_path / "o1"],  # not a run
        [runs["replay"], "--out", tmp_path / "o2", "--suite", edited],  # suite changed
        [runs["replay"], "--out", tmp_path / "o3", "--format", "alpaca"],
    ]
    for args in cases:
        r = run_cli(runs["env"], "export", *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 or "Usage" in r.stderr, r.stderr
    assert lines(out / "train.jsonl")  # the refused export left the old data alone


def test_split_is_by_task_and_stable():
    samples = [Sample(task=f"t{i % 5}", source="x", messages=[{"role": "user",
                                                              "content": str(i)}])
               for i in range(20)]
    train, valid = split_by_task(samples, 0.2)
    assert {s.task for s in train}.isdisjoint({s.task for s in valid})
    assert len({s.task for s in valid}) == 1 and len(train) + len(valid) == 20
    assert split_by_task(samples, 0.2) == (train, valid)
    only = [s for s in samples if s.task == "t0"]
    assert split_by_task(only, 0.5) == (only, [])  # one task: nothing to hold out


def test_mlx_lm_lora_trains_on_the_export(runs, exported, tmp_path):
    pytest.importorskip("mlx_lm")
    from conftest_models import make_tiny_qwen2

    out, _ = exported
    model = make_tiny_qwen2(tmp_path / "tiny")
    adapter = tmp_path / "adapter"
    r = subprocess.run([sys.executable, "-m", "mlx_lm", "lora", "--model", str(model),
                        "--train", "--data", str(out), "--iters", "2", "--batch-size", "1",
                        "--val-batches", "1", "--steps-per-eval", "2", "--num-layers", "1",
                        "--max-seq-length", "512", "--adapter-path", str(adapter)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (adapter / "adapters.safetensors").is_file()
    assert (adapter / "adapter_config.json").is_file()
