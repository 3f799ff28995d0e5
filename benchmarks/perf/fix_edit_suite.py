"""The bundled edit suite through `guild-agent fix --yes`, the way a user would run it.

    python benchmarks/perf/fix_edit_suite.py [--backend replay] [--model M] [--only ID]
                                             [--max-rounds N] [--suite DIR] [--keep]
                                             [--fix-arg=ARG ...]

Each task in benchmarks/edits/ becomes a real module in a temp dir: the buggy files, the
tests as `edit_test.go` (and `visible_test.go`), then
`guild-agent fix FILES --instruction PROMPT --yes` runs in it. A task counts as fixed when
the command exits 0 (it applies only a passing fix) and the tests pass on the written
files. The default, `--backend replay`, answers with each task's reference: every task
must be fixed, which checks the suite and the command end to end. Pass a real backend
(`--backend llama-cpp`, `--model …`) to measure a model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run from a checkout

from agent.models.oracle import fence_solution  # noqa: E402
from agent.tasks.spec import TaskError, TaskSpec, load_task  # noqa: E402

CLI = Path(sys.executable).parent / "guild-agent"


def lay_out(task: TaskSpec, root: Path) -> list[Path]:
    """The task as a user's module: go.mod, its files, support files and tests."""
    root.mkdir(parents=True)
    (root / "go.mod").write_text(f"module example.com/{task.id}\n\ngo {task.go_mod.go}\n")
    for name, src in {**task.support_files, **task.files}.items():
        (root / name).write_text(task.with_package(src))
    (root / "edit_test.go").write_text(task.hidden_test_file())
    visible = task.visible_test_file()
    if visible:
        (root / "visible_test.go").write_text(visible)
    return [root / n for n in task.files]


def run_task(task: TaskSpec, work: Path, args: argparse.Namespace) -> tuple[bool, str]:
    root = work / task.id
    targets = lay_out(task, root)
    cmd = [str(CLI), "fix", *map(str, targets), "--instruction", task.prompt.strip(), "--yes",
           "--max-rounds", str(args.max_rounds), "--out", str(work / f"{task.id}.run"),
           "--test-timeout", str(max(task.test_timeout, 10.0))]
    if task.race:
        cmd.append("--race")
    if args.backend == "replay":
        reference = task.reference_solution()
        if not reference:
            return False, "no reference"
        replay = work / f"{task.id}.replay.yaml"
        replay.write_text(yaml.safe_dump({"responses": [fence_solution(reference)]}))
        cmd += ["--backend", "replay", "--replay", str(replay)]
    else:
        cmd += ["--backend", args.backend] + (["--model", args.model] if args.model else [])
    cmd += args.fix_arg
    env = {**os.environ, "GUILD_AGENT_FIX_BACKUPS": str(work / "backups")}
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                          timeout=args.timeout, check=False)
    if args.verbose:
        print(proc.stdout + proc.stderr)
    changed = any(t.read_text() != task.with_package(task.files[t.name]) for t in targets)
    if proc.returncode == 0 and changed:
        return True, "fixed"
    tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
    return False, f"exit {proc.returncode}: {tail[0][:100]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=ROOT / "benchmarks" / "edits")
    ap.add_argument("--backend", default="replay",
                    help="replay (the references: an oracle run) or a real backend")
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-rounds", type=int, default=4)
    ap.add_argument("--only", action="append", default=[], help="task id (repeatable)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per task")
    ap.add_argument("--keep", action="store_true", help="keep the temp modules")
    ap.add_argument("--fix-arg", action="append", default=[],
                    help="one more argument for `fix` (repeatable), e.g. --fix-arg=--show-tests")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    tasks: list[TaskSpec] = []
    for path in sorted(args.suite.glob("*.yaml")):
        try:
            task = load_task(path)
        except TaskError as exc:
            print(f"skip {path.name}: {exc}")
            continue
        if not args.only or task.id in args.only:
            tasks.append(task)
    work = Path(tempfile.mkdtemp(prefix="guild-fix-suite-"))
    fixed = 0
    start = time.monotonic()
    for task in tasks:
        t0 = time.monotonic()
        ok, detail = run_task(task, work, args)
        fixed += ok
        print(f"{'FIXED' if ok else 'not  '} {task.id:32s} {time.monotonic() - t0:6.1f}s "
              f"{detail}", flush=True)
    print(f"fixed {fixed}/{len(tasks)} with --backend {args.backend}"
          f"{' --model ' + args.model if args.model else ''} in "
          f"{time.monotonic() - start:.0f}s" + (f" (modules kept in {work})" if args.keep
                                                 else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if fixed == len(tasks) else 1


if __name__ == "__main__":
    sys.exit(main())
