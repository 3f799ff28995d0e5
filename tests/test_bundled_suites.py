"""Every bundled suite is sound: references pass, zero-value solutions fail (`bench verify`)."""

from __future__ import annotations

from importlib import resources

import pytest

from agent.tasks.suites import load_suite
from agent.tasks.verify import verify_tasks

BUNDLED = resources.files("benchmarks")


@pytest.mark.parametrize("suite", ["suite", "edits"])
def test_bundled_suite_verifies(suite: str) -> None:
    loaded = load_suite(str(BUNDLED / suite))
    minimum = {"suite": 60, "edits": 15}[suite]
    assert len(loaded.tasks) >= minimum
    report = verify_tasks(loaded.tasks, suite=suite, workers=2)
    assert report.ok, [(f.task, f.model_dump()) for f in report.failures]


def test_examples_verify() -> None:
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    assert verify_tasks(load_suite(str(examples)).tasks, suite="examples").ok


def test_suite_has_three_tiers() -> None:
    tags = [t.tags[0] for t in load_suite(str(BUNDLED / "suite")).tasks]
    assert {tags.count(tier) >= 18 for tier in ("basics", "logic", "packages")} == {True}
