"""MP4 writer: video frames (H.264) and the conversation's audio (AAC), on the session clock.

Audio from both tracks (the avatar's speech and the user's voice) is mixed onto one timeline
at 24 kHz by presentation time, so the file plays the exchange as it happened.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from mio.core.frames import AudioChunk, Frame, UserAudio, VideoFrame


def _to_rate(samples: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return samples.astype(np.float32, copy=False)
    g = np.gcd(sr, target)
    return resample_poly(samples, target // g, sr // g).astype(np.float32)


class MediaRecorder:
    """Collects a session's output frames and writes them to an MP4 at the end."""

    def __init__(self, fps: float = 25.0, sample_rate: int = 24000, user_gain: float = 0.8) -> None:
        self.fps, self.sample_rate, self.user_gain = fps, sample_rate, user_gain
        self.video: list[VideoFrame] = []
        self.audio: list[tuple[float, np.ndarray]] = []

    async def __call__(self, frame: Frame) -> None:
        self.add(frame)

    def add(self, frame: Frame) -> None:
        if isinstance(frame, VideoFrame):
            self.video.append(frame)
        elif isinstance(frame, AudioChunk):
            self.audio.append((frame.pts, _to_rate(frame.samples, frame.sample_rate, self.sample_rate)))
        elif isinstance(frame, UserAudio):
            self.audio.append((frame.pts, self.user_gain * _to_rate(frame.samples, frame.sample_rate, self.sample_rate)))

    def mixed_audio(self, duration: float) -> np.ndarray:
        out = np.zeros(int(round(duration * self.sample_rate)), dtype=np.float32)
        for pts, samples in self.audio:
            start = int(round(pts * self.sample_rate))
            if start >= len(out):
                continue
            seg = samples[: len(out) - start]
            out[start : start + len(seg)] += seg
        return np.clip(out, -1.0, 1.0)

    @property
    def duration(self) -> float:
        end_v = (max(f.pts for f in self.video) + 1 / self.fps) if self.video else 0.0
        end_a = max((p + len(s) / self.sample_rate for p, s in self.audio), default=0.0)
        return max(end_v, end_a)

    def write(self, path: str | Path) -> Path:
        write_mp4(path, self.video, self.mixed_audio(self.duration), self.sample_rate, self.fps)
        return Path(path)


def write_mp4(path: str | Path, frames: list[VideoFrame], audio: np.ndarray, sample_rate: int, fps: float = 25.0) -> None:
    """Write frames (held until the next frame's pts) and mono audio to an H.264/AAC MP4."""
    import av

    if not frames:
        raise ValueError("no video frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = sorted(frames, key=lambda f: f.pts)
    h, w = frames[0].image.shape[:2]
    n_total = max(int(round(len(audio) / sample_rate * fps)), int(round(frames[-1].pts * fps)) + 1)
    with av.open(str(path), mode="w") as container:
        vs = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "20", "preset": "veryfast"}
        ast = container.add_stream("aac", rate=sample_rate)
        ast.layout = "mono"
        # Video: one frame per tick; a missing tick repeats the previous image (held frame).
        j = 0
        for i in range(n_total):
            t = i / fps
            while j + 1 < len(frames) and frames[j + 1].pts <= t + 1e-6:
                j += 1
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[j].image), format="rgb24")
            vf.pts = i
            for packet in vs.encode(vf):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        # Audio in 1024-sample AAC frames.
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        step = 1024
        for k in range(0, len(pcm), step):
            block = pcm[k : k + step]
            af = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
            af.sample_rate = sample_rate
            af.pts = k
            for packet in ast.encode(af):
                container.mux(packet)
        for packet in ast.encode():
            container.mux(packet)
