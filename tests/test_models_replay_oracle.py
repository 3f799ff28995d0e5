"""The replay and oracle backends: scripted answers and the task's own reference."""

from __future__ import annotations

import json

import pytest

from agent.loop.problem import problem_from_task
from agent.models import Message, ModelError, ModelUnavailable, Sampling, make_model
from agent.models.base import bind
from agent.models.oracle import fence_solution
from agent.tasks.spec import TaskSpec

ASK = [Message(role="user", content="go")]


def test_replay_yaml_in_order_then_clear_error(tmp_path):
    f = tmp_path / "script.yaml"
    f.write_text("responses:\n  - first\n  - |\n    second\n    line\n")
    m = make_model("replay", replay=str(f))
    assert m.backend == "replay"
    assert m.generate(ASK, Sampling()).text == "first"
    # the script runs on across conversations: one file drives a whole bench
    assert m.generate(ASK, Sampling()).text == "second\nline\n"
    with pytest.raises(ModelError, match="ran out of responses: call 3 but only 2"):
        m.generate(ASK, Sampling())


def test_replay_json(tmp_path):
    f = tmp_path / "script.json"
    f.write_text(json.dumps({"responses": ["a"]}))
    assert make_model("replay", replay=str(f)).generate(ASK, Sampling()).text == "a"


@pytest.mark.parametrize("content, match", [
    ("responses: 3\n", "list of strings"),
    ("responses: [1, 2]\n", "list of strings"),
    ("responses: [a\n", "not valid"),
])
def test_replay_bad_files(tmp_path, content, match):
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(ModelUnavailable, match=match):
        make_model("replay", replay=str(f))


def test_replay_needs_a_file(tmp_path):
    with pytest.raises(ModelUnavailable, match="--replay FILE"):
        make_model("replay")
    with pytest.raises(ModelUnavailable, match="no such replay file"):
        make_model("replay", replay=str(tmp_path / "missing.yaml"))


def _task(**kw) -> TaskSpec:
    return TaskSpec(id="add", prompt="Write Add.", tests="func TestAdd(t *testing.T) {}",
                    **kw)


def test_oracle_fences_the_reference():
    m = bind(make_model("oracle"),
             problem_from_task(_task(reference="func Add(a, b int) int { return a + b }")))
    text = m.generate(ASK, Sampling()).text
    assert text.startswith("```go\npackage sandbox\n") and text.rstrip().endswith("```")
    assert "func Add(a, b int) int" in text


def test_oracle_several_files_are_named():
    task = _task(reference_files={"a.go": "func A() {}", "b.go": "func B() {}"})
    text = bind(make_model("oracle"), problem_from_task(task)).generate(ASK, Sampling()).text
    # The loop's own format (agent.golang.extract.fence_files), read back by the extractor.
    assert "```go\n// file: a.go\npackage sandbox" in text
    assert "```go\n// file: b.go\npackage sandbox" in text


def test_oracle_without_reference_or_task():
    m = make_model("oracle")
    with pytest.raises(ModelError, match="no task"):
        m.generate(ASK, Sampling())
    with pytest.raises(ModelError, match="no reference solution"):
        bind(m, problem_from_task(_task())).generate(ASK, Sampling())


def test_fence_single_file():
    assert fence_solution({"x.go": "package p\n"}) == "```go\npackage p\n```\n"


def test_unknown_backend():
    with pytest.raises(ModelUnavailable, match="unknown backend"):
        make_model("gpt-banana")
