"""`mio bench body`: FloodDiffusion on the held-out split (Table 5's HumanML3D and BABEL columns, the
§7.4 ablations) and its streaming speed.

    report = bench_body(checkpoint=None, data=None)      # -> dict, written by the CLI as out/bench/body.json

The metrics are mio.metrics.body's (the same code `mio bench iis` uses), in the embedding space of
the T2M evaluator trained on the motion library (mio.body.flood.eval).
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mio.body.flood.generate import generate_batch
from mio.core.errors import InputError
from mio.core.layouts import BODY_FPS
from mio.metrics import body as body_metrics

log = logging.getLogger(__name__)

EVALUATOR = Path(__file__).resolve().parents[1] / "body" / "flood" / "weights" / "flood-eval"

def _t2m_rows(models: dict, text, evaluator, test, n_items: int, frames: int, warmup: int, seed: int,
              guidance: float) -> dict[str, dict[str, float]]:
    from mio.body.flood.eval import segment_crops, t2m_metrics

    crops = [c for c in segment_crops(test, min_frames=frames, max_frames=frames, stride=frames // 2)
             if len(c[0]) >= frames]
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(crops))[:n_items]
    items = [crops[i] for i in pick]
    texts = [t for _, t in items]
    real = [f[:frames] for f, _ in items]
    sent = np.stack([e.sentence for e in text.encode(texts)])
    half = len(real) // 2  # real row: one half of the clips against the other half as reference
    rows = {"Real motion": t2m_metrics(evaluator, texts[:half], real[:half], real[half:], sent[:half])}
    n_lat = (frames + warmup) // 4
    for name, (dit, vae) in models.items():
        t0 = time.perf_counter()
        gen = []
        for s in range(0, len(texts), 32):
            out = generate_batch(dit, vae, text, texts[s:s + 32], n_lat, seed=seed + s, guidance=guidance)
            gen += [g[warmup:warmup + frames] for g in out]
        rows[name] = t2m_metrics(evaluator, texts, gen, real, sent)
        rows[name]["seconds"] = round(time.perf_counter() - t0, 1)
    return rows


def _jerk_rows(models: dict, text, babel, seed: int, guidance: float) -> dict[str, dict[str, float]]:
    from mio.body.flood.eval import JERK_WINDOW
    from mio.body.flood.stream import FloodStream
    from mio.body.humanml3d import features_to_joints

    seqs = [s for s in babel if len(s.segments) > 1]
    rows: dict[str, dict[str, float]] = {}
    def jerk(joints: np.ndarray, seq) -> tuple[float, float]:
        return body_metrics.transition_jerk(joints, BODY_FPS, [g.start for g in seq.segments[1:]], JERK_WINDOW)

    real = [jerk(features_to_joints(s.features), s) for s in seqs]
    rows["Real motion"] = {"PJ": float(np.nanmean([r[0] for r in real])), "AUJ": float(np.nanmean([r[1] for r in real]))}
    for name, (dit, vae) in models.items():
        res = []
        for i, s in enumerate(seqs):
            st = FloodStream(dit, vae, text, seed=seed + i, prompt=s.segments[0].text, guidance=guidance)
            for g in s.segments[1:]:
                st.set_prompt(g.text, g.start / BODY_FPS)
            feats = []
            while len(feats) < len(s.features):
                feats.extend(st.step().numpy())
            joints = features_to_joints(np.stack(feats[: len(s.features)]))
            res.append(jerk(joints, s))
        rows[name] = {"PJ": float(np.nanmean([r[0] for r in res])), "AUJ": float(np.nanmean([r[1] for r in res]))}
    return rows


def _speed(dit, vae, text, steps: int = 60) -> dict[str, float]:
    from mio.body.flood.stream import FloodStream

    prompts = ["walk forward", "wave with the right hand", "turn around", "clap", "stand"]
    text.encode(prompts)  # warm the cache and the model
    first = []
    for i in range(5):  # cold start of a session: first committed frame after the first prompt
        st = FloodStream(dit, vae, text, seed=i, prompt=prompts[i % len(prompts)])
        t0 = time.perf_counter()
        while len(st.step()) == 0:
            pass
        first.append(time.perf_counter() - t0)
    st = FloodStream(dit, vae, text, seed=7, prompt="walk forward")
    step_ms, frame_ms, switch, cpu_ms = [], [], [], []
    frames = 0
    for i in range(steps):
        if i % 15 == 14:  # a new prompt mid-stream (new text -> MiniLM runs inside the timing)
            t0 = time.perf_counter()
            st.set_prompt(f"{prompts[(i // 15) % len(prompts)]} {i}", st.latent_time(st.committed))
            out = st.step()
            switch.append(time.perf_counter() - t0)
        else:
            t0, c0 = time.perf_counter(), time.thread_time()
            out = st.step()
            dt = time.perf_counter() - t0
            cpu_ms.append(1000 * (time.thread_time() - c0))  # CPU this thread used: less inflated by load
            step_ms.append(1000 * dt)
            if len(out):
                frame_ms.append(1000 * dt / len(out))
        frames += len(out)
    return {"ms_per_step": statistics.median(step_ms), "ms_per_output_frame": statistics.median(frame_ms),
            "cpu_ms_per_step": statistics.median(cpu_ms),
            "cpu_ms_per_output_frame": statistics.median(cpu_ms) / st.frames_per_latent,
            "first_frame_latency_s": statistics.median(first), "prompt_switch_to_frame_s": statistics.median(switch),
            "frames_per_step": frames / steps, "budget_ms_per_frame": 10.0, "budget_first_frame_s": 0.3}


LIBRARY_DIR = "out/body/library"  # what `mio train body --stage data` writes by default
BENCH_DATA_DIR = "out/body/bench-test"  # the held-out split alone, rendered by the bench when needed
BENCH_TEST_SEQUENCES = 60  # = `mio train body --stage data`'s default --n-test: the same clips


def bench_data(data: str | None) -> Path:
    """The folder `mio bench body` evaluates on: --data if given (it must hold the test split); else
    the training library if it is there; else the held-out split rendered now (~15 s, once)."""
    if data is not None:
        root = Path(data)
        if not (root / "test.txt").is_file() or not (root / "babel_test.json").is_file():
            raise InputError(f"{root} is not a motion library with a test split (test.txt, babel_test.json): "
                             f"make it with `mio train body --stage data --out {root}`, or leave --data out")
        return root
    if (Path(LIBRARY_DIR) / "DONE").is_file():
        return Path(LIBRARY_DIR)
    from mio.body.data import build_library

    return build_library(BENCH_DATA_DIR, 0, BENCH_TEST_SEQUENCES, splits=("test",))


def bench_body(checkpoint: str | None = None, *, data: str | None = None, evaluator: str | Path = EVALUATOR,
               ablations: list[str] | None = None, items: int = 96, frames: int = 40, sequences: int = 30,
               guidance: float = 1.0, seed: int = 0, threads: int = 1, speed_only: bool = False) -> dict:
    """The report of `mio bench body`: streaming speed, then (unless `speed_only`) Table 5's columns for
    the model and each ablation ("NAME=DIT_DIR") on the held-out split."""
    from mio.body.data import load_babel, load_humanml3d
    from mio.body.flood.backend import checkpoint_dir
    from mio.body.flood.dit import FloodDiT
    from mio.body.flood.eval import T2MEvaluator
    from mio.body.flood.text import shared_text_encoder
    from mio.body.flood.vae import CausalVAE

    torch.set_num_threads(threads)
    # what can be missing first (the data is made here if `data` is not given), then the models
    t2m = None if speed_only else T2MEvaluator.from_pretrained(evaluator)
    root_data = None if speed_only else bench_data(data)
    root = checkpoint_dir(checkpoint)
    vae = CausalVAE.from_pretrained(root / "vae")
    dit = FloodDiT.from_pretrained(root / "dit")
    text = shared_text_encoder(dit.pretrained_config.get("text_encoder", "minilm"), dit.cfg.text_tokens)
    models = {"FloodDiffusion (ours)": (dit, vae)}
    for spec in ablations or []:
        name, _, path = spec.partition("=")
        abl_vae = CausalVAE.from_pretrained(Path(path).parent / "vae") if (Path(path).parent / "vae").is_dir() else vae
        models[name] = (FloodDiT.from_pretrained(path), abl_vae)
    report: dict = {"checkpoint": str(root), "data": None if root_data is None else str(root_data), "note": []}
    report["speed"] = _speed(dit, vae, text)
    log.info("speed: %s", json.dumps(report["speed"]))
    if root_data is not None:
        test = load_humanml3d(root_data, "test")
        report["humanml3d_like"] = _t2m_rows(models, text, t2m, test, items, frames, 16, seed, guidance)
        babel = load_babel(root_data / "babel_test.json", root_data / "babel_feats")
        report["babel_like"] = _jerk_rows(models, text, babel[:sequences], seed, guidance)
        report["note"].append("Held-out split of the procedural motion library (unseen seeds and unseen "
                              "phrasings), not HumanML3D/BABEL; the evaluator is ours, trained on the library.")
    report["note"].append("Timings measured on 2 shared CPU cores while other jobs ran: medians, inflated.")
    return report


__all__ = ["BENCH_DATA_DIR", "EVALUATOR", "LIBRARY_DIR", "bench_body", "bench_data"]
