"""`mio body generate`, `mio body import` and `mio bench body` (FloodDiffusion, §4 and §7.4).

    mio body generate "walk forward" "wave with the right hand" --at 0 3 -o motion.npz \\
        --bvh motion.bvh --video preview.mp4
    mio body import take.bvh -o motion.npz        # any mocap BVH -> HumanML3D motion at 20 fps
    mio bench body                      # Table-5 metrics, ablations, streaming speed -> out/bench/body.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mio.core.atomic import write_text as atomic_write_text
from mio.core.errors import InputError
from mio.core.layouts import BODY_FPS

MAX_PROMPT_CHARS = 300  # one motion description; the text encoder keeps its first 16 tokens anyway
MAX_GUIDANCE = 20.0  # classifier-free guidance beyond this only amplifies noise

# ---------------------------------------------------------------------------------------------
# mio body generate
# ---------------------------------------------------------------------------------------------


def generate_motion(body, prompts: list[str], at: list[float], seconds: float, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Stream prompts at their times for `seconds`; -> (features (T, 263), joints (T, 22, 3))."""
    from mio.body.humanml3d import features_to_joints

    stream = body.new_session(seed).stream
    order = sorted(zip(at, prompts, strict=True))
    n = int(round(seconds * BODY_FPS))
    feats: list[np.ndarray] = []
    pending = list(order)
    while len(feats) < n:
        now = len(feats) / BODY_FPS
        while pending and pending[0][0] <= now + stream.n_s * stream.frames_per_latent / BODY_FPS:
            t, p = pending.pop(0)  # tell the stream as soon as the prompt's frames enter the window
            stream.set_prompt(p, t)
        feats.extend(stream.step().numpy())
    features = np.stack(feats[:n]).astype(np.float32)
    return features, features_to_joints(features).astype(np.float32)


