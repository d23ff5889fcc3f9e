"""`mio bench serve`: the web app's figures, measured through the real WebSocket.

Starts `mio serve` in this process (real models unless given), connects as a client would
(POST /api/session, then /ws/session) and timestamps every message on arrival:
- message -> first audio: typed text sent -> first audio chunk of the reply received;
- message -> first frame: typed text sent -> first video frame whose pts >= that audio's pts;
- sustained fps: video frames received per second over the whole run;
- A/V drift: the session clock is mapped to the client clock by the earliest video arrival;
  a frame that arrives later than that mapping plus the page's playout delay (0.12 s) is drawn
  late against the audio clock by the excess -- that excess is the drift (budget: one frame);
- interrupt latency: `interrupt` sent 0.5 s into a long reply -> the `interrupt` message back
  (the page drops its scheduled audio on it), and typed barge-in the same way; audio chunks of
  the cut reply arriving afterwards are counted (should be 0);
- disconnect clean-up: a client leaves mid-answer -> its session is gone from the server.
With `--browser`, the page is also driven in Chromium and its own drift / latency figures are read.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mio.core.config import MioConfig, to_dict
from mio.runtime.transports.web import AUDIO, VIDEO, unpack

PLAYOUT_DELAY_S = 0.12  # the page's jitter buffer (JITTER_S in static/app.js)
PROMPTS = ("Hello! What's your name?", "How are you feeling today?", "Tell me something you like.",
           "What do you think about the sea?", "Do you like stories?", "Thank you, it was nice to meet you.")
LONG_PROMPT = "Tell me a long story about the sea, please."
BUDGETS = {"message_to_first_audio_s": 0.7, "first_frame_minus_first_audio_s": 0.1, "sustained_fps": 25.0,
           "av_drift_s": 0.04, "interrupt_s": 0.2, "disconnect_cleanup_s": 2.0}


@dataclass
class Arrival:
    t: float  # perf_counter at receipt
    kind: str  # "audio", "video" or a JSON type
    pts: float = 0.0
    turn: int = 0
    duration: float = 0.0
    msg: dict = field(default_factory=dict)


def _q(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))], 4)


class BenchClient:
    """An asyncio WebSocket client that records every message with its arrival time."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.log: list[Arrival] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            t = time.perf_counter()
            if isinstance(raw, bytes):
                kind, aux1, aux2, pts, payload = unpack(raw)
                if kind == AUDIO:
                    self.log.append(Arrival(t, "audio", pts, aux2, len(payload) / 4 / aux1))
                elif kind == VIDEO:
                    self.log.append(Arrival(t, "video", pts, aux1))
            else:
                msg = json.loads(raw)
                self.log.append(Arrival(t, msg["type"], float(msg.get("pts") or 0.0), int(msg.get("turn") or 0), msg=msg))
            self._new.set()

    async def send(self, msg: dict) -> float:
        t = time.perf_counter()
        await self.ws.send(json.dumps(msg))
        return t

    async def wait_for(self, pred: Callable[[Arrival], bool], after: float, timeout: float = 120.0) -> Arrival:
        deadline = time.perf_counter() + timeout
        while True:
            for a in self.log:
                if a.t >= after and pred(a):
                    return a
            left = deadline - time.perf_counter()
            if left <= 0 or self._reader.done():
                raise TimeoutError("no such message from the server")
            self._new.clear()
            with_timeout = asyncio.wait_for(self._new.wait(), left)
            try:
                await with_timeout
            except TimeoutError:
                pass

    def offset(self) -> float:
        """Client time minus session time, from the earliest video arrival (least delayed frame)."""
        return min(a.t - a.pts for a in self.log if a.kind == "video")

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


async def _session(base: str, mode: str = "browser") -> BenchClient:
    import httpx
    from websockets.asyncio.client import connect

    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/api/session", json={"mode": mode})
        r.raise_for_status()
        ws_path = r.json()["ws"]
    ws = await connect(base.replace("http", "ws", 1) + ws_path, max_size=1 << 24)
    client = BenchClient(ws)
    await client.wait_for(lambda a: a.kind == "ready", 0.0)
    return client


