"""The WebSocket wire protocol (mio/runtime/transports/messages.py): every server message type
round-trips through the schema, the transport writes the bytes clients have always received, a
misspelt field is an error where the message is made, and the page handles what the schema sends."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from mio.core.frames import (
    AudioChunk,
    BodyFrame,
    Emotion,
    EndOfTurn,
    ErrorFrame,
    FaceFrame,
    Interrupt,
    PlanChunk,
    StartOfTurn,
    UserSpeech,
    UserText,
)
from mio.runtime.transports.messages import (
    AUDIO,
    CLIENT_TYPES,
    SERVER_TYPES,
    BodyInfo,
    BodyOut,
    CharacterInfo,
    ClosedOut,
    ErrorOut,
    FaceInfo,
    FaceOut,
    InterruptOut,
    LimitsInfo,
    PlanOut,
    PongOut,
    ReadyOut,
    StoryTimeOut,
    TurnEndOut,
    TurnStartOut,
    UserPartialOut,
    UserTextOut,
    VadOut,
    encode,
    parse_server_message,
    unpack,
)
from mio.runtime.transports.web import WebTransport

APP_JS = Path(__file__).resolve().parents[2] / "mio" / "server" / "static" / "app.js"
RNG = np.random.default_rng(19)
# float32 values as the Face / Body Animators make them, with the awkward ones: a value that
# rounds to 1e-05 (an exponent in Python's repr), a negative zero, a half-way value
FACE = np.concatenate([[0.0000123, -0.000001, 0.123455, -1.0], RNG.uniform(-1, 1, 57)]).astype(np.float32)
JOINTS = RNG.normal(size=(22, 3)).astype(np.float32)
FEATURES = RNG.normal(size=263).astype(np.float32)
LIMITS = LimitsInfo(max_message_bytes=262144, max_text_chars=2000)


def examples() -> list:
    """At least one message of every server type, with the optional and nullable fields both ways."""
    ready = dict(session_id="s1", character=CharacterInfo(id="mio", name="Mio", greeting="Héllo — ça va?"),
                 fps=25.0, audio_sample_rate=24000, mic_sample_rate=16000, asr=True, story_time=False, limits=LIMITS)
    return [
        ReadyOut(mode="browser", **ready),
        ReadyOut(mode="params", face=FaceInfo(layout="arkit52", names=["browDownLeft", "jawOpen"]),
                 body=BodyInfo(layout="humanml3d263", joints=22), **ready),
        UserTextOut(text="Hi \U0001f600", pts=1.23456789),
        UserPartialOut(text="hel"),
        TurnStartOut(turn=3, pts=2.0),
        PlanOut(turn=3, index=0, text="Hello!", emotion="happy", intensity=0.7, gesture="wave", pts=2.00004),
        PlanOut(turn=3, index=1, text="Well.", emotion="neutral", intensity=0.5, gesture=None, pts=2.5),
        TurnEndOut(turn=3, text="Hello! Well.", pts=2.6),
        InterruptOut(heard_text="Hello", reason="user", pts=3.1),
        VadOut(state="speech"),
        VadOut(state="end", text="", turn=False, speech_end=4.00001),
        StoryTimeOut(value=2, label="Chapter 2"),
        StoryTimeOut(value=2.5, label=""),
        StoryTimeOut(value="2:5", label="the ball"),
        PongOut(t=None, session_time=5.5),
        PongOut(t=1, session_time=5.5),
        PongOut(t="abc", session_time=5.5),
        ErrorOut(code="bad_input", message='"text" message, field "text": must be a string'),
        ErrorOut(code="idle_warning", seconds_left=30, message="Still there?"),
        ClosedOut(session_id="s1", reason="ended by client"),
        FaceOut(pts=6.0, layout="arkit52", values=FACE),
        BodyOut(pts=6.0, joints=JOINTS, features=FEATURES),
    ]


def test_the_examples_cover_every_server_type():
    assert sorted({m.type for m in examples()}) == sorted(SERVER_TYPES)
    assert len(set(SERVER_TYPES)) == len(SERVER_TYPES)


@pytest.mark.parametrize("msg", examples(), ids=lambda m: m.type)
def test_every_server_message_round_trips_through_the_schema(msg):
    wire = encode(msg)
    back = parse_server_message(wire)  # as the discriminated union
    assert type(back) is type(msg) and back == msg
    assert encode(back) == wire
    assert "null" not in wire or msg.type in ("plan", "pong")  # absent fields are left out, not null


def _old(msg: dict) -> str:
    """How the transport wrote a message before the schema: the bytes clients have always received."""
    return json.dumps(msg, separators=(",", ":"))


def _r(x: float) -> float:
    return round(float(x), 4)


class _Clock:
    def now(self) -> float:
        return 7.123456


class _Session:  # the transport reads only the clock here
    clock = _Clock()


async def _sent_by_transport(frames, mode: str) -> list[str]:
    out: list[str | bytes] = []

    async def send(payload: str | bytes) -> None:
        out.append(payload)

    t = WebTransport(send, mode=mode)
    t.attach(_Session())
    sender = asyncio.create_task(t.run_sender())
    for f in frames:
        await t.on_frame(f)
    await t.handle('{"type": "ping", "t": "x1"}')
    await t.handle('{"type": "ping"}')
    await t.handle('{"type": "dance"}')
    async with asyncio.timeout(5):
        while not out or out[-1][:16] != '{"type":"error",':
            await asyncio.sleep(0)
    sender.cancel()
    return [m for m in out if isinstance(m, str)]


def test_the_transport_sends_exactly_these_bytes():
    plan = PlanChunk(turn_id=4, index=1, text="Ça va — bien?", emotion=Emotion("happy", 0.7), gesture=None, pts=1.000049)
    frames = [
        UserText(text="Bonjour \U0001f600", pts=0.5),
        StartOfTurn(turn_id=4, pts=0.60004),
        plan,
        AudioChunk(samples=np.zeros(240, np.float32), sample_rate=24000, turn_id=4, pts=1.0),
        FaceFrame(values=FACE, pts=1.04),
        BodyFrame(features=FEATURES, joints=JOINTS, pts=1.04),
        EndOfTurn(turn_id=4, role="assistant", text="Ça va — bien?", pts=0.6),
        UserSpeech(event="speech", pts=2.0),
        UserSpeech(event="partial", text="wai", pts=2.1),
        UserSpeech(event="end", text="wait", turn=True, pts=2.345678),
        Interrupt(heard_text="Ça", reason="user", pts=2.4),
        ErrorFrame(message="the renderer failed", pts=2.5),
    ]
    sent = asyncio.run(_sent_by_transport(frames, "params"))
    expected = [
        {"type": "user_text", "text": "Bonjour \U0001f600", "pts": 0.5},
        {"type": "turn_start", "turn": 4, "pts": _r(0.60004)},
        {"type": "plan", "turn": 4, "index": 1, "text": "Ça va — bien?", "emotion": "happy", "intensity": 0.7,
         "gesture": None, "pts": _r(1.000049)},
        {"type": "face", "pts": _r(1.04), "layout": "arkit52", "values": _p(FACE)},
        {"type": "body", "pts": _r(1.04), "joints": _p(JOINTS), "features": _p(FEATURES)},
        {"type": "turn_end", "turn": 4, "text": "Ça va — bien?", "pts": 0.6},
        {"type": "vad", "state": "speech"},
        {"type": "user_partial", "text": "wai"},
        {"type": "vad", "state": "end", "text": "wait", "turn": True, "speech_end": _r(2.345678)},
        {"type": "error", "code": "pipeline", "message": "the renderer failed"},
        {"type": "pong", "t": "x1", "session_time": _r(7.123456)},
        {"type": "pong", "t": None, "session_time": _r(7.123456)},
    ]
    interrupt = _old({"type": "interrupt", "heard_text": "Ça", "reason": "user", "pts": 2.4})
    assert interrupt in sent  # it jumps the queue, so its place depends on what was still queued
    sent.remove(interrupt)
    assert sent[:-1] == [_old(m) for m in expected]
    assert json.loads(sent[-1])["code"] == "unknown_type"
    # float32 values rounded in float64 go out as their shortest repr (1e-05, not float32's widened
    # 9.999999747378752e-06), and a value that rounds to -0 as 0.0
    assert '"values":[1e-05,0.0,0.12346,-1.0,' in sent[3]


def _p(a: np.ndarray) -> list:
    return (np.round(a.astype(np.float64), 5) + 0.0).tolist()


def test_parameters_go_out_short_and_always_as_json_a_browser_parses():
    """Parameters are sent as short decimals (a face message is under 60 % of the float32 repr's
    size), and a non-finite value (a bug upstream) is sent as 0 instead of a NaN that JSON.parse
    rejects; a non-finite time is refused where the message is made."""
    face = FACE.copy()
    face[[5, 6, 7]] = [np.nan, np.inf, -np.inf]
    sent = asyncio.run(_sent_by_transport([FaceFrame(values=face, pts=0.0)], "params"))
    msg = next(m for m in sent if m.startswith('{"type":"face"'))

    def no_constants(name: str):
        raise AssertionError(f"{name} on the wire")

    values = json.loads(msg, parse_constant=no_constants)["values"]
    assert values[5:8] == [0.0, 0.0, 0.0]
    assert values[8:] == _p(FACE[8:])
    old = json.dumps({"values": np.round(FACE, 5).tolist()}, separators=(",", ":"))
    new = json.dumps({"values": _p(FACE)}, separators=(",", ":"))
    assert len(new) < 0.6 * len(old)
    with pytest.raises(ValidationError):
        FaceOut(pts=float("nan"), layout="arkit52", values=[0.0])


def test_browser_mode_sends_no_parameters():
    sent = asyncio.run(_sent_by_transport([FaceFrame(values=FACE, pts=0.0),
                                           BodyFrame(features=FEATURES, joints=JOINTS, pts=0.0)], "browser"))
    assert [json.loads(m)["type"] for m in sent] == ["pong", "pong", "error"]


def test_a_misspelt_field_or_type_fails_where_the_message_is_made():
    with pytest.raises(ValidationError, match="valuez"):
        FaceOut(pts=0.0, layout="arkit52", valuez=[0.0])
    with pytest.raises(ValidationError, match="values"):
        FaceOut(pts=0.0, layout="arkit52")
    with pytest.raises(ValidationError, match="type"):
        TurnStartOut(type="turn_begin", turn=1, pts=0.0)
    with pytest.raises(ValidationError, match="gesture"):
        PlanOut(turn=1, index=0, text="x", emotion="happy", intensity=0.5, pts=0.0)  # null must be said
    with pytest.raises(ValidationError, match="turn"):
        TurnEndOut(turn="three", text="x", pts=0.0)
    with pytest.raises(ValidationError, match="carries"):
        VadOut(state="end", text="hello")  # an end without its turn and time
    with pytest.raises(ValidationError, match="carries"):
        VadOut(state="speech", speech_end=1.0)
    with pytest.raises(ValidationError, match="mode"):
        ReadyOut(session_id="s", mode="engine", character=CharacterInfo(id="a", name="A", greeting="hi"), fps=25.0,
                 audio_sample_rate=24000, mic_sample_rate=16000, asr=False, story_time=False, limits=LIMITS)
    with pytest.raises(ValidationError):
        parse_server_message('{"type": "turn_begin", "turn": 1, "pts": 0}')


def _page_switch_cases() -> set[str]:
    """The message types the page's `onEvent` switches on (`case "..."` of `switch (msg.type)`,
    and any `msg.type === "..."` test elsewhere)."""
    js = APP_JS.read_text()
    body = js[js.index("function onEvent(msg)"):]
    body = body[: body.index("\n}\n")]
    assert "switch (msg.type)" in body
    return set(re.findall(r'case "(\w+)":', body)) | set(re.findall(r'msg\.type\s*===?\s*"(\w+)"', js))


def test_the_page_handles_every_message_the_server_sends_it():
    js = APP_JS.read_text()
    # The page opens browser-mode sessions and never pings, so `face`, `body` (params mode, for game
    # engines) and `pong` never reach it; every other type the schema knows, it handles.
    assert '"params"' not in js and "mode:" not in js
    sent_by_page = set(re.findall(r'JSON\.stringify\(\{\s*type:\s*"(\w+)"', js))
    assert sent_by_page and "ping" not in sent_by_page
    assert sent_by_page <= set(CLIENT_TYPES)
    assert _page_switch_cases() == set(SERVER_TYPES) - {"face", "body", "pong"}


def test_media_header_is_unchanged():
    from mio.runtime.transports.web import pack_audio

    data = pack_audio(AudioChunk(samples=np.ones(4, np.float32), sample_rate=24000, turn_id=7, pts=1.5))
    kind, rate, turn, pts, payload = unpack(data)
    assert (kind, rate, turn, pts, len(payload)) == (AUDIO, 24000, 7, 1.5, 16) and len(data) == 24 + 16
