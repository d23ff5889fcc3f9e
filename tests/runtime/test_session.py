"""The whole session pipeline on fake backends: timing, A/V placement, barge-in, isolation."""

import asyncio
import dataclasses

import numpy as np
import pytest

from mio.core.errors import InputError
from mio.core.frames import AudioChunk
from mio.core.layouts import blendshape_index
from mio.runtime.offline import OfflineConversation
from mio.runtime.session import Session, check_audio
from tests.fakes import fake_models

JAW = blendshape_index("jawOpen")


def run_offline(models, *texts):
    async def go():
        conv = OfflineConversation(models)
        await conv.start()
        results = [await conv.say_text(t) for t in texts]
        await conv.close()
        return conv, results

    return asyncio.run(go())


def test_offline_turn_produces_plan_audio_and_video_on_one_timeline():
    models = fake_models()
    conv, [res] = run_offline(models, "Hi!")
    rec = conv.recorder
    assert res.reply.startswith("Hello there")
    assert res.ttfa is not None and res.ttfv is not None and res.ttfv >= res.ttfa
    # video frames tick at exactly 25 fps with no gaps, covering all the audio
    pts = [f.pts for f in rec.video]
    assert np.allclose(np.diff(pts), 1 / 25)
    audio_end = max(p + len(s) / rec.sample_rate for p, s in rec.audio)
    assert pts[-1] >= audio_end
    # the mouth is open exactly while audio plays (fake face: jawOpen=0.6 during speech)
    speech = [(p, p + len(s) / rec.sample_rate) for p, s in rec.audio]
    for f in rec.video:
        talking = any(a <= f.pts < b for a, b in speech)
        assert (f.image.mean() > 100) == talking
    # consecutive clauses are back to back, never overlapping
    starts = sorted(speech)
    for (_a0, b0), (a1, _) in zip(starts, starts[1:], strict=False):
        assert a1 >= b0 - 1e-6
    models.close()


def test_gestures_and_emotions_reach_body_and_face_at_clause_times():
    models = fake_models(reply="Hello there! Yes, of course.")
    conv, _ = run_offline(models, "Hi")
    body = models.body.sessions[0]
    face = models.face.sessions[0]
    prompts = [p for p, _ in body.prompts]
    assert prompts[:2] == ["wave", "nod"]
    clause_starts = sorted(c.pts for c in face.agent)
    assert [t for _, t in body.prompts[:2]] == pytest.approx(clause_starts[:2])
    assert face.emotions[0][0].label == "happy"
    models.close()


def test_memory_carries_across_turns():
    models = fake_models()
    run_offline(models, "My name is Ada.", "What is my name?")
    second_prompt = models.thinker.llm.calls[1]
    assert any(m["content"] == "My name is Ada." for m in second_prompt)
    assert second_prompt[0]["role"] == "system"
    models.close()


def test_barge_in_stops_audio_and_thinker_keeps_what_was_heard():
    """Live clock: the user types while the avatar speaks; no new audio follows the interrupt
    within 0.2 s and the Thinker's memory holds only what was heard."""
    models = fake_models(reply=" ".join(f"Word{i} is here." for i in range(12)), voice_delay=0.05)
    got: list = []

    async def go():
        async def on_frame(f):
            got.append((asyncio.get_running_loop().time(), f))

        s = Session(models, realtime=True, on_frame=on_frame)
        await s.start()
        await s.send_text("Tell me a long story.")
        while not any(isinstance(f, AudioChunk) for _, f in got):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.35)
        t_cut = asyncio.get_running_loop().time()
        cut_session_time = s.clock.now()
        await s.send_text("Stop, please.")
        await s.wait_turn(10)
        await s.close()
        return s, t_cut, cut_session_time

    s, t_cut, cut_t = asyncio.run(go())
    first_turn_audio_after = [f for t, f in got if isinstance(f, AudioChunk) and f.turn_id == 1 and t > t_cut + 0.2]
    assert not first_turn_audio_after, "audio of the interrupted reply kept coming"
    turns = s.conversation.turns
    interrupted = turns[1].text
    assert interrupted.endswith("...") and len(interrupted) < len(models.thinker.llm.reply)
    assert turns[2].text == "Stop, please."
    # the face forgot the agent audio scheduled after the cut
    assert models.face.sessions[0].interrupted_at
    models.close()


