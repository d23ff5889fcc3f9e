"""`mio face track VIDEO`, `mio face animate --self a.wav --other b.wav`, `mio bench face`."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from mio.core.errors import InputError

FACE_OUTPUT = {".npz": "face parameters"}  # what `-o` of track/animate may end in
VIDEO_OUTPUT = {".mp4": "a preview video"}


def _check_temperature(t: float | None) -> None:
    if t is not None and not (math.isfinite(t) and t >= 0):
        raise InputError(f"--temperature must be a finite number >= 0 (0: greedy), got {t}")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Any audio file PyAV reads (wav, flac, mp3, the audio of a video) -> (mono float32, rate)."""
    import av

    from mio.core.audiofile import MAX_RATE, MAX_SECONDS, MIN_RATE

    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio file {path} does not exist")
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise InputError(f"{path} has no audio stream")
            st = c.streams.audio[0]
            rate = int(st.rate)
            if not MIN_RATE <= rate <= MAX_RATE:  # before decoding: a 1 Hz header would last for hours
                raise InputError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
            if c.duration is not None and c.duration / av.time_base > MAX_SECONDS:  # from the header
                raise InputError(f"{path} is {c.duration / av.time_base:.0f} s long; the limit is "
                                 f"{MAX_SECONDS:.0f} s per file")
            res = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [f.to_ndarray().reshape(-1) for fr in c.decode(st) for f in res.resample(fr)]
            parts += [f.to_ndarray().reshape(-1) for f in res.resample(None)]
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises many types
        raise InputError(f"cannot read audio {path}: {' '.join(str(e).split()) or type(e).__name__}") from None
    x = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    if len(x) > MAX_SECONDS * rate:
        raise InputError(f"{path} is {len(x) / rate:.0f} s long; the limit is {MAX_SECONDS:.0f} s per file")
    if len(x) == 0:
        raise InputError(f"{path} holds no audio samples")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{path} contains NaN or inf samples")
    return x, rate


def preview(path: str | Path, params: np.ndarray, audio: list[tuple[np.ndarray, int]], config) -> Path:
    """Render arkit52 frames with the embedded avatar and write an MP4 with the audio tracks (the
    first at full level, the other speaker's at 0.8). Frames stream to the encoder as they are drawn
    (the session's MediaRecorder), so memory stays flat however long the audio is, and the file
    appears under its name only when complete."""
    from tqdm import tqdm

    from mio.core.frames import AudioChunk, UserAudio, VideoFrame
    from mio.core.layouts import FACE_FPS
    from mio.render.raster import AnnyRenderer
    from mio.runtime.transports.mp4 import MediaRecorder

    with AnnyRenderer(config.render) as r, MediaRecorder(path, fps=FACE_FPS) as rec:
        for i, (x, sr) in enumerate(audio):  # all audio first: none of it is final before the video
            rec.add(AudioChunk(samples=x, sample_rate=sr) if i == 0 else UserAudio(samples=x, sample_rate=sr))
        cam = r.preset_camera(config.render.camera)
        for i, f in enumerate(tqdm(params, desc="render", unit="frame", file=sys.stderr)):
            rec.add(VideoFrame(image=r.render(f, None, cam), index=i, pts=i / FACE_FPS))
    return rec.path


