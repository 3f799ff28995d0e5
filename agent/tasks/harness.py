"""Check candidate solutions of a task: the one code path `check`, `solve` and `bench` share."""

from __future__ import annotations

from agent.loop.checker import Suite
from agent.tasks.spec import TaskSpec
from tools.diagnostics import CheckResult
from tools.runner import CheckOptions, GoRunner, test_names
from tools.workspace import Workspace

HIDDEN_TEST = "hidden_test.go"
VISIBLE_TEST = "visible_test.go"
RESERVED = {HIDDEN_TEST, VISIBLE_TEST}


class TaskHarness:
    """A task's workspace, reused across rounds: solution files change, tests are fixed.

    Test files are written just before each run, after the model's files, so code that
    tampers with them during one run cannot affect the next.
    """

    def __init__(self, task: TaskSpec, *, runner: GoRunner | None = None, keep: bool = False):
        self.task = task
        self.runner = runner or GoRunner()
        self.ws = Workspace(module=task.package if task.package != "main" else "sandbox",
                            requires=task.go_mod.require, go_version=task.go_mod.go, keep=keep,
                            prefix=f"guild-{_slug(task.id)}-")

    def tests_for(self, suite: Suite) -> dict[str, str]:
        files: dict[str, str] = {}
        visible = self.task.visible_test_file()
        if suite in (Suite.visible, Suite.all) and visible:
            files[VISIBLE_TEST] = visible
        if suite in (Suite.hidden, Suite.all):
            files[HIDDEN_TEST] = self.task.hidden_test_file()
        return files

    def check(self, solution: dict[str, str], suite: Suite = Suite.all, *,
              run: str | None = None, cover: bool = False) -> CheckResult:
        """The task's files, the solution and the suite's tests, run once.

        The runner rebuilds the module the run sees from these files every time, so
        nothing an earlier run's code did to its workspace (a rewritten go.mod or test, a
        renamed folder, a link) reaches this one.
        """
        self.ws.clear_go_files()
        for name, content in self.task.support_files.items():
            self.ws.write(name, self.task.with_package(content))
        for name, content in solution.items():
            if name in RESERVED or name in self.task.support_files:
                continue
            self.ws.write(name, content)
        tests = self.tests_for(suite)
        expected: list[str] = []
        for name, content in tests.items():
            self.ws.write(name, content)
            expected += test_names(content)
        opts = CheckOptions(test_timeout=self.task.test_timeout, race=self.task.race, run=run,
                            cover=cover,
                            limits=self.runner.options.limits,
                            build_allowance=self.runner.options.build_allowance)
        if run is not None:
            # With a -run filter only the matching tests run; none are required to.
            expected = []
        return self.runner.check(self.ws, expected_tests=expected, options=opts)

    def close(self) -> None:
        self.ws.cleanup()

    def __enter__(self) -> TaskHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in s)[:40]


def check_task(task: TaskSpec, solution: dict[str, str] | None = None, *,
               suite: Suite = Suite.all, keep: bool = False) -> CheckResult:
    """Run a task's tests against `solution` (default: its reference)."""
    files = solution if solution is not None else task.reference_solution()
    with TaskHarness(task, keep=keep) as h:
        return h.check(files, suite)
