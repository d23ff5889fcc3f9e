"""`mio bench llm`: the embedded LLM's speed and fidelity in each encoding it can be served in.

A reply's first word waits for the pre-fill of everything new in the prompt (this turn's memory
note and the user's words) and then for the tokens of its first clause. This suite measures both
per encoding, side by side in one run (the encodings take turns within every repetition, so a
noisy machine slows them alike):

- pre-fill ms/token over a 60-token prompt and decode ms/token, at the configured thread counts;
- fidelity to the model as shipped: next-token KL divergence and top-1 agreement on the character's
  persona text (an f16 copy is the reference for what "exact up to arithmetic" looks like);
- the Thinker's time to its first clause on real turns of the configured character, memory on;
- decoding speed while the avatar renders at 25 fps with the renderer on a thread of this process
  (moderngl holds the GIL while it draws) vs in its own process (`render.process`, the default).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mio.core.config import MioConfig, to_dict

TURNS = (
    "Hello! What's your name?",
    "What do you think about the sea?",
    "Tell me about the Nautilus.",
    "Do you have any friends aboard?",
    "What is your favourite thing to do?",
    "Why do you stay under the water?",
)


def _file_type(path: Path) -> str:
    """The encoding most of a GGUF's weights are stored in (e.g. Q4_K_M's blocks are mostly Q5_0 / Q4_K)."""
    from collections import Counter

    from gguf import GGUFReader

    sizes: Counter[str] = Counter()
    for t in GGUFReader(str(path)).tensors:
        sizes[t.tensor_type.name] += int(t.n_bytes)
    return sizes.most_common(1)[0][0] if sizes else "?"


def _logsoftmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def next_token_logprobs(llm, tokens: list[int]) -> np.ndarray:
    """(len(tokens), vocab) log-probabilities of each next token; `llm` made with logits_all=True."""
    llm.reset()
    llm.eval(tokens)
    return _logsoftmax(np.asarray(llm.scores[: len(tokens)], dtype=np.float64))


def fidelity(ref: np.ndarray, other: np.ndarray, tokens: list[int]) -> dict[str, float]:
    """How closely `other` predicts what `ref` predicts, over the same tokens."""
    kl = (np.exp(ref) * (ref - other)).sum(-1)
    return {"kl_to_shipped_mean": round(float(kl.mean()), 5),
            "kl_to_shipped_p99": round(float(np.quantile(kl, 0.99)), 5),
            "top1_agreement": round(float(np.mean(ref.argmax(-1) == other.argmax(-1))), 4),
            "nll_per_token": round(float(-np.mean(other[np.arange(len(tokens) - 1), tokens[1:]])), 4)}


def _beside_renderer(config: MioConfig, reps: int, say: Callable[[str], None]) -> dict[str, list[float]]:
    """ms per generated token while a 25 fps render loop runs, the renderer on a thread vs in a process."""
    import threading

    from mio.core.layouts import ARKIT52
    from mio.runtime.render_process import RenderProcess, create_renderer
    from mio.runtime.session import RenderWorker
    from mio.thinker.llm.llama import LlamaCppLLM

    llm = LlamaCppLLM(config.thinker)
    rcfg = config.render
    out: dict[str, list[float]] = {"renderer on a thread": [], "renderer in a process": []}
    for rep in range(reps):
        say(f"decoding beside the renderer: repetition {rep + 1}/{reps}")
        for mode in out:
            renderer = (RenderWorker(lambda: create_renderer(rcfg.backend, rcfg)) if mode == "renderer on a thread"
                        else RenderProcess(rcfg.backend, rcfg))
            stop = threading.Event()

            def loop(r=renderer, stop=stop) -> None:
                face, t = ARKIT52.zeros(), time.perf_counter()
                while not stop.is_set():
                    face[17] = 0.5 + 0.5 * np.sin(t)  # something changes every frame
                    r.render(face, None)
                    t += 0.04
                    time.sleep(max(0.0, t - time.perf_counter()))

            worker = threading.Thread(target=loop, daemon=True)
            worker.start()
            time.sleep(1.0)
            question = f"Tell me about the sea, question {rep} ({mode})."
            t0, n = time.perf_counter(), 0
            for _ in llm.stream([{"role": "user", "content": question}], 32, 0.0):
                n += 1
            out[mode].append((time.perf_counter() - t0) / max(n, 1) * 1e3)
            stop.set()
            worker.join()
            renderer.close()
    return out


def bench_llm(config: MioConfig, reps: int = 5, turns: int = len(TURNS), beside_renderer: bool = True,
              progress: Callable[[str], None] | None = None) -> dict:
    import llama_cpp

    from mio.core import packaged
    from mio.thinker.llm.llama import LlamaCppLLM, embedded_q8_0, requantize
    from mio.thinker.memory.embed import create_embedder
    from mio.thinker.persona import load_character
    from mio.thinker.thinker import Thinker

    say = progress or (lambda m: None)
    tcfg = config.thinker
    character = load_character(config.character)
    tmp = Path(tempfile.mkdtemp(prefix="mio-bench-llm-"))
    say("preparing the encodings (q8_0 is cached; the f16 reference is written to a temp folder)")
    model_name = tcfg.embedded  # the Thinker's configured model (it hard-coded SmolLM2 before Qwen was the default)
    shipped = packaged.model_file(model_name)
    base = f"shipped ({_file_type(shipped)})"
    files = {base: shipped, "q8_0": embedded_q8_0(model_name), "f16 (reference)": requantize(shipped, tmp / "f16.gguf", "f16")}

    # -- raw speed and fidelity -------------------------------------------------------------------
    threads = tcfg.n_threads or 1  # automatic (0): the encodings are compared on one thread
    models = {name: llama_cpp.Llama(model_path=str(p), n_ctx=tcfg.n_ctx, n_threads=threads,
                                    n_threads_batch=tcfg.n_threads_batch or threads, n_batch=256, logits_all=True, verbose=False)
              for name, p in files.items()}
    text = character.system_prompt()
    ref_tokens = next(iter(models.values())).tokenize(text.encode())[:512]
    prompt = ref_tokens[:60]
    decode_tokens = ref_tokens[60:76]
    prefill: dict[str, list[float]] = {n: [] for n in models}
    decode: dict[str, list[float]] = {n: [] for n in models}
    for rep in range(reps):
        say(f"speed: repetition {rep + 1}/{reps}")
        for name, llm in models.items():
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(prompt)
            prefill[name].append((time.perf_counter() - t0) / len(prompt) * 1e3)
            t0 = time.perf_counter()
            for tok in decode_tokens:
                llm.eval([tok])
            decode[name].append((time.perf_counter() - t0) / len(decode_tokens) * 1e3)
    say(f"fidelity: next-token distributions over {len(ref_tokens)} tokens of the persona")
    logp = {name: next_token_logprobs(llm, ref_tokens) for name, llm in models.items()}
    fidelity_ = {n: fidelity(logp[base], lp, ref_tokens) for n, lp in logp.items()}
    del models

    # -- the Thinker's first clause on real turns ----------------------------------------------------
    embedder = create_embedder(tcfg.embedder)
    thinkers, convs = {}, {}
    for label, weights in ((base, "shipped"), ("q8_0", "q8_0")):
        cfg = dataclasses.replace(tcfg, weights=weights, model_path=None, memory_dir=str(tmp / "memory"),
                                  episodic=False)
        thinkers[label] = Thinker(cfg, llm=LlamaCppLLM(cfg), embedder=embedder)
        convs[label] = thinkers[label].new_conversation(character, user_id="bench")
        thinkers[label].warm(convs[label])
    first_clause: dict[str, list[float]] = {n: [] for n in thinkers}
    note_tokens: dict[str, list[int]] = {n: [] for n in thinkers}
    for i, user in enumerate(TURNS[:turns]):
        say(f"first clause, turn {i + 1}/{turns} of {character.name}: {user}")
        for name, th in thinkers.items():  # the encodings take turns: machine noise hits both alike
            ctx = th.llm.llm._ctx.ctx
            llama_cpp.llama_perf_context_reset(ctx)
            t0 = time.perf_counter()
            clauses = th.reply(convs[name], user)
            first = next(clauses)
            first_clause[name].append((time.perf_counter() - t0) * 1e3)
            rest = list(clauses)
            note_tokens[name].append(int(llama_cpp.llama_perf_context(ctx).n_p_eval))
            convs[name].add("user", user)
            convs[name].add("assistant", " ".join(c.text for c in (first, *rest)))
    del thinkers

    beside = _beside_renderer(config, reps, say) if beside_renderer else {}

    def med(xs: list[float]) -> float:
        return round(statistics.median(xs), 2)

    fast = "q8_0"
    summary = {
        "prefill_ms_per_token": {n: med(v) for n, v in prefill.items()},
        "decode_ms_per_token": {n: med(v) for n, v in decode.items()},
        "prefill_speedup_q8_0": round(statistics.median(prefill[base]) / statistics.median(prefill[fast]), 2),
        "decode_speedup_q8_0": round(statistics.median(decode[base]) / statistics.median(decode[fast]), 2),
        "kl_to_shipped_mean": {n: f["kl_to_shipped_mean"] for n, f in fidelity_.items()},
        "top1_agreement": {n: f["top1_agreement"] for n, f in fidelity_.items()},
        "first_clause_ms_p50": {n: med(v) for n, v in first_clause.items()},
        "ms_per_token_beside_renderer": {n: med(v) for n, v in beside.items()},
    }
    return {
        "suite": "llm",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "config": {"character": config.character, "thinker": to_dict(tcfg)},
        "model": model_name,
        "raw_threads": threads,
        "files": {n: {"path": str(p), "mb": round(p.stat().st_size / 1e6, 1)} for n, p in files.items()},
        "summary": summary,
        "fidelity": fidelity_,
        "per_rep": {"prefill_ms_per_token": prefill, "decode_ms_per_token": decode,
                    "ms_per_token_beside_renderer": beside},
        "per_turn": {"turns": list(TURNS[:turns]), "first_clause_ms": first_clause, "prefilled_tokens": note_tokens},
    }
