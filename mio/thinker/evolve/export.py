"""peft LoRA adapter -> GGUF LoRA adapter that llama.cpp applies to the embedded GGUF model.

llama.cpp reads an adapter GGUF with `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, and for each adapted weight `blk.{i}.{attn_q,...}.weight.lora_a` of shape
(r, n_in) and `.lora_b` of shape (n_out, r) (numpy order); it adds scale * alpha / r * B A x.

One subtlety: llama.cpp stores the query and key projections with their rows permuted for its
RoPE layout (its converter's `permute`), and transformers un-permutes them when it loads a GGUF. The
LoRA delta B A lives in the transformers layout, so B's rows (the output dimension) of q_proj and
k_proj are permuted back here; A is unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mio.core.errors import CheckpointError

# transformers Llama module name -> llama.cpp tensor name
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_KEY = re.compile(r"layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])\.weight$")


def rope_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation (interleaved halves per head) on the output dimension."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export_gguf_lora(adapter_dir: Path, out_path: Path, *, n_head: int = 9, n_head_kv: int = 3,
                     arch: str = "llama") -> Path:
    """Write `out_path` from a peft adapter folder (adapter_config.json + adapter_model.safetensors).
    n_head / n_head_kv are the backbone's (SmolLM2-135M: 9 / 3)."""
    import gguf
    from safetensors.numpy import load_file

    cfg_path, weights = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise CheckpointError(f"{adapter_dir} is not a peft adapter (adapter_config.json + adapter_model.safetensors)")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("peft_type", "LORA") != "LORA":
        raise CheckpointError(f"{adapter_dir}: only LoRA adapters export to GGUF, not {cfg.get('peft_type')}")
    r, alpha = int(cfg["r"]), float(cfg.get("lora_alpha", cfg["r"]))
    if cfg.get("use_rslora") or cfg.get("use_dora"):
        raise CheckpointError("rsLoRA / DoRA adapters have no llama.cpp equivalent")
    state = load_file(str(weights))
    tensors: dict[str, np.ndarray] = {}
    for key, value in state.items():
        m = _KEY.search(key)
        if m is None:
            raise CheckpointError(f"{weights}: cannot map adapter tensor {key} to llama.cpp")
        layer, module, ab = int(m.group(1)), m.group(2), m.group(3)
        w = value.astype(np.float32)
        if ab == "B" and module == "self_attn.q_proj":
            w = rope_permute(w, n_head)
        elif ab == "B" and module == "self_attn.k_proj":
            w = rope_permute(w, n_head_kv)
        tensors[f"blk.{layer}.{GGUF_NAMES[module]}.weight.lora_{ab.lower()}"] = np.ascontiguousarray(w)
    if not tensors:
        raise CheckpointError(f"{weights} holds no LoRA tensors")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_string(gguf.Keys.General.TYPE, "adapter")
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    writer.add_string(gguf.Keys.General.NAME, f"mio persona LoRA r={r}")
    for name in sorted(tensors):
        writer.add_tensor(name, tensors[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out_path)  # never leave a half-written adapter where the Thinker looks
    return out_path