def _animate(args: argparse.Namespace) -> int:
    from mio.cli import config_from_args
    from mio.face.unils.data import write_face
    from mio.face.unils.model import from_pretrained
    from mio.face.unils.streaming import animate
    from mio.runtime.transports.mp4 import check_output

    cfg = config_from_args(args)
    check_output(args.output, FACE_OUTPUT)  # every output and option before any work
    if args.other_output:
        check_output(args.other_output, FACE_OUTPUT)
    if args.video:
        check_output(args.video, VIDEO_OUTPUT)
    _check_temperature(args.temperature)
    for flag, style in (("--style", args.style), ("--other-style", args.other_style)):
        if style < 0:
            raise InputError(f"{flag} must be a style id >= 0, got {style}")
    own = read_audio(args.self_audio)
    other = read_audio(args.other) if args.other else None
    model = from_pretrained(args.checkpoint or cfg.face.checkpoint)
    if model.gen is None:
        raise InputError("that checkpoint is a VQ-VAE only; give a stage free/audio/e2e checkpoint")
    for flag, style in (("--style", args.style), ("--other-style", args.other_style)):
        if style >= model.cfg.n_styles:
            raise InputError(f"{flag} {style}: this checkpoint knows styles 0-{model.cfg.n_styles - 1}")
    out = animate(model, own, other, style=args.style, other_style=args.other_style, seed=args.seed,
                  temperature=args.temperature)
    write_face(args.output, out[0], model.cfg.layout)
    print(f"wrote {args.output} ({out.shape[1]} frames, {model.cfg.layout})")
    if args.other_output:
        write_face(args.other_output, out[1], model.cfg.layout)
        print(f"wrote {args.other_output}")
    if args.video:
        if model.cfg.layout != "arkit52":
            raise InputError("--video renders the embedded (arkit52) avatar; this checkpoint is " + model.cfg.layout)
        preview(args.video, out[0], [own] + ([other] if other else []), cfg)
        print(f"wrote {args.video}")
    return 0


def _track(args: argparse.Namespace) -> int:
    from mio.face.track import track_video
    from mio.face.unils.data import write_face
    from mio.runtime.transports.mp4 import check_output

    if not Path(args.video).is_file():
        raise InputError(f"video {args.video} does not exist")
    out = args.output or str(Path(args.video).with_suffix(".npz"))
    check_output(out, FACE_OUTPUT)
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {args.max_frames}")
    params = track_video(args.video, max_frames=args.max_frames)
    extra = {"style": np.int64(args.style)} if args.style is not None else {}
    write_face(out, params, "arkit52", **extra)
    print(f"wrote {out} ({len(params)} frames at 25 fps, arkit52)")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from mio.cli import _say
    from mio.face.unils.bench import bench_face, write

    result = bench_face(args.checkpoint, args.ablation, args.data, n=args.conversations, progress=_say)
    out = write(result, args.output)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {out}")
    return 0


def register(sub, bench_sub, common) -> None:
    f = sub.add_parser("face", parents=[common], help="UniLS face animator: track a video, animate two audio tracks")
    fsub = f.add_subparsers(dest="face_cmd", required=True)
    a = fsub.add_parser("animate", parents=[common], help="face parameters (face.npz) from own + other speech")
    a.add_argument("--self", dest="self_audio", required=True, help="the speaker's own audio (wav, flac, mp3, ...)")
    a.add_argument("--other", help="the other speaker's audio (what the face listens to)")
    a.add_argument("-o", "--output", default="face.npz")
    a.add_argument("--other-output", help="also write the other speaker's face (Eq. 6 generates both)")
    a.add_argument("--video", help="render a preview MP4 with the embedded avatar")
    a.add_argument("--checkpoint", help="UniLS checkpoint dir (default: face.checkpoint, else the embedded one)")
    a.add_argument("--style", type=int, default=0, help="style (identity) id of the speaker")
    a.add_argument("--other-style", type=int, default=0)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--temperature", type=float, default=None, help="sampling temperature (0: greedy)")
    a.set_defaults(func=_animate)
    t = fsub.add_parser("track", parents=[common], help="per-frame arkit52 face track of a video (MediaPipe FaceMesh)")
    t.add_argument("video")
    t.add_argument("-o", "--output", help="face.npz to write (default: VIDEO.npz)")
    t.add_argument("--style", type=int, default=None, help="identity id stored with the track (training data)")
    t.add_argument("--max-frames", type=int, default=None)
    t.set_defaults(func=_track)
    b = bench_sub.add_parser("face", parents=[common],
                             help="UniLS vs single-stage ablation vs procedural: LVE/FDD/PDD/JDD/FID, ms per frame")
    b.add_argument("--checkpoint", help="UniLS checkpoint (default: the embedded unils-tiny)")
    b.add_argument("--ablation", help="single-stage checkpoint (default: the embedded unils-tiny-e2e)")
    b.add_argument("--data", help="conversations folder (default: generate held-out synthetic ones)")
    b.add_argument("--conversations", type=int, default=8)
    b.add_argument("-o", "--output", default="out/bench/face.json")
    b.set_defaults(func=_bench)
