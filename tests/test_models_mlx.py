"""The mlx backend on a tiny random Qwen2 model made here: load, generate, LoRA, cache reuse."""

from __future__ import annotations

import pytest

pytest.importorskip("mlx_lm")

from agent.models import Message, ModelUnavailable, Sampling, make_model
from agent.models.mlx import MLXModel

try:
    from conftest_models import make_lora_adapter, make_tiny_qwen2
except ImportError:  # tests/ became a package
    from tests.conftest_models import make_lora_adapter, make_tiny_qwen2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "qwen2")


@pytest.fixture(scope="module")
def adapter(tiny, tmp_path_factory):
    return make_lora_adapter(tiny, tmp_path_factory.mktemp("lora") / "adapter")


@pytest.fixture(scope="module")
def model(tiny):
    return MLXModel(tiny, name="tiny")


CONVO = [Message(role="system", content="You write Go."),
         Message(role="user", content="Write func Sum(xs []int) int.")]
FEW = Sampling(max_tokens=12)


def test_generates_with_counts_and_timings(model):
    g = model.generate(CONVO, FEW)
    assert g.completion_tokens == 12 and g.finish_reason == "length"
    assert g.prompt_tokens == len(model.prompt_tokens(CONVO)) > 10
    assert g.text and g.generation_seconds > 0 and g.prompt_seconds > 0


def test_chat_template_is_applied(model):
    text = model._tokenizer.decode(model.prompt_tokens(CONVO))
    assert text.startswith("<|im_start|>system\nYou write Go.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")


def test_greedy_is_deterministic_and_seeded_sampling_repeats(model):
    model.reset()
    assert model.generate(CONVO, FEW).text == model.generate(CONVO, FEW).text
    hot = Sampling(max_tokens=12, temperature=1.0, top_p=0.9, seed=7)
    model.reset()
    a = model.generate(CONVO, hot).text
    model.reset()
    assert model.generate(CONVO, hot).text == a


def test_stop_string_cuts_the_text(model):
    model.reset()
    full = model.generate(CONVO, Sampling(max_tokens=12)).text
    stop = full[3:5]
    g = model.generate(CONVO, Sampling(max_tokens=12, stop=[stop]))
    assert g.finish_reason == "stop"
    assert stop not in g.text and full.startswith(g.text)


def test_repetition_penalty_is_accepted(model):
    g = model.generate(CONVO, Sampling(max_tokens=8, repetition_penalty=1.3))
    assert g.completion_tokens == 8


def test_lora_adapter_changes_the_output(tiny, adapter, model):
    model.reset()
    plain = model.generate(CONVO, FEW).text
    tuned = MLXModel(tiny, adapter=adapter)
    assert tuned.generate(CONVO, FEW).text != plain


def test_missing_adapter_is_unavailable(tiny, tmp_path):
    with pytest.raises(ModelUnavailable, match="adapter"):
        MLXModel(tiny, adapter=tmp_path / "nope")


def test_cache_reuse_prefills_only_the_new_tail(tiny):
    reuse = MLXModel(tiny)
    fresh = MLXModel(tiny, reuse_cache=False)
    first = reuse.generate(CONVO, FEW)
    assert first.cached_tokens == 0
    round2 = [*CONVO, Message(role="assistant", content=first.text),
              Message(role="user", content="main.go:3:2: undefined: strings")]
    cached = reuse.generate(round2, FEW)
    plain = fresh.generate(round2, FEW)
    assert cached.cached_tokens > 0
    assert cached.cached_tokens >= first.prompt_tokens  # the whole first prompt, at least
    assert cached.prompt_tokens - cached.cached_tokens < plain.prompt_tokens
    assert plain.cached_tokens == 0
    assert cached.text == plain.text  # reuse must not change what the model says


def test_identical_prompt_reuses_all_but_one_token(tiny):
    m = MLXModel(tiny)
    a = m.generate(CONVO, FEW)
    b = m.generate(CONVO, FEW)
    assert b.cached_tokens == a.prompt_tokens - 1 and b.text == a.text


