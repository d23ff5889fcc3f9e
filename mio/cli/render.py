"""`mio render`, `mio export avatar|motion` and `mio bench render` (registered into `mio` by mio.cli).

    mio render face.npz motion.npz --camera orbit -o video.mp4      # any parameter files, any viewpoint
    mio render face.npz --camera portrait --azimuth 30 -o side.mp4
    mio render motion.npz --camera-file cam.json -o cam.mp4          # explicit intrinsics + extrinsics
    mio render looks -o docs/looks.png                               # every character's look: portrait + full body
    mio export avatar -o mio.glb                                     # glTF 2.0: mesh, 52 ARKit morph targets, skin
    mio export motion motion.npz face.npz -o out/engine              # motion.bvh, face.csv (Live Link), face.json
    mio bench render                                                 # ms per frame + multi-view figures -> JSON

Camera files (JSON): {"width", "height", "fx", "fy", "cx", "cy", "R": 3x3, "t": 3} world-to-camera,
OpenGL convention (camera looks down -Z, y up, cy from the bottom) or, with "convention": "opencv",
K-style intrinsics from the top-left and a camera looking down +Z; an optional "frames" list gives
one such camera per video frame (a moving camera).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from mio.cli.common import check_at_least, config_from_args, write_bench
from mio.core.errors import InputError
from mio.core.layouts import ARKIT52, VIDEO_FPS
from mio.render.tracks import follow, retime

CAMERA_CHOICES = ("portrait", "upper_body", "full_body", "orbit")
RENDER_OUTPUT = "out/render.mp4"


def _say(msg: str) -> None:
    print(f"\033[2m[mio render]\033[0m {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _npz_keys(path: str) -> set[str]:
    """The arrays a parameter file holds (a one-line error for what is not an .npz)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return set(z.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"cannot read {path}: not a .npz parameter file ({e or type(e).__name__})") from e


def load_inputs(paths: list[str]) -> tuple[tuple[np.ndarray, float] | None, tuple[np.ndarray, float] | None]:
    """Sort parameter files by content: face.npz has `params`, motion.npz has `features`/`joints`.
    Returns ((face (T, 61), fps) | None, (joints (T, 22, 3), fps) | None)."""
    from mio.core.paramfiles import check_fps, read_face_npz, read_motion_npz

    face = motion = None
    for p in paths:
        keys = _npz_keys(p)
        if "params" in keys:
            params, fps, layout, _ = read_face_npz(p)
            if layout != "arkit52" or params.shape[1] != ARKIT52.dim:
                raise InputError(f"{p}: the embedded avatar is driven by arkit52 face frames (61 values); this file "
                                 f"is {layout!r} with {params.shape[1]} (flame112 drives AvatarDiT, not the rasteriser)")
            face = (params, fps)
        elif "features" in keys or "joints" in keys:
            joints = None
            fps = 20.0
            if "features" in keys:
                feats, fps, joints = read_motion_npz(p)
                if joints is None:
                    from mio.body.humanml3d import features_to_joints

                    joints = features_to_joints(feats)
            else:
                try:
                    with np.load(p, allow_pickle=False) as z:
                        joints = np.asarray(z["joints"], np.float32)
                        fps = float(z["fps"]) if "fps" in z.files else fps
                except (OSError, ValueError, TypeError) as e:
                    raise InputError(f"cannot read joints from {p}: {e}") from e
                fps = check_fps(fps, p)
            if joints.ndim != 3 or joints.shape[1:] != (22, 3) or len(joints) == 0 or not np.all(np.isfinite(joints)):
                raise InputError(f"{p}: joints must be finite (T>0, 22, 3), got {joints.shape}")
            motion = (joints.astype(np.float64), fps)
        else:
            raise InputError(f"{p}: neither face parameters (`params`) nor body motion (`features`/`joints`)")
    if face is None and motion is None:
        raise InputError("give a face.npz and/or a motion.npz to render")
    return face, motion


# ---------------------------------------------------------------------------------------------
# Cameras
# ---------------------------------------------------------------------------------------------