async def _drive(base: str, hub, turns: int, say: Callable[[str], None]) -> dict:
    c = await _session(base)
    t_start = time.perf_counter()
    await asyncio.sleep(1.0)  # idle: the avatar breathes before the first turn
    per_turn: list[dict] = []
    for i in range(turns):
        prompt = PROMPTS[i % len(PROMPTS)]
        say(f"turn {i + 1}/{turns}: {prompt}")
        t0 = await c.send({"type": "text", "text": prompt})
        start = await c.wait_for(lambda a: a.kind == "turn_start", t0)
        first_audio = await c.wait_for(lambda a, s=start: a.kind == "audio" and a.turn == s.turn, t0)
        first_frame = await c.wait_for(lambda a, fa=first_audio: a.kind == "video" and a.pts >= fa.pts - 1e-6, t0)
        end = await c.wait_for(lambda a, s=start: a.kind == "turn_end" and a.turn == s.turn, t0)
        speech_end = max(a.pts + a.duration for a in c.log if a.kind == "audio" and a.turn == start.turn)
        while time.perf_counter() < speech_end + c.offset() + 0.5:  # let the reply play out
            await asyncio.sleep(0.05)
        per_turn.append({"first_audio_s": round(first_audio.t - t0, 4), "first_frame_s": round(first_frame.t - t0, 4),
                         "reply": end.msg.get("text", "")})

    # Barge-in 1: the stop button (an explicit interrupt) 0.5 s into a long reply.
    interrupts: dict[str, dict] = {}
    for how in ("interrupt", "typed"):
        say(f"barge-in ({how})")
        t0 = await c.send({"type": "text", "text": LONG_PROMPT})
        start = await c.wait_for(lambda a: a.kind == "turn_start", t0)
        await c.wait_for(lambda a, s=start: a.kind == "audio" and a.turn == s.turn, t0)
        await asyncio.sleep(0.5)
        msg = {"type": "interrupt"} if how == "interrupt" else {"type": "text", "text": "Wait, stop."}
        t_cut = await c.send(msg)
        got = await c.wait_for(lambda a: a.kind == "interrupt", t_cut)
        await asyncio.sleep(1.0)
        late = [a for a in c.log if a.kind == "audio" and a.turn == start.turn and a.t > got.t]
        interrupts[how] = {"latency_s": round(got.t - t_cut, 4), "audio_after": len(late),
                           "heard_text": got.msg.get("heard_text", "")}
        if how == "typed":
            await c.wait_for(lambda a: a.kind == "turn_end", t_cut)
            await asyncio.sleep(1.0)
    wall = time.perf_counter() - t_start

    video = [a for a in c.log if a.kind == "video"]
    audio = [a for a in c.log if a.kind == "audio"]
    off = c.offset()
    lateness = [(a.t - a.pts) - off for a in video]
    drift = [max(0.0, x - PLAYOUT_DELAY_S) for x in lateness]
    audio_lead = [(a.pts + off) - a.t for a in audio]  # > 0: arrived before it is due
    span = video[-1].t - video[0].t if len(video) > 1 else 0.0
    await c.close()

    # Disconnect mid-answer.
    say("disconnect clean-up")
    c2 = await _session(base)
    t0 = await c2.send({"type": "text", "text": LONG_PROMPT})
    await c2.wait_for(lambda a: a.kind == "audio", t0)
    t_leave = time.perf_counter()
    await c2.close()
    while hub.live:
        await asyncio.sleep(0.01)
    cleanup = time.perf_counter() - t_leave

    return {
        "summary": {
            "message_to_first_audio_p50_s": _q([t["first_audio_s"] for t in per_turn], 0.5),
            "message_to_first_frame_p50_s": _q([t["first_frame_s"] for t in per_turn], 0.5),
            "first_frame_minus_first_audio_p50_s": _q([t["first_frame_s"] - t["first_audio_s"] for t in per_turn], 0.5),
            "sustained_fps": round((len(video) - 1) / span, 2) if span > 0 else 0.0,
            "video_frames": len(video),
            "av_drift_p95_s": _q(drift, 0.95),
            "av_drift_max_s": _q(drift, 1.0),
            "frames_within_one_frame_pct": round(100 * sum(d <= 0.04 for d in drift) / max(1, len(drift)), 2),
            "video_lateness_p50_s": _q(lateness, 0.5),
            "video_lateness_p95_s": _q(lateness, 0.95),
            "audio_lead_min_s": _q(audio_lead, 0.0),
            "interrupt_latency_s": interrupts["interrupt"]["latency_s"],
            "typed_barge_in_latency_s": interrupts["typed"]["latency_s"],
            "audio_after_interrupt": interrupts["interrupt"]["audio_after"] + interrupts["typed"]["audio_after"],
            "disconnect_cleanup_s": round(cleanup, 4),
        },
        "wall_s": round(wall, 2),
        "per_turn": per_turn,
        "interrupts": interrupts,
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
    return {"drawn_drift_p50_s": _q(drift, 0.5), "drawn_drift_p95_s": _q(drift, 0.95),
            "first_audio_p50_s": _q([x / 1000 for x in stats["firstAudioLatency"]], 0.5),
            "frames_drawn": stats["framesDrawn"], "resyncs": stats["resyncs"],
            "stop_to_silence_s": round(stop_ms / 1000, 4), "errors": stats["errors"]}


def bench_serve(config: MioConfig, turns: int = 4, browser: bool = False,
                progress: Callable[[str], None] | None = None, models=None) -> dict:
    from mio.runtime.session import Models
    from mio.server.background import BackgroundServer

    say = progress or (lambda m: None)
    own = models is None
    if own:
        models = Models(config, progress=say)
    models.thinker.warm(models.thinker.new_conversation(models.character))
    try:
        with tempfile.TemporaryDirectory() as data, BackgroundServer(models, data_dir=data) as srv:
            result = asyncio.run(_drive(srv.url, srv.hub, turns, say))
            if browser:
                result["browser"] = _drive_browser(srv.url, min(turns, 3), say)
    finally:
        if own:
            models.close()
    return {
        "suite": "serve",
        "transport": "WebSocket (JPEG video + float32 audio + JSON), server in-process on 127.0.0.1",
        "turns": turns,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "config": to_dict(models.config),
        "playout_delay_s": PLAYOUT_DELAY_S,
        "budgets": BUDGETS,
        **result,
    }
