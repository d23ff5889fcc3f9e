"""`mio face animate --video`: the preview streams its frames to the session's MP4 writer as they are
drawn (memory stays flat for any length of audio), holds both speakers' audio, and appears whole or
not at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mio.core.config import load_config
from mio.core.layouts import ARKIT52, FACE_FPS
from mio.face.unils.cli import preview
from mio.render.raster import AnnyRenderer
from mio.runtime.transports import mp4

FRAMES = 20


def _tone(seconds: float, hz: float, sr: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


@pytest.fixture
def small_config():
    return load_config(None, ["render.width=64", "render.height=64", "render.samples=0"])


def test_preview_frames_reach_the_encoder_while_rendering_goes_on(tmp_path, small_config, monkeypatch):
    events: list[str] = []
    draw, encode = AnnyRenderer.render, mp4._Mp4Sink.video

    def spy_draw(self, *a, **k):
        events.append("draw")
        return draw(self, *a, **k)

    def spy_encode(self, image, index):
        events.append("encode")
        return encode(self, image, index)

    monkeypatch.setattr(AnnyRenderer, "render", spy_draw)
    monkeypatch.setattr(mp4._Mp4Sink, "video", spy_encode)
    params = np.zeros((FRAMES, ARKIT52.dim), np.float32)
    params[:, 0] = np.linspace(0, 1, FRAMES)  # something moves
    seconds = FRAMES / FACE_FPS
    own, other = (_tone(seconds, 220, 16000), 16000), (_tone(seconds, 440, 24000), 24000)
    out = preview(tmp_path / "p.mp4", params, [own, other], small_config)

    assert events.count("draw") == FRAMES and events.count("encode") == FRAMES
    # streamed: frame k is encoded once frame k+1 is drawn, not after the last one
    assert events.index("encode") < events.index("draw") + 3, events[:6]
    assert max(i for i, e in enumerate(events) if e == "encode") > events.index("draw") + FRAMES - 3

    import av

    with av.open(str(out)) as c:
        n_video = sum(1 for _ in c.decode(video=0))
    with av.open(str(out)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        rate = c.streams.audio[0].rate
    assert n_video == FRAMES
    assert abs(len(audio) / rate - seconds) < 0.1
    spectrum = np.abs(np.fft.rfft(audio[: rate // 2]))
    freqs = np.fft.rfftfreq(rate // 2, 1 / rate)
    for hz in (220, 440):  # both speakers are heard
        assert spectrum[np.abs(freqs - hz) < 5].max() > 20 * np.median(spectrum)
    assert [p.name for p in tmp_path.iterdir()] == ["p.mp4"]


def test_a_preview_that_fails_midway_leaves_nothing(tmp_path, small_config, monkeypatch):
    draw = AnnyRenderer.render
    calls = []

    def failing_draw(self, *a, **k):
        calls.append(1)
        if len(calls) == 8:
            raise RuntimeError("the renderer died")
        return draw(self, *a, **k)

    monkeypatch.setattr(AnnyRenderer, "render", failing_draw)
    params = np.zeros((FRAMES, ARKIT52.dim), np.float32)
    with pytest.raises(RuntimeError, match="renderer died"):
        preview(tmp_path / "p.mp4", params, [(_tone(1.0, 220, 16000), 16000)], small_config)
    assert list(Path(tmp_path).iterdir()) == []  # neither p.mp4 nor its partial
