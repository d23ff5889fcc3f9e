"""GRPO (Eq. 22) on a tiny random Llama: one step changes the LoRA adapter; the adapter exports to a
GGUF LoRA that llama.cpp reads (and, with the embedded model, changes what the Thinker says)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mio.thinker.evolve.export import export_gguf_lora, rope_permute
from mio.thinker.evolve.grpo import GRPOSettings, read_state, spoken, train
from mio.thinker.evolve.pairs import Pair
from mio.thinker.evolve.reward import PersonaReward
from mio.thinker.memory.embed import HashEmbedder

WORDS = ("sir the sea is deep and free i am captain nemo nautilus ocean ai assistant code python help you "
         "what who are tell me about waves land crew").split()
TEMPLATE = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
            "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")


def tiny_backbone():
    """A word-level tokenizer and a 2-layer random Llama (GQA, like SmolLM2), built offline."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "system", "user", "assistant"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + WORDS))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", eos_token="<|im_end|>", pad_token="<|im_end|>",
                                  bos_token="<|im_start|>")
    tok.chat_template = TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg), tok


def pairs(n: int = 4) -> list[Pair]:
    pos, neg = "i am captain nemo sir the sea is free", "i am an ai assistant i help you code python"
    return [Pair({"id": f"s{i}"}, [{"role": "system", "content": "you are captain nemo"},
                                   {"role": "user", "content": "who are you"}], pos, neg, "frame_break",
                 "teacher", "teacher") for i in range(n)]


@pytest.mark.slow  # training
def test_one_grpo_step_changes_the_adapter(tmp_path):
    from safetensors.numpy import load_file

    settings = GRPOSettings(steps=1, num_generations=4, max_completion_length=6, learning_rate=5e-2, beta=0.04,
                            lora_r=4, lora_alpha=8, save_every=1)
    state = train(pairs(), tmp_path / "run", settings, PersonaReward(HashEmbedder()), backbone=tiny_backbone())
    assert state.steps_done == 1 and read_state(tmp_path / "run").steps_done == 1
    assert "reward" in state.history[0] and "kl" in state.history[0]
    w = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    b = [v for k, v in w.items() if "lora_B" in k]
    assert b and any(np.abs(v).max() > 0 for v in b)  # lora_B starts at zero: the step moved it
    assert (tmp_path / "run" / "adapter.gguf").stat().st_size > 0
    samples = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all("r" in s for s in samples)
    # Resuming a finished run does nothing; asking for more steps continues from the saved adapter.
    again = train(pairs(), tmp_path / "run", settings, PersonaReward(HashEmbedder()), backbone=tiny_backbone())
    assert again.steps_done == 1
    more = train(pairs(), tmp_path / "run", replace(settings, steps=2), PersonaReward(HashEmbedder()),
                 backbone=tiny_backbone())
    assert more.steps_done == 2 and [h["step"] for h in more.history] == [1, 2]
    w2 = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    assert any(not np.allclose(w2[k], w[k]) for k in w)


def test_spoken_cuts_role_markers():
    assert spoken("Welcome, sir. *bows*\nuser: hi") == "Welcome, sir. bows"


def test_export_gguf_layout(tmp_path):
    import gguf
    from peft import LoraConfig, get_peft_model

    model, _ = tiny_backbone()
    pm = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    for name, p in pm.named_parameters():
        if "lora_B" in name:
            p.data.normal_()
    pm.save_pretrained(tmp_path / "adapter")
    path = export_gguf_lora(tmp_path / "adapter", tmp_path / "a.gguf", n_head=4, n_head_kv=2)
    r = gguf.GGUFReader(str(path))
    assert r.fields["general.type"].contents() == "adapter" and r.fields["adapter.type"].contents() == "lora"
    assert r.fields["adapter.lora.alpha"].contents() == 4.0
    t = {x.name: np.array(x.data) for x in r.tensors}
    assert len(t) == 2 * 4 * 2  # layers x modules x (a, b)
    assert t["blk.0.attn_q.weight.lora_a"].shape == (2, 32) and t["blk.0.attn_k.weight.lora_b"].shape == (16, 2)
    q_b = pm.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight.detach().numpy()
    assert np.allclose(t["blk.0.attn_q.weight.lora_b"], rope_permute(q_b, 4))  # llama.cpp's RoPE row order
    v_b = pm.base_model.model.model.layers[0].self_attn.v_proj.lora_B["default"].weight.detach().numpy()
    assert np.allclose(t["blk.0.attn_v.weight.lora_b"], v_b)


@pytest.mark.slow
def test_llama_cpp_serves_the_adapter(tmp_path):
    """The embedded model with a random SmolLM2-shaped adapter: llama.cpp loads it and the Thinker's
    LLM says something else than without it."""
    from safetensors.numpy import save_file

    from mio.core.config import ThinkerConfig
    from mio.thinker.llm.llama import LlamaCppLLM

    rng = np.random.default_rng(0)
    shapes = {"q_proj": 576, "k_proj": 192, "v_proj": 192, "o_proj": 576}
    w = {}
    for layer in range(30):
        for m, out in shapes.items():
            key = f"base_model.model.model.layers.{layer}.self_attn.{m}"
            w[f"{key}.lora_A.weight"] = rng.normal(0, 0.05, (4, 576)).astype(np.float32)
            w[f"{key}.lora_B.weight"] = rng.normal(0, 0.05, (out, 4)).astype(np.float32)
    (tmp_path / "adapter").mkdir()
    save_file(w, str(tmp_path / "adapter" / "adapter_model.safetensors"))
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    export_gguf_lora(tmp_path / "adapter", tmp_path / "adapter.gguf")
    msgs = [{"role": "user", "content": "Who are you?"}]
    base = "".join(LlamaCppLLM(ThinkerConfig(n_ctx=256)).stream(msgs, 12, 0.0))
    llm = LlamaCppLLM(ThinkerConfig(n_ctx=256, lora_path=str(tmp_path), lora_scale=1.0))
    assert llm.lora_path == tmp_path / "adapter.gguf"
    adapted = "".join(llm.stream(msgs, 12, 0.0))
    assert adapted != base
