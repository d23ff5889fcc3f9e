"""`mio bench serve`: the web app's figures, measured through the real WebSocket.

Starts `mio serve` in this process (real models unless given), connects `sessions` clients at
once as pages would (POST /api/session, then /ws/session), each with its microphone streaming
16-bit PCM in 100 ms chunks in real time (quiet hiss between utterances, like a real room), and
timestamps every message on arrival. Each client holds its own conversation: typed turns, then
spoken turns (the user's lines in a second voice, piper "joe", streamed as microphone audio).
- typed first audio: text sent -> the reply's first sound plays (audible: the later of its
  arrival and its time on the page's audio clock, plus silence at the head of the chunk);
- spoken first audio: the end of the user's speech (the last voiced sample sent) -> the same;
- fps while speaking and frames missing: video frames whose pts fall inside the avatar's speech,
  against the 25 frames per second due there (frame indices are consecutive on the server);
- A/V offset: the page's jitter buffer (static/app.js) is replayed on the arrivals -- a frame
  drawn after its time on the audio clock is off by the excess; P95 over frames drawn during
  speech. Audio that arrives after its time on the buffer would be cut: counted as dropped;
- barge-in: `interrupt` sent 0.5 s into a long reply -> the `interrupt` message back (the page
  drops its scheduled audio on it), typed barge-in the same way, and by voice (the user starts
  talking when the reply's first audio arrives -> the interrupt; the endpointer waits `min_barge_in_s` of speech on
  purpose, so a backchannel does not cut the avatar); audio of a cut reply arriving afterwards
  is counted (should be 0);
- disconnect clean-up: a client leaves mid-answer -> its session is gone from the server.
With `--browser`, the page is also driven in Chromium and its own drift / latency figures are read.
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
from collections.abc import Callable

import numpy as np

from mio.bench.serve_client import JITTER_S, LATE_WINDOW, MARGIN_S, MIC_RATE, Arrival, BenchClient, quantile
from mio.core.config import MioConfig, to_dict

FPS = 25.0
PROMPTS = ("Hello! What's your name?", "How are you feeling today?", "Tell me something you like.",
           "What do you think about the sea?", "Do you like stories?", "Thank you, it was nice to meet you.")
SPOKEN = ("Captain, what is the Nautilus?", "Where are we sailing tonight?", "Is Ned Land still aboard?",
          "What does Professor Aronnax study?", "Do you ever miss the land?", "Good night, Captain.")
LONG_PROMPT = "Tell me a long story about the sea, please."
LONG_PROMPTS = (LONG_PROMPT, "Describe the Nautilus to me, from her bow to her stern.",
                "What have you seen at the bottom of the ocean, Captain?")
BUDGETS = {"message_to_first_audio_s": 0.7, "spoken_first_audio_p50_s": 1.2, "first_frame_minus_first_audio_s": 0.1,
           "fps_while_speaking": 24.0, "frames_missing_while_speaking_pct": 1.0, "av_offset_p95_s": 0.04,
           "interrupt_s": 0.2, "disconnect_cleanup_s": 2.0}


async def _session(base: str, name: str, mode: str = "browser") -> BenchClient:
    import httpx
    from websockets.asyncio.client import connect

    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/api/session", json={"mode": mode})
        r.raise_for_status()
        ws_path = r.json()["ws"]
    ws = await connect(base.replace("http", "ws", 1) + ws_path, max_size=1 << 24)
    client = BenchClient(ws, name)
    await client.wait_for(lambda a: a.kind == "ready", 0.0)
    return client


async def _play_out(c: BenchClient, turn: int) -> None:
    speech_end = max((a.pts + a.duration for a in c.log if a.kind == "audio" and a.turn == turn), default=0.0)
    while c.buffer.offset is not None and time.perf_counter() < speech_end + c.buffer.offset + 0.6:
        await asyncio.sleep(0.05)


async def _reply(c: BenchClient, after: float, turn: int | None = None) -> tuple[Arrival, Arrival, Arrival]:
    start = await c.wait_for(lambda a: a.kind == "turn_start" and (turn is None or a.turn == turn), after)
    first_audio = await c.wait_for(lambda a, s=start: a.kind == "audio" and a.turn == s.turn, after)
    first_frame = await c.wait_for(lambda a, fa=first_audio: a.kind == "video" and a.pts >= fa.pts - 1e-6, after)
    return start, first_audio, first_frame


async def _converse(c: BenchClient, turns: int, spoken: list[np.ndarray], say: Callable[[str], None],
                    barge: bool, preempt: Callable[[BenchClient, int], bool] | None = None) -> dict:
    await asyncio.sleep(1.0)  # idle: the avatar breathes before the first turn
    typed: list[dict] = []
    for i in range(turns):
        prompt = PROMPTS[i % len(PROMPTS)]
        say(f"{c.name} typed {i + 1}/{turns}: {prompt}")
        t0 = await c.send({"type": "text", "text": prompt})
        start, first_audio, first_frame = await _reply(c, t0)
        end = await c.wait_for(lambda a, s=start: a.kind == "turn_end" and a.turn == s.turn, t0)
        await _play_out(c, start.turn)
        typed.append({"first_audio_s": round(first_audio.t - t0, 4), "audible_s": round(c.audible(first_audio) - t0, 4),
                      "first_frame_s": round(first_frame.t - t0, 4), "reply": end.msg.get("text", "")})
    voice: list[dict] = []
    for i, pcm in enumerate(spoken):
        variant = preempt(c, i) if preempt is not None else None
        say(f"{c.name} spoken {i + 1}/{len(spoken)}: {SPOKEN[i % len(SPOKEN)]}"
            + ("" if variant is None else f" (preemptive {'on' if variant else 'off'})"))
        t_sent = time.perf_counter()
        t_speech0, t_speech1 = await c.say(pcm)
        heard = await c.wait_for(lambda a: a.kind == "vad" and a.msg.get("state") == "end", t_sent, timeout=30)
        row = {"said": SPOKEN[i % len(SPOKEN)], "heard": heard.msg.get("text", ""), "turn": heard.msg.get("turn"),
               "endpoint_s": round(heard.t - t_speech1, 4)}
        if variant is not None:
            row["preemptive"] = variant
        if heard.msg.get("turn"):
            start, first_audio, _ = await _reply(c, t_speech0)
            row |= {"first_audio_s": round(first_audio.t - t_speech1, 4),
                    "audible_s": round(c.audible(first_audio) - t_speech1, 4)}
            await c.wait_for(lambda a, s=start: a.kind == "turn_end" and a.turn == s.turn, t_speech0)
            await _play_out(c, start.turn)
        voice.append(row)
    cuts: dict[str, dict] = {}
    if barge:
        for how in ("interrupt", "typed", "voice"):
            for attempt, prompt in enumerate(LONG_PROMPTS):  # a reply too short to cut: ask for another
                say(f"{c.name} barge-in ({how}){f', attempt {attempt + 1}' if attempt else ''}")
                cut = await _barge(c, how, prompt, spoken)
                if cut is None:
                    break
                cuts[how] = {**cut, "attempts": attempt + 1}
                if cut["latency_s"] is not None:
                    break
    return {"typed": typed, "spoken": voice, "interrupts": cuts}


async def _barge(c: BenchClient, how: str, prompt: str, spoken: list[np.ndarray]) -> dict | None:
    """Cut a reply to `prompt` by the stop button, by typing or by voice; the latency and the audio
    of the cut reply that still came. latency None: the reply ended before the cut could land."""
    t0 = await c.send({"type": "text", "text": prompt})
    start, _, _ = await _reply(c, t0)
    # By voice the user starts at once: the endpointer needs min_barge_in_s of speech, and a short
    # reply may be over by then; the others cut 0.5 s into the reply.
    await asyncio.sleep(0.0 if how == "voice" else 0.5)
    if how == "voice":
        if not spoken:
            return None
        started = c.say(spoken[0])
        t_cut = time.perf_counter()
    else:
        msg = {"type": "interrupt"} if how == "interrupt" else {"type": "text", "text": "Wait, stop."}
        t_cut = await c.send(msg)
    try:
        got = await c.wait_for(lambda a: a.kind == "interrupt", t_cut, timeout=15)
    except TimeoutError:  # the reply ended before the barge-in: nothing was left to cut
        await c.wait_for(lambda a, s=start.turn: a.kind == "turn_end" and a.turn > s, t_cut, timeout=60)
        await asyncio.sleep(2.0)
        return {"latency_s": None, "note": "the reply had finished playing before the cut (a short reply)"}
    if how == "voice":
        t_cut = (await started)[0]  # from the first voiced sample of the user's speech
    await asyncio.sleep(1.0)
    late = [a for a in c.log if a.kind == "audio" and a.turn == start.turn and a.t > got.t]
    if how != "interrupt":
        await c.wait_for(lambda a, s=start.turn: a.kind == "turn_end" and a.turn > s, t_cut, timeout=60)
        await asyncio.sleep(2.0)
    return {"latency_s": round(got.t - t_cut, 4), "audio_after": len(late), "heard_text": got.msg.get("heard_text", "")}


STAGES = ("asr", "asr_after_endpoint", "asr_pause_to_transcript", "thinker_head_start", "thinker_first_clause", "thinker_paused_for_voice",
          "talker", "talker_wait_presynthesised", "talker_first_piece", "talker_piece_gap", "talker_clause_gap", "render", "face", "body")


def _server_stats(hub, c: BenchClient) -> dict:
    """Where the time went inside the server's session: per-stage medians and the speculation counts."""
    sid = next((a.msg.get("session_id") for a in c.log if a.kind == "ready"), None)
    live = hub.live.get(sid)
    if live is None:
        return {}
    summary = live.session.stats.summary()
    stages = {k: {"median_ms": v["median_ms"], "p90_ms": v["p90_ms"], "calls": v["calls"]}
              for k, v in summary["stages"].items() if k in STAGES}
    events = {k: len(v) for k, v in summary["events"].items() if k.startswith("speculation")}
    # where a missing frame was lost: never made (the frame clock skipped its tick, the stages being
    # behind) or made and dropped by the transport (the client read too slowly; newest frames kept)
    clock = next((p for p in live.session.pipeline.processors if p.name == "frame_clock"), None)
    lost = {"ticks_skipped": getattr(clock, "skipped", None),
            "video_dropped_by_transport": int(live.transport.stats.get("video_dropped", 0))}
    return {"stages": stages, "speculation": events, **lost}


