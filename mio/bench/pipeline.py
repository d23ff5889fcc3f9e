"""`mio bench pipeline`: the live session's latencies and each stage's real-time factor.

Runs a real-time session (wall clock, frames ticking at 25 fps, rendering live) on the configured
backends, types several user turns, and reports medians:
- TTFA: user text in -> first audio of the reply produced;
- TTFV: user text in -> first video frame of the reply (pts >= the reply's first audio pts);
- per-stage RTF (compute time / media time) and per-call medians;
- sustained frame rate and skipped frames over the whole run;
- barge-in: a long reply is interrupted 0.5 s into its audio; the time until the Interrupt has
  crossed every stage and reached the transport (which then stops playback), and how many audio
  chunks of the interrupted reply still arrived after it (should be 0).
Budgets from ARCHITECTURE.md §7 are written beside each figure.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Callable

from mio.core.config import MioConfig, to_dict
from mio.core.frames import AudioChunk, Frame, Interrupt, VideoFrame

PROMPTS = (
    "Hello! What's your name?",
    "How are you feeling today?",
    "Tell me something you like.",
    "What do you think about the sea?",
    "Do you like stories?",
    "Thank you, it was nice to meet you.",
    "What is your favourite colour?",
    "Can you tell me a short joke?",
)

BUDGETS = {
    "ttfa_p50_s": 0.7,
    "ttfv_minus_ttfa_s": 0.1,
    "talker_rtf": 0.1,
    "face_ms_per_frame": 5.0,
    "body_ms_per_frame": 10.0,
    "render_ms_per_frame": 10.0,
    "sustained_fps": 25.0,
    "barge_in_s": 0.2,
}


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 4) if xs else None


async def bench_pipeline(config: MioConfig, turns: int = 6, progress: Callable[[str], None] | None = None) -> dict:
    from mio.runtime.session import Models, Session

    say = progress or (lambda m: None)
    models = Models(config, progress=say)
    frames: list[float] = []
    interrupts: list[float] = []  # wall time an Interrupt reached the output (the transport)
    late_audio: list[float] = []  # interrupted-turn audio that still arrived after the Interrupt

    async def on_frame(frame: Frame) -> None:
        if isinstance(frame, VideoFrame):
            frames.append(time.perf_counter())
        elif isinstance(frame, Interrupt):
            interrupts.append(time.perf_counter())
        elif isinstance(frame, AudioChunk) and interrupts and frame.turn_id == barge_turn[0]:
            late_audio.append(time.perf_counter() - interrupts[-1])

    barge_turn = [0]
    barge_in_s: float | None = None
    session = Session(models, realtime=True, on_frame=on_frame)
    await session.start()
    t_start = time.perf_counter()
    try:
        await asyncio.sleep(1.0)  # idle: the avatar breathes and blinks before the first turn
        for i in range(turns):
            prompt = PROMPTS[i % len(PROMPTS)]
            say(f"turn {i + 1}/{turns}: {prompt}")
            await session.send_text(prompt)
            await session.wait_turn()
            # let the reply play out in real time, then a short pause
            while session.speaking():
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        # Barge-in: interrupt a long reply 0.5 s after its audio starts.
        say("barge-in turn")
        await session.send_text("Tell me a long story about the sea, please.")
        while session.timings[-1].first_audio is None:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        barge_turn[0] = next(p for p in session.pipeline.processors if p.name == "thinker").turn_id
        t_cut = time.perf_counter()
        await session.interrupt()
        while not interrupts:
            await asyncio.sleep(0.005)
        barge_in_s = interrupts[-1] - t_cut
        await asyncio.sleep(1.0)
    finally:
        wall = time.perf_counter() - t_start
        await session.close()
        models.close()

    ttfa = [t.first_audio - t.t_input for t in session.timings if t.first_audio is not None]
    ttfv = [t.first_video - t.t_input for t in session.timings if t.first_video is not None]
    gaps = [t.first_video - t.first_audio for t in session.timings if t.first_video and t.first_audio]
    stats = session.stats.summary()
    st = stats["stages"]
    fc = next(p for p in session.pipeline.processors if p.name == "frame_clock")
    span = (frames[-1] - frames[0]) if len(frames) > 1 else 0.0
    fps = (len(frames) - 1) / span if span > 0 else 0.0

    def med(stage: str) -> float | None:
        return st.get(stage, {}).get("median_ms")

    def rtf(stage: str) -> float | None:
        return st.get(stage, {}).get("rtf")

    summary = {
        "ttfa_p50_s": _median(ttfa),
        "ttfv_p50_s": _median(ttfv),
        "ttfv_minus_ttfa_p50_s": _median(gaps),
        "thinker_first_clause_p50_ms": med("thinker_first_clause"),
        "talker_rtf": rtf("talker"),
        "talker_ms_per_clause_p50": med("talker"),
        "face_ms_per_frame_p50": med("face"),
        "body_ms_per_frame_p50": med("body"),
        "render_ms_per_frame_p50": med("render"),
        "sustained_fps": round(fps, 2),
        "frames_rendered": len(frames),
        "frames_skipped": fc.skipped,
        "barge_in_s": round(barge_in_s, 4) if barge_in_s is not None else None,
        "audio_after_barge_in": len(late_audio),
        "errors": session.errors,
    }
    return {
        "suite": "pipeline",
        "clock": "wall (live session)",
        "turns": turns,
        "wall_s": round(wall, 2),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "config": to_dict(config),
        "load_times_s": models.load_times,
        "summary": summary,
        "budgets": BUDGETS,
        "per_turn": {"ttfa_s": [round(x, 4) for x in ttfa], "ttfv_s": [round(x, 4) for x in ttfv]},
        "stages": st,
    }