def test_sessions_are_isolated():
    models = fake_models()

    async def go():
        a, b = Session(models), Session(models)
        await a.start()
        await b.start()
        await a.send_text("My secret is blue.")
        await a.wait_turn()
        await b.send_text("Hello")
        await b.wait_turn()
        await a.close()
        await b.close()
        return a, b

    a, b = asyncio.run(go())
    assert any("secret" in t.text for t in a.conversation.turns)
    assert not any("secret" in t.text for t in b.conversation.turns)
    assert a.face is not b.face and a.body is not b.body
    llm = models.thinker.llm  # each call named its session; a closed session's LLM state is dropped
    assert llm.sessions == [a.id, b.id] and llm.forgotten == [a.id, b.id]
    models.close()


def test_renderer_runs_on_one_dedicated_thread():
    models = fake_models()
    run_offline(models, "Hi")
    assert len(models.renderer.renderer.threads) == 1 and models.renderer.renderer.calls > 10
    models.close()


def test_bad_text_and_audio_are_refused_with_clear_errors():
    models = fake_models()

    async def go():
        s = Session(models)
        await s.start()
        with pytest.raises(InputError, match="empty"):
            await s.send_text("   ")
        with pytest.raises(InputError, match="limit"):
            await s.send_text("x" * 5000)
        await s.send_text("still fine")
        await s.wait_turn()
        await s.close()
        return s

    s = asyncio.run(go())
    assert s.conversation.turns[0].text == "still fine"
    with pytest.raises(InputError, match="NaN"):
        check_audio(np.array([0.0, np.nan], np.float32), 16000)
    with pytest.raises(InputError, match="sample rate"):
        check_audio(np.zeros(10, np.float32), 1000)
    with pytest.raises(InputError, match="empty"):
        check_audio(np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match="mono"):
        check_audio(np.zeros((2, 10), np.float32), 16000)
    with pytest.raises(InputError, match="limit"):
        check_audio(np.zeros(16000 * 61, np.float32), 16000)
    assert check_audio(np.array([0, 32767], np.int16), 16000).max() == pytest.approx(1.0)
    models.close()


class _SilentASR:
    def transcribe(self, samples, sample_rate, context=None):
        return ""


class _EchoASR:
    def transcribe(self, samples, sample_rate, context=None):
        return "I heard you"


def test_voice_turn_goes_through_asr_and_silence_ends_the_turn():
    """Spoken turns: the ASR's transcript is answered; an utterance with no words ends the turn
    without a reply (it never leaves the session waiting)."""
    models = fake_models()

    async def go(asr):
        models.asr = asr
        conv = OfflineConversation(models)
        await conv.start()
        res = await asyncio.wait_for(conv.say_audio(np.zeros(16000, np.float32), 16000), 10)
        await conv.close()
        return res

    heard = asyncio.run(go(_EchoASR()))
    assert heard.user == "I heard you" and heard.reply.startswith("Hello there")
    silent = asyncio.run(go(_SilentASR()))
    assert silent.user == "" and silent.reply == ""
    models.close()


def test_the_reply_waits_while_its_first_clause_is_voiced():
    """thinker.yield_to_voice_s: after handing out its first clause the reply's LLM stops until the
    Talker has voiced it (the user waits on that clause; the rest is ahead of the speech), at most
    that long; the whole reply is still said. With 0 it never stops."""
    for hold in (0.25, 0.0):
        models = fake_models(llm_delay=0.01, voice_delay=0.12)
        models.thinker.config = dataclasses.replace(models.thinker.config, yield_to_voice_s=hold)
        conv, [res] = run_offline(models, "Hi!")
        assert res.reply == "Hello there, friend. I am Mio! How are you today?"
        paused = conv.session.stats.stages.get("thinker_paused_for_voice")
        if hold:
            assert paused is not None and len(paused.seconds) == 1 and 0.08 < paused.seconds[0] <= 0.6
        else:
            assert paused is None
