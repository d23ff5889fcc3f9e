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
import time
from pathlib import Path

import numpy as np

from mio.cli.common import config_from_args
from mio.core import atomic
from mio.core.atomic import atomic_output, check_output
from mio.core.errors import InputError
from mio.core.layouts import BODY_FPS

MAX_PROMPT_CHARS = 300  # one motion description; the text encoder keeps its first 16 tokens anyway
MAX_GUIDANCE = 20.0  # classifier-free guidance beyond this only amplifies noise

# ---------------------------------------------------------------------------------------------
# mio body generate
# ---------------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    from mio.body.flood.backend import FloodBody
    from mio.body.flood.generate import generate_motion
    from mio.core.config import BodyConfig

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
    from mio.bench.body import bench_body

    check_bench_args(args)
    report = bench_body(args.checkpoint, data=args.data, evaluator=args.evaluator, ablations=args.ablation,
                        items=args.items, frames=args.frames, sequences=args.sequences, guidance=args.guidance,
                        seed=args.seed, threads=args.threads, speed_only=args.speed_only)
    out = atomic.write_text(args.output, json.dumps(report, indent=2) + "\n")
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

    from mio.bench.body import BENCH_DATA_DIR, EVALUATOR, LIBRARY_DIR
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
    b.add_argument("--evaluator", default=str(EVALUATOR))
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


__all__ = ["register", "render_preview"]