def _generate(args: argparse.Namespace) -> int:
    from mio.body.flood.backend import FloodBody
    from mio.cli import config_from_args
    from mio.core.atomic import atomic_output
    from mio.core.config import BodyConfig
    from mio.runtime.transports.mp4 import check_output

    prompts = [" ".join(p.split()) for p in args.prompts]
    for i, p in enumerate(prompts, 1):
        if not p:
            raise InputError(f"prompt {i} is empty; describe a motion, e.g. mio body generate \"walk forward\"")
        if len(p) > MAX_PROMPT_CHARS:
            raise InputError(f"prompt {i} has {len(p)} characters; the limit is {MAX_PROMPT_CHARS} (the text encoder "
                             "reads one short sentence)")
    if not (math.isfinite(args.guidance) and 0 <= args.guidance <= MAX_GUIDANCE):
        raise InputError(f"--guidance must be a number in [0, {MAX_GUIDANCE:g}] (1 = off), got {args.guidance}")
    at = list(args.at) if args.at else [0.0] + [3.0 * i for i in range(1, len(prompts))]
    if len(at) != len(prompts):
        raise InputError(f"--at needs one time per prompt ({len(prompts)} prompts, {len(at)} times)")
    if not all(math.isfinite(t) and t >= 0 for t in at):
        raise InputError("--at times must be finite and >= 0")
    seconds = args.seconds or max(at) + 4.0
    if not 0 < seconds <= 600:
        raise InputError(f"--seconds must be in (0, 600], got {seconds}")
    out = check_output(args.output, {".npz": "the motion"})  # every output before the model loads
    if args.bvh:
        check_output(args.bvh, {".bvh": "the motion for engines"})
    if args.video:
        check_output(args.video, {".mp4": "a preview video"})
    cfg = config_from_args(args)
    body = FloodBody(BodyConfig(backend="flood", seed=args.seed, checkpoint=args.checkpoint or cfg.body.checkpoint),
                     guidance=args.guidance)
    t0 = time.perf_counter()
    features, joints = generate_motion(body, prompts, at, seconds, args.seed)
    took = time.perf_counter() - t0
    with atomic_output(out) as tmp, open(tmp, "wb") as f:  # a file object: np.savez keeps the name as given
        np.savez(f, features=features, fps=np.float32(BODY_FPS), joints=joints,
                 prompts=np.array(prompts), times=np.array(at, np.float32))
    print(f"{out}: {len(features)} frames ({seconds:.1f} s) in {took:.2f} s")
    if args.bvh:
        from mio.body.bvh import write_bvh

        print(f"{write_bvh(args.bvh, features)}")
    if args.video:
        print(f"{render_preview(joints, args.video, cfg)}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from mio.body.bvh import import_bvh

    out = Path(args.output)
    if out.suffix.lower() != ".npz":
        raise InputError(f"-o {out}: the motion is written as .npz (e.g. motion.npz)")
    motion = import_bvh(args.bvh, units=args.units, up=args.up)
    print(f"{motion.save(out)}: {motion.summary()}")
    return 0


def render_preview(joints: np.ndarray, path: str | Path, cfg=None, fps: float = BODY_FPS) -> Path:
    """A full-body MP4 of the motion on the anny avatar (the renderer, used read-only); the camera
    follows the pelvis horizontally."""
    import av

    from mio.core.atomic import atomic_output
    from mio.core.config import RenderConfig
    from mio.core.layouts import ARKIT52
    from mio.render.raster import AnnyRenderer

    rcfg = RenderConfig(width=384, height=512, camera="full_body",
                        cache_dir=cfg.render.cache_dir if cfg is not None else None)
    renderer = AnnyRenderer(rcfg)
    cam = renderer.preset_camera("full_body")
    face = ARKIT52.zeros()
    path = Path(path)
    with atomic_output(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = rcfg.width, rcfg.height, "yuv420p"
        for j in joints:
            centred = j - np.array([j[0, 0], 0.0, j[0, 2]])  # keep the body in frame
            img = renderer.render(face, centred, cam)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    renderer.close()
    return path


# ---------------------------------------------------------------------------------------------
# mio bench body
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def generate_batch(dit, vae, text, prompts: list[str], n_latents: int, seed: int = 0, guidance: float = 1.0
                   ) -> np.ndarray:
    """Offline generation of single-prompt clips, batched (same schedule for all). -> (B, 4K, 263)"""
    from mio.body.flood.stream import frame_noise, predict_velocity, schedule_fn

    cfg = dit.cfg
    alpha_fn = schedule_fn("chunk" if cfg.schedule == "chunk" else "triangular", cfg.n_s)
    embs = text.encode(prompts)
    tok = torch.from_numpy(np.stack([e.tokens for e in embs]))[:, None]  # (B, 1, L, D)
    mask = torch.from_numpy(np.stack([e.mask for e in embs]))[:, None]
    sent = torch.from_numpy(np.stack([e.sentence for e in embs]))[:, None]
    b = len(prompts)
    total = n_latents + cfg.n_s
    z = torch.stack([torch.stack([frame_noise(seed + i, k, cfg.latent_dim) for k in range(total)])
                     for i in range(b)])  # (B, K + n_s, C)
    ks = torch.arange(total)
    s = 0
    while bool((alpha_fn(s / cfg.n_s, ks[:n_latents]) < 1).any()):
        a0, a1 = alpha_fn(s / cfg.n_s, ks), alpha_fn((s + 1) / cfg.n_s, ks)
        moving = ((a0 < 1) & (a1 > 0)).nonzero()
        first, last = int(moving[0]), int(moving[-1]) + 1
        lo = max(0, first - cfg.context)
        local = torch.zeros(b, last - lo, dtype=torch.long)
        v = predict_velocity(dit, z[:, lo:last], a0[None, lo:last].expand(b, -1), local, tok, mask, sent, guidance)
        z[:, first:last] += v[:, first - lo:] * (a1 - a0)[None, first:last, None]
        s += 1
    return vae.decode(z[:, :n_latents]).numpy()


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
    from mio.body.flood.eval import transition_jerk
    from mio.body.flood.stream import FloodStream
    from mio.body.humanml3d import features_to_joints

    seqs = [s for s in babel if len(s.segments) > 1]
    rows: dict[str, dict[str, float]] = {}
    real = [transition_jerk(features_to_joints(s.features), [g.start for g in s.segments[1:]]) for s in seqs]
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
            res.append(transition_jerk(joints, [g.start for g in s.segments[1:]]))
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


def check_bench_args(args: argparse.Namespace) -> None:
    """`mio bench body`'s numbers and --ablation specs, before anything loads (one-line errors)."""
    for flag, value, low in (("--items", args.items, 4), ("--frames", args.frames, 8),
                             ("--sequences", args.sequences, 1), ("--threads", args.threads, 1)):
        if value < low:
            raise InputError(f"{flag} must be at least {low}, got {value}")
    if not (math.isfinite(args.guidance) and 0 <= args.guidance <= MAX_GUIDANCE):
        raise InputError(f"--guidance must be a number in [0, {MAX_GUIDANCE:g}] (1 = off), got {args.guidance}")
    for spec in args.ablation or []:
        name, eq, path = spec.partition("=")
        if not (name and eq and Path(path).is_dir()):
            raise InputError(f"--ablation {spec!r}: give NAME=DIT_DIR with an existing folder, e.g. "
                             "causal=out/body/abl/causal/dit (`mio train body --stage dit --variant causal` makes it)")


def _bench(args: argparse.Namespace) -> int:
    from mio.body.data import load_babel, load_humanml3d
    from mio.body.flood.backend import checkpoint_dir
    from mio.body.flood.eval import load_evaluator
    from mio.body.flood.text import shared_text_encoder
    from mio.body.flood.train import load_dit, load_vae

    check_bench_args(args)
    torch.set_num_threads(args.threads)
    # what can be missing first (the data is made here if --data is not given), then the models
    evaluator = None if args.speed_only else load_evaluator(args.evaluator)
    data = None if args.speed_only else bench_data(args.data)
    root = checkpoint_dir(args.checkpoint)
    vae = load_vae(root / "vae")
    dit, meta = load_dit(root / "dit")
    text = shared_text_encoder(meta.get("text_encoder", "minilm"), dit.cfg.text_tokens)
    models = {"FloodDiffusion (ours)": (dit, vae)}
    for spec in args.ablation or []:
        name, _, path = spec.partition("=")
        abl_vae = load_vae(Path(path).parent / "vae") if (Path(path).parent / "vae").is_dir() else vae
        models[name] = (load_dit(path)[0], abl_vae)
    report: dict = {"checkpoint": str(root), "data": None if data is None else str(data), "note": []}
    report["speed"] = _speed(dit, vae, text)
    print(json.dumps({"speed": report["speed"]}, indent=2))
    if data is not None:
        test = load_humanml3d(data, "test")
        report["humanml3d_like"] = _t2m_rows(models, text, evaluator, test, args.items, args.frames, 16, args.seed,
                                             args.guidance)
        babel = load_babel(data / "babel_test.json", data / "babel_feats")
        report["babel_like"] = _jerk_rows(models, text, babel[: args.sequences], args.seed, args.guidance)
        report["note"].append("Held-out split of the procedural motion library (unseen seeds and unseen "
                              "phrasings), not HumanML3D/BABEL; the evaluator is ours, trained on the library.")
    report["note"].append("Timings measured on 2 shared CPU cores while other jobs ran: medians, inflated.")
    out = atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "speed"}, indent=2))
    print(f"wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("body", help="FloodDiffusion body motion from text prompts (§4)")
    bsub = p.add_subparsers(dest="body_cmd", metavar="CMD", required=True)
    g = bsub.add_parser("generate", parents=[common], help="prompts at times -> motion.npz (+ BVH, preview video)")
    g.add_argument("prompts", nargs="+", help="text prompts, e.g. \"walk forward\" \"wave with the right hand\"")
    g.add_argument("--at", type=float, nargs="+", help="start time (s) of each prompt (default 0, 3, 6, ...)")
    g.add_argument("--seconds", type=float, default=None, help="length (default: last prompt + 4 s)")
    g.add_argument("-o", "--output", default="motion.npz")
    g.add_argument("--bvh", default=None, help="also write a BVH file")
    g.add_argument("--video", default=None, help="also render a preview MP4 on the anny avatar")
    g.add_argument("--checkpoint", default=None, help="FloodDiffusion folder with vae/ and dit/ (default: embedded)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (1 = off)")
    g.set_defaults(func=_generate)

    from mio.body.bvh import UNITS, UP_AXES

    im = bsub.add_parser("import", parents=[common],
                         help="a motion-capture BVH -> motion.npz (HumanML3D-263 at 20 fps, the performer's proportions)")
    im.add_argument("bvh", metavar="FILE.bvh", help="CMU, Mixamo, LAFAN1, Biovision, SMPL/HumanML3D-named ... skeletons")
    im.add_argument("-o", "--output", default="motion.npz")
    im.add_argument("--units", default="auto",
                    help=f"file units: {', '.join(UNITS)} or metres per unit (default: from the skeleton's size)")
    im.add_argument("--up", default="auto", choices=("auto", *UP_AXES), help="the file's up axis (default: where the head is)")
    im.set_defaults(func=_import)

    b = bench_sub.add_parser("body", parents=[common],
                             help="Table-5 metrics + ablations on the held-out split, streaming speed -> out/bench/body.json")
    b.add_argument("--data", default=None,
                   help=f"HumanML3D-layout folder with test split + babel_test.json (default: {LIBRARY_DIR} if "
                        f"trained, else the held-out split rendered into {BENCH_DATA_DIR})")
    b.add_argument("--checkpoint", default=None, help="FloodDiffusion folder (default: embedded)")
    b.add_argument("--evaluator", default=str(Path(__file__).parent / "weights" / "flood-eval"))
    b.add_argument("--ablation", action="append", help="NAME=DIT_DIR (repeatable), e.g. causal=out/body/abl/causal/dit")
    b.add_argument("--items", type=int, default=96, help="text-motion pairs for R-precision/FID (multiple of 32)")
    b.add_argument("--frames", type=int, default=40, help="frames per evaluated clip (the evaluator trains on 40)")
    b.add_argument("--sequences", type=int, default=30, help="multi-prompt sequences for PJ/AUJ")
    b.add_argument("--guidance", type=float, default=1.0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--speed-only", action="store_true")
    b.add_argument("-o", "--output", default="out/bench/body.json")
    b.set_defaults(func=_bench)


__all__ = ["generate_batch", "generate_motion", "register", "render_preview"]