def _per_index(rows_by_session: list[list[dict]], key: str) -> list[dict]:
    """P50 / P95 of `key` per turn index over the sessions (turn 1 of every session, turn 2, ...)."""
    n = max((len(r) for r in rows_by_session), default=0)
    out = []
    for i in range(n):
        xs = [r[i][key] for r in rows_by_session if i < len(r) and r[i].get(key) is not None]
        out.append({"turn": i + 1, "p50": quantile(xs, 0.5), "p95": quantile(xs, 0.95), "n": len(xs)})
    return out


def _speech_windows(c: BenchClient) -> list[tuple[float, float]]:
    """Session-clock spans in which the avatar is heard: each audio chunk, cut where a barge-in that
    came after it stopped the speech (the page drops scheduled audio on `interrupt`) and where the
    session's video ends (the client left). Counting the unplayed rest of a cut reply as speech made
    its ~3 s of frames that were never due look "missing" (7 % of one session's speaking frames)."""
    cuts = [(a.t, a.pts) for a in c.log if a.kind == "interrupt"]
    video = [a.pts for a in c.log if a.kind == "video"]
    last = max(video) + 1.0 / FPS if video else float("inf")
    out = []
    for a in c.log:
        if a.kind != "audio":
            continue
        end = min([a.pts + a.duration, last] + [pts for t, pts in cuts if t >= a.t])
        if end > a.pts:
            out.append((a.pts, end))
    return sorted(out)


