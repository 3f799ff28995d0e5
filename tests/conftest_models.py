"""Tiny real models made at test time, so model tests need no downloads.

`make_tiny_qwen2` writes a random Qwen2-architecture checkpoint (config, safetensors, a
byte-level BPE tokenizer trained here with `tokenizers`, and a ChatML chat template): the
same file layout as mlx-community's repos, small enough to load and generate in well under
a second. `make_lora_adapter` writes an mlx-lm LoRA adapter for it with non-zero weights,
so loading it visibly changes what the model says.

Test modules import these builders (not pytest fixtures) and wrap them in their own
fixtures; pytest only auto-loads `conftest.py`, which belongs to the whole suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n",
    "func Reverse(s string) string {\n\tr := []rune(s)\n\tfor i, j := 0, len(r)-1; i < j; "
    "i, j = i+1, j-1 {\n\t\tr[i], r[j] = r[j], r[i]\n\t}\n\treturn string(r)\n}\n",
    "func Sum(xs []int) int {\n\ttotal := 0\n\tfor _, x := range xs {\n\t\ttotal += x\n\t}"
    "\n\treturn total\n}\n",
    "You are a careful Go programmer. Write a function that reverses the words of a string.",
    "The compiler said: undefined: strings. Fix the imports and return the whole file.",
    "system user assistant error test build vet func return package import type struct",
]


def _train_tokenizer(path: Path, vocab_size: int) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.save(str(path / "tokenizer.json"))
    return tok.get_vocab_size()


def make_tiny_qwen2(path: Path, *, seed: int = 0, hidden: int = 64, layers: int = 2,
                    vocab_size: int = 400) -> Path:
    """Write a random Qwen2 checkpoint with a trained tokenizer into `path`; return it."""
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    vocab = _train_tokenizer(path, vocab_size)
    heads, kv_heads = 4, 2
    head_dim = hidden // heads
    inter = hidden * 2
    im_end = SPECIAL_TOKENS.index("<|im_end|>")  # the trainer numbers specials first
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": vocab,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "bos_token_id": None,
        "eos_token_id": im_end,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    }
    (path / "config.json").write_text(json.dumps(config, indent=1))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "bos_token": None,
        "model_max_length": 4096,
        "chat_template": CHATML_TEMPLATE,
        "added_tokens_decoder": {
            str(i): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                     "normalized": False, "single_word": False}
            for i, t in enumerate(SPECIAL_TOKENS)
        },
    }, indent=1))
    (path / "special_tokens_map.json").write_text(json.dumps(
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}))

    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    weights = {"model.embed_tokens.weight": w(vocab, hidden),
               "model.norm.weight": np.ones(hidden, np.float32)}
    for i in range(layers):
        p = f"model.layers.{i}."
        weights |= {
            p + "self_attn.q_proj.weight": w(heads * head_dim, hidden),
            p + "self_attn.q_proj.bias": w(heads * head_dim),
            p + "self_attn.k_proj.weight": w(kv_heads * head_dim, hidden),
            p + "self_attn.k_proj.bias": w(kv_heads * head_dim),
            p + "self_attn.v_proj.weight": w(kv_heads * head_dim, hidden),
            p + "self_attn.v_proj.bias": w(kv_heads * head_dim),
            p + "self_attn.o_proj.weight": w(hidden, heads * head_dim),
            p + "mlp.gate_proj.weight": w(inter, hidden),
            p + "mlp.up_proj.weight": w(inter, hidden),
            p + "mlp.down_proj.weight": w(hidden, inter),
            p + "input_layernorm.weight": np.ones(hidden, np.float32),
            p + "post_attention_layernorm.weight": np.ones(hidden, np.float32),
        }
    # Make the chat-end token unlikely, so generations run to max_tokens and are comparable.
    weights["model.embed_tokens.weight"][im_end] *= 0.0
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


def make_lora_adapter(model_dir: Path, path: Path, *, rank: int = 4, seed: int = 1) -> Path:
    """Write an mlx-lm LoRA adapter (q_proj and v_proj of every layer) for a tiny model."""
    from safetensors.numpy import save_file

    config = json.loads((model_dir / "config.json").read_text())
    hidden = config["hidden_size"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = hidden // heads
    layers = config["num_hidden_layers"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({
        "fine_tune_type": "lora",
        "num_layers": layers,
        "lora_parameters": {"rank": rank, "scale": 8.0, "dropout": 0.0,
                            "keys": ["self_attn.q_proj", "self_attn.v_proj"]},
    }, indent=1))
    rng = np.random.default_rng(seed)
    weights = {}
    for i in range(layers):
        for proj, out in (("q_proj", heads * head_dim), ("v_proj", kv_heads * head_dim)):
            p = f"model.layers.{i}.self_attn.{proj}."
            weights[p + "lora_a"] = (rng.standard_normal((hidden, rank)) * 0.5).astype(np.float32)
            weights[p + "lora_b"] = (rng.standard_normal((rank, out)) * 0.5).astype(np.float32)
    save_file(weights, str(path / "adapters.safetensors"))
    return path
