"""Recordings stream to disk, appear whole or not at all, and `-o` accepts exactly .mp4 and .wav."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mio.core.atomic import check_output
from mio.core.errors import InputError
from mio.core.frames import AudioChunk, UserAudio, VideoFrame
from mio.runtime.transports.mp4 import AUDIO_WINDOW_S, MediaRecorder

FPS = 25


def _frames(n: int, size: int = 32):
    for i in range(n):
        yield VideoFrame(image=np.full((size, size, 3), (i * 7) % 250, np.uint8), index=i, pts=i / FPS)


def _tone(seconds: float, hz: float, sr: int = 24000, amp: float = 0.4) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def _decode(path: Path) -> tuple[list[float], np.ndarray]:
    import av

    with av.open(str(path)) as c:
        means = [float(f.to_ndarray(format="rgb24").mean()) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return means, audio


def test_streamed_recording_equals_the_in_memory_one(tmp_path):
    """The same session output, streamed while it happens vs kept and written at the end."""
    events = []
    for f in _frames(100):  # 4 s of video; the voice arrives ahead of the picture, as in a session
        if f.index % 25 == 0:
            events.append(AudioChunk(samples=_tone(0.6, 440), sample_rate=24000, pts=f.pts + 0.2))
        if f.index == 40:
            events.append(UserAudio(samples=_tone(0.5, 220, sr=16000), sample_rate=16000, pts=1.2))
        events.append(f)
    kept = MediaRecorder(fps=FPS)
    streamed = MediaRecorder(tmp_path / "streamed.mp4", fps=FPS)
    for e in events:
        kept.add(e)
        streamed.add(e)
    assert not streamed.video and not streamed.audio  # nothing held in lists while streaming
    assert not (tmp_path / "streamed.mp4").exists()  # not under its name before it is complete
    a = streamed.finish()
    b = kept.write(tmp_path / "kept.mp4")
    (va, aa), (vb, ab) = _decode(a), _decode(b)
    assert len(va) == len(vb) == 100
    assert np.allclose(va, vb, atol=1.0)
    n = min(len(aa), len(ab))
    assert abs(len(aa) - len(ab)) <= 1024 and np.abs(aa[:n].astype(float) - ab[:n]).mean() < 200  # same AAC mix
    assert not list(tmp_path.glob(".*partial"))


def test_a_long_recording_does_not_grow_in_memory(tmp_path):
    """120 s of 256x256 video (~590 MB of raw frames) recorded with a few MB of Python memory."""
    n = 120 * FPS
    tracemalloc.start()
    try:
        rec = MediaRecorder(tmp_path / "long.mp4", fps=FPS)
        img = np.zeros((256, 256, 3), np.uint8)
        for i in range(n):
            img = img.copy()  # a new frame object each tick, as the renderer makes
            img[0, 0] = i % 256
            rec.add(VideoFrame(image=img, index=i, pts=i / FPS))
            if i % FPS == 0:
                rec.add(AudioChunk(samples=_tone(0.8, 300), sample_rate=24000, pts=i / FPS))
        rec.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30e6, f"peak {peak / 1e6:.0f} MB of Python/numpy memory"
    assert rec.late_samples == 0
    assert len(rec._buf) <= (AUDIO_WINDOW_S + 2) * 24000  # the audio window, not the conversation
    means, audio = _decode(tmp_path / "long.mp4")
    assert len(means) == n and abs(len(audio) / 24000 - 120) < 0.1


def test_wav_output_writes_the_mixed_voice(tmp_path):
    import soundfile as sf

    rec = MediaRecorder(tmp_path / "voice.wav", fps=FPS)
    rec.add(AudioChunk(samples=_tone(1.0, 440), sample_rate=24000, pts=0.5))
    for f in _frames(30):
        rec.add(f)
    path = rec.finish()
    audio, sr = sf.read(path)
    assert sr == 24000 and audio.ndim == 1
    assert abs(len(audio) / sr - 1.5) < 1e-3  # up to the end of the voice
    assert np.abs(audio[: int(0.45 * sr)]).max() < 1e-3 and np.abs(audio[int(0.6 * sr): int(1.4 * sr)]).max() > 0.35


@pytest.mark.parametrize("name, message", [
    ("x.avi", r"'.avi' is not a file type this command writes; end the name in .mp4 \(video with sound\) or .wav"),
    ("x.MP3", r"'.MP3' is not a file type"),
    ("noext", r"no extension is not a file type"),
])
def test_unknown_output_types_are_refused_in_one_line(tmp_path, name, message):
    with pytest.raises(InputError, match=message):
        check_output(tmp_path / name)
    with pytest.raises(InputError, match=message):
        MediaRecorder(tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_unwritable_outputs_are_refused(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path / "dir.mp4")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output(tmp_path / "file" / "x.mp4")
    assert check_output(tmp_path / "new" / "deeper" / "x.mp4").name == "x.mp4"  # folders are made on write


def test_abort_and_a_video_without_frames_leave_nothing(tmp_path):
    rec = MediaRecorder(tmp_path / "a.mp4", fps=FPS)
    for f in _frames(10):
        rec.add(f)
    rec.abort()
    empty = MediaRecorder(tmp_path / "b.mp4", fps=FPS)
    empty.add(AudioChunk(samples=_tone(0.5, 440), sample_rate=24000, pts=0.0))
    with pytest.raises(ValueError, match="no video frames"):
        empty.finish()
    assert not list(tmp_path.iterdir())


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from mio.core.frames import VideoFrame
    from mio.runtime.transports.mp4 import MediaRecorder
    rec = MediaRecorder(sys.argv[1], fps=25)
    for i in range(100000):
        rec.add(VideoFrame(image=np.full((64, 64, 3), i % 250, np.uint8), index=i, pts=i / 25))
        if i == 50:
            print("writing", flush=True)
        time.sleep(0.002)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_recording_leaves_nothing_under_the_output_name(tmp_path, sig):
    out = tmp_path / "killed.mp4"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        proc.send_signal(sig)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    partials = list(tmp_path.glob(".killed.mp4.*.partial"))
    assert len(partials) == 1 and partials[0].stat().st_size > 0  # the bytes in flight, hidden
    # the next recording under that name clears the dead process's partial file
    rec = MediaRecorder(out, fps=FPS)
    for f in _frames(5):
        rec.add(f)
    rec.finish()
    assert out.exists() and not list(tmp_path.glob(".*.partial"))