def _figures(c: BenchClient, run: dict) -> dict:
    video = [a for a in c.log if a.kind == "video"]
    windows = _speech_windows(c)

    def speaking(pts: float) -> bool:
        return any(s <= pts < e for s, e in windows)

    got = {a.turn for a in video if speaking(a.pts)}  # frame indices received while speaking
    due = {k for s, e in windows for k in range(int(np.ceil(s * FPS)), int(np.ceil(e * FPS)))}
    speech_s = len(due) / FPS
    off = [o for pts, o in c.offsets if speaking(pts)]
    typed, spoken = run["typed"], [r for r in run["spoken"] if "audible_s" in r]
    span = video[-1].t - video[0].t if len(video) > 1 else 0.0
    return {
        "typed_first_audio_p50_s": quantile([t["first_audio_s"] for t in typed], 0.5),
        "typed_audible_p50_s": quantile([t["audible_s"] for t in typed], 0.5),
        "typed_audible_p95_s": quantile([t["audible_s"] for t in typed], 0.95),
        "first_frame_minus_first_audio_p50_s": quantile([t["first_frame_s"] - t["first_audio_s"] for t in typed], 0.5),
        "spoken_audible_p50_s": quantile([t["audible_s"] for t in spoken], 0.5),
        "spoken_audible_p95_s": quantile([t["audible_s"] for t in spoken], 0.95),
        "spoken_endpoint_p50_s": quantile([t["endpoint_s"] for t in run["spoken"]], 0.5),
        "spoken_turns_heard": f"{len(spoken)}/{len(run['spoken'])}",
        "fps_while_speaking": round(len(got & due) / speech_s, 2) if speech_s else None,
        "frames_missing_while_speaking_pct": round(100 * len(due - got) / len(due), 2) if due else None,
        "fps_overall": round((len(video) - 1) / span, 2) if span > 0 else 0.0,
        "av_offset_p95_s": quantile(off, 0.95),
        "av_offset_max_s": quantile(off, 1.0),
        "audio_dropped": c.audio_late,
        "buffer_adjustments": c.buffer.steps,
        "final_buffer_s": round(c.buffer.offset - min(a.t - a.pts for a in video), 4) if video else None,
    }


