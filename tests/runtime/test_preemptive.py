"""Preemptive generation: a spoken turn's reply starts at the user's pause, before the endpoint.

Fake models (tests/fakes.py) and a recogniser that names the length of what it heard; the
microphone streams tones (speech to the energy VAD) and hiss in 100 ms chunks."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from mio.core.frames import AudioChunk, PlanChunk, UserText
from mio.runtime.session import Session
from tests.fakes import fake_models

SR = 16000


class LengthASR:
    """Hears '<n> tenths of a second of speech, please answer.' (a turn, never a backchannel)."""

    sample_rate = SR

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.heard: list[str] = []
        self.lock = threading.Lock()

    def transcribe(self, samples, sample_rate, context=None) -> str:
        import time

        time.sleep(self.delay)
        text = f"{round(10 * len(samples) / sample_rate)} tenths of a second of speech, please answer."
        with self.lock:
            self.heard.append(text)
        return text


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def hiss(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.002 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def _run(audio: np.ndarray, *, preemptive: bool = True, llm_delay: float = 0.03, speed: float = 1.0):
    import dataclasses

    models = fake_models(reply="Aye, I heard you well. The sea is calm tonight.", llm_delay=llm_delay)
    models.asr = LengthASR()
    models.config = dataclasses.replace(models.config, asr=dataclasses.replace(models.config.asr, preemptive=preemptive))
    out: list = []

    async def on_frame(frame):
        out.append(frame)

    async def go() -> Session:
        s = Session(models, realtime=True, on_frame=on_frame)
        await s.start()
        for k in range(0, len(audio), 1600):
            await s.send_user_audio(audio[k:k + 1600], SR)
            await asyncio.sleep(0.1 / speed)
        for _ in range(200):
            if any(isinstance(f, UserText) for f in out) and s._turn_done.is_set():
                break
            await asyncio.sleep(0.02)
        await s.wait_turn(10)
        await s.close()
        return s

    s = asyncio.run(go())
    models.close()
    return s, out, models


def test_the_reply_begins_at_the_pause_and_goes_out_once_confirmed():
    audio = np.concatenate([hiss(0.5), tone(1.0), hiss(1.2, seed=1)])
    s, out, models = _run(audio)
    texts = [f.text for f in out if isinstance(f, UserText)]
    assert len(texts) == 1, texts
    ev = s.stats.events
    assert ev["speculation_started"] == [1.0] and ev["speculation_used"] == [1.0]
    assert "speculation_discarded" not in ev
    assert s.stats.stages["thinker_head_start"].seconds[0] > 0.05  # begun well before the endpoint
    assert len(models.thinker.llm.calls) == 1  # one reply written, not two
    assert [t.role for t in s.conversation.turns] == ["user", "assistant"]
    assert s.conversation.turns[0].text == texts[0]
    assert any(isinstance(f, AudioChunk) for f in out)
    # the first clause was synthesised before the turn was confirmed
    assert "talker_wait_presynthesised" in s.stats.stages


def test_speech_after_the_pause_discards_the_speculative_reply_without_a_trace():
    # 1.0 s of speech, a 0.45 s pause (decoded, speculated), then more speech and the real end
    audio = np.concatenate([hiss(0.5), tone(1.0), hiss(0.45, seed=2), tone(0.8), hiss(1.2, seed=3)])
    s, out, models = _run(audio, llm_delay=0.05, speed=1.0)
    turns = [f.text for f in out if isinstance(f, UserText)]
    assert len(turns) == 1
    ev = s.stats.events
    assert len(ev["speculation_started"]) == 2 and ev["speculation_discarded"] == [1.0]
    assert ev["speculation_used"] == [1.0]
    # the conversation holds only the confirmed turn; the LLM saw the discarded one's text once
    assert [(t.role, t.text) for t in s.conversation.turns][0] == ("user", turns[0])
    assert len(s.conversation.turns) == 2
    first_heard = models.asr.heard[0]
    assert first_heard != turns[0]
    assert not any(isinstance(f, PlanChunk | UserText) and first_heard in getattr(f, "text", "") for f in out)
    prompts = [m[-1]["content"] for m in models.thinker.llm.calls]
    assert prompts == [first_heard, turns[0]]
    # every reply out is the confirmed turn's
    assert {f.turn_id for f in out if isinstance(f, AudioChunk)} == {1}


def test_without_preemption_the_reply_starts_at_the_endpoint():
    audio = np.concatenate([hiss(0.5), tone(1.0), hiss(1.2, seed=1)])
    s, out, models = _run(audio, preemptive=False)
    assert "speculation_started" not in s.stats.events
    assert len(models.thinker.llm.calls) == 1
    assert [t.role for t in s.conversation.turns] == ["user", "assistant"]


def test_typing_discards_a_speculative_reply():
    models = fake_models(reply="Aye, I heard you well.", llm_delay=0.05)
    out: list = []

    async def on_frame(frame):
        out.append(frame)

    async def go() -> Session:
        s = Session(models, realtime=True, on_frame=on_frame)
        await s.start()
        assert s.thinker_stage.speculate("What is the Nautilus?", s.id)
        await asyncio.sleep(0.05)
        await s.send_text("Who are you?")
        await s.wait_turn(10)
        await s.close()
        return s

    s = asyncio.run(go())
    assert [t.text for t in s.conversation.turns if t.role == "user"] == ["Who are you?"]
    assert s.stats.events["speculation_discarded"] == [1.0]
    models.close()
