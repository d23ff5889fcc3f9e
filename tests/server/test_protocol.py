"""The server's protocol on fake models: a turn end to end, barge-in, error paths, tokens, origins,
busy refusal, isolation, disconnect clean-up, the parameter stream and the rating store."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect

from tests.server.conftest import Client, start_server, stop_server, wait_until


def test_a_typed_message_gets_transcript_audio_and_video_on_one_clock(server):
    c = Client(server)
    assert c.ready["character"]["name"] == "Mio" and c.ready["audio_sample_rate"] == 24000
    c.send({"type": "text", "text": "Hello!"})
    assert c.wait("user_text")["text"] == "Hello!"
    turn = c.wait("turn_start")["turn"]
    end = c.wait("turn_end", timeout=20, turn=turn)
    assert end["text"].startswith("Sentence number 0")
    c.pump(0.5)
    speech = [(p, s) for p, t, s in c.audio if t == turn]
    assert speech and all(s.dtype == np.float32 and np.sqrt(np.mean(s**2)) > 0.05 for _, s in speech)
    assert [p for p, _ in speech] == sorted(p for p, _ in speech)
    # JPEG frames, on the 25 fps grid of the same session clock as the audio
    img = Image.open(io.BytesIO(c.video[-1][2]))
    assert img.format == "JPEG" and img.size == (16, 16)
    pts = np.array([p for p, _, _ in c.video if p > 0])
    assert np.allclose(np.round(pts * 25), pts * 25, atol=1e-3)
    assert pts.max() >= speech[0][0]
    c.close()


def test_interrupt_drops_the_reply_and_no_audio_of_it_follows(server):
    c = Client(server)
    c.send({"type": "text", "text": "Tell me a long story."})
    turn = c.wait("turn_start")["turn"]
    while not any(t == turn for _, t, _ in c.audio):
        c.pump(0.05)
    c.send({"type": "interrupt"})
    cut = c.wait("interrupt")
    n_audio = len(c.events), len(c.audio)
    c.pump(1.0)
    assert len(c.audio) == n_audio[1], "audio of the cut reply arrived after the interrupt"
    assert isinstance(cut["heard_text"], str)
    # typing barges in too, and the conversation goes on
    c.send({"type": "text", "text": "Another question."})
    turn2 = c.wait("turn_start")["turn"]
    assert turn2 > turn
    c.close()


@pytest.mark.parametrize("message, code", [
    ("not json at all", "bad_json"),
    ("[1, 2, 3]", "bad_message"),
    ('{"text": "no type"}', "bad_message"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "text"}', "bad_input"),
    ('{"type": "text", "text": "   "}', "bad_input"),
    ('{"type": "text", "text": 42}', "bad_input"),
    (json.dumps({"type": "text", "text": "x" * 2500}), "bad_input"),
    (json.dumps({"type": "text", "text": "x" * 300_000}), "too_large"),
    ('{"type": "mic", "on": true, "sample_rate": 1000}', "bad_input"),
    ('{"type": "mic", "on": "yes"}', "bad_input"),
    ('{"type": "story_time", "value": null}', "bad_input"),
    (b"\x00\x01\x02\x03", "bad_input"),  # audio before the mic was announced
])
def test_malformed_messages_get_an_error_and_the_session_goes_on(server, message, code):
    c = Client(server)
    c.send(message)
    err = c.wait("error")
    assert err["code"] == code and err["message"]
    c.send({"type": "ping", "t": 1})
    assert c.wait("pong")["t"] == 1
    c.close()


def test_malformed_audio_is_refused_with_a_reason(server):
    c = Client(server)
    c.send({"type": "mic", "on": True, "sample_rate": 16000})
    c.send(b"\x00\x01\x02")  # odd byte count
    assert "even byte count" in c.wait("error")["message"]
    c.send(b"\x00\x00" * 200_000)  # 400 kB in one message
    assert "limit" in c.wait("error")["message"]
    c.send(b"\x00\x00" * 1600)  # a good chunk is still accepted
    c.send({"type": "ping"})
    c.wait("pong")
    assert len(c.errors()) == 2
    c.close()


def test_oversized_frames_close_the_socket_but_not_the_server(server):
    c = Client(server)
    c.send(b"\x00" * (server.settings.ws_max_size + 10))
    with pytest.raises(Exception):  # noqa: B017 - the websocket layer closes with 1009
        c.pump(2.0)
        c.send({"type": "ping"})
        c.wait("pong")
    assert wait_until(lambda: not server.hub.live, 2.0)
    Client(server).close()  # the server still serves


def test_voice_turn_vad_asr_thinker_and_barge_in_by_voice(server):
    c = Client(server)
    c.send({"type": "mic", "on": True, "sample_rate": 16000})
    t = np.arange(16000) / 16000
    speech = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    silence = np.zeros(16000, "<i2")
    for chunk in np.split(np.concatenate([silence, speech, silence]), 30):
        c.send(chunk.tobytes())
    assert c.wait("vad", state="speech")
    c.wait("vad", state="end")
    assert c.wait("user_text", timeout=20)["text"] == "hello from the microphone"
    asr = server.models.asr
    # the utterance (a live caption of its first second may come before), not the silence around it
    assert 1.0 <= asr.calls[-1] <= 1.5 and all(x <= asr.calls[-1] for x in asr.calls)
    face = server.models.face.sessions[-1]
    assert face.user, "the user's audio did not reach the face (listening track)"
    # speaking while it answers cuts the answer
    turn = c.wait("turn_start")["turn"]
    while not any(tt == turn for _, tt, _ in c.audio):
        c.pump(0.05)
    for chunk in np.split(speech, 10):
        c.send(chunk.tobytes())
    cut = c.wait("interrupt")
    assert cut["reason"] == "user"
    c.close()


def test_story_time_not_supported_for_a_character_without_a_story(server):
    c = Client(server, character="mio")
    c.send({"type": "story_time", "value": 3})
    err = c.wait("error")
    assert err["code"] == "not_supported" and "story" in err["message"]
    c.close()


def test_story_time_sets_the_conversation_clock_when_the_character_has_one(server):
    story = next((k for k, ch in server.hub.characters.items() if getattr(ch, "story", None) is not None), None)
    if story is None:
        pytest.skip("no character pack with a story clock")
    c = Client(server, character=story)
    c.send({"type": "story_time", "value": 2})
    ack = c.wait("story_time")
    assert ack["value"] == 2
    live = next(iter(server.hub.live.values()))
    assert live.session.conversation.story_time == 2
    c.send({"type": "story_time", "value": "+1"})
    assert c.wait("story_time")["value"] == 3
    c.close()


def test_tokens_are_single_use_and_checked(server):
    bad = connect(server.ws_url + "/ws/session?token=nope")
    assert json.loads(bad.recv(timeout=5))["code"] == "bad_token"
    bad.close()
    c = Client(server)
    again = connect(server.ws_url + f"/ws/session?token={c.token}")
    assert json.loads(again.recv(timeout=5))["code"] == "bad_token"
    again.close()
    r = httpx.post(server.url + "/api/session", json={"mode": "params"})
    wrong = connect(server.ws_url + f"/ws/session?token={r.json()['token']}")
    assert json.loads(wrong.recv(timeout=5))["code"] == "bad_mode"
    wrong.close()
    c.close()


def test_foreign_origins_and_hosts_are_refused(server):
    r = httpx.post(server.url + "/api/session", json={}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "bad_origin"
    r = httpx.post(server.url + "/api/session", json={}, headers={"Host": "evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "bad_host"
    ok = httpx.post(server.url + "/api/session", json={}, headers={"Origin": server.url})
    assert ok.status_code == 200
    with pytest.raises(Exception):  # noqa: B017 - refused before the WebSocket handshake completes
        connect(server.ws_url + f"/ws/session?token={ok.json()['token']}", origin="http://evil.example").recv(timeout=5)
    for body in ({"character": "nobody"}, {"mode": "movie"}, {"user_id": "x" * 100}):
        r = httpx.post(server.url + "/api/session", json=body)
        assert r.status_code == 400, body
    # without the access key nobody may claim a user id (it is the key to that user's memories)
    assert httpx.post(server.url + "/api/session", json={"user_id": "ada"}).status_code == 403
    assert httpx.post(server.url + "/api/session", content=b"{oops").status_code == 400


def test_access_key(tmp_path):
    srv = start_server(tmp_path, access_key="sesame")
    try:
        assert httpx.post(srv.url + "/api/session", json={}).status_code == 401
        r = httpx.post(srv.url + "/api/session", json={}, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = httpx.post(srv.url + "/api/session", json={"user_id": "ada"}, headers={"Authorization": "Bearer sesame"})
        assert r.status_code == 200
    finally:
        stop_server(srv)


def test_episodic_memory_keeps_named_users_and_not_anonymous_visitors(tmp_path):
    """A user named by a trusted client is remembered in their later sessions; an anonymous visitor
    gets a fresh id each time, so their lines (which no later session could recall) are not kept."""
    srv = start_server(tmp_path, access_key="sesame")
    try:
        store = srv.models.thinker.episodic
        auth = {"Authorization": "Bearer sesame"}
        for body in ({"user_id": "ada"}, {}):
            c = Client(srv, headers=auth, **body)
            c.send({"type": "text", "text": "My cat is called Pepper."})
            c.wait("turn_end")
            c.close()
        assert wait_until(lambda: not srv.hub.live, 5.0)
        kept = {v.user_id: v.memories for v in store.visitors()}
        assert kept == {"ada": 1}
    finally:
        stop_server(srv)


def test_busy_refusal_beyond_max_sessions(server):
    a, b = Client(server), Client(server)
    r = httpx.post(server.url + "/api/session", json={})
    assert r.status_code == 503 and r.json()["error"] == "busy" and "try again" in r.json()["message"]
    assert httpx.get(server.url + "/api/status").json()["available"] == 0
    a.close()
    assert wait_until(lambda: len(server.hub.live) == 1, 2.0)
    Client(server).close()  # a slot is free again
    b.close()


def test_disconnect_mid_answer_frees_the_session(server):
    c = Client(server)
    c.send({"type": "text", "text": "Tell me a long story."})
    c.wait("turn_start")
    while not c.audio:
        c.pump(0.05)
    live = next(iter(server.hub.live.values()))
    c.ws.close()
    assert wait_until(lambda: not server.hub.live, 2.0), "session still live 2 s after the client left"
    assert all(p._worker is None or p._worker.done() for p in live.session.pipeline.processors)
    row = server.hub.store.get(live.session.id)
    assert row["ended"] is not None and row["stats"]["end"] == "client left"


def test_sessions_never_see_each_others_memory(server):
    a, b = Client(server), Client(server)
    a.send({"type": "text", "text": "My secret name is Zanzibar."})
    a.wait("turn_end", timeout=20)
    b.send({"type": "text", "text": "What is my name?"})
    b.wait("turn_end", timeout=20)
    prompts = server.models.thinker.llm.calls
    b_prompt = json.dumps(prompts[-1])
    assert "Zanzibar" not in b_prompt and "What is my name?" in b_prompt
    assert not any("Zanzibar" in e.get("text", "") for e in b.events)
    a.close()
    b.close()


def test_parameter_stream_for_game_engines(server):
    c = Client(server, mode="params")
    assert len(c.ready["face"]["names"]) == 61 and c.ready["face"]["names"][24] == "jawOpen"
    c.send({"type": "text", "text": "Hi"})
    c.wait("turn_end", timeout=20)
    c.pump(0.5)
    faces = [e for e in c.events if e["type"] == "face"]
    bodies = [e for e in c.events if e["type"] == "body"]
    assert len(faces) > 5 and len(bodies) > 5 and not c.video
    assert len(faces[-1]["values"]) == 61
    assert np.asarray(bodies[-1]["joints"]).shape == (22, 3) and len(bodies[-1]["features"]) == 263
    assert max(f["values"][24] for f in faces) > 0.5  # the fake face opens its jaw while speaking
    assert c.audio  # the engine gets the voice too
    c.close()


def test_rating_is_stored_with_the_session(server):
    c = Client(server)
    c.send({"type": "text", "text": "Hi"})
    c.wait("turn_end", timeout=20)
    c.send({"type": "end"})
    closed = c.wait("closed")
    for bad in ({"token": c.token, "rating": 9}, {"token": c.token, "rating": "5"},
                {"token": c.token, "rating": 3, "comment": "x" * 3000}):
        assert httpx.post(server.url + "/api/rating", json=bad).status_code == 400
    assert httpx.post(server.url + "/api/rating", json={"token": "nope", "rating": 3}).status_code == 404
    r = httpx.post(server.url + "/api/rating", json={"token": c.token, "rating": 4, "comment": "lovely"})
    assert r.status_code == 200
    row = server.hub.store.get(closed["session_id"])
    assert row["rating"] == 4 and row["comment"] == "lovely"
    assert [t["role"] for t in row["transcript"]] == ["user", "assistant"]
    assert server.hub.store.rated()[0]["id"] == closed["session_id"]
