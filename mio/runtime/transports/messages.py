"""Mio's WebSocket wire protocol, both directions, in one file: the reference for client authors
(the page mio/server/static/app.js, the load client mio/bench/serve_client.py, a game engine).

Two sockets, same messages: `/ws/session?token=...` (browser mode: speech and JPEG video) and
`/ws/params?token=...` (params mode: speech and the face / body parameters as JSON, no video).

Server -> client, binary (media): a 24-byte little-endian header `HEADER` then the payload.
    kind 1 AUDIO  aux1 = sample rate, aux2 = turn id, pts; payload float32 mono PCM
    kind 2 VIDEO  aux1 = frame index, aux2 = 0,      pts; payload JPEG (RGB)
    `pts` is seconds on the session clock: the client plays audio and shows video against one
    clock, so they stay in sync whatever the network does.
Server -> client, text: one JSON object per message, told apart by `type`; one pydantic model
    per type below (`...Out`, the union `ServerMessage`). Times (`pts`, `end`, `speech_end`,
    `session_time`) are seconds on the session clock rounded to 0.1 ms; face / body parameters
    are rounded to 5 decimals (always finite). A field that a message leaves out is absent, not null (`vad`
    during speech, `ready` in browser mode, `error` other than idle_warning); a field that may
    be null says so (`plan.gesture`, `pong.t`). Clients should ignore fields they do not know.
Client -> server, text: JSON `{"type": ...}`, one model per type (`...Msg`, the union
    `ClientMessage`): text {text}, interrupt, mic {on, sample_rate}, story_time {value},
    ping {t}, end.
Client -> server, binary: microphone audio, 16-bit little-endian mono PCM at the rate announced
    by the last `mic` message; the session's ASR stage cuts it into utterances (Silero VAD).

Client messages are parsed straight from the JSON text (pydantic-core's jiter, which refuses
nesting deeper than its recursion limit before building anything); every field is strictly typed
(no "5" for 5, no NaN) and unknown extra fields are ignored for forward compatibility. A bad
message gets an `error` reply whose `code` says why: too_large, bad_json, bad_message (not an
object with a "type"), unknown_type, bad_input (a field is wrong; the message names it), failed
(the session refused it), not_supported, no_asr, internal (a bug; the session goes on), pipeline
(a stage failed), idle_warning / idle (the idle clock), and before a session starts bad_token,
bad_mode, busy.

Server messages are built from these models only, so a misspelt field or type is a
ValidationError where the message is made, not a silent change on the wire. `encode` writes the
compact JSON by `json.dumps` (Python's shortest float repr, non-ASCII escaped, never NaN).
"""

from __future__ import annotations

import json
import logging
import struct
from typing import Annotated, Literal, get_args

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from mio.core.errors import InputError

log = logging.getLogger(__name__)

HEADER = struct.Struct("<BxxxIIxxxxd")  # kind, aux1, aux2, (pad), pts -> 24 bytes, keeps float32 aligned
AUDIO, VIDEO = 1, 2
Mode = Literal["browser", "params"]  # /ws/session, /ws/params
MODES: tuple[str, ...] = get_args(Mode)


def unpack(data: bytes) -> tuple[int, int, int, float, bytes]:
    """(kind, aux1, aux2, pts, payload) of a server media message (for Python clients and tests)."""
    kind, aux1, aux2, pts = HEADER.unpack_from(data)
    return kind, aux1, aux2, pts, data[HEADER.size:]


def round_time(x: float) -> float:
    """Seconds as sent: rounded to 0.1 ms."""
    return round(float(x), 4)


