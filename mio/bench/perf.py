"""`mio bench perf`: every budget of docs/architecture.md §7 in one run, the budget beside each median.

Runs, in order: the Talker's real-time factor, the Face and Body Animators' per-frame cost (each
alone, one thread), the renderer (`bench_render`), and the live session (`bench_pipeline`: TTFA,
first video frame, sustained fps, barge-in), the Kodama codec's speed and the Thinker's memory
retrieval at 10k nodes / 50k edges (`bench_retrieval`). A part that cannot run here (a missing
checkpoint) is reported with its error instead of a number.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from mio.core.config import MioConfig, to_dict
from mio.core.frames import AudioChunk, UserAudio

# (key, what, budget, unit, compare): compare "<=" or ">=" against the budget.
BUDGETS = (
    ("ttfa_p50_s", "typed text -> first audio of the reply (TTFA), P50", 0.7, "s", "<="),
    ("ttfv_minus_ttfa_s", "typed text -> first video frame, minus TTFA", 0.1, "s", "<="),
    ("talker_rtf", "Talker real-time factor (synthesis time / audio time)", 0.1, "", "<="),
    ("codec_ms_per_frame", "Kodama codec, streaming encode + decode per 80 ms frame", 20.0, "ms", "<="),
    ("codec_offline_rtf", "Kodama codec offline RTF", 0.05, "", "<="),
    ("face_ms_per_frame", "Face Animator, per 40 ms frame", 5.0, "ms", "<="),
    ("body_ms_per_frame", "Body Animator streaming step, per output frame", 10.0, "ms", "<="),
    ("body_first_frame_s", "Body Animator first frame after a prompt", 0.3, "s", "<="),
    ("render_ms_per_frame", "Renderer, 512x512 frame, posing included", 10.0, "ms", "<="),
    ("sustained_fps", "whole live session, sustained frame rate", 25.0, "fps", ">="),
    ("barge_in_s", "barge-in: audio stops after an interrupt", 0.2, "s", "<="),
    ("memory_retrieval_ms", "memory retrieval at 10k nodes / 50k edges", 20.0, "ms", "<="),
)
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
)
FPS = 25.0


def _median_ms(xs: list[float]) -> float:
    return round(1e3 * statistics.median(xs), 4)


def measure_talker(voice, sentences: tuple[str, ...]) -> dict:
    """RTF per sentence (synthesis wall time / audio duration); median and the pooled ratio."""
    voice.synthesize("Warm up.")
    rtfs, synth, audio = [], 0.0, 0.0
    speech = None
    for s in sentences:
        t0 = time.perf_counter()
        speech = voice.synthesize(s)
        dt = time.perf_counter() - t0
        rtfs.append(dt / speech.duration)
        synth, audio = synth + dt, audio + speech.duration
    return {"median": round(statistics.median(rtfs), 4), "pooled": round(synth / audio, 4),
            "sentences": len(sentences), "audio_s": round(audio, 2), "speech": speech}


def _frame_costs(times: list[float]) -> dict:
    """Per-frame costs. Chunked backends (UniLS makes 10 frames at once, FloodDiffusion 4 per step)
    pay on one frame in N, so the budget is checked on the mean (the amortised cost); the median
    and p90 show the cheap frames, the max the chunk's burst."""
    return {"mean_ms": round(1e3 * float(np.mean(times)), 4), "median_ms": _median_ms(times),
            "p90_ms": round(1e3 * float(np.percentile(times, 90)), 4),
            "max_ms": round(1e3 * float(np.max(times)), 4)}


def measure_face(face, speech, frames: int, seed: int = 0) -> dict:
    """Per-frame cost of FaceSession.frame(t) at 25 fps, speaking for the speech, then listening."""
    session = face.new_session(seed)
    session.push_agent_audio(AudioChunk(pts=0.0, samples=speech.samples, sample_rate=speech.sample_rate,
                                        text="", words=speech.words, phones=speech.phones))
    user = (0.05 * np.random.default_rng(seed).standard_normal(int(2 * speech.sample_rate))).astype(np.float32)
    session.push_user_audio(UserAudio(pts=speech.duration, samples=user, sample_rate=speech.sample_rate))
    times = []
    for k in range(frames):
        t0 = time.perf_counter()
        session.frame(k / FPS)
        times.append(time.perf_counter() - t0)
    return _frame_costs(times) | {"frames": frames}