def _preempt_toggle(hub) -> Callable[[BenchClient, int], bool]:
    """A/B in one run: spoken turns alternate preemptive generation on (even) and off (odd)."""

    def toggle(c: BenchClient, i: int) -> bool:
        on = i % 2 == 0
        sid = next(a.msg["session_id"] for a in c.log if a.kind == "ready")
        session = hub.live[sid].session
        asr = next(p for p in session.pipeline.processors if p.name == "asr")
        asr.on_speculate = session._speculate if on else None
        return on

    return toggle


async def _drive(base: str, hub, sessions: int, turns: int, spoken: list[np.ndarray],
                 say: Callable[[str], None], compare_preemptive: bool = False) -> dict:
    clients = [await _session(base, f"s{k + 1}") for k in range(sessions)]
    preempt = _preempt_toggle(hub) if compare_preemptive else None
    t_start = time.perf_counter()
    for c in clients:
        await c.mic_on()

    async def staggered(k: int, c: BenchClient) -> dict:
        await asyncio.sleep(1.5 * k)  # the sessions overlap, not in lock-step
        return await _converse(c, turns, spoken, say, barge=(k == 0), preempt=preempt)

    runs = await asyncio.gather(*(staggered(k, c) for k, c in enumerate(clients)))
    wall = time.perf_counter() - t_start
    per_session = [{"session": c.name, **_figures(c, run), "server": _server_stats(hub, c), "turns": run}
                   for c, run in zip(clients, runs, strict=True)]
    for c in clients:
        await c.close()

    say("disconnect clean-up")
    c2 = await _session(base, "leaver")
    t0 = await c2.send({"type": "text", "text": LONG_PROMPT})
    await c2.wait_for(lambda a: a.kind == "audio", t0)
    t_leave = time.perf_counter()
    await c2.close()
    while hub.live:
        await asyncio.sleep(0.01)
    cleanup = time.perf_counter() - t_leave

    cuts = runs[0]["interrupts"]
    typed = [t for r in runs for t in r["typed"]]
    spoken_rows = [t for r in runs for t in r["spoken"] if "audible_s" in t]

    def worst(key: str) -> float | None:
        vals = [s[key] for s in per_session if s[key] is not None]
        return (min(vals) if "fps" in key else max(vals)) if vals else None

    return {
        "summary": {
            "sessions": sessions,
            "typed_first_audio_p50_s": quantile([t["first_audio_s"] for t in typed], 0.5),
            "typed_audible_p50_s": quantile([t["audible_s"] for t in typed], 0.5),
            "typed_audible_p95_s": quantile([t["audible_s"] for t in typed], 0.95),
            "spoken_audible_p50_s": quantile([t["audible_s"] for t in spoken_rows], 0.5),
            "spoken_audible_p95_s": quantile([t["audible_s"] for t in spoken_rows], 0.95),
            "spoken_endpoint_p50_s": quantile([t["endpoint_s"] for r in runs for t in r["spoken"]], 0.5),
            **({f"spoken_audible_p50_s_preemptive_{'on' if v else 'off'}":
                quantile([t["audible_s"] for t in spoken_rows if t.get("preemptive") is v], 0.5) for v in (True, False)}
               if compare_preemptive else {}),
            "first_frame_minus_first_audio_p50_s": quantile([t["first_frame_s"] - t["first_audio_s"] for t in typed], 0.5),
            "fps_while_speaking_min": worst("fps_while_speaking"),
            "frames_missing_while_speaking_pct_max": worst("frames_missing_while_speaking_pct"),
            "av_offset_p95_s_max": worst("av_offset_p95_s"),
            "audio_dropped": sum(s["audio_dropped"] for s in per_session),
            "interrupt_latency_s": cuts.get("interrupt", {}).get("latency_s"),
            "typed_barge_in_latency_s": cuts.get("typed", {}).get("latency_s"),
            "voice_barge_in_latency_s": cuts.get("voice", {}).get("latency_s"),
            "audio_after_interrupt": sum(v.get("audio_after", 0) for v in cuts.values()),
            "disconnect_cleanup_s": round(cleanup, 4),
        },
        "wall_s": round(wall, 2),
        "per_turn": {"typed_audible_s": _per_index([r["typed"] for r in runs], "audible_s"),
                     "spoken_audible_s": _per_index([r["spoken"] for r in runs], "audible_s")},
        "per_session": per_session,
        "interrupts": cuts,
    }


