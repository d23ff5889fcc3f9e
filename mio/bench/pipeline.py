"""`mio bench pipeline`: the live session's latencies, per turn index, and each stage's real-time factor.

Runs `sessions` fresh real-time sessions one after another (wall clock, frames ticking at 25 fps,
rendering live) on one set of loaded models, as a server does, types the same user turns into
each, and reports per turn index (P50 / P95 over the sessions) and pooled:
- TTFA: user text in -> first audio chunk of the reply produced (ready to play);
- audible TTFA: user text in -> the moment the reply's first sound plays on the session clock
  (its scheduled start plus any silence at the head of the chunk) -- what a listener waits;
- where that time goes: the Thinker's first clause (retrieval + pre-fill + decoding to the first
  clause mark), its synthesis (voice + alignment), the pipeline's transit, the scheduling lead;
- TTFV: user text in -> first video frame of the reply (pts >= the reply's first audio pts);
- per-stage RTF (compute time / media time) and per-call medians;
- sustained frame rate, skipped frames overall and while the avatar speaks;
- barge-in (first session): a long reply is interrupted 0.5 s into its audio; the time until the
  Interrupt has crossed every stage and reached the transport, and the audio chunks of the cut
  reply that still arrived after it (should be 0).
`compare_untrimmed` interleaves sessions whose voice chunks keep their leading/trailing silence
(the previous behaviour), so both columns come from the same minutes of the same machine.
Budgets from docs/architecture.md §7 are written beside each figure.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable

from mio.core.config import MioConfig, to_dict
from mio.core.frames import AudioChunk, Frame, Interrupt, VideoFrame
from mio.runtime.pacing import leading_silence

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
LONG_PROMPT = "Tell me a long story about the sea, please."

BUDGETS = {
    "ttfa_p50_s": 0.7,
    "ttfa_p95_s": 1.0,
    "ttfv_minus_ttfa_s": 0.1,
    "talker_rtf": 0.1,
    "face_ms_per_frame": 5.0,
    "body_ms_per_frame": 10.0,
    "render_ms_per_frame": 10.0,
    "sustained_fps": 25.0,
    "frames_missing_while_speaking_pct": 1.0,
    "barge_in_s": 0.2,
}


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 4) if xs else None


def quantile(xs: list[float], q: float) -> float | None:
    """Nearest-rank quantile (the value a fraction q of the samples do not exceed)."""
    if not xs:
        return None
    s = sorted(xs)
    return round(s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))], 4)


def _p(xs: list[float]) -> dict[str, float | None]:
    return {"p50": quantile(xs, 0.5), "p95": quantile(xs, 0.95), "n": len(xs)}


async def _one_session(models, turns: int, *, trim: bool, barge: bool, say: Callable[[str], None],
                       pieces: bool = True) -> dict:
    from mio.runtime.session import Session

    frames: list[tuple[float, float]] = []  # (wall, pts) of every video frame
    speech: list[tuple[float, float]] = []  # (pts start, pts end) of every audio chunk
    interrupts: list[float] = []  # wall time an Interrupt reached the output (the transport)
    late_audio: list[float] = []  # interrupted-turn audio that still arrived after the Interrupt
    audible: dict[int, float] = {}  # turn index -> wall time its first sound plays
    barge_turn = [0]
    session: Session | None = None

    async def on_frame(frame: Frame) -> None:
        now = time.perf_counter()
        if isinstance(frame, VideoFrame):
            frames.append((now, frame.pts))
        elif isinstance(frame, Interrupt):
            interrupts.append(now)
        elif isinstance(frame, AudioChunk):
            speech.append((frame.pts, frame.end))
            turn = len(session.timings) - 1
            if turn >= 0 and turn not in audible:
                lead = leading_silence(frame.samples, frame.sample_rate)
                audible[turn] = now + max(0.0, frame.pts - session.clock.now()) + lead
            if interrupts and frame.turn_id == barge_turn[0]:
                late_audio.append(now - interrupts[-1])

    # A visitor of its own, remembered by nobody (as the web app's anonymous visitors): as "guest"
    # every run recalled the questions of the runs before it ("This visitor told you in an earlier
    # meeting: ..."), ~20 more tokens to pre-fill per turn (+0.15 s), and wrote its questions into
    # a real guest's memories.
    session = Session(models, realtime=True, on_frame=on_frame, user_id=f"bench-{uuid.uuid4().hex[:12]}",
                      remember=False)
    talker = next(p for p in session.pipeline.processors if p.name == "talker")
    talker.trim = trim
    talker.stream_pieces = pieces
    t_warm = time.perf_counter()
    await session.start()
    warm = time.perf_counter() - t_warm
    t_start = time.perf_counter()
    barge_in_s: float | None = None
    try:
        await asyncio.sleep(1.0)  # idle: the avatar breathes and blinks before the first turn
        for i in range(turns):
            prompt = PROMPTS[i % len(PROMPTS)]
            say(f"{'' if pieces else 'whole clauses, '}{'trimmed' if trim else 'untrimmed'} turn {i + 1}/{turns}: {prompt}")
            await session.send_text(prompt)
            await session.wait_turn()
            while session.speaking():  # let the reply play out in real time, then a short pause
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
        if barge:  # interrupt a long reply 0.5 s after its audio starts
            say("barge-in turn")
            await session.send_text(LONG_PROMPT)
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

    st = session.stats.stages
    first_clause = st["thinker_first_clause"].seconds if "thinker_first_clause" in st else []
    per_turn = []
    for i, t in enumerate(session.timings[:turns]):
        if t.first_audio is None:
            continue
        ttfa = t.first_audio - t.t_input
        row = {"turn": i + 1, "ttfa_s": round(ttfa, 4),
               "audible_ttfa_s": round(audible[i] - t.t_input, 4) if i in audible else None,
               "ttfv_s": round(t.first_video - t.t_input, 4) if t.first_video else None}
        if i < len(first_clause):
            row["first_clause_s"] = round(first_clause[i], 4)
            row["after_first_clause_s"] = round(ttfa - first_clause[i], 4)  # synthesis + alignment + transit
        per_turn.append(row)
    fc = next(p for p in session.pipeline.processors if p.name == "frame_clock")
    span = (frames[-1][0] - frames[0][0]) if len(frames) > 1 else 0.0

    def speaking(pts: float) -> bool:
        return any(a <= pts < b for a, b in speech)

    due_speaking = sum(1 for _, pts in frames if speaking(pts)) + sum(1 for pts in fc.skipped_pts if speaking(pts))
    skipped_speaking = sum(1 for pts in fc.skipped_pts if speaking(pts))
    return {
        "trim": trim, "pieces": pieces, "warm_s": round(warm, 3), "wall_s": round(wall, 2), "per_turn": per_turn,
        "fps": round((len(frames) - 1) / span, 2) if span > 0 else 0.0, "frames_rendered": len(frames),
        "frames_skipped": fc.skipped, "frames_due_while_speaking": due_speaking,
        "frames_skipped_while_speaking": skipped_speaking,
        "barge_in_s": round(barge_in_s, 4) if barge_in_s is not None else None,
        "audio_after_barge_in": len(late_audio), "errors": session.errors,
        "stats": session.stats.summary()["stages"],
    }


def _per_turn_table(runs: list[dict], turns: int, key: str) -> list[dict]:
    rows = []
    for i in range(turns):
        xs = [r[key] for run in runs for r in run["per_turn"] if r["turn"] == i + 1 and r.get(key) is not None]
        rows.append({"turn": i + 1, **_p(xs)})
    return rows


def _pooled(runs: list[dict], key: str) -> list[float]:
    return [r[key] for run in runs for r in run["per_turn"] if r.get(key) is not None]


def _column(runs: list[dict], turns: int) -> dict:
    return {
        "ttfa_s": {"pooled": _p(_pooled(runs, "ttfa_s")), "per_turn": _per_turn_table(runs, turns, "ttfa_s")},
        "audible_ttfa_s": {"pooled": _p(_pooled(runs, "audible_ttfa_s")),
                           "per_turn": _per_turn_table(runs, turns, "audible_ttfa_s")},
        "first_clause_s": {"pooled": _p(_pooled(runs, "first_clause_s")),
                           "per_turn": _per_turn_table(runs, turns, "first_clause_s")},
        "after_first_clause_s": _p(_pooled(runs, "after_first_clause_s")),
        "ttfv_minus_ttfa_s": _p([r["ttfv_s"] - r["ttfa_s"] for run in runs for r in run["per_turn"]
                                 if r.get("ttfv_s") is not None]),
    }


async def bench_pipeline(config: MioConfig, turns: int = 6, progress: Callable[[str], None] | None = None,
                         sessions: int = 1, compare_untrimmed: bool = False, compare_whole_clauses: bool = False) -> dict:
    from mio.runtime.session import Models

    say = progress or (lambda m: None)
    models = Models(config, progress=say)
    runs: list[dict] = []
    try:
        variants = [(True, True)] + ([(False, True)] if compare_untrimmed else []) + \
            ([(True, False)] if compare_whole_clauses else [])
        for k in range(sessions):
            for trim, pieces in (variants if k % 2 == 0 else [variants[0], *variants[1:][::-1]]):
                say(f"session {k + 1}/{sessions}{'' if trim else ' (untrimmed voice chunks)'}"
                    f"{'' if pieces else ' (whole clauses, no first piece)'}")
                runs.append(await _one_session(models, turns, trim=trim, barge=(k == 0 and trim and pieces), say=say,
                                               pieces=pieces))
        threads = list(getattr(models.thinker.llm, "threads_used", []))  # llama.cpp threads per reply
    finally:
        models.close()

    main = [r for r in runs if r["trim"] and r["pieces"]]
    first = main[0]
    st = first["stats"]

    def med(stage: str) -> float | None:
        return st.get(stage, {}).get("median_ms")

    def rtf(stage: str) -> float | None:
        return st.get(stage, {}).get("rtf")

    col = _column(main, turns)
    due = sum(r["frames_due_while_speaking"] for r in main)
    missing = sum(r["frames_skipped_while_speaking"] for r in main)
    summary = {
        "ttfa_p50_s": col["ttfa_s"]["pooled"]["p50"],
        "ttfa_p95_s": col["ttfa_s"]["pooled"]["p95"],
        "audible_ttfa_p50_s": col["audible_ttfa_s"]["pooled"]["p50"],
        "audible_ttfa_p95_s": col["audible_ttfa_s"]["pooled"]["p95"],
        "ttfa_worst_turn_p50_s": max((r["p50"] for r in col["ttfa_s"]["per_turn"] if r["p50"] is not None), default=None),
        "ttfa_worst_turn_p95_s": max((r["p95"] for r in col["ttfa_s"]["per_turn"] if r["p95"] is not None), default=None),
        "ttfv_minus_ttfa_p50_s": col["ttfv_minus_ttfa_s"]["p50"],
        "thinker_first_clause_p50_s": col["first_clause_s"]["pooled"]["p50"],
        "after_first_clause_p50_s": col["after_first_clause_s"]["p50"],
        "thinker_warm_s": first["warm_s"],
        # thinker.n_threads=0: the threads each reply got (the cores other processes left free)
        "thinker_threads": {str(n): threads.count(n) for n in sorted(set(threads))},
        # thinker.yield_to_voice_s: how long each reply's LLM stopped while its first clause was voiced
        "thinker_paused_for_voice_ms_p50": med("thinker_paused_for_voice"),
        "talker_rtf": rtf("talker"),
        "talker_ms_per_clause_p50": med("talker"),
        "talker_first_piece_ms_p50": med("talker_first_piece"),
        "talker_piece_gap_ms_p90": st.get("talker_piece_gap", {}).get("p90_ms"),
        "talker_clause_gap_ms_p90": st.get("talker_clause_gap", {}).get("p90_ms"),  # silence inside a reply
        "face_ms_per_frame_p50": med("face"),
        "body_ms_per_frame_p50": med("body"),
        "render_ms_per_frame_p50": med("render"),
        "sustained_fps": _median([r["fps"] for r in main]),
        "frames_rendered": sum(r["frames_rendered"] for r in main),
        "frames_skipped": sum(r["frames_skipped"] for r in main),
        "frames_missing_while_speaking_pct": round(100 * missing / due, 2) if due else None,
        "barge_in_s": first["barge_in_s"],
        "audio_after_barge_in": first["audio_after_barge_in"],
        "errors": [e for r in runs for e in r["errors"]],
    }
    result = {
        "suite": "pipeline",
        "clock": "wall (live session)",
        "turns": turns,
        "sessions": sessions,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_1min": round(os.getloadavg()[0], 2)},
        "config": to_dict(config),
        "load_times_s": models.load_times,
        "summary": summary,
        "budgets": BUDGETS,
        "per_turn": col,
        "sessions_detail": [{k: v for k, v in r.items() if k != "stats"} for r in runs],
        "stages": st,
    }
    if compare_untrimmed:
        result["untrimmed"] = _column([r for r in runs if not r["trim"]], turns)
    if compare_whole_clauses:
        result["whole_clauses"] = _column([r for r in runs if not r["pieces"]], turns)
    return result


def per_turn_markdown(result: dict) -> str:
    """The per-turn P50/P95 table of a result (for the README and the terminal)."""
    col = result["per_turn"]
    cols = [("TTFA", col["ttfa_s"]["per_turn"]), ("audible", col["audible_ttfa_s"]["per_turn"]),
            ("first clause", col["first_clause_s"]["per_turn"])]
    if "untrimmed" in result:
        cols.append(("audible, untrimmed", result["untrimmed"]["audible_ttfa_s"]["per_turn"]))
    if "whole_clauses" in result:
        cols.append(("audible, whole clauses", result["whole_clauses"]["audible_ttfa_s"]["per_turn"]))
    head = "| turn | " + " | ".join(f"{name} P50 / P95 (s)" for name, _ in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for i in range(result["turns"]):
        cells = []
        for _, rows in cols:
            r = rows[i]
            cells.append(f"{r['p50']:.2f} / {r['p95']:.2f}" if r["p50"] is not None else "-")
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
