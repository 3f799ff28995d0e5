"""Bench throughput: an oracle `guild-agent bench` run against plain `go test` on its tasks.

    python benchmarks/perf/bench_throughput.py [SUITE] [--tasks 24] [--modes single]
                                               [--jobs 2]

The baseline is the floor any harness pays: for each task, its reference and tests in a
fresh module, one plain `go test -count=1 ./...` (no -json, no sandbox), run one after
another; the sum of those times. The bench run is the real command in a subprocess, with
the oracle model, over the same tasks (interpreter start, warm-up check, sandbox, -json
parsing, results and report included). The ratio says how close the harness runs to the
toolchain; with the oracle the model costs nothing, so --jobs > 1 can make it < 1.
Not a test: timings depend on the machine. The target is a small multiple (≤ 2×).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout

from agent.tasks.harness import HIDDEN_TEST, VISIBLE_TEST  # noqa: E402
from agent.tasks.spec import TaskSpec  # noqa: E402
from agent.tasks.suites import load_suite  # noqa: E402
from tools.go import find_toolchain, go_env  # noqa: E402
from tools.warm import warm_cache  # noqa: E402
from tools.workspace import Workspace  # noqa: E402


def plain_go_test(task: TaskSpec) -> float:
    """Seconds for one plain `go test` of the task's reference and all its tests."""
    tc = find_toolchain()
    with Workspace(module=task.package if task.package != "main" else "sandbox",
                   requires=task.go_mod.require, go_version=task.go_mod.go) as ws:
        files = {**{n: task.with_package(c) for n, c in task.support_files.items()},
                 **task.reference_solution(), HIDDEN_TEST: task.hidden_test_file()}
        if task.visible_tests:
            files[VISIBLE_TEST] = task.visible_test_file() or ""
        for name, content in files.items():
            ws.write(name, content)
        args = [str(tc.go), "test", "-count=1"] + (["-race"] if task.race else []) + ["./..."]
        start = time.monotonic()
        proc = subprocess.run(args, cwd=ws.src, env=go_env(ws.home, ws.tmp, cgo=task.race),
                              capture_output=True, text=True)
        seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{task.id}: the reference fails plain go test:\n{proc.stdout}"
                         f"{proc.stderr}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("suite", nargs="?", default=str(ROOT / "benchmarks/suite/basics"))
    ap.add_argument("--tasks", type=int, default=24, help="the first N tasks of the suite")
    ap.add_argument("--modes", default="single")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    tasks = load_suite(args.suite).tasks[: args.tasks]
    warm_cache()  # both sides start from the same warm build cache
    per_task = [plain_go_test(t) for t in tasks]
    baseline = sum(per_task)

    exe = Path(sys.executable).with_name("guild-agent")
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        cmd = [str(exe), "bench", args.suite, "--backend", "oracle", "--modes", args.modes,
               "--samples", str(args.samples), "--limit", str(len(tasks)),
               "--jobs", str(args.jobs), "--out", tmp + "/run", "--json"]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"bench failed ({proc.returncode}):\n{proc.stderr}")
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
    attempts = summary["attempts_done"]
    checks = sum(ms["rounds"] for ms in summary["modes"].values())
    solved = {m: f"{ms['solved']}/{ms['tasks']}" for m, ms in summary["modes"].items()}
    print(f"suite {args.suite}: {len(tasks)} tasks, modes {args.modes}, jobs {args.jobs}")
    print(f"plain go test, one after another: {baseline:.2f}s "
          f"(median {sorted(per_task)[len(per_task) // 2]:.2f}s per task)")
    print(f"guild-agent bench --backend oracle: {wall:.2f}s wall for {attempts} attempts "
          f"({checks} model calls); solved {solved}")
    print(f"ratio bench / go test: {wall / baseline:.2f}x "
          f"(per attempt: {wall / attempts / (baseline / len(tasks)):.2f}x)")


if __name__ == "__main__":
    main()