def _drive_browser(url: str, turns: int, say: Callable[[str], None]) -> dict:
    """The page in Chromium: its own drift (draw time vs the audio clock), first-audio latency and
    the time from the stop button to silence in its audio graph."""
    from mio.server.browser import launch_chromium

    with launch_chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        page.click("#start")
        page.wait_for_function("window.mio.stats.ready !== null", timeout=60000)
        page.wait_for_timeout(1000)
        for i in range(turns):
            say(f"browser turn {i + 1}/{turns}")
            n = page.evaluate("window.mio.stats.firstAudioLatency.length")
            page.fill("#text", PROMPTS[i % len(PROMPTS)])
            page.press("#text", "Enter")
            page.wait_for_function(f"window.mio.stats.firstAudioLatency.length > {n}", timeout=120000)
            page.wait_for_function("window.mio.stats.playing === 0", timeout=120000)
            page.wait_for_timeout(400)
        page.fill("#text", LONG_PROMPT)
        page.press("#text", "Enter")
        page.wait_for_function("window.mio.stats.playing > 0", timeout=120000)
        page.wait_for_timeout(500)
        stop_ms = page.evaluate("""async () => {
            const t0 = performance.now();
            document.getElementById('stop').click();
            while (window.mio.stats.outputRms > 1e-4) await new Promise(r => setTimeout(r, 5));
            return performance.now() - t0; }""")
        stats = page.evaluate("window.mio.stats")
    drift = [abs(d) for d in stats["drift"]]
    return {"drawn_drift_p50_s": quantile(drift, 0.5), "drawn_drift_p95_s": quantile(drift, 0.95),
            "first_audio_arrival_p50_s": quantile([x / 1000 for x in stats["firstAudioLatency"]], 0.5),
            "first_audible_p50_s": quantile([x / 1000 for x in stats["firstAudible"]["typed"]], 0.5),
            "frames_drawn": stats["framesDrawn"], "buffer_adjustments": stats["resyncs"],
            "stop_to_silence_s": round(stop_ms / 1000, 4), "errors": stats["errors"]}


def user_lines(voice, n: int) -> list[np.ndarray]:
    """The user's spoken lines: `voice` (a Talker voice) saying SPOKEN, at the microphone's 16 kHz."""
    from mio.audio import resample

    out = []
    for text in SPOKEN[:n]:
        sp = voice.synthesize(text)
        pcm = resample(sp.samples, sp.sample_rate, MIC_RATE)
        out.append(np.concatenate([pcm, np.zeros(int(0.1 * MIC_RATE), np.float32)]))
    return out


def bench_serve(config: MioConfig, turns: int = 4, browser: bool = False,
                progress: Callable[[str], None] | None = None, models=None, sessions: int = 1,
                spoken_turns: int | None = None, user_voice=None, compare_preemptive: bool = False) -> dict:
    from mio.runtime.session import Models
    from mio.server.background import BackgroundServer

    say = progress or (lambda m: None)
    own = models is None
    if own:
        models = Models(config, asr=True, progress=say)
    n_spoken = turns if spoken_turns is None else spoken_turns
    if n_spoken and user_voice is None:
        from mio.core import registry
        from mio.core.config import TalkerConfig

        say("loading the user's voice (piper, joe) ...")
        user_voice = registry.create("talker", "piper", TalkerConfig(backend="piper"))
    spoken = user_lines(user_voice, n_spoken) if n_spoken else []
    models.thinker.warm(models.thinker.new_conversation(models.character))
    try:
        with tempfile.TemporaryDirectory() as data, BackgroundServer(models, data_dir=data,
                                                                     max_sessions=max(2, sessions)) as srv:
            result = asyncio.run(_drive(srv.url, srv.hub, sessions, turns, spoken, say, compare_preemptive))
            if browser:
                result["browser"] = _drive_browser(srv.url, min(turns, 3), say)
    finally:
        if own:
            models.close()
    return {
        "suite": "serve",
        "transport": "WebSocket (JPEG video + float32 audio + JSON; PCM16 microphone), server in-process on 127.0.0.1",
        "turns": turns,
        "spoken_turns": n_spoken,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_1min": round(os.getloadavg()[0], 2)},
        "config": to_dict(models.config),
        "jitter_buffer": {"initial_s": JITTER_S, "window": LATE_WINDOW, "margin_s": MARGIN_S},
        "budgets": BUDGETS,
        **result,
    }
