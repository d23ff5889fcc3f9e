"""`mio bench render`: the renderer's time per frame against its budget (docs/architecture.md §7).

The face and the body change every frame, as in a live session: the jaw talks, the eyes blink and
glance, the smile comes and goes and the head nods (every blendshape upload and the head/eye bones
are redone), while the left arm waves and the torso sways (retargeting and skinning are redone).
For each camera preset it reports the median and 90th percentile, in milliseconds, of

- pose: blendshapes + retargeting + forward kinematics + bone/face uploads,
- draw: culling, drawing, anti-aliasing and the RGB readback,
- total: the whole `render()` call,

with the budget beside them, the multi-view figures (`--views`: batch rendering time and the
reprojection consistency of the views, see `multiview_figures`), the cost of switching looks
between frames (`--look-b`: one renderer drawing two looks alternately against one look, see
`look_switch_figures`), and how busy the machine was meanwhile (other processes share the two
cores, so every figure is reported with the load it was measured under).
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from mio.core.config import RenderConfig, to_dict
from mio.render.camera import CAMERA_PRESETS
from mio.render.tracks import talking_face, waving_body

BUDGET_MS = 10.0  # per 512x512 frame, posing included (docs/architecture.md §7)
FPS = 25.0  # the live session's frame rate: the motion below is paced as if played at it
WARMUP = 10  # frames rendered before timing (shader variants compile on first use)


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
            "own_cpu_s": round(own, 3),  # CPU seconds this process spent (all its threads)
            "other_cpus": round(max(busy - self._busy - own, 0.0) / span * cpus, 2),
        }


def _stats(xs: list[float]) -> dict[str, float]:
    q = np.percentile(xs, [50, 90])
    return {"median_ms": round(float(q[0]), 3), "p90_ms": round(float(q[1]), 3)}


def multiview_figures(renderer, faces: np.ndarray, joints: np.ndarray, views: int, frames: int) -> dict:
    """Batch multi-view rendering and the rasteriser's own multi-view consistency.

    - time: `render_batch` of the same pose from `views` orbit cameras (posing once) against
      `views` separate `render()` calls, per frame;
    - consistency (mio.render.consistency.reprojection_consistency): for a few motion states, every view
      warped into every other through the mesh depth, PSNR / SSIM where both see the surface. The
      lights are fixed to the camera, so shading legitimately differs between views: this is the
      ceiling a perfectly consistent renderer with this lighting reaches, the reference for AvatarDiT.
    """
    from mio.render.camera import camera_center, orbit
    from mio.render.consistency import reprojection_consistency

    base = renderer.preset_camera("upper_body")
    pivot = camera_center(base)
    pivot[0], pivot[2] = 0.0, float(renderer.asset.landmarks["eye_mid"][2])
    azimuths = np.linspace(-60.0, 60.0, views) if views > 1 else np.zeros(1)
    cams = [orbit(base, pivot, float(a)) for a in azimuths]
    batch, single = [], []
    for k in range(frames + WARMUP):
        t = time.perf_counter()
        renderer.render_batch(faces[k], joints[k], cams)
        t1 = time.perf_counter()
        for c in cams:
            renderer.render(faces[k], joints[k], c)
        t2 = time.perf_counter()
        if k >= WARMUP:
            batch.append(1e3 * (t1 - t))
            single.append(1e3 * (t2 - t1))
    consistency = []
    for k in np.linspace(WARMUP, frames + WARMUP - 1, 3).astype(int):
        images = renderer.render_batch(faces[k], joints[k], cams)
        depths = renderer.render_batch(faces[k], joints[k], cams, depth=True)
        consistency.append(reprojection_consistency(images, depths, cams))
    med = lambda key: round(float(np.median([c[key] for c in consistency])), 4)  # noqa: E731
    summary = {
        "views": views,
        "batch_ms_per_frame": round(statistics.median(batch), 3),
        "batch_ms_per_view": round(statistics.median(batch) / views, 3),
        "separate_calls_ms_per_frame": round(statistics.median(single), 3),
        "reprojection_psnr_db": med("psnr_db"),
        "reprojection_ssim": med("ssim"),
        "overlap": med("overlap"),
    }
    return {
        "azimuths_deg": [round(float(a), 1) for a in azimuths],
        "batch": _stats(batch),
        "separate_calls": _stats(single),
        "consistency_per_state": consistency,
        "summary": summary,
    }


def look_switch_figures(renderer, faces: np.ndarray, joints: np.ndarray, other: str, frames: int,
                        block: int = 10) -> dict:
    """What switching looks between frames costs: ms per frame drawing the default look A every
    frame, `other` look B every frame, and A and B alternately, in interleaved blocks of `block`
    frames (so all three see the same machine load); the face and body move as in the main figures.
    The switch overhead is the alternating median less the mean of the two single-look medians.
    Also the time `add_look` took (asset load, or its first build, and upload)."""
    t0 = time.perf_counter()
    b = renderer.add_look(other)
    add_s = time.perf_counter() - t0
    a = renderer.default_look
    series: dict[str, list[float]] = {"a": [], "b": [], "alternating": []}
    order = (("a", (a, a)), ("b", (b, b)), ("alternating", (a, b)))
    cams = {look: renderer.preset_camera("upper_body", look=look) for look in (a, b)}
    for start in range(0, frames + WARMUP, block):
        for key, looks in order:
            for k in range(start, min(start + block, frames + WARMUP)):
                look = looks[k % 2]
                t = time.perf_counter()
                renderer.render(faces[k], joints[k], cams[look], look=look)
                if k >= WARMUP:
                    series[key].append(1e3 * (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in series.items()}
    overhead = med["alternating"] - 0.5 * (med["a"] + med["b"])
    return {
        "looks": [a, b],
        "camera": "upper_body",
        "add_look_s": round(add_s, 3),
        **{f"{k}_only" if k != "alternating" else k: _stats(v) for k, v in series.items()},
        "summary": {"a_only_ms": round(med["a"], 3), "b_only_ms": round(med["b"], 3),
                    "alternating_ms": round(med["alternating"], 3), "switch_overhead_ms": round(overhead, 3)},
    }


def bench_render(config: RenderConfig, frames: int = 200, cameras: tuple[str, ...] = CAMERA_PRESETS,
                 views: int = 0, look_b: str | None = None) -> dict:
    """Render `frames` moving frames per camera preset; medians/p90 of pose, draw and total in ms.
    With `views` > 0, also the multi-view figures (`multiview_figures`) over `frames` // 4 frames;
    with `look_b`, the look-switching figures (`look_switch_figures`) over `frames` frames."""
    from mio.render.avatar import load_avatar
    from mio.render.raster import AnnyRenderer
    from mio.render.retarget import relaxed_joints

    load_avatar(config.look, config.cache_dir)  # builds it if missing (not timed)
    t0 = time.perf_counter()
    load_avatar(config.look, config.cache_dir)
    asset_s = time.perf_counter() - t0  # reading the prepared asset alone
    t0 = time.perf_counter()
    renderer = AnnyRenderer(config)
    load_s = time.perf_counter() - t0
    try:
        faces = talking_face(frames + WARMUP, FPS)
        joints = waving_body(relaxed_joints(renderer.rig), frames + WARMUP, FPS)
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
                # CPU time per frame over all threads (warm-up included): what the frame costs the
                # machine whatever the load; on an idle 2-core machine the wall time is at most this
                "cpu_ms_per_frame": round(1e3 * load.result["own_cpu_s"] / (frames + WARMUP), 3),
                "load": load.result,
            }
        multiview = None
        if views > 0:
            with _LoadMeter() as load:
                multiview = multiview_figures(renderer, faces, joints, views, max(frames // 4, 3))
            multiview["load"] = load.result
        switching = None
        if look_b is not None:
            with _LoadMeter() as load:
                switching = look_switch_figures(renderer, faces, joints, look_b, frames)
            switching["load"] = load.result
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
        "asset_load_s": round(asset_s, 3),
        "load_time_s": round(load_s, 3),  # renderer start: asset + GL context + shaders + buffers
        "cameras": per_camera,
        **({"multiview": multiview} if multiview is not None else {}),
        **({"looks": switching} if switching is not None else {}),
    }
