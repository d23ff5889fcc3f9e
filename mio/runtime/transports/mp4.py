"""Media files of a conversation: video (H.264) with its audio (AAC) as MP4, or the audio alone as WAV.

Audio from both tracks (the avatar's speech and the user's voice) is mixed onto one timeline
at 24 kHz by presentation time, so the file plays the exchange as it happened.

    rec = MediaRecorder("out/chat.mp4", fps=25)   # streams to out/.chat.mp4.<pid>.partial
    rec.add(frame) ...                             # VideoFrame / AudioChunk / UserAudio, any number
    rec.finish()                                   # -> out/chat.mp4, complete; rec.abort() leaves nothing

Recordings stream to disk: a video tick is encoded as soon as a later frame shows which image it
holds, and audio is mixed in a window that trails the newest video frame by `AUDIO_WINDOW_S`, so a
long `mio chat --record` holds seconds of media in memory, not the whole conversation (raw 512x512
frames at 25 fps are ~20 MB a second). The file is written under a temporary name and renamed
when complete (mio.core.atomic): a run that is killed leaves nothing under the output's name.
`MediaRecorder()` without a path keeps the frames in memory instead (tests, short clips).
"""

from __future__ import annotations

import contextlib
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from mio.audio import resample
from mio.core.atomic import check_output, commit, partial_path, remove_stale_partials
from mio.core.frames import AudioChunk, Frame, UserAudio, VideoFrame

AUDIO_WINDOW_S = 10.0  # audio this far behind the newest video frame is final and goes to disk
AAC_FRAME = 1024  # samples per AAC frame
TICK_EPS = 1e-6  # a frame at pts t shows from the tick at t (float slack)


def _pcm16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


class _Mp4Sink:
    """H.264 + AAC into an MP4 container; the streams are made when the first image gives the size."""

    def __init__(self, path: Path, fps: float, sample_rate: int) -> None:
        import av

        self._av = av
        self.fps, self.sample_rate = fps, sample_rate
        self.container = av.open(str(path), mode="w", format="mp4")
        self.vs = self.ast = None

    @property
    def started(self) -> bool:
        return self.vs is not None

    def video(self, image: np.ndarray, index: int) -> None:
        av = self._av
        if self.vs is None:
            h, w = image.shape[:2]
            self.vs = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
            self.vs.width, self.vs.height, self.vs.pix_fmt = w, h, "yuv420p"
            self.vs.options = {"crf": "20", "preset": "veryfast"}
            self.ast = self.container.add_stream("aac", rate=self.sample_rate)
            self.ast.layout = "mono"
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint8), format="rgb24")
        vf.pts = index
        for packet in self.vs.encode(vf):
            self.container.mux(packet)

    def audio(self, pcm: np.ndarray, start: int) -> None:
        for k in range(0, len(pcm), AAC_FRAME):
            af = self._av.AudioFrame.from_ndarray(pcm[None, k: k + AAC_FRAME], format="s16", layout="mono")
            af.sample_rate = self.sample_rate
            af.pts = start + k
            for packet in self.ast.encode(af):
                self.container.mux(packet)

    def close(self) -> None:
        if self.vs is None:
            raise ValueError("no video frames to write")
        for stream in (self.vs, self.ast):
            for packet in stream.encode():
                self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class _WavSink:
    """16-bit mono PCM WAV; video frames are counted for the timeline but not stored."""

    started = True

    def __init__(self, path: Path, fps: float, sample_rate: int) -> None:
        self.wav = wave.open(str(path), "wb")  # noqa: SIM115 - closed by close()/abort()
        self.wav.setnchannels(1)
        self.wav.setsampwidth(2)
        self.wav.setframerate(sample_rate)

    def video(self, image: np.ndarray, index: int) -> None:
        pass

    def audio(self, pcm: np.ndarray, start: int) -> None:
        self.wav.writeframes(pcm.astype("<i2").tobytes())

    def close(self) -> None:
        self.wav.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.wav.close()


