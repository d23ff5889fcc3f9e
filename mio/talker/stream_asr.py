"""Streaming voice input: Silero VAD segmentation, endpointing with a hang-over, backchannels.

The user's microphone streams continuously. `Endpointer` cuts it into utterances on the speech
probability of Silero VAD (the ONNX model that ships inside faster-whisper's wheel, 32 ms frames,
~0.1 ms each on one core) and says when to decode:

    start    voiced for `onset_ms`: an utterance begins (with `preroll_ms` of audio before it)
    barge    the utterance has lasted `min_barge_in_s`: long enough to interrupt the avatar
             (a shorter "mm-hm" while it talks is a backchannel, not a barge-in)
    partial  another `partial_every_s` of speech: decode the growing window for a live caption
    pause    `pause_ms` of silence after speech: decode the utterance now, ahead of the endpoint
    resume   speech again after a pause: that decode is stale
    end      `hangover_ms` of silence (or `max_utterance_s`): the turn is over

Decoding at `pause` instead of at `end` hides whisper's decode (~0.3 s for a 2-3 s utterance on
two cores) inside the hang-over, so the transcript is ready when the endpoint fires; end of speech
-> Thinker is then the hang-over alone. The policy for short acknowledgements (`is_backchannel`)
keeps "mm-hm" and "yeah" said while the avatar talks from becoming turns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mio.core.config import ASRConfig as EndpointConfig
from mio.core.errors import BackendError

VAD_RATE = 16000  # Silero and whisper both hear 16 kHz
VAD_FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
VAD_CONTEXT = 64  # samples of the previous frame Silero v5/v6 sees before each frame
VAD_STATE = (1, 1, 128)  # LSTM state shape (h and c)


def silero_model_path() -> Path:
    try:
        import faster_whisper
    except ImportError as e:
        raise BackendError("Silero VAD ships inside faster-whisper: run `bash scripts/setup.sh`") from e
    assets = Path(os.path.dirname(faster_whisper.__file__)) / "assets"
    found = sorted(assets.glob("silero_vad*.onnx"))
    if not found:
        raise BackendError(f"no Silero VAD model (silero_vad*.onnx) in {assets}")
    return found[-1]


class SileroVAD:
    """The Silero VAD ONNX model, loaded once per process; `probs` runs one stream's frames."""

    name = "silero"

    def __init__(self, path: str | Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1  # a 32 ms frame costs ~0.1 ms: threads only add overhead
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            self.session = onnxruntime.InferenceSession(str(path or silero_model_path()), sess_options=opts,
                                                        providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
            raise BackendError(f"cannot load the Silero VAD model: {e}") from e

    def new_state(self) -> dict[str, np.ndarray]:
        return {"h": np.zeros(VAD_STATE, np.float32), "c": np.zeros(VAD_STATE, np.float32),
                "context": np.zeros((1, VAD_CONTEXT), np.float32)}

    def probs(self, frames: np.ndarray, state: dict[str, np.ndarray]) -> np.ndarray:
        """Speech probability of each 512-sample frame of `frames` (n, 512), in order; `state`
        carries the LSTM state and the last 64 samples to the next call."""
        out = np.empty(len(frames), np.float32)
        for i, frame in enumerate(frames):
            x = np.concatenate([state["context"], frame[None]], axis=1)
            p, state["h"], state["c"] = self.session.run(None, {"input": x, "h": state["h"], "c": state["c"]})
            state["context"] = frame[None, -VAD_CONTEXT:]
            out[i] = float(np.asarray(p).ravel()[0])
        return out


class EnergyFrameVAD:
    """Fallback when faster-whisper is absent (a server without ASR still needs voice barge-in):
    the energy VAD of the web transport, as 0/1 probabilities per 512-sample frame."""

    name = "energy"

    def __init__(self) -> None:
        from mio.talker.vad import EnergyVAD, VADConfig

        self._make = lambda: EnergyVAD(VADConfig(sample_rate=VAD_RATE))

    def new_state(self) -> dict:
        return {"vad": self._make()}

    def probs(self, frames: np.ndarray, state: dict) -> np.ndarray:
        vad = state["vad"]
        out = np.empty(len(frames), np.float32)
        for i, frame in enumerate(frames):
            db = vad.level_db(frame)
            voiced = vad._voiced(db)
            if not voiced:
                vad._track_noise(db)
            out[i] = 1.0 if voiced else 0.0
        return out


def load_vad() -> SileroVAD | EnergyFrameVAD:
    try:
        return SileroVAD()
    except (BackendError, ImportError):
        return EnergyFrameVAD()


@dataclass(frozen=True)
class Event:
    kind: str  # start | barge | partial | pause | resume | end
    speech_end: int = 0  # samples (16 kHz, from the utterance start) up to the end of the last speech


@dataclass
class Endpointer:
    """One microphone stream -> utterances and decode points (see the module docstring)."""

    vad: SileroVAD | EnergyFrameVAD
    config: EndpointConfig = field(default_factory=EndpointConfig)  # mio.core.config.ASRConfig

    def __post_init__(self) -> None:
        c = self.config
        ms = 1000 * VAD_FRAME / VAD_RATE
        self._onset = max(1, round(c.onset_ms / ms))
        self._pause = max(1, round(c.pause_ms / ms))
        self._hangover = max(self._pause + 1, round(c.hangover_ms / ms))
        self._preroll = max(0, round(c.preroll_ms / ms))
        self._state = self.vad.new_state()
        self._rest = np.zeros(0, np.float32)
        self._recent: list[np.ndarray] = []  # frames before an utterance (onset + preroll)
        self._recent_voiced = 0
        self.reset()

    def reset(self) -> None:
        self.in_speech = False
        self.audio: list[np.ndarray] = []  # the utterance's frames
        self.speech_end = 0  # samples into the utterance where its last voiced frame ends
        self._silent = 0
        self._paused = False
        self._barged = False
        self._last_partial = 0
        self.speech_start = 0  # samples into the utterance where speech began (after the pre-roll)

    @property
    def samples(self) -> np.ndarray:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> list[Event]:
        """Feed mono float32 samples at 16 kHz; returns the events they caused, in order."""
        c, events = self.config, []
        buf = np.concatenate([self._rest, np.asarray(samples, np.float32)])
        n = len(buf) // VAD_FRAME
        self._rest = buf[n * VAD_FRAME:]
        if n == 0:
            return events
        frames = buf[: n * VAD_FRAME].reshape(n, VAD_FRAME)
        probs = self.vad.probs(frames, self._state)
        max_samples = int(c.max_utterance_s * VAD_RATE)
        for frame, p in zip(frames, probs, strict=True):
            voiced = p >= c.threshold
            if not self.in_speech:
                self._recent.append(frame)
                self._recent = self._recent[-(self._onset + self._preroll):]
                self._recent_voiced = self._recent_voiced + 1 if voiced else 0
                if self._recent_voiced >= self._onset:
                    self.reset()
                    self.in_speech = True
                    self.audio = list(self._recent)
                    self.speech_end = len(self.audio) * VAD_FRAME
                    self.speech_start = self.speech_end - self._onset * VAD_FRAME
                    self._recent, self._recent_voiced = [], 0
                    events.append(Event("start", self.speech_end))
                continue
            self.audio.append(frame)
            total = len(self.audio) * VAD_FRAME
            if voiced:
                self.speech_end = total
                self._silent = 0
                if self._paused:
                    self._paused = False
                    events.append(Event("resume", self.speech_end))
            else:
                self._silent += 1
            spoken = (self.speech_end - self.speech_start) / VAD_RATE
            if not self._barged and spoken >= c.min_barge_in_s:
                self._barged = True
                events.append(Event("barge", self.speech_end))
            if c.partial_every_s > 0 and voiced and \
                    self.speech_end - max(self._last_partial, self.speech_start) >= c.partial_every_s * VAD_RATE:
                self._last_partial = self.speech_end
                events.append(Event("partial", self.speech_end))
            if not self._paused and self._silent == self._pause:
                self._paused = True
                events.append(Event("pause", self.speech_end))
            if self._silent >= self._hangover or total >= max_samples:
                events.append(Event("end", self.speech_end))
                self.in_speech = False
        return events


# Said while someone else holds the floor, these acknowledge rather than take the turn
# (the "false interruption" of voice agents). Non-lexical ones are never a turn on their own;
# the lexical ones are a turn when the avatar is silent (a "yes" may answer its question).
NON_LEXICAL = frozenset("mm mmm mhm mm-hm mm-hmm mmhm mmhmm hm hmm uh-huh uhhuh uh-uh um umm uh ah oh ooh aha "
                        "huh".split())
ACKNOWLEDGEMENTS = frozenset("yeah yes yep yup ok okay right sure alright i see got it cool nice wow true "
                             "exactly indeed fine good great".split())
MAX_BACKCHANNEL_WORDS = 3
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
# Hummed sounds whisper spells in many ways ("Mmm-hmm", "Mhmm", "Hmmm", "Uh-huh-huh").
_HUM = re.compile(r"^(?:[mh]+|u+h+|a+h+|o+h+)(?:-?(?:[mh]+|u+h+))*$")


def _non_lexical(word: str) -> bool:
    return word in NON_LEXICAL or bool(_HUM.match(word))


def is_backchannel(text: str, avatar_has_floor: bool, brief: bool = False) -> bool:
    """True when `text` is only an acknowledgement ("mm-hm", "yeah, right") that must not become
    a turn: always for non-lexical sounds, and for short lexical ones while the avatar talks.
    `brief`: the utterance was shorter than a barge-in; said over the avatar, whatever whisper
    made of it ("Mmmicham."), it was an aside, not a turn."""
    words = _WORD.findall(text.lower().replace("'", ""))
    if not words:
        return True  # nothing but punctuation: whisper heard no words
    if all(_non_lexical(w) for w in words):
        return True
    if len(words) > MAX_BACKCHANNEL_WORDS or not avatar_has_floor:
        return False
    if brief and len(words) == 1:
        return True
    phrase = " ".join(words)
    return all(_non_lexical(w) or w in ACKNOWLEDGEMENTS for w in words) or phrase in ACKNOWLEDGEMENTS


class DecodeScheduler:
    """One recogniser shared by every session, one decode at a time, most urgent first.

    Whisper on two cores decodes one utterance in ~0.3-0.6 s and CTranslate2 runs one request at
    a time, so with two users a caption of one could hold up the other's transcript for seconds.
    Here the transcripts that may end a turn (decoded at a pause) go first, a queued one that a
    resumed utterance made stale is skipped, and a live caption runs only when nothing else waits
    (else it is dropped: a newer caption follows)."""

    URGENT, CAPTION = 0, 1

    def __init__(self, asr) -> None:
        import heapq
        import itertools
        import threading

        self.asr = asr
        self._heap: list = []
        self._push, self._pop = heapq.heappush, heapq.heappop
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._busy = False
        self.skipped_captions = 0
        self._thread = threading.Thread(target=self._work, name="mio-asr", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                _, _, fut, loop, args = self._pop(self._heap)
                self._busy = True
            try:
                if fut.cancelled():
                    continue
                try:
                    result = self.asr.transcribe(*args)
                except BaseException as e:  # noqa: BLE001 - handed to the waiting coroutine
                    loop.call_soon_threadsafe(_settle, fut, None, e)
                else:
                    loop.call_soon_threadsafe(_settle, fut, result, None)
            finally:
                with self._cv:
                    self._busy = False

    def submit(self, audio: np.ndarray, rate: int, context: str | None, caption: bool = False):
        """An asyncio future of the transcript; for a caption None when it was not worth running now."""
        import asyncio

        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cv:
            if caption and (self._busy or self._heap):
                self.skipped_captions += 1
                fut.set_result(None)
                return fut
            self._push(self._heap, (self.CAPTION if caption else self.URGENT, next(self._seq), fut, loop,
                                    (audio, rate, context)))
            self._cv.notify()
        return fut


def _settle(fut, result, error) -> None:
    if fut.cancelled():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def shared_scheduler(asr) -> DecodeScheduler:
    """The scheduler of a recogniser (one per loaded model, shared by its sessions)."""
    sched = getattr(asr, "_mio_scheduler", None)
    if sched is None:
        sched = DecodeScheduler(asr)
        asr._mio_scheduler = sched
    return sched
