"""`mio evolve eval`: the Thinker before and after self-evolution, on held-apart scenarios.

For the base model and for the base + trained GGUF LoRA (both served by llama.cpp, exactly as the
Thinker serves them), it reports:
- the persona reward r(a) of Eq. 23 on the held-apart scenarios' pairs (never trained on), where a
  is the Thinker's reply to the scenario's prompt through its own repair/validation of clauses;
- the Robustness (RT) score of the Thinker's suite (stories/.../eval/robustness.yaml), with the
  Thinker's guards on (as deployed: most out-of-world requests are refused before the LLM runs) and
  off (the LLM alone — where an adapter can make a difference).
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable

from mio.core.config import ThinkerConfig
from mio.thinker import evals
from mio.thinker.evolve.pairs import Pair
from mio.thinker.evolve.reward import PersonaReward
from mio.thinker.persona import load_character


def _reply(th, conv, text: str) -> str:
    return " ".join(c.text for c in th.reply(conv, text))


def evaluate_model(config: ThinkerConfig, pairs: list[Pair], persona: PersonaReward, *, rt_limit: int | None = None,
                   progress: Callable[[str], None] | None = None, embedder=None) -> dict:
    from mio.thinker.thinker import Thinker

    say = progress or (lambda m: None)
    base = Thinker(dataclasses.replace(config, episodic=False, memory_dir=tempfile.mkdtemp(prefix="mio-evolve-")),
                   embedder=embedder)
    chars: dict[str, object] = {}
    replies, t0 = [], time.perf_counter()
    for p in pairs:
        ref = p.scenario["character"]
        ch = chars.setdefault(ref, load_character(ref))
        replies.append(" ".join(c.text for c in base._draft(p.prompt, ch, config.temperature)))
    gen_s = time.perf_counter() - t0
    rewards = persona(replies, [p.pos for p in pairs], [p.neg for p in pairs])
    out: dict = {"persona_reward": {"mean": round(statistics.fmean(rewards), 4),
                                    "median": round(statistics.median(rewards), 4), "n": len(rewards)},
                 "generation_s_per_reply": round(gen_s / max(1, len(pairs)), 3),
                 "frame_breaks": sum(evals.guards.breaks_frame(r) for r in replies),
                 "samples": [{"q": p.scenario["text"], "a": a, "r": round(r, 4), "flaw": p.flaw}
                             for p, a, r in zip(pairs, replies, rewards, strict=True)]}
    by_flaw: dict[str, list[float]] = {}
    for p, r in zip(pairs, rewards, strict=True):
        by_flaw.setdefault(p.flaw, []).append(r)
    out["persona_reward"]["by_flaw"] = {k: round(statistics.fmean(v), 4) for k, v in by_flaw.items()}
    ch = load_character(pairs[0].scenario["character"]) if pairs else None
    if ch is not None and ch.story is not None and (ch.story.folder / "eval" / "robustness.yaml").is_file():
        items = evals.load_robustness(ch.story.folder / "eval" / "robustness.yaml")[:rt_limit]
        for guards_on in (True, False):
            name = "robustness_guards_on" if guards_on else "robustness_guards_off"
            say(f"{name}: {len(items)} prompts ...")
            th = Thinker(dataclasses.replace(base.config, guards=guards_on), llm=base.llm, embedder=base.embedder)
            th._graphs = base._graphs
            ok = 0
            rows = []
            for item in items:
                conv = th.new_conversation(ch, user_id="evolve-eval")
                reply = _reply(th, conv, item.q)
                bad = evals.complies(reply, item)
                ok += not bad
                rows.append({"q": item.q, "reply": reply, "fail": bad})
            out[name] = {"score": round(ok / max(1, len(items)), 4), "n": len(items),
                         "failures": [r for r in rows if r["fail"]][:8]}
    return out


def evaluate_transformers(pairs: list[Pair], adapter_dir, persona: PersonaReward, *, model_path: str | None = None,
                          max_new_tokens: int = 48, progress: Callable[[str], None] | None = None) -> dict:
    """The same held-apart persona reward with the trained policy itself (transformers, fp32, greedy):
    the base model (adapter disabled) vs the adapter — free of llama.cpp's quantised serving."""
    import torch
    from peft import PeftModel

    from mio.thinker.evolve.grpo import load_backbone, safe_adapter, spoken

    say = progress or (lambda m: None)
    say("transformers: loading the backbone and the adapter ...")
    model, tok = load_backbone(model_path)
    model = PeftModel.from_pretrained(model, safe_adapter(adapter_dir)).eval()
    out: dict = {}
    for name in ("before", "after"):
        replies = []
        for p in pairs:
            ids = tok.apply_chat_template(p.prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            with torch.no_grad():
                if name == "before":
                    with model.disable_adapter():
                        g = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
                else:
                    g = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
            replies.append(spoken(tok.decode(g[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)))
        rewards = persona(replies, [p.pos for p in pairs], [p.neg for p in pairs])
        out[name] = {"persona_reward_mean": round(statistics.fmean(rewards), 4),
                     "persona_reward_median": round(statistics.median(rewards), 4),
                     "changed_replies": None, "replies": replies}
    out["after"]["changed_replies"] = sum(a != b for a, b in zip(out["before"]["replies"], out["after"]["replies"],
                                                                  strict=True))
    out["before"].pop("changed_replies")
    out["delta_persona_reward_mean"] = round(out["after"]["persona_reward_mean"] - out["before"]["persona_reward_mean"], 4)
    return out
