"""End to end: the real default model (Qwen2.5-Coder-0.5B, llama.cpp on CPU) through `solve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.cli import main

pytestmark = pytest.mark.model

TASK = {
    "id": "max_of",
    "prompt": "Write a Go function `MaxOf(xs []int) int` that returns the largest element "
              "of xs, or 0 when xs is empty.",
    "visible_tests": 'import "testing"\n\nfunc TestMaxOfExample(t *testing.T) {\n'
                     '\tif got := MaxOf([]int{3, 9, 2}); got != 9 {\n'
                     '\t\tt.Errorf("MaxOf([3 9 2]) = %d, want 9", got)\n\t}\n}\n',
    "tests": 'import "testing"\n\nfunc TestMaxOf(t *testing.T) {\n'
             '\tcases := []struct {\n\t\tin   []int\n\t\twant int\n\t}{\n'
             '\t\t{nil, 0}, {[]int{-5, -2, -9}, -2}, {[]int{7}, 7}, {[]int{1, 8, 8, 3}, 8},\n'
             '\t}\n\tfor _, c := range cases {\n\t\tif got := MaxOf(c.in); got != c.want {\n'
             '\t\t\tt.Errorf("MaxOf(%v) = %d, want %d", c.in, got, c.want)\n\t\t}\n\t}\n}\n',
}


def test_default_model_solves_a_simple_task(tmp_path: Path) -> None:
    task = tmp_path / "max_of.yaml"
    task.write_text(yaml.safe_dump(TASK, sort_keys=False))
    out = tmp_path / "run"
    # No backend or model flag: the offline default (llama-cpp + qwen2.5-coder-0.5b).
    res = CliRunner().invoke(main, ["solve", str(task), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["solved"] and result["backend"] == "llama-cpp"
    assert result["model"] == "qwen2.5-coder-0.5b"
    assert result["tokens"]["completion"] > 0
    assert "func MaxOf" in (out / "solution" / "solution.go").read_text()
