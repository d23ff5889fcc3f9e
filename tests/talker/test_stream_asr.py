"""Streaming voice input: the endpointer's events, backchannels, the story prompt for whisper."""

from __future__ import annotations

import numpy as np
import pytest

from mio.core.config import ASRConfig
from mio.talker.asr import asr_context
from mio.talker.stream_asr import VAD_FRAME, VAD_RATE, Endpointer, EnergyFrameVAD, is_backchannel
from mio.thinker.persona import load_character

SR = VAD_RATE


def tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * 180 * t)).astype(np.float32)


def hiss(seconds: float, level: float = 0.002, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def feed(ep: Endpointer, audio: np.ndarray, chunk: int = 1600) -> list[tuple[str, float, int]]:
    """(kind, seconds into the stream at the chunk that raised it, speech_end samples)."""
    out = []
    for k in range(0, len(audio), chunk):
        for e in ep.push(audio[k:k + chunk]):
            out.append((e.kind, (k + chunk) / SR, e.speech_end))
    return out


def test_endpointer_events_and_timing():
    cfg = ASRConfig(partial_every_s=0.5)
    ep = Endpointer(EnergyFrameVAD(), cfg)
    audio = np.concatenate([hiss(1.0), tone(1.5) + hiss(1.5, seed=1), hiss(1.5, seed=2)])
    events = feed(ep, audio)
    kinds = [k for k, _, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.index("barge") < kinds.index("pause") < kinds.index("end")
    assert kinds.count("partial") >= 2  # growing-window captions while the user speaks
    t_pause = next(t for k, t, _ in events if k == "pause")
    t_end = next(t for k, t, _ in events if k == "end")
    # the speech stopped at 2.5 s: decode-ahead after ~pause_ms, endpoint after ~hangover_ms
    assert 2.5 + cfg.pause_ms / 1000 - 0.05 <= t_pause <= 2.5 + cfg.pause_ms / 1000 + 0.15
    assert 2.5 + cfg.hangover_ms / 1000 - 0.05 <= t_end <= 2.5 + cfg.hangover_ms / 1000 + 0.15
    # the pause and the end agree on where the speech ended, so the early decode is the transcript
    ends = {se for k, _, se in events if k in ("pause", "end")}
    assert len(ends) == 1
    speech = ep.samples[: ends.pop()]
    assert abs(len(speech) / SR - (1.5 + cfg.preroll_ms / 1000)) < 0.1  # the speech and its pre-roll


def test_a_short_pause_inside_an_utterance_resumes_it():
    ep = Endpointer(EnergyFrameVAD(), ASRConfig())
    audio = np.concatenate([hiss(0.5), tone(0.8), hiss(0.3, seed=3), tone(0.8), hiss(1.0, seed=4)])
    kinds = [k for k, _, _ in feed(ep, audio)]
    assert kinds.count("start") == 1 and kinds.count("end") == 1
    assert "resume" in kinds  # the first pause's early decode is discarded


def test_clicks_are_not_utterances_and_long_speech_is_cut():
    ep = Endpointer(EnergyFrameVAD(), ASRConfig(max_utterance_s=2.0))
    click = np.zeros(int(0.05 * SR), np.float32)
    click[:VAD_FRAME // 2] = 0.5
    assert feed(ep, np.concatenate([hiss(1.0), click, hiss(1.0, seed=5)])) == []
    kinds = [k for k, _, _ in feed(ep, np.concatenate([hiss(0.5), tone(5.0)]))]
    assert "end" in kinds  # cut at max_utterance_s


def test_chunk_size_does_not_change_the_events():
    audio = np.concatenate([hiss(0.6), tone(1.2), hiss(1.0, seed=6)])
    a = [(k, se) for k, _, se in feed(Endpointer(EnergyFrameVAD(), ASRConfig()), audio, chunk=160)]
    b = [(k, se) for k, _, se in feed(Endpointer(EnergyFrameVAD(), ASRConfig()), audio, chunk=48000)]
    assert a == b


@pytest.mark.parametrize("text, floor, brief, expected", [
    ("Mm-hm.", True, False, True),
    ("Mhmm", False, False, True),  # a hum is never a turn
    ("Uh-huh.", True, False, True),
    ("Yeah.", True, False, True),  # over the avatar: an acknowledgement
    ("Yeah.", False, False, False),  # the avatar is silent: it may answer its question
    ("Okay, right.", True, False, True),
    ("Yeah, but why?", True, False, False),
    ("Stop.", True, False, False),
    ("Macheum.", True, True, True),  # brief and over the avatar: an aside, whatever whisper heard
    ("Macheum.", False, True, False),
    ("...", False, False, True),
    ("What is the Nautilus?", True, False, False),
])
def test_backchannels(text, floor, brief, expected):
    assert is_backchannel(text, floor, brief) is expected


def test_asr_context_primes_the_story_names():
    nemo = load_character("twenty-thousand-leagues")
    ctx = asr_context(nemo)
    assert ctx.startswith("A conversation with Captain Nemo.")
    for name in ("Nautilus", "Aronnax", "Conseil", "Ned Land", "Abraham Lincoln"):
        assert name in ctx
    assert "the Nautilus" not in ctx and "Ned's" not in ctx  # names, not the graph's phrases
    assert len(ctx.split()) < 100  # inside whisper's 223-token prompt
    assert asr_context(load_character("mio")) == "A conversation with Mio."


@pytest.mark.slow
def test_live_session_hears_story_names_and_decodes_before_the_endpoint():
    """Real voices, Silero and whisper, streamed in 100 ms chunks on the wall clock: the transcript
    has the story's names, is decoded at the pause (ahead of the endpoint) and begins one turn."""
    import asyncio
    import time

    from scipy.signal import resample_poly

    from mio.core import registry
    from mio.core.config import TalkerConfig
    from mio.core.frames import UserSpeech, UserText
    from mio.runtime.session import Session
    from mio.talker.asr import WhisperASR
    from mio.talker.stream_asr import SileroVAD
    from tests.fakes import fake_models

    models = fake_models()
    models.asr, models.vad = WhisperASR(), SileroVAD()
    models.character = load_character("twenty-thousand-leagues")
    voice = registry.create("talker", "piper", TalkerConfig(backend="piper"))
    speech = voice.synthesize("Captain, what is the Nautilus? Is Ned Land aboard?")
    audio = resample_poly(speech.samples, 320, 441).astype(np.float32)  # 22.05 -> 16 kHz
    audio = np.concatenate([hiss(0.5), audio, hiss(1.5, seed=7)])
    seen: list = []

    async def on_frame(frame):
        if isinstance(frame, UserText | UserSpeech):
            seen.append(frame)

    async def go() -> Session:
        s = Session(models, realtime=True, on_frame=on_frame)
        await s.start()
        t0 = time.perf_counter()
        for k in range(0, len(audio), 1600):
            await asyncio.sleep(max(0.0, t0 + k / SR - time.perf_counter()))
            await s.send_user_audio(audio[k:k + 1600], SR)
        for _ in range(100):
            if any(isinstance(f, UserText) for f in seen):
                break
            await asyncio.sleep(0.05)
        await s.close()
        return s

    s = asyncio.run(go())
    text = next(f.text for f in seen if isinstance(f, UserText))
    assert "Nautilus" in text and "Ned Land" in text, text
    assert s.stats.events["asr_decode_reused"] == [1.0]
    assert [f.event for f in seen if isinstance(f, UserSpeech)][0] == "speech"
    assert len(s.timings) == 1  # the spoken turn began once, at the end of the speech
    models.close()


def test_unloop_keeps_the_first_statement_of_a_decoder_loop():
    from mio.talker.asr import unloop

    assert unloop("Why do you hate the land? Why do you hate the land? Why do") == "Why do you hate the land?"
    assert unloop("Captain Nemo, why do you hate the land? Captain Nemo, why do you hate the land? Captain Nemo") == \
        "Captain Nemo, why do you hate the land?"
    assert unloop("Captain, Captain, Captain,") == "Captain,"  # whisper on a 0.7 s clip
    for text in ("Is Ned Land a good harpooner?", "Yes, yes.", "No, no, I said", ""):
        assert unloop(text) == text  # a word said twice is speech, not a loop


@pytest.mark.slow
def test_a_short_encoder_window_hears_what_the_full_window_hears():
    from scipy.signal import resample_poly

    from mio.core import registry
    from mio.core.config import TalkerConfig
    from mio.talker.asr import WhisperASR

    voice = registry.create("talker", "piper", TalkerConfig(backend="piper"))
    speech = voice.synthesize("Captain, what is the Nautilus? Is Ned Land aboard?")
    audio = np.concatenate([hiss(0.3), resample_poly(speech.samples, 320, 441).astype(np.float32)])
    ctx = asr_context(load_character("twenty-thousand-leagues"))
    short, full = WhisperASR(), WhisperASR(window_s=30)
    assert short.window_s == 12.0 and full.window_s is None
    a, b = short.transcribe(audio, SR, ctx), full.transcribe(audio, SR, ctx)
    assert "Nautilus" in a and "Ned Land" in a, a
    assert a.lower().rstrip(".?") == b.lower().rstrip(".?"), (a, b)


@pytest.mark.slow
def test_a_live_session_with_the_default_window_hears_the_bench_lines():
    """The bench's six spoken lines streamed in real time through Silero, decoded at the pause with
    the default encoder window: every line heard as said (an 8 s window mangled two of them)."""
    import asyncio
    import re
    import time

    from mio.bench.serve import SPOKEN, user_lines
    from mio.core import registry
    from mio.core.config import TalkerConfig
    from mio.core.frames import UserSpeech
    from mio.runtime.session import Session
    from mio.talker.asr import WhisperASR
    from mio.talker.stream_asr import SileroVAD
    from tests.fakes import fake_models

    lines = user_lines(registry.create("talker", "piper", TalkerConfig(backend="piper")), len(SPOKEN))
    models = fake_models()
    models.asr, models.vad = WhisperASR(), SileroVAD()
    models.character = load_character("twenty-thousand-leagues")
    heard: list[str] = []

    async def on_frame(frame):
        if isinstance(frame, UserSpeech) and frame.event == "end":
            heard.append(frame.text)

    async def go() -> None:
        s = Session(models, realtime=True, on_frame=on_frame)
        await s.start()
        audio = np.concatenate([np.concatenate([hiss(0.5, seed=k), pcm + hiss(len(pcm) / SR, seed=10 + k),
                                                hiss(1.0, seed=20 + k)]) for k, pcm in enumerate(lines)])
        t0 = time.perf_counter()
        for k in range(0, len(audio), 1600):
            await asyncio.sleep(max(0.0, t0 + k / SR - time.perf_counter()))
            await s.send_user_audio(audio[k:k + 1600], SR)
        await asyncio.sleep(1.0)
        await s.close()

    asyncio.run(go())
    models.close()

    def norm(t: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", t.lower()).split())

    assert [norm(h) for h in heard] == [norm(s) for s in SPOKEN], heard