class MediaRecorder:
    """Collects a session's output frames into an MP4 (or WAV): streamed to `path`, or kept in
    memory when `path` is None and written by `write(path)`."""

    def __init__(self, path: str | Path | None = None, *, fps: float = 25.0, sample_rate: int = 24000,
                 user_gain: float = 0.8) -> None:
        self.fps, self.sample_rate, self.user_gain = fps, sample_rate, user_gain
        self.path = None if path is None else check_output(path)
        self.video: list[VideoFrame] = []  # in-memory mode only
        self.audio: list[tuple[float, np.ndarray]] = []  # in-memory mode only
        self.late_samples = 0  # audio that arrived after its time was already on disk (dropped)
        self._end_v = self._end_a = 0.0
        self._last_pts: float | None = None
        self._last_image: np.ndarray | None = None
        self._tick = 0  # next video tick to write
        self._buf = np.zeros(0, np.float32)  # mixed audio not yet on disk ...
        self._buf_start = 0  # ... starting at this sample
        self._done = False
        self._sink = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(self.path)
            self._tmp = partial_path(self.path)
            sink = _WavSink if self.path.suffix.lower() == ".wav" else _Mp4Sink
            self._sink = sink(self._tmp, fps, sample_rate)

    async def __call__(self, frame: Frame) -> None:
        self.add(frame)

    def __enter__(self) -> MediaRecorder:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    # -- frames in -----------------------------------------------------------------------------
    def add(self, frame: Frame) -> None:
        if isinstance(frame, VideoFrame):
            self._end_v = max(self._end_v, frame.pts + 1 / self.fps)
            if self._sink is None:
                self.video.append(frame)
            else:
                self._add_video(frame.image, frame.pts)
        elif isinstance(frame, AudioChunk | UserAudio):
            gain = self.user_gain if isinstance(frame, UserAudio) else 1.0
            samples = resample(frame.samples, frame.sample_rate, self.sample_rate)
            self._add_audio(frame.pts, gain * samples if gain != 1.0 else samples)

    def _add_video(self, image: np.ndarray, pts: float) -> None:
        if pts + TICK_EPS < self._tick / self.fps and self._last_pts is not None:
            return  # older than what is already written (frames arrive in order; never happens in a session)
        # Every tick before this frame is final now: it shows the previous image (the first frame
        # stands in for ticks before it). A missing tick repeats the previous image (held frame).
        held = self._last_image if self._last_image is not None else image
        while self._tick / self.fps + TICK_EPS < pts:
            self._sink.video(held, self._tick)
            self._tick += 1
        self._last_image, self._last_pts = image, pts
        self._flush_audio(int((self._tick / self.fps - AUDIO_WINDOW_S) * self.sample_rate))

    def _add_audio(self, pts: float, samples: np.ndarray) -> None:
        self._end_a = max(self._end_a, pts + len(samples) / self.sample_rate)
        if self._sink is None:
            self.audio.append((pts, samples))
            return
        start = int(round(pts * self.sample_rate))
        if start < self._buf_start:  # its beginning is already on disk
            cut = min(len(samples), self._buf_start - start)
            self.late_samples += cut
            samples, start = samples[cut:], self._buf_start
        end = start + len(samples) - self._buf_start
        if end > len(self._buf):
            grown = np.zeros(max(end, 2 * len(self._buf)), np.float32)
            grown[: len(self._buf)] = self._buf
            self._buf = grown
        self._buf[start - self._buf_start: end] += samples

    def _flush_audio(self, upto: int, final: bool = False) -> None:
        """Write mixed audio up to sample `upto` (whole AAC frames unless `final`)."""
        if not self._sink.started:
            return
        n = upto - self._buf_start
        if not final:
            n -= n % AAC_FRAME
        if n <= 0:
            return
        block = self._buf[:n] if n <= len(self._buf) else np.pad(self._buf, (0, n - len(self._buf)))
        self._sink.audio(_pcm16(block), self._buf_start)
        self._buf = self._buf[n:].copy()
        self._buf_start += n

    # -- the file out --------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        return max(self._end_v, self._end_a)

    def finish(self) -> Path:
        """Write what is left and rename the file to its name. Raises ValueError (nothing written)
        for an MP4 without a single video frame."""
        if self._sink is None:
            raise ValueError("this recorder keeps frames in memory: call write(path)")
        if self._done:
            return self.path
        try:
            if self._last_image is not None:
                n_total = max(int(round(self.duration * self.fps)), int(round(self._last_pts * self.fps)) + 1)
                while self._tick < n_total:
                    self._sink.video(self._last_image, self._tick)
                    self._tick += 1
            self._flush_audio(int(round(self.duration * self.sample_rate)), final=True)
            self._sink.close()
            commit(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.path

    def abort(self) -> None:
        """Stop and delete the partial file: nothing appears under the output name."""
        if self._sink is None or self._done:
            return
        self._done = True
        self._sink.abort()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    # -- in-memory mode ------------------------------------------------------------------------
    def mixed_audio(self, duration: float) -> np.ndarray:
        out = np.zeros(int(round(duration * self.sample_rate)), dtype=np.float32)
        for pts, samples in self.audio:
            start = int(round(pts * self.sample_rate))
            if start >= len(out):
                continue
            seg = samples[: len(out) - start]
            out[start: start + len(seg)] += seg
        return np.clip(out, -1.0, 1.0)

    def write(self, path: str | Path) -> Path:
        """Write the frames kept in memory to `path` (.mp4 or .wav), atomically."""
        with MediaRecorder(path, fps=self.fps, sample_rate=self.sample_rate) as rec:
            for pts, samples in self.audio:  # audio first: none of it is final before the video
                rec._add_audio(pts, samples)
            for frame in sorted(self.video, key=lambda f: f.pts):
                rec.add(frame)
        return rec.path


def write_mp4(path: str | Path, frames: list[VideoFrame], audio: np.ndarray, sample_rate: int, fps: float = 25.0) -> None:
    """Write frames (held until the next frame's pts) and mono audio starting at 0 to an H.264/AAC
    MP4 (or the audio alone to a .wav), atomically."""
    if not frames and Path(path).suffix.lower() != ".wav":
        raise ValueError("no video frames to write")
    with MediaRecorder(path, fps=fps, sample_rate=sample_rate) as rec:
        rec._add_audio(0.0, np.asarray(audio, np.float32))
        for frame in sorted(frames, key=lambda f: f.pts):
            rec.add(frame)
