"""Typed frames: everything that flows through the runtime (docs/architecture.md §3-4).

Three kinds, as in Pipecat:
- `SystemFrame`  jumps every queue and is never dropped (Interrupt, Error).
- `ControlFrame` keeps its order and survives an interruption (EndOfTurn, EndOfStream, Tick).
- `DataFrame`    keeps its order and is dropped from queues when an Interrupt passes (barge-in).

Every frame carries `pts`, its presentation time in seconds on the session clock, and the
`session_id` of the session it belongs to.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from mio.core.layouts import ARKIT52, HUMANML3D, LAYOUTS, Layout

_ids = itertools.count()


@dataclass(kw_only=True)
class Frame:
    pts: float = 0.0
    session_id: str = ""
    id: int = field(default_factory=lambda: next(_ids), repr=False, compare=False)

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(kw_only=True)
class SystemFrame(Frame):
    """Jumps queues; never dropped."""


@dataclass(kw_only=True)
class ControlFrame(Frame):
    """Ordered; survives interruptions."""


@dataclass(kw_only=True)
class DataFrame(Frame):
    """Ordered; dropped from queues on interruption."""


# ---------------------------------------------------------------- system


@dataclass(kw_only=True)
class Interrupt(SystemFrame):
    """Barge-in: the user spoke or typed while the avatar was talking.

    `heard_text` is what the user had heard of the reply before the cut (filled in by the
    stage that knows what was played), so the Thinker can continue from there.
    """

    reason: str = "user"
    heard_text: str = ""


@dataclass(kw_only=True)
class UserSpeech(SystemFrame):
    """The user's voice, as the ASR stage hears it (`event`): `speech` (an utterance began), `barge` (long
    enough to interrupt), `partial` (a live caption in `text`), `end` (its transcript; `turn`
    False when it was empty or a backchannel). Sent to the transport, not through the stages."""

    event: str
    text: str = ""
    turn: bool = False


@dataclass(kw_only=True)
class ErrorFrame(SystemFrame):
    message: str
    fatal: bool = False


# ---------------------------------------------------------------- control


@dataclass(kw_only=True)
class StartOfTurn(ControlFrame):
    turn_id: int
    role: str = "assistant"


@dataclass(kw_only=True)
class EndOfTurn(ControlFrame):
    turn_id: int
    role: str = "assistant"
    text: str = ""


@dataclass(kw_only=True)
class EndOfStream(ControlFrame):
    """No more input; every stage flushes and stops."""


@dataclass(kw_only=True)
class Tick(ControlFrame):
    """A video frame is due at `pts` (emitted at VIDEO_FPS by the session's frame clock)."""

    index: int


# ---------------------------------------------------------------- data


@dataclass(kw_only=True)
class UserText(DataFrame):
    """What the user said (typed, or transcribed from their audio)."""

    text: str
    user_id: str = "guest"


@dataclass(kw_only=True)
class UserAudio(DataFrame):
    """A chunk of the user's microphone audio: mono float32 PCM. Drives the listening face."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Emotion:
    label: str = "neutral"
    intensity: float = 0.5


@dataclass(kw_only=True)
class PlanChunk(DataFrame):
    """One clause of the Thinker's unified action plan A_t (§6.1): dialogue, emotion, gesture."""

    turn_id: int
    index: int
    text: str
    emotion: Emotion = field(default_factory=Emotion)
    gesture: str | None = None  # short text prompt for the Body Animator, applied at this clause
    camera: str | None = None  # optional named camera instruction
    final: bool = False


@dataclass(frozen=True)
class Segment:
    """A timed unit (word or phone), times in seconds from the start of its audio chunk."""

    label: str
    start: float
    end: float


@dataclass(kw_only=True)
class AudioChunk(DataFrame):
    """Synthesised speech for one clause: mono float32 PCM, with word/phone timings when known."""

    samples: np.ndarray
    sample_rate: int
    turn_id: int = 0
    text: str = ""
    words: tuple[Segment, ...] = ()
    phones: tuple[Segment, ...] = ()
    emotion: Emotion = field(default_factory=Emotion)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def end(self) -> float:
        return self.pts + self.duration


@dataclass(kw_only=True)
class FaceFrame(DataFrame):
    """Face parameters for one 25 fps frame, in a named layout (default `arkit52`)."""

    values: np.ndarray
    layout: str = ARKIT52.name

    @property
    def spec(self) -> Layout:
        return LAYOUTS[self.layout]

    def part(self, name: str) -> np.ndarray:
        return self.values[self.spec.slice(name)]


@dataclass(kw_only=True)
class BodyFrame(DataFrame):
    """Body pose for one frame: the HumanML3D 263-D feature and the 22 recovered joints (m, Y up)."""

    features: np.ndarray  # (263,)
    joints: np.ndarray  # (22, 3)

    def __post_init__(self) -> None:
        HUMANML3D.check(self.features)


@dataclass(kw_only=True)
class VideoFrame(DataFrame):
    image: np.ndarray  # (H, W, 3) uint8 RGB
    index: int = 0


@dataclass(kw_only=True)
class CameraChange(DataFrame):
    camera: object  # mio.render.camera.Camera


def is_system(frame: Frame) -> bool:
    return isinstance(frame, SystemFrame)


def is_droppable(frame: Frame) -> bool:
    return isinstance(frame, DataFrame)
