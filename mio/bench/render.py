"""`mio bench render`: the renderer's time per frame against its budget (ARCHITECTURE.md §7).

The face and the body change every frame, as in a live session: the jaw talks, the eyes blink and
glance, the smile comes and goes and the head nods (every blendshape upload and the head/eye bones
are redone), while the left arm waves and the torso sways (retargeting and skinning are redone).
For each camera preset it reports the median and 90th percentile, in milliseconds, of

- pose: blendshapes + retargeting + forward kinematics + bone/face uploads,
- draw: culling, drawing, anti-aliasing and the RGB readback,
- total: the whole `render()` call,

with the budget beside them, and how busy the machine was meanwhile (other processes share the
two cores, so every figure is reported with the load it was measured under).
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from mio.core.config import RenderConfig, to_dict
from mio.core.layouts import ARKIT52, HUMANML3D_JOINT_NAMES, blendshape_index
from mio.render.camera import CAMERA_PRESETS

BUDGET_MS = 10.0  # per 512x512 frame, posing included (ARCHITECTURE.md §7)
FPS = 25.0  # the live session's frame rate: the motion below is paced as if played at it
WARMUP = 10  # frames rendered before timing (shader variants compile on first use)


def _face_track(frames: int) -> np.ndarray:
    """(frames, 61) arkit52: talking jaw, blinks every ~3 s, glances, a slow smile, small nods."""
    t = np.arange(frames) / FPS
    f = np.zeros((frames, ARKIT52.dim))

    def put(name: str, value: np.ndarray) -> None:
        f[:, blendshape_index(name)] = np.clip(value, 0.0, 1.0)

    put("jawOpen", 0.25 + 0.25 * np.sin(2 * np.pi * 3.1 * t) + 0.1 * np.sin(2 * np.pi * 5.3 * t))
    put("mouthFunnel", 0.2 + 0.2 * np.sin(2 * np.pi * 1.7 * t))
    blink = np.clip(1.0 - np.abs((t % 3.0) - 0.12) / 0.12, 0.0, 1.0)  # a 0.24 s blink every 3 s
    put("eyeBlinkLeft", blink)
    put("eyeBlinkRight", blink)
    smile = 0.3 + 0.3 * np.sin(2 * np.pi * 0.2 * t)
    put("mouthSmileLeft", smile)
    put("mouthSmileRight", smile)
    put("browInnerUp", 0.2 + 0.2 * np.sin(2 * np.pi * 0.5 * t))
    glance = np.sin(2 * np.pi * 0.3 * t)
    put("eyeLookOutLeft", glance)
    put("eyeLookInRight", glance)
    put("eyeLookInLeft", -glance)
    put("eyeLookOutRight", -glance)
    f[:, ARKIT52.slice("head")] = np.stack(
        [
            0.08 * np.sin(2 * np.pi * 0.7 * t),
            0.15 * np.sin(2 * np.pi * 0.25 * t),
            0.03 * np.sin(2 * np.pi * 0.4 * t),
        ],
        axis=1,
    )
    return f


def _body_track(rest: np.ndarray, frames: int) -> np.ndarray:
    """(frames, 22, 3) HumanML3D joints: the left arm raised and waving, the torso swaying."""
    names = list(HUMANML3D_JOINT_NAMES)
    s, e, w = (names.index(n) for n in ("left_shoulder", "left_elbow", "left_wrist"))
    upper = float(np.linalg.norm(rest[e] - rest[s]))
    lower = float(np.linalg.norm(rest[w] - rest[e]))
    t = np.arange(frames) / FPS
    out = np.repeat(rest[None], frames, axis=0)
    legs = (
        "pelvis",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "left_foot",
        "right_foot",
    )
    upper_body = [i for i, n in enumerate(names) if n not in legs]
    for k, tk in enumerate(t):
        raise_ = 0.5 + 0.5 * np.sin(2 * np.pi * 0.15 * tk)  # the arm goes up and down again
        elbow_dir = np.array([0.6, -1.0 + 1.3 * raise_, 0.25])
        wave = 0.6 * np.sin(2 * np.pi * 1.5 * tk)  # forearm swing, radians
        wrist_dir = np.array([np.sin(wave), -1.0 + 2.0 * raise_ * np.cos(wave), 0.3])
        out[k, e] = rest[s] + upper * elbow_dir / np.linalg.norm(elbow_dir)
        out[k, w] = out[k, e] + lower * wrist_dir / np.linalg.norm(wrist_dir)
        sway = 0.02 * np.sin(2 * np.pi * 0.3 * tk)  # upper body leans sideways over the hips
        out[k, upper_body, 0] += sway * (out[k, upper_body, 1] - rest[0, 1]) / 0.5
    return out


def _cpu_jiffies() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan"), float("nan")
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields) - idle) / hz, sum(fields) / hz


class _LoadMeter:
    """Load average, and how much of the machine *other* processes used during a span."""

    def __enter__(self) -> _LoadMeter:
        self.loadavg_before = os.getloadavg()[0]
        self._busy, self._total = _cpu_jiffies()
        t = os.times()
        self._own = t.user + t.system
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = _cpu_jiffies()
        t = os.times()
        own = t.user + t.system - self._own
        span = max(total - self._total, 1e-9)  # CPU-seconds available over all cores
        cpus = os.cpu_count() or 1
        self.result = {
            "loadavg_1min_before": round(self.loadavg_before, 2),
            "loadavg_1min_after": round(os.getloadavg()[0], 2),
            # cores' worth of CPU used by this process (llvmpipe threads included) and by the rest
            "own_cpus": round(own / span * cpus, 2),
            "other_cpus": round(max(busy - self._busy - own, 0.0) / span * cpus, 2),
        }


def _stats(xs: list[float]) -> dict[str, float]:
    q = np.percentile(xs, [50, 90])
    return {"median_ms": round(float(q[0]), 3), "p90_ms": round(float(q[1]), 3)}


def bench_render(config: RenderConfig, frames: int = 200, cameras: tuple[str, ...] = CAMERA_PRESETS) -> dict:
    """Render `frames` moving frames per camera preset; medians/p90 of pose, draw and total in ms."""
    from mio.body.retarget import relaxed_joints
    from mio.render.raster import AnnyRenderer

    t0 = time.perf_counter()
    renderer = AnnyRenderer(config)
    load_s = time.perf_counter() - t0
    try:
        faces = _face_track(frames + WARMUP)
        joints = _body_track(relaxed_joints(renderer.rig), frames + WARMUP)
        per_camera: dict[str, dict] = {}
        for name in cameras:
            camera = renderer.preset_camera(name)
            pose, draw, total = [], [], []
            with _LoadMeter() as load:
                for k in range(frames + WARMUP):
                    t = time.perf_counter()
                    renderer.render(faces[k], joints[k], camera)
                    dt = 1e3 * (time.perf_counter() - t)
                    if k >= WARMUP:
                        total.append(dt)
                        pose.append(renderer.timings["pose_ms"])
                        draw.append(renderer.timings["draw_ms"])
            per_camera[name] = {
                "pose": _stats(pose),
                "draw_readback": _stats(draw),
                "total": _stats(total),
                "within_budget": statistics.median(total) <= BUDGET_MS,
                "frames_over_budget": round(float(np.mean(np.array(total) > BUDGET_MS)), 3),
                "load": load.result,
            }
        gl = renderer.ctx.info.get("GL_RENDERER", "?")
        threads = getattr(renderer, "gl_threads", None)
    finally:
        renderer.close()
    return {
        "suite": "render",
        "clock": "wall (perf_counter), per render() call",
        "frames": frames,
        "size": [config.width, config.height],
        "budget_ms": BUDGET_MS,
        "config": to_dict(config),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "gl_renderer": gl,
            "llvmpipe_threads": threads,
            "LP_NUM_THREADS": os.environ.get("LP_NUM_THREADS"),
        },
        "load_time_s": round(load_s, 3),
        "cameras": per_camera,
    }