def _camera_from_dict(d: dict, where: str):
    from mio.render.camera import Camera, from_opencv

    try:
        w, h = int(d["width"]), int(d["height"])
        check_size(w, h, where)
        numbers = [d[k] for k in ("fx", "fy", "cx", "cy")] + list(np.ravel(np.asarray(d["R"], np.float64)))
        numbers += list(np.ravel(np.asarray(d["t"], np.float64)))
        if not np.all(np.isfinite(np.asarray(numbers, np.float64))):
            raise InputError(f"{where}: the camera's numbers must be finite")
        if d.get("convention", "opengl") == "opencv":
            K = np.array([[d["fx"], 0, d["cx"]], [0, d["fy"], d["cy"]], [0, 0, 1]], np.float64)
            return from_opencv(K, np.asarray(d["R"], np.float64), np.asarray(d["t"], np.float64), w, h)
        return Camera.from_dict(d)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{where}: a camera needs width, height, fx, fy, cx, cy, R (3x3), t (3): {e}") from e


def camera_track(args: argparse.Namespace, renderer, n: int, fps: float) -> list:
    """One camera per frame from the command line: a preset (+ azimuth/elevation), an orbit, or a file."""
    from mio.render.camera import camera_center, orbit

    if args.camera_file:
        try:
            d = json.loads(Path(args.camera_file).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read camera file {args.camera_file}: {e}") from e
        if not isinstance(d, dict):
            raise InputError(f"{args.camera_file}: a camera file is a JSON object (see `mio render --help`)")
        if "frames" in d:
            if not isinstance(d["frames"], list) or not d["frames"] or not all(isinstance(f, dict) for f in d["frames"]):
                raise InputError(f"{args.camera_file}: \"frames\" must be a non-empty list of cameras")
            cams = [_camera_from_dict({**d, **f}, f"{args.camera_file} frame {i}") for i, f in enumerate(d["frames"])]
            return [cams[min(k, len(cams) - 1)] for k in range(n)]
        return [_camera_from_dict(d, args.camera_file)] * n
    lm = renderer.asset.landmarks
    preset = args.framing if args.camera == "orbit" else args.camera
    base = renderer.preset_camera(preset)
    pivot = camera_center(base)  # the framing's target: the camera's height, on the avatar's vertical axis
    pivot[0], pivot[2] = 0.0, float(lm["eye_mid"][2])
    if args.camera == "orbit":  # one full turn over the clip (or --orbit-seconds)
        period = args.orbit_seconds or n / fps
        return [orbit(base, pivot, args.azimuth + 360.0 * (k / fps) / period, args.elevation) for k in range(n)]
    cam = orbit(base, pivot, args.azimuth, args.elevation) if (args.azimuth or args.elevation) else base
    return [cam] * n


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


class VideoWriter:
    """H.264 MP4 written frame by frame (PyAV), under a partial name renamed by close(): a run that
    fails or is killed leaves nothing under the output's name (mio.core.atomic)."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        import av

        from mio.core.atomic import partial_path, remove_stale_partials

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.path)
        self._tmp = partial_path(self.path)
        self.container = av.open(str(self._tmp), mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        self.stream.options = {"crf": "18", "preset": "veryfast"}
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import av

        h, w = rgb.shape[:2]
        if (h % 2) or (w % 2):  # yuv420p needs even sizes
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        self.frames += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        from mio.core.atomic import commit

        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            commit(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop and delete the partial file."""
        import contextlib

        with contextlib.suppress(Exception):
            self.container.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


MAX_SIZE = 4096  # pixels a side: what the software rasteriser's framebuffer holds
MAX_RENDER_SECONDS = 3600.0  # a longer clip is a typo in a parameter file's fps, not a video to render


def check_size(w: int, h: int, where: str) -> None:
    if not (16 <= w <= MAX_SIZE and 16 <= h <= MAX_SIZE):
        raise InputError(f"{where}: frame size {w}x{h} is outside 16x16 to {MAX_SIZE}x{MAX_SIZE}")


def check_render_args(args: argparse.Namespace) -> None:
    """Every option of `mio render` that can be wrong, before anything loads (one-line errors)."""
    import math

    from mio.runtime.transports.mp4 import check_output

    check_output(args.output, {".mp4": "H.264 video"})
    if not (math.isfinite(args.fps) and 1 <= args.fps <= 120):
        raise InputError(f"--fps must be a number from 1 to 120, got {args.fps}")
    for name in ("azimuth", "elevation"):
        if not math.isfinite(getattr(args, name)):
            raise InputError(f"--{name} must be a finite number of degrees, got {getattr(args, name)}")
    if args.orbit_seconds is not None and not (math.isfinite(args.orbit_seconds) and args.orbit_seconds > 0):
        raise InputError(f"--orbit-seconds must be a positive number, got {args.orbit_seconds}")
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise InputError(f"--size must look like 512x512, got {args.size!r}") from None
        check_size(w, h, "--size")


def render_video(args: argparse.Namespace) -> dict:
    from tqdm import tqdm

    check_render_args(args)
    cfg = config_from_args(args)
    rcfg = cfg.render
    overrides = {}
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        overrides.update(width=w, height=h)
    look = args.look or _character_look(args, rcfg.look)
    from dataclasses import replace

    from mio.runtime.render_process import create_renderer

    rcfg = replace(rcfg, **overrides)
    face, motion = load_inputs(args.inputs)
    fps = args.fps
    duration = max(len(face[0]) / face[1] if face else 0.0, len(motion[0]) / motion[1] if motion else 0.0)
    if duration > MAX_RENDER_SECONDS:
        raise InputError(f"the parameter files last {duration:.0f} s; `mio render` draws at most "
                         f"{MAX_RENDER_SECONDS:.0f} s (is a file's fps wrong?)")
    n = max(1, int(round(duration * fps)))
    faces = retime(face[0].astype(np.float64), face[1], n, fps) if face else np.zeros((n, ARKIT52.dim))
    joints = retime(motion[0], motion[1], n, fps) if motion else None
    if joints is not None and not args.no_follow:
        joints = follow(joints)
    renderer = create_renderer(rcfg.backend, rcfg, look)
    look = renderer.default_look
    t0 = time.perf_counter()
    try:
        cams = camera_track(args, renderer, n, fps)
        writer = None
        try:
            for k in tqdm(range(n), desc="render", unit="frame", disable=args.quiet):
                img = renderer.render(faces[k], None if joints is None else joints[k], cams[k])
                if writer is None:
                    writer = VideoWriter(args.output, img.shape[1], img.shape[0], fps)
                writer.write(img)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
    finally:
        renderer.close()
    wall = time.perf_counter() - t0
    return {"frames": n, "fps": fps, "seconds": round(n / fps, 3), "wall_s": round(wall, 2), "look": look,
            "output": str(args.output)}


def _character_look(args: argparse.Namespace, default: str) -> str | dict:
    """The look spec of the character pack (its `avatar:` mapping, which may change a preset) unless
    render.look was set."""
    if any(s.startswith("render.look=") for s in (args.set or [])) or not getattr(args, "character", None):
        return default
    from mio.thinker.persona import load_character

    character = load_character(args.character)
    return getattr(character, "avatar", None) or character.look


LOOKS_TILE = 300  # pixels: width of a character's column in the looks sheet (portrait square, body 2x)
SHEET_FORMATS = (".png", ".jpg", ".jpeg", ".webp")


def looks_sheet(characters: list[str], output: str | Path, tile: int = LOOKS_TILE, samples: int = 4) -> Path:
    """One column per character: its card's look in a portrait over a full-body view, standing at
    rest with a neutral face, named below. All drawn by one renderer (one look each)."""
    from PIL import Image, ImageDraw, ImageFont

    from mio.core.config import RenderConfig
    from mio.render.raster import AnnyRenderer
    from mio.render.retarget import relaxed_joints
    from mio.thinker.persona import load_character

    out = Path(output)
    if out.suffix.lower() not in SHEET_FORMATS:
        raise InputError(f"{out}: the looks sheet is an image; name it {' or '.join(SHEET_FORMATS)}")
    cards = [load_character(c) for c in characters]  # an unknown name fails here, before any drawing
    label_h = tile // 8
    sheet = Image.new("RGB", (tile * len(cards), 3 * tile + label_h), (245, 245, 243))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(12, tile // 15))
    with AnnyRenderer(RenderConfig(width=tile, height=tile, samples=samples)) as r:
        for i, card in enumerate(cards):
            _say(f"{card.name}: look {card.avatar or card.look} ...")
            look = r.add_look(card.avatar or card.look)
            joints = relaxed_joints(r._look(look).rig)
            face = np.zeros(ARKIT52.dim)
            portrait = r.render(face, joints, r.preset_camera("portrait", tile, tile, look=look), look=look)
            body = r.render(face, joints, r.preset_camera("full_body", tile, 2 * tile, look=look), look=look)
            sheet.paste(Image.fromarray(portrait), (i * tile, 0))
            sheet.paste(Image.fromarray(body), (i * tile, tile))
            draw.text((i * tile + tile // 2, 3 * tile + label_h // 2), card.name, fill=(30, 30, 30), font=font,
                      anchor="mm")
    from mio.core.atomic import atomic_output

    with atomic_output(out) as tmp:
        sheet.save(tmp, format=Image.registered_extensions()[out.suffix.lower()], optimize=True)
    return out


def _render_cmd(args: argparse.Namespace) -> int:
    if args.inputs == ["looks"] and not Path("looks").exists():
        from mio.thinker.persona import known_characters

        names = args.characters.split(",") if args.characters else sorted(known_characters(), key=lambda c: c == "mio")
        output = args.output if args.output != RENDER_OUTPUT else "docs/looks.png"
        path = looks_sheet(names, output)
        print(f"wrote {path} ({len(names)} looks: {', '.join(names)})")
        return 0
    info = render_video(args)
    print(f"wrote {info['output']} ({info['frames']} frames, {info['seconds']} s at {info['fps']:g} fps, "
          f"look {info['look']!r}) in {info['wall_s']} s")
    return 0


def _export_avatar(args: argparse.Namespace) -> int:
    from mio.core.atomic import check_output
    from mio.render.avatar import load_avatar
    from mio.render.export import write_glb

    check_output(args.output, {".glb": "a binary glTF avatar"})  # before the asset loads
    cfg = config_from_args(args)
    asset = load_avatar(args.look or _character_look(args, cfg.render.look), cfg.render.cache_dir)
    path = write_glb(asset, args.output)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; look {asset.look!r}: mesh, 52 ARKit morph targets, "
          "104-bone skin)")
    return 0


def export_motion(motion: str | Path | None, face: str | Path | None, out_dir: str | Path) -> list[Path]:
    """motion.npz -> out_dir/motion.bvh; face.npz -> out_dir/face.csv + face.json. Returns the files.
    Both inputs are read and checked before anything is written; each file appears whole or not at all."""
    from mio.body.bvh import write_bvh
    from mio.core.paramfiles import read_face_npz, read_motion_npz
    from mio.render.export import write_face_curves

    if motion is None and face is None:
        raise InputError("nothing to export: give a motion.npz and/or a face.npz")
    out = Path(out_dir)
    body = read_motion_npz(motion) if motion is not None else None
    curves = read_face_npz(face) if face is not None else None
    if curves is not None and curves[2] != "arkit52":
        raise InputError(f"{face}: ARKit curves need the arkit52 layout, got {curves[2]!r}")
    written: list[Path] = []
    if body is not None:
        feats, fps, _ = body
        try:
            write_bvh(out / "motion.bvh", feats, fps)
        except ValueError as e:
            raise InputError(f"{motion}: {e}") from e
        written.append(out / "motion.bvh")
    if curves is not None:
        params, fps, _, _ = curves
        written.append(write_face_curves(params, fps, out / "face.csv"))
        written.append(write_face_curves(params, fps, out / "face.json"))
    return written


def _export_motion(args: argparse.Namespace) -> int:
    motion = face = None
    for p in args.inputs:
        keys = _npz_keys(p)
        if "params" in keys:
            face = p
        elif "features" in keys:
            motion = p
        else:
            raise InputError(f"{p}: neither face parameters (`params`) nor HumanML3D `features`")
    for path in export_motion(motion, face, args.output):
        print(f"wrote {path}")
    return 0


def _bench_render(args: argparse.Namespace) -> int:
    from mio.bench.render import bench_render

    check_at_least(args, frames=1, views=1, avatardit_clips=1)
    if args.avatardit and not (Path(args.avatardit) / "config.json").is_file():
        raise InputError(f"--avatardit {args.avatardit}: no AvatarDiT checkpoint there (config.json); make one with "
                         "`mio train render --stage joint`")
    rcfg = config_from_args(args).render
    look_b = None if args.look_b == "none" else args.look_b or ("nemo" if rcfg.look != "nemo" else "default")
    if look_b is not None:
        from mio.render.looks import check_look_spec

        check_look_spec(look_b, "--look-b")  # before the timing runs, not after them
    result = bench_render(rcfg, frames=args.frames, views=args.views, look_b=look_b)
    if args.avatardit:
        from mio.render.avatardit.evaluate import evaluate

        _say(f"AvatarDiT {args.avatardit}: sampling {args.avatardit_clips} held-out clips ...")
        result["avatardit"] = evaluate(args.avatardit, clips=args.avatardit_clips)
    result["summary"] = {
        **{name: {**cam["total"], "budget_ms": result["budget_ms"]} for name, cam in result["cameras"].items()},
        **({"multiview": result["multiview"]["summary"]} if "multiview" in result else {}),
        **({"looks": {"looks": result["looks"]["looks"], **result["looks"]["summary"]}} if "looks" in result else {}),
        **({"avatardit": result["avatardit"]} if "avatardit" in result else {}),
    }
    return write_bench(result, args.output)


def register(sub: argparse._SubParsersAction, bench_sub: argparse._SubParsersAction,
             common: argparse.ArgumentParser) -> None:
    r = sub.add_parser("render", parents=[common], help="render face/body parameter files to an MP4 from any viewpoint",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("inputs", nargs="+", metavar="FILE.npz",
                   help="face.npz (arkit52) and/or motion.npz (HumanML3D); or `looks` for the sheet of every character's look")
    r.add_argument("--camera", choices=CAMERA_CHOICES, default="upper_body",
                   help="a framing preset, or orbit (one turn round the avatar over the clip)")
    r.add_argument("--framing", choices=CAMERA_CHOICES[:3], default="full_body", help="the framing an orbit uses")
    r.add_argument("--azimuth", type=float, default=0.0, help="degrees round the avatar (+: towards its left)")
    r.add_argument("--elevation", type=float, default=0.0, help="degrees above the framing's height")
    r.add_argument("--orbit-seconds", type=float, default=None, help="seconds per orbit (default: the clip)")
    r.add_argument("--camera-file", metavar="CAM.json", help="explicit intrinsics + extrinsics (see above)")
    r.add_argument("--size", metavar="WxH", help="frame size (default: render.width x render.height)")
    r.add_argument("--look", help="avatar look (default: the character pack's)")
    r.add_argument("--fps", type=float, default=VIDEO_FPS)
    r.add_argument("--no-follow", action="store_true", help="fixed camera even when the body walks away")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--characters", metavar="A,B", help="`mio render looks`: these characters (default: every card)")
    r.add_argument("-o", "--output", default=RENDER_OUTPUT)
    r.set_defaults(func=_render_cmd)

    e = sub.add_parser("export", parents=[common], help="the avatar (glTF/GLB) or motion (BVH + ARKit curves) for engines")
    esub = e.add_subparsers(dest="what", required=True)
    ea = esub.add_parser("avatar", parents=[common], help="GLB with the mesh, 52 ARKit morph targets and the skinned rig")
    ea.add_argument("--look", help="avatar look (default: the character pack's)")
    ea.add_argument("-o", "--output", default="out/mio.glb")
    ea.set_defaults(func=_export_avatar)
    em = esub.add_parser("motion", parents=[common], help="motion.npz -> BVH, face.npz -> Live Link CSV + JSON curves")
    em.add_argument("inputs", nargs="+", metavar="FILE.npz")
    em.add_argument("-o", "--output", default="out/engine", help="output folder")
    em.set_defaults(func=_export_motion)

    b = bench_sub.add_parser("render", parents=[common],
                             help="renderer ms per frame per camera preset (budget 10 ms) and multi-view figures")
    b.add_argument("--frames", type=int, default=200)
    b.add_argument("--views", type=int, default=4, help="cameras in the multi-view batch")
    b.add_argument("--look-b", help="a second look to alternate with render.look frame by frame (default: nemo; "
                                    "'none' skips the figure)")
    b.add_argument("--avatardit", metavar="DIR", help="also evaluate this AvatarDiT checkpoint (PSNR/SSIM)")
    b.add_argument("--avatardit-clips", type=int, default=8)
    b.add_argument("-o", "--output", default="out/bench/render.json")
    b.set_defaults(func=_bench_render)
