"""Hypothesis throws random and adversarial messages at a live session (real server, real
WebSocket, fake models); after every one the session must still answer a ping, and no message may
reach the server's last-resort error path."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mio.runtime.transports.web import CLIENT_TYPES, EndMsg, parse_client_message
from tests.server.conftest import Client, start_server, stop_server

JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
FIELDS = ("type", "text", "on", "sample_rate", "value", "t")


@st.composite
def typed_messages(draw) -> str:
    """Objects that look like protocol messages: a known or random type and well- or ill-typed fields."""
    msg = {"type": draw(st.sampled_from(CLIENT_TYPES) | JSON_SCALARS)}
    for key in draw(st.lists(st.sampled_from(FIELDS) | st.text(max_size=8), max_size=4)):
        msg[key] = draw(JSON_VALUES | st.sampled_from([8000, 16000, 48000, 1, -1, 10**9, "16000", True, "+1", "2:5"]))
    return json.dumps(msg, allow_nan=True)  # NaN/Infinity are not JSON: the parser must say so


def adversarial() -> st.SearchStrategy:
    depth = st.integers(10, 200_000)
    return st.one_of(
        depth.map(lambda n: "[" * n),
        depth.map(lambda n: '{"a":' * n),
        depth.map(lambda n: '{"type": "ping", "t": ' + "[" * n + "]" * n + "}"),
        # over the 256 kB message limit, under the WebSocket layer's 1 MB frame limit (which closes the socket)
        st.integers(130_000, 400_000).map(lambda n: json.dumps({"type": "text", "text": "é" * n}, ensure_ascii=False)),
        st.sampled_from(['{"type": "text", "text": "\\ud800"}', '{"type":"ping","t":1e999}', '{"type": "text",' * 3,
                         '{"type": "text", "text": "hi", "type": "dance"}', "\ufeff{}", "null", '""', "0", "",
                         '{"type": "mic", "on": true, "sample_rate": 16000.0}', '{"type": "story_time", "value": NaN}',
                         '{"type": "ping", "t": ' + "9" * 5000 + "}"]),
    )


def _is_end(message: str | bytes) -> bool:
    if isinstance(message, bytes):
        return False
    try:
        return isinstance(parse_client_message(message), EndMsg)
    except Exception:  # noqa: BLE001 - anything else is not a valid "end"
        return False


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)  # a WebSocket text frame is UTF-8
MESSAGES = st.one_of(TEXT, JSON_VALUES.map(json.dumps), typed_messages(), adversarial(),
                     st.binary(max_size=4000)).filter(lambda m: not _is_end(m))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(MESSAGES, min_size=1, max_size=4))
def test_a_live_session_survives_any_message(server, batch):
    client = _client(server)
    for message in batch:
        client.send(message)
    token = next(_pings)
    client.send({"type": "ping", "t": token})
    client.wait("pong", timeout=20, t=token)
    assert not [e for e in client.events if e["type"] in ("closed",)], "the session ended"
    assert not [e for e in client.errors() if e["code"] == "internal"], client.errors()[-3:]
    live = list(server.hub.live.values())
    assert len(live) == 1 and live[0].transport.stats["internal_errors"] == 0


_pings = itertools.count(1)
_clients: dict[int, Client] = {}


def _client(server) -> Client:
    """One session for all the examples of a run (a new one if the server changed)."""
    c = _clients.get(id(server))
    if c is None:
        _clients.clear()
        c = _clients[id(server)] = Client(server)
    c.events.clear()
    c.audio.clear()
    c.video.clear()
    c._seen = set()
    return c


@pytest.fixture
def open_server(tmp_path):
    """No rate limit on session creation, so every body reaches the parser."""
    srv = start_server(tmp_path, session_rate_per_min=0)
    yield srv
    stop_server(srv)


HTTP_BODIES = st.one_of(JSON_VALUES.map(json.dumps), TEXT, adversarial(),
                        st.dictionaries(st.sampled_from(["character", "mode", "user_id", "key", "token", "rating",
                                                         "comment"]), JSON_VALUES, max_size=4).map(json.dumps))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow, HealthCheck.data_too_large])
@given(path=st.sampled_from(["/api/session", "/api/rating"]), body=HTTP_BODIES)
def test_http_endpoints_answer_any_body_with_json(open_server, path, body):
    server = open_server
    r = httpx.post(server.url + path, content=body.encode("utf-8", "surrogatepass"),
                   headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 400, 401, 403, 404, 413, 422, 429, 503), (r.status_code, r.text[:200])
    data = r.json()
    assert isinstance(data, dict) and (r.status_code == 200 or isinstance(data.get("message"), str))
    assert r.status_code != 429