def _params(v: object) -> object:
    """An array of parameters as lists of floats rounded to 5 decimals in float64, so each goes out
    as its shortest repr ("0.12346", not float32's widened "0.12346000224351883": a params-mode face
    message is ~2x smaller). A non-finite value (an upstream bug) would be written as NaN, which a
    browser's JSON.parse rejects, losing the whole message: it is sent as 0 and logged instead."""
    if not isinstance(v, np.ndarray):
        return v
    a = np.asarray(v, dtype=np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        log.warning("%d non-finite parameter value(s) sent as 0", int(bad.sum()))
        a = np.where(bad, 0.0, a)
    return (np.round(a, 5) + 0.0).tolist()  # + 0.0: no "-0.0" on the wire


Seconds = Annotated[float, AfterValidator(round_time)]  # session-clock time, rounded to 0.1 ms
Params = Annotated[list[float], BeforeValidator(_params)]
Joints = Annotated[list[list[float]], BeforeValidator(_params)]


def _omitted():  # a field left out of the JSON when it is None
    return Field(default=None, exclude_if=lambda v: v is None)


# -- server -> client ----------------------------------------------------------------------------
class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # JSON has no NaN


class CharacterInfo(_Out):
    id: str
    name: str
    greeting: str


class LimitsInfo(_Out):
    max_message_bytes: int  # of any one client message, text or audio
    max_text_chars: int  # of a `text` message


class FaceInfo(_Out):
    layout: str  # e.g. "arkit52"
    names: list[str]  # one per value of a `face` message


class BodyInfo(_Out):
    layout: str  # "humanml3d263": the 263 values of `features`
    joints: int  # rows of a `body` message's `joints`


class ReadyOut(_Out):
    """First message of a session: what the server offers. `face` / `body` only in params mode."""

    type: Literal["ready"] = "ready"
    session_id: str
    mode: Mode
    character: CharacterInfo
    fps: float  # video / parameter frames per second
    audio_sample_rate: int  # of the AUDIO media messages
    mic_sample_rate: int  # the rate the server's ASR prefers
    asr: bool  # False: the server does not answer speech (the face still listens)
    story_time: bool  # True: `story_time` messages are understood
    limits: LimitsInfo
    face: FaceInfo | None = _omitted()
    body: BodyInfo | None = _omitted()


class UserTextOut(_Out):
    """The user's turn as the Thinker takes it: typed text, or the transcript of an utterance."""

    type: Literal["user_text"] = "user_text"
    text: str
    pts: Seconds


class UserPartialOut(_Out):
    """A live caption of the utterance in progress (replaced by `user_text` or dropped at `vad` end)."""

    type: Literal["user_partial"] = "user_partial"
    text: str


class TurnStartOut(_Out):
    type: Literal["turn_start"] = "turn_start"
    turn: int
    pts: Seconds


class PlanOut(_Out):
    """One clause of the reply as the Thinker writes it: dialogue, emotion, gesture."""

    type: Literal["plan"] = "plan"
    turn: int
    index: int  # clause number within the turn
    text: str
    emotion: str
    intensity: float  # 0..1
    gesture: str | None  # a short motion prompt, or null
    pts: Seconds


class TurnEndOut(_Out):
    type: Literal["turn_end"] = "turn_end"
    turn: int
    text: str  # the whole reply
    pts: Seconds


class InterruptOut(_Out):
    """Barge-in: drop every scheduled audio chunk. Sent ahead of anything queued."""

    type: Literal["interrupt"] = "interrupt"
    heard_text: str  # what the user had heard of the reply
    reason: str
    pts: Seconds


class VadOut(_Out):
    """The user's voice: `speech` when an utterance begins; `end` with its transcript, whether it
    became a turn (False: empty or a backchannel) and when the speech ended."""

    type: Literal["vad"] = "vad"
    state: Literal["speech", "end"]
    text: str | None = _omitted()
    turn: bool | None = _omitted()
    speech_end: Seconds | None = _omitted()

    @model_validator(mode="after")
    def _fields_of_state(self) -> VadOut:
        given = (self.text is not None, self.turn is not None, self.speech_end is not None)
        if given != ((self.state == "end"),) * 3:
            raise ValueError('"end" carries text, turn and speech_end; "speech" carries none of them')
        return self


class StoryTimeOut(_Out):
    type: Literal["story_time"] = "story_time"
    value: int | float | str  # the story time now set
    label: str  # how the story names it ("" when it has no name)


class PongOut(_Out):
    type: Literal["pong"] = "pong"
    t: int | float | str | None  # the ping's `t`, echoed (null when it had none)
    session_time: Seconds


class ErrorOut(_Out):
    """Anything refused or failed; the session goes on (except `idle`, `bad_token`, `bad_mode`, `busy`)."""

    type: Literal["error"] = "error"
    code: str  # see the module docstring
    seconds_left: int | None = _omitted()  # idle_warning only (before `message`, as always sent)
    message: str


class ClosedOut(_Out):
    """The last message of a session."""

    type: Literal["closed"] = "closed"
    session_id: str
    reason: str


class FaceOut(_Out):
    """Params mode, 25 per second: one frame of face parameters (names in `ready.face.names`)."""

    type: Literal["face"] = "face"
    pts: Seconds
    layout: str
    values: Params


class BodyOut(_Out):
    """Params mode, 25 per second: one body pose, 22 joints (x, y, z in m, Y up) and the
    HumanML3D 263-value feature."""

    type: Literal["body"] = "body"
    pts: Seconds
    joints: Joints
    features: Params


ServerMessage = Annotated[
    ReadyOut | UserTextOut | UserPartialOut | TurnStartOut | PlanOut | TurnEndOut | InterruptOut | VadOut
    | StoryTimeOut | PongOut | ErrorOut | ClosedOut | FaceOut | BodyOut,
    Field(discriminator="type")]
SERVER_MESSAGE = TypeAdapter(ServerMessage)
SERVER_MODELS: tuple[type[_Out], ...] = get_args(get_args(ServerMessage)[0])
SERVER_TYPES = tuple(get_args(m.model_fields["type"].annotation)[0] for m in SERVER_MODELS)


def encode(msg: ServerMessage) -> str:
    """The message as sent: compact JSON by `json.dumps`, so every byte is what clients have always
    received (pydantic's own serializer would write floats such as 9.99e-06 without the exponent
    and non-ASCII text unescaped: the same values, other bytes). No NaN or infinity can reach it:
    the models refuse them, so every message is JSON a browser parses."""
    return json.dumps(msg.model_dump(), separators=(",", ":"), allow_nan=False)


def parse_server_message(text: str | bytes) -> ServerMessage:
    """A server text message as its typed model (for Python clients and tests); ValidationError if bad."""
    return SERVER_MESSAGE.validate_json(text)


# -- client -> server ----------------------------------------------------------------------------
MAX_LABEL_CHARS = 64  # story-time labels ("2:14", "+1") and ping tokens


class _Msg(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)


Label = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_CHARS)]


