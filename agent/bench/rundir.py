"""A finished (or stopped) bench run folder read back: its config, its tasks as they were
run, and its records. For the commands that look back at a run (export, ablate)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.bench.config import RESULTS, RUN_FILE, BenchConfig, BenchError, trajectory_file
from agent.bench.config import tasks_digest as digest_of
from agent.bench.results import AttemptRecord, read_records
from agent.tasks.spec import TaskError, TaskSpec
from agent.tasks.suites import load_suite


@dataclass
class Run:
    path: Path
    config: BenchConfig
    tasks: dict[str, TaskSpec]  # the suite's, by id
    records: list[AttemptRecord]

    def trajectory(self, task: str, mode: str, sample: int = 0) -> Path:
        return self.path / trajectory_file(task, mode, sample)


def load_run(run: Path, suite_override: Path | None = None) -> Run:
    """The run in folder `run`, its tasks loaded from the suite it ran (or
    `suite_override`). Raises BenchError (one line) when the folder is no run, or when
    the suite's tasks are not the ones run: their tests would judge other code."""
    try:
        config = BenchConfig.model_validate_json((run / RUN_FILE).read_text())
        records = read_records(run / RESULTS) if (run / RESULTS).is_file() else []
    except (OSError, ValueError) as exc:
        raise BenchError(f"{run}: unreadable run ({type(exc).__name__})") from None
    suite = suite_override or Path(config.suite)
    try:
        loaded = load_suite(suite)
    except TaskError as exc:
        raise BenchError(f"{run}: its suite cannot be loaded ({exc}); pass --suite PATH"
                         ) from None
    tasks = {t.id: t for t in loaded.tasks}
    chosen = [tasks[t] for t in config.tasks if t in tasks]
    if len(chosen) != len(config.tasks) or digest_of(chosen) != config.tasks_digest:
        raise BenchError(f"{run}: the suite {suite} has changed since the run (its tasks "
                         "differ); pass the suite the run used (--suite PATH)")
    return Run(path=run, config=config, tasks=tasks, records=records)
