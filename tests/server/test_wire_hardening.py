"""The issue's own reproductions against a live session: a frame of 100,000 nested `[` is an
`error` reply (it ended the session with a RecursionError), strictly typed fields, and stored
transcripts that stamp the reply when it was heard, not with the user's timestamp."""

from __future__ import annotations

import json

import pytest

from tests.server.conftest import Client


@pytest.mark.parametrize("message, code, words", [
    ("[" * 100_000, "bad_json", "recursion limit"),
    ('{"type": "ping", "t": ' + "[" * 50_000 + "]" * 50_000 + "}", "bad_json", "recursion limit"),
    ('{"type": "mic", "on": 1, "sample_rate": 16000}', "bad_input", 'field "on": must be true or false'),
    ('{"type": "mic", "on": true, "sample_rate": "16000"}', "bad_input", 'field "sample_rate": must be an integer'),
    ('{"type": "story_time", "value": NaN}', "bad_input", "finite number"),
    ('{"type": "story_time", "value": 1e999}', "bad_input", "finite number"),
    ('{"type": "text", "text": ["hi"]}', "bad_input", 'field "text": must be a string'),
    ('{"type": "interrupt", "extra": {"ignored": true}}', None, None),  # unknown fields are ignored
])
def test_hostile_messages_get_an_error_and_the_session_goes_on(server, message, code, words):
    c = Client(server)
    c.send(message)
    c.send({"type": "ping", "t": "after"})
    c.wait("pong", t="after", timeout=20)
    errors = c.errors()
    if code is None:
        assert not errors
    else:
        assert errors and errors[0]["code"] == code and words in errors[0]["message"], errors
    assert len(server.hub.live) == 1
    c.close()


def test_the_stored_transcript_stamps_the_reply_when_it_was_heard(server):
    c = Client(server)
    c.send({"type": "text", "text": "Hello!"})
    c.wait("turn_end", timeout=20)
    first_audio = min(p for p, _, _ in c.audio)
    c.pump(first_audio + 0.5)  # the reply has been playing for a while when the user leaves
    c.send({"type": "end"})
    closed = c.wait("closed")
    user, reply = server.hub.store.get(closed["session_id"])["transcript"]
    assert user["role"] == "user" and reply["role"] == "assistant"
    assert reply["pts"] > user["pts"] and reply["pts"] == pytest.approx(first_audio, abs=1e-3)
    assert reply["end"] > reply["pts"] and reply["interrupted"]  # `end` came while it was still speaking
    json.dumps(reply)


def test_the_transcript_is_stored_at_every_turn_not_only_at_the_end(server):
    from tests.server.conftest import wait_until

    c = Client(server)
    c.send({"type": "text", "text": "Hello!"})
    c.wait("turn_end", timeout=20)
    live = next(iter(server.hub.live.values()))
    stored = lambda: (server.hub.store.get(live.session.id) or {}).get("transcript", [])  # noqa: E731
    assert wait_until(lambda: [t["role"] for t in stored()] == ["user", "assistant"], 2.0), stored()
    assert server.hub.store.get(live.session.id)["ended"] is None  # the session is still going
    c.close()