class TextMsg(_Msg):
    type: Literal["text"]
    text: str  # emptiness and length are the Thinker's rules (it names its limit)


class InterruptMsg(_Msg):
    type: Literal["interrupt"]


class MicMsg(_Msg):
    type: Literal["mic"]
    on: bool
    sample_rate: int | None = None  # required with on=true; its range is WebLimits'


class StoryTimeMsg(_Msg):
    type: Literal["story_time"]
    value: int | float | Label  # a chapter index, or "12", "+1", "2:5" as the story clock reads them


class PingMsg(_Msg):
    type: Literal["ping"]
    t: int | float | Label | None = None  # echoed back in the pong


class EndMsg(_Msg):
    type: Literal["end"]


ClientMessage = Annotated[TextMsg | InterruptMsg | MicMsg | StoryTimeMsg | PingMsg | EndMsg,
                          Field(discriminator="type")]
CLIENT_MESSAGE = TypeAdapter(ClientMessage)
CLIENT_MODELS: tuple[type[_Msg], ...] = get_args(get_args(ClientMessage)[0])
CLIENT_TYPES = tuple(get_args(m.model_fields["type"].annotation)[0] for m in CLIENT_MODELS)


class BadMessage(InputError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_client_message(text: str) -> TextMsg | InterruptMsg | MicMsg | StoryTimeMsg | PingMsg | EndMsg:
    """The typed message, or a BadMessage whose `code` is the wire error code."""
    try:
        return CLIENT_MESSAGE.validate_json(text)
    except ValidationError as e:
        raise _bad_message(e) from None


def _bad_message(e: ValidationError) -> BadMessage:
    err = e.errors(include_url=False)[0]
    kind = err["type"]
    if kind == "json_invalid":
        detail = err["msg"].removeprefix("Invalid JSON: ")
        return BadMessage("bad_json", f"message is not JSON ({detail})")
    if kind in ("model_type", "dict_type", "union_tag_not_found"):
        return BadMessage("bad_message", 'a message must be a JSON object with a string "type"')
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        return BadMessage("unknown_type", f"unknown message type {tag!r}; expected one of {', '.join(CLIENT_TYPES)}")
    loc = err["loc"]
    msg_type, field = (loc[0], loc[1]) if len(loc) >= 2 else (loc[0] if loc else "?", None)
    where = f'"{msg_type}" message' + (f', field "{field}"' if field else "")
    if kind == "missing":
        return BadMessage("bad_input", f"{where} is missing")
    # A union field lists one error per alternative; say what would be accepted instead.
    accepted = {"value": "a finite number or a short label", "t": "a number, a short text or null",
                "sample_rate": "an integer (Hz)", "on": "true or false", "text": "a string"}.get(field)
    return BadMessage("bad_input", f"{where}: must be {accepted}" if accepted else f"{where}: {err['msg']}")
