"""The real page in Debian's Chromium (Playwright): typed message -> audio scheduled and audible in
the page's audio graph, video frames drawn and changing, interrupt silences it, rating stored.
Fake models for speed; one slow test on the real embedded models."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from mio.server.browser import chromium_path, launch_chromium
from tests.server.conftest import LONG_REPLY, start_server, stop_server

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed")
SHOTS = os.environ.get("MIO_WEB_SHOTS", "")  # a folder to keep the screenshots in


def _canvas(page, name: str) -> np.ndarray:
    png = page.locator("#video").screenshot()
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def _talk(page, text: str, timeout_ms: int = 30000) -> None:
    n = page.evaluate("window.mio.stats.audioScheduled")
    page.fill("#text", text)
    page.press("#text", "Enter")
    page.wait_for_function(f"window.mio.stats.audioScheduled > {n} && window.mio.stats.outputRms > 0.01",
                           timeout=timeout_ms)


def test_page_talks_shows_video_and_stops_on_interrupt(tmp_path):
    srv = start_server(tmp_path, reply=LONG_REPLY)
    try:
        with launch_chromium() as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url)
            assert page.locator("#character option").count() >= 1
            page.click("#start")
            page.wait_for_function("window.mio.stats.ready !== null", timeout=60000)
            page.wait_for_function("window.mio.stats.framesDrawn > 5", timeout=10000)
            idle = _canvas(page, "fake_idle")
            _talk(page, "Hello there")
            page.wait_for_timeout(300)
            talking = _canvas(page, "fake_talking")
            stats = page.evaluate("window.mio.stats")
            assert stats["lastAudioRms"] > 0.05 and stats["playing"] > 0
            assert stats["framesDrawn"] > 10
            # the fake renderer brightens with the open jaw: the drawn frames follow the speech
            assert talking.mean() > idle.mean() + 20
            assert any(t["role"] == "user" and t["text"] == "Hello there" for t in stats["transcript"])
            # drawn frames sit on the audio clock within one frame (p95)
            drift = sorted(abs(d) for d in stats["drift"][5:])
            assert drift[int(0.95 * (len(drift) - 1))] <= 0.04
            # the stop button: the reply's audio stops in the page's audio graph
            page.click("#stop")
            page.wait_for_function("window.mio.stats.interrupts > 0 && window.mio.stats.playing === 0",
                                   timeout=5000)
            page.wait_for_function("window.mio.stats.outputRms < 1e-4", timeout=2000)
            assert "interrupted" in page.locator("#transcript li.assistant").last.get_attribute("class")
            # typing while it talks barges in as well
            _talk(page, "Tell me more")
            _talk(page, "Stop, another question")
            assert page.evaluate("window.mio.stats.interrupts") >= 2
            # end -> rating dialog -> stored with the session
            page.click("#end")
            page.wait_for_selector("#rating[open]", timeout=5000)
            page.check("#stars input[value='5']")
            page.click("#rate-send")
            page.wait_for_function("window.mio.stats.rated === 5", timeout=5000)
            assert not errors
        rated = srv.hub.store.rated()
        assert len(rated) == 1 and rated[0]["rating"] == 5
        assert any(t.get("interrupted") for t in rated[0]["transcript"])
    finally:
        stop_server(srv)


def test_page_shows_the_busy_refusal(tmp_path):
    srv = start_server(tmp_path, max_sessions=1)
    try:
        with launch_chromium() as browser:
            first, second = browser.new_page(), browser.new_page()
            for page in (first, second):
                page.goto(srv.url)
            first.click("#start")
            first.wait_for_function("window.mio.stats.ready !== null", timeout=60000)
            second.click("#start")
            second.wait_for_function("window.mio.stats.errors.length > 0", timeout=10000)
            assert second.evaluate("window.mio.stats.errors[0].error") == "busy"
            assert "try again" in second.locator("#overlay").inner_text()
    finally:
        stop_server(srv)


@pytest.mark.slow
def test_page_with_the_real_embedded_models(tmp_path):
    """The real avatar, voice and LLM: screenshots show the rendered avatar and differ as it speaks."""
    from mio.core.config import MioConfig
    from mio.runtime.session import Models
    from mio.server.background import BackgroundServer

    models = Models(MioConfig())
    try:
        models.thinker.warm(models.thinker.new_conversation(models.character))
        with BackgroundServer(models, data_dir=str(tmp_path)) as srv, launch_chromium() as browser:
            page = browser.new_page()
            page.goto(srv.url)
            page.click("#start")
            page.wait_for_function("window.mio.stats.ready !== null", timeout=120000)
            page.wait_for_function("window.mio.stats.framesDrawn > 10", timeout=30000)
            idle = _canvas(page, "real_idle")
            _talk(page, "Hello! What's your name?", timeout_ms=60000)
            shots = []
            for i in range(4):
                page.wait_for_timeout(250)
                shots.append(_canvas(page, f"real_talking_{i}"))
            stats = page.evaluate("window.mio.stats")
            # a rendered avatar, not an empty canvas: a lit figure on the background
            assert idle.std() > 20 and (idle.max(axis=2) > 100).mean() > 0.05
            assert max(np.abs(s - idle).mean() for s in shots) > 1.0  # the frames change
            assert stats["maxOutputRms"] > 0.01 and stats["framesDrawn"] > 20 and not stats["errors"]
            page.click("#stop")
            page.wait_for_function("window.mio.stats.playing === 0", timeout=5000)
    finally:
        models.close()


def test_page_measures_first_audio_for_a_spoken_turn(tmp_path):
    """Chromium's fake microphone plays a WAV (a tone the energy VAD hears as speech): the page
    streams it, the server ends the utterance and answers, and the page's meter shows the spoken
    turn's first audio, counted from the end of the voice it captured."""
    import wave

    from tests.server.conftest import FakeASR

    rate = 48000
    t = np.arange(int(1.2 * rate)) / rate
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * 32767).astype("<i2")
    quiet = np.zeros(int(0.6 * rate), "<i2")
    wav = tmp_path / "mic.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate([quiet, voice, np.zeros(int(4.0 * rate), "<i2")]).tobytes())
    srv = start_server(tmp_path, reply="Aye, I heard you.", asr=FakeASR("what is the Nautilus, captain"))
    try:
        with launch_chromium(extra_args=(f"--use-file-for-fake-audio-capture={wav}%noloop",)) as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url)
            page.click("#start")
            page.wait_for_function("window.mio.stats.ready !== null", timeout=60000)
            page.click("#mic")
            page.wait_for_function("window.mio.stats.firstAudible.spoken.length > 0", timeout=30000)
            stats = page.evaluate("window.mio.stats")
            ms = stats["firstAudible"]["spoken"][0]
            assert 0 < ms < 10000, ms
            assert "(spoken)" in page.locator("#latency").inner_text()
            assert any(t["role"] == "user" and "Nautilus" in t["text"] for t in stats["transcript"])
            assert not errors and not [e for e in stats["errors"] if e.get("code") != "mic"], stats["errors"]
    finally:
        stop_server(srv)