def measure_body(body, frames: int, seed: int = 0) -> dict:
    """Per-frame cost of BodySession.frame(t) at 25 fps with a new prompt every 2 s, and the time
    from set_prompt to the first frame computed under it."""
    session = body.new_session(seed)
    prompts = ("wave hello", "nod", "shrug", None, "point over there", "clap")
    times, first = [], []
    for k in range(frames):
        t = k / FPS
        t0 = time.perf_counter()
        if k % int(2 * FPS) == 0:
            session.set_prompt(prompts[(k // int(2 * FPS)) % len(prompts)], t)
            session.frame(t)
            first.append(time.perf_counter() - t0)
            continue
        session.frame(t)
        times.append(time.perf_counter() - t0)
    return _frame_costs(times) | {"first_frame_median_s": round(statistics.median(first), 5), "frames": frames}


def _codec_speed(quick: bool) -> dict:
    """The embedded Kodama codec: streaming encode + decode per 80 ms frame and offline RTF
    (speed only: the content of the clip does not change the cost; quality is `mio bench codec`)."""
    from mio.core.errors import MioError

    try:
        from mio.bench.codec import kodama_speed
        from mio.talker.codec import KodamaCodec

        codec = KodamaCodec.from_pretrained()
    except (ImportError, MioError) as e:
        return {"error": str(e)}
    clip = (0.1 * np.random.default_rng(0).standard_normal(24000 * 4)).astype(np.float32)
    return kodama_speed(codec, [clip], frames=30 if quick else 100, repeats=1 if quick else 3)


def _retrieval_speed(quick: bool) -> dict:
    """The Thinker's memory graph: retrieval over a synthetic 10k-node / 50k-edge store (mio.bench.thinker)."""
    from mio.bench.thinker import bench_retrieval

    queries = 50 if quick else 200
    return {**bench_retrieval(queries=queries), "queries": queries}


def _row(key: str, what: str, budget: float, unit: str, cmp: str, value: float | None, source: str,
         note: str | None = None) -> dict:
    ok = None if value is None else (value <= budget if cmp == "<=" else value >= budget)
    row = {"key": key, "what": what, "budget": budget, "unit": unit, "compare": cmp,
           "measured_median": value, "within_budget": ok, "source": source}
    if note:
        row["note"] = note
    return row


async def bench_perf(config: MioConfig, quick: bool = False, progress: Callable[[str], None] | None = None, *,
                     models=None, pipeline_fn=None, render_fn=None, skip_pipeline: bool = False) -> dict:
    """All §7 budgets. `models` (voice, face, body) and `pipeline_fn` / `render_fn` replace the
    configured backends and the two live benches (tests pass fakes)."""
    say = progress or (lambda m: None)
    t_start = time.perf_counter()
    if models is None:
        from mio.core import registry

        say(f"loading talker ({config.talker.backend}), face ({config.face.backend}), body ({config.body.backend}) ...")
        voice = registry.create("talker", config.talker.backend, config.talker)
        face = registry.create("face", config.face.backend, config.face)
        body = registry.create("body", config.body.backend, config.body)
    else:
        voice, face, body = models.voice, models.face, models.body
    say("talker RTF ...")
    talker = measure_talker(voice, SENTENCES[:2] if quick else SENTENCES)
    speech = talker.pop("speech")
    say("face per-frame cost ...")
    face_r = measure_face(face, speech, frames=125 if quick else 500, seed=config.seed)
    say("body per-frame cost ...")
    body_r = measure_body(body, frames=125 if quick else 500, seed=config.seed)
    del voice, face, body

    if render_fn is None:
        from mio.bench.render import bench_render

        render_fn = bench_render
    say("renderer ...")
    render = render_fn(config.render, frames=50 if quick else 200, cameras=(config.render.camera,))
    cam = render["cameras"][config.render.camera]

    pipe = None
    if not skip_pipeline:
        if pipeline_fn is None:
            from mio.bench.pipeline import bench_pipeline

            pipeline_fn = bench_pipeline
        say("live session (bench_pipeline) ...")
        pipe = await pipeline_fn(config, turns=2 if quick else 6, progress=say)
    ps = pipe["summary"] if pipe else {}
    live = "bench_pipeline (live session, wall clock)"
    skipped = "skipped (--skip-pipeline)"

    say("Kodama codec speed ...")
    codec_r = _codec_speed(quick)
    codec_src = codec_r.get("error") or "embedded Kodama checkpoint alone, 4 s clip (quality: mio bench codec)"
    say("memory retrieval at 10k nodes / 50k edges ...")
    memory = _retrieval_speed(quick)
    b = {k: (what, budget, unit, cmp) for k, what, budget, unit, cmp in BUDGETS}
    rows = [
        _row("ttfa_p50_s", *b["ttfa_p50_s"], ps.get("ttfa_p50_s"), live if pipe else skipped),
        _row("ttfv_minus_ttfa_s", *b["ttfv_minus_ttfa_s"], ps.get("ttfv_minus_ttfa_p50_s"), live if pipe else skipped),
        _row("talker_rtf", *b["talker_rtf"], talker["median"],
             f"talker {config.talker.backend!r} alone, {talker['sentences']} sentences",
             note=f"live-session RTF: {ps.get('talker_rtf')}" if pipe else None),
        _row("codec_ms_per_frame", *b["codec_ms_per_frame"],
             codec_r["streaming"]["ms_per_frame_median"] if "streaming" in codec_r else None, codec_src),
        _row("codec_offline_rtf", *b["codec_offline_rtf"],
             codec_r["offline_rtf"]["median"] if "offline_rtf" in codec_r else None, codec_src),
        _row("face_ms_per_frame", *b["face_ms_per_frame"], face_r["mean_ms"],
             f"face {config.face.backend!r} alone, {face_r['frames']} frames (mean: chunked backends pay once per chunk)",
             note=f"live-session median: {ps.get('face_ms_per_frame_p50')} ms" if pipe else None),
        _row("body_ms_per_frame", *b["body_ms_per_frame"], body_r["mean_ms"],
             f"body {config.body.backend!r} alone, {body_r['frames']} frames (mean: chunked backends pay once per chunk)",
             note=f"live-session median: {ps.get('body_ms_per_frame_p50')} ms" if pipe else None),
        _row("body_first_frame_s", *b["body_first_frame_s"], body_r["first_frame_median_s"],
             "set_prompt + first frame() compute time"),
        _row("render_ms_per_frame", *b["render_ms_per_frame"], cam["total"]["median_ms"],
             f"bench_render, camera {config.render.camera!r}, {render['frames']} frames",
             note=(f"other processes used {cam.get('load', {}).get('other_cpus')} cores meanwhile"
                   + (f"; live-session median: {ps.get('render_ms_per_frame_p50')} ms" if pipe else ""))),
        _row("sustained_fps", *b["sustained_fps"], ps.get("sustained_fps"), live if pipe else skipped,
             note=("no audio-underrun counter exists in the session yet; frames_skipped="
                   f"{ps.get('frames_skipped')}") if pipe else None),
        _row("barge_in_s", *b["barge_in_s"], ps.get("barge_in_s"), live if pipe else skipped),
        _row("memory_retrieval_ms", *b["memory_retrieval_ms"], memory.get("warm_ms", {}).get("p50"),
             memory.get("error") or f"bench_retrieval: {memory['nodes']} nodes / {memory['edges']} edges, "
                                    f"{memory['queries']} queries at one story time (warm P50)"),
    ]
    return {
        "suite": "perf",
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_1min": round(os.getloadavg()[0], 2)},
        "config": to_dict(config),
        "summary": {r["key"]: {"median": r["measured_median"], "budget": r["budget"], "unit": r["unit"],
                               "ok": r["within_budget"]} for r in rows},
        "budgets": rows,
        "details": {"talker": talker, "codec": codec_r, "memory": memory, "face": face_r, "body": body_r,
                    "render": {"camera": config.render.camera, **cam},
                    "pipeline": {k: v for k, v in (pipe or {}).items() if k not in ("config", "stages")}},
        "wall_s": round(time.perf_counter() - t_start, 1),
    }


def run(config: MioConfig, quick: bool = False, progress=None, **kw) -> dict:
    return asyncio.run(bench_perf(config, quick, progress, **kw))