def test_reset_drops_the_cache(tiny):
    m = MLXModel(tiny)
    m.generate(CONVO, FEW)
    m.reset()
    assert m.generate(CONVO, FEW).cached_tokens == 0


def test_factory_loads_a_local_directory(tiny, adapter):
    m = make_model("mlx", str(tiny), adapter=str(adapter))
    assert m.backend == "mlx" and m.generate(CONVO, Sampling(max_tokens=3)).completion_tokens


def test_bad_model_path_is_unavailable(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="cannot load MLX model"):
        MLXModel(tmp_path / "empty")
    with pytest.raises(ModelUnavailable, match="unknown model"):
        make_model("mlx", "not-a-model")


# -- speculative decoding with a draft model --------------------------------------------

@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Same tokenizer, different random weights: a draft that is mostly wrong."""
    return make_tiny_qwen2(tmp_path_factory.mktemp("other") / "qwen2", seed=5)


LONG = Sampling(max_tokens=20)


@pytest.mark.parametrize("sampling", [LONG, Sampling(max_tokens=20, repetition_penalty=1.2)])
def test_a_draft_model_leaves_greedy_output_unchanged(tiny, other, sampling):
    plain = MLXModel(tiny).generate(CONVO, sampling)
    perfect = MLXModel(tiny, draft=tiny, draft_tokens=4).generate(CONVO, sampling)
    poor = MLXModel(tiny, draft=other, draft_tokens=4).generate(CONVO, sampling)
    assert perfect.text == plain.text == poor.text
    assert perfect.completion_tokens == poor.completion_tokens == 20
    # The model itself as draft: every guess holds, 4 per pass + the model's own token.
    assert (perfect.drafted_tokens, perfect.accepted_tokens) == (16, 16)
    # Every pass proposes min(4, tokens left) guesses, so 20 tokens cost at least 16.
    assert poor.drafted_tokens >= 16 and poor.accepted_tokens <= poor.drafted_tokens
    assert plain.drafted_tokens == plain.accepted_tokens == 0


def test_draft_cache_is_reused_across_rounds(tiny, other):
    spec = MLXModel(tiny, draft=other)
    plain = MLXModel(tiny)
    first = spec.generate(CONVO, LONG)
    round2 = [*CONVO, Message(role="assistant", content=first.text),
              Message(role="user", content="main.go:3:2: undefined: strings")]
    again = spec.generate(round2, LONG)
    plain.generate(CONVO, LONG)
    assert again.cached_tokens >= first.prompt_tokens
    assert again.text == plain.generate(round2, LONG).text
    # Main and draft layers were trimmed to the same prefix: the next call runs cleanly.
    assert spec.generate(CONVO, LONG).text == first.text


def test_stopping_inside_an_accepted_guess_keeps_the_cache_consistent(tiny):
    spec = MLXModel(tiny, draft=tiny, draft_tokens=6)
    full = spec.generate(CONVO, LONG)
    stop = full.text[len(full.text) // 3:len(full.text) // 3 + 2]
    cut = spec.generate(CONVO, Sampling(max_tokens=20, stop=[stop]))
    assert cut.finish_reason == "stop" and full.text.startswith(cut.text)
    assert spec.generate(CONVO, LONG).text == full.text


def test_draft_with_another_vocabulary_is_refused(tiny, tmp_path):
    alien = make_tiny_qwen2(tmp_path / "alien", vocab_size=300)
    with pytest.raises(ModelUnavailable, match="different vocabulary"):
        MLXModel(tiny, draft=alien)
    with pytest.raises(ModelUnavailable, match="cannot load MLX draft model"):
        MLXModel(tiny, draft=tmp_path / "nowhere")


def test_factory_passes_the_draft_model(tiny, other):
    m = make_model("mlx", str(tiny), draft_model=str(other))
    assert m.generate(CONVO, Sampling(max_tokens=6)).drafted_tokens > 0
