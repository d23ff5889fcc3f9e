import numpy as np
import pytest

from mio.core.frames import AudioChunk, UserAudio, VideoFrame
from mio.runtime.transports.mp4 import MediaRecorder


def test_recorder_mixes_both_tracks_and_writes_a_playable_mp4(tmp_path):
    import av

    rec = MediaRecorder(fps=25)
    for i in range(50):  # 2 s of video, a gradient that changes each frame
        img = np.full((64, 96, 3), (i * 5) % 255, np.uint8)
        rec.add(VideoFrame(image=img, index=i, pts=i / 25))
    t = np.arange(24000) / 24000
    rec.add(AudioChunk(samples=(0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sample_rate=24000, pts=0.5))
    user = (0.5 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)).astype(np.float32)
    rec.add(UserAudio(samples=user, sample_rate=16000, pts=0.0))
    mixed = rec.mixed_audio(rec.duration)
    assert len(mixed) == 48000
    assert np.abs(mixed[:12000]).max() > 0.3  # the user's 0.5 s at 16 kHz, resampled
    assert np.abs(mixed[12000:36000]).max() > 0.45  # the avatar's second
    assert np.abs(mixed[37000:]).max() < 1e-3
    path = rec.write(tmp_path / "x.mp4")
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(frames) == 50 and frames[0].shape == (64, 96, 3)
    assert abs(int(frames[30].mean()) - 150) <= 3
    assert abs(len(audio) / 24000 - 2.0) < 0.1


def test_missing_ticks_hold_the_previous_frame(tmp_path):
    import av

    rec = MediaRecorder(fps=25)
    rec.add(VideoFrame(image=np.zeros((16, 16, 3), np.uint8), pts=0.0))
    rec.add(VideoFrame(image=np.full((16, 16, 3), 200, np.uint8), pts=0.4))
    rec.add(AudioChunk(samples=np.zeros(24000, np.float32), sample_rate=24000, pts=0.0))
    rec.write(tmp_path / "y.mp4")
    with av.open(str(tmp_path / "y.mp4")) as c:
        means = [f.to_ndarray(format="rgb24").mean() for f in c.decode(video=0)]
    assert len(means) == 25
    assert max(means[:10]) < 20 and min(means[10:]) > 180


def test_no_frames_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no video frames"):
        MediaRecorder().write(tmp_path / "z.mp4")
