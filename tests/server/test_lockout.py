"""Nobody on the port can lock the others out (issue 20 item 6): token floods, idle tabs, huge
bodies, slowloris sockets, DNS rebinding. Distinct clients are distinct loopback addresses
(127.0.0.2, 127.0.0.3, ...), which Linux routes to the server on 127.0.0.1."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time

import httpx
import pytest
from websockets.sync.client import connect

from mio.server.app import Hub, Refused, ServeSettings
from tests.server.conftest import Client, start_server, stop_server, wait_until


def _http(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def _browser_session(srv, address: str = "127.0.0.9") -> dict:
    """What the page does: POST /api/session with its Origin, then open the WebSocket."""
    with _http(address) as http:
        r = http.post(srv.url + "/api/session", json={}, headers={"Origin": srv.url})
    assert r.status_code == 200, r.text
    with connect(srv.ws_url + r.json()["ws"], origin=srv.url) as ws:
        while True:
            msg = ws.recv(timeout=30)
            if isinstance(msg, str):
                return json.loads(msg)


@pytest.mark.parametrize("rate_limited", [True, False])
def test_two_clients_hammering_post_session_cannot_keep_a_browser_user_out(tmp_path, rate_limited):
    srv = start_server(tmp_path, max_sessions=2, **({} if rate_limited else {"session_rate_per_min": 0}))
    stop = threading.Event()
    codes: dict[str, list[int]] = {"127.0.0.2": [], "127.0.0.3": []}

    def hammer(address: str) -> None:
        with _http(address) as http:
            while not stop.is_set():
                codes[address].append(http.post(srv.url + "/api/session", json={}).status_code)

    threads = [threading.Thread(target=hammer, args=(a,), daemon=True) for a in codes]
    try:
        for t in threads:
            t.start()
        assert wait_until(lambda: all(len(c) >= 30 for c in codes.values()), 20)
        # while they hammer, two browser users get in, one after the other, and then both at once
        assert _browser_session(srv, "127.0.0.9")["type"] == "ready"
        users = [Client(srv), Client(srv)]
        assert all(u.ready["type"] == "ready" for u in users)
        assert len(srv.hub.live) == 2
        for u in users:
            u.close()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        stop_server(srv)
    for address, got in codes.items():
        assert set(got) <= {200, 429, 503}, set(got)
        if rate_limited:  # a burst, then refusals with Retry-After
            assert got.count(200) <= ServeSettings.session_burst + 2 and got.count(429) >= 20, (address, got[:20])
        else:  # every request answered, and still nobody was kept out: tokens hold no slot
            assert got.count(200) >= 30
    pending = [t for t in srv.hub.tickets.values() if t.session_id is None]
    assert all(sum(t.client == a for t in pending) <= 8 for a in codes)  # a flood keeps only its newest tokens


def test_rate_limit_says_when_to_retry(tmp_path):
    srv = start_server(tmp_path, session_rate_per_min=6, session_burst=2)
    try:
        with _http("127.0.0.5") as http:
            got = [http.post(srv.url + "/api/session", json={}) for _ in range(3)]
        assert [r.status_code for r in got] == [200, 200, 429]
        assert got[2].json()["error"] == "rate_limited" and int(got[2].headers["Retry-After"]) >= 1
        assert "try again in" in got[2].json()["message"]
        with _http("127.0.0.6") as http:  # another address has its own allowance
            assert http.post(srv.url + "/api/session", json={}).status_code == 200
    finally:
        stop_server(srv)


def test_unused_tokens_expire_within_seconds_and_hold_no_slot(tmp_path):
    srv = start_server(tmp_path, max_sessions=1, token_ttl_s=0.5)
    try:
        tokens = [httpx.post(srv.url + "/api/session", json={}).json()["token"] for _ in range(3)]
        assert httpx.get(srv.url + "/api/status").json()["available"] == 1  # three tokens, the slot still free
        time.sleep(0.8)
        with connect(srv.ws_url + f"/ws/session?token={tokens[0]}") as ws:
            assert json.loads(ws.recv(timeout=5))["code"] == "bad_token"
        assert httpx.get(srv.url + "/api/status").json()["pending_tokens"] == 0
        Client(srv).close()
    finally:
        stop_server(srv)


def test_an_idle_session_is_warned_then_released(tmp_path):
    srv = start_server(tmp_path, idle_timeout_s=2.0, idle_warning_s=1.0)
    try:
        c = Client(srv)
        c.send({"type": "ping", "t": 1})  # pings keep the socket alive, not the session
        c.wait("pong")
        warning = c.wait("error", timeout=5, code="idle_warning")
        assert warning["seconds_left"] <= 1 and "closes in" in warning["message"]
        c.wait("error", timeout=5, code="idle")
        assert c.wait("closed", timeout=5)["reason"] == "idle"
        assert wait_until(lambda: not srv.hub.live, 2)
        # typing keeps a session alive past the timeout
        d = Client(srv)
        for _ in range(5):
            d.send({"type": "interrupt"})
            d.pump(0.6)
        assert len(srv.hub.live) == 1 and not [e for e in d.events if e.get("code") == "idle"]
        d.close()
    finally:
        stop_server(srv)


def _raw_request(srv, head: bytes, body_chunks=(), chunk_pause: float = 0.0) -> bytes:
    with socket.create_connection((srv.settings.host, srv.settings.port), timeout=10) as s:
        s.sendall(head)
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
                if chunk_pause:
                    time.sleep(chunk_pause)
        except OSError:  # the server answered and closed while we were still sending
            pass
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(65536)
            if not part:
                break
            data += part
        return data


def test_oversized_bodies_are_refused_from_the_header_and_from_the_stream(tmp_path):
    srv = start_server(tmp_path)
    try:
        host = f"Host: 127.0.0.1:{srv.settings.port}\r\n".encode()
        # announced: refused before a byte of the body is sent
        head = b"POST /api/session HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n"
        assert _raw_request(srv, head).startswith(b"HTTP/1.1 413")
        # not announced (chunked): refused once the stream passes the limit; 100 MB offered
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        chunk = b"x" * (1 << 20)
        frames = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(100))
        head = b"POST /api/session HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n"
        assert _raw_request(srv, head, frames).startswith(b"HTTP/1.1 413")
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
        assert grown_mb < 30, f"peak memory grew {grown_mb:.0f} MB for a refused 100 MB body"
        r = httpx.post(srv.url + "/api/session", content=b"{" * 5000 + b"}" * 5000)
        assert r.status_code == 400 and r.json()["error"] == "bad_json"
        r = httpx.post(srv.url + "/api/session", json={"user_id": 5})
        assert r.status_code == 400 and r.json()["message"] == "user_id must be text of 1 to 64 characters"
        r = httpx.post(srv.url + "/api/rating", json={"token": "x", "rating": 2.5})
        assert r.status_code == 400 and r.json()["message"] == "rating must be an integer from 1 to 5"
        assert httpx.get(srv.url + "/api/status").status_code == 200
    finally:
        stop_server(srv)


def test_slowloris_sockets_are_closed_and_do_not_keep_others_out(tmp_path):
    srv = start_server(tmp_path, header_timeout_s=1.0, max_connections_per_ip=50)
    socks: list[socket.socket] = []
    try:
        for _ in range(300):  # one address opens 300 sockets and never finishes a request
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            s.connect((srv.settings.host, srv.settings.port))
            s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        with _http("127.0.0.3") as http:  # someone else is served meanwhile
            assert http.get(srv.url + "/api/status").status_code == 200
        t0 = time.monotonic()
        for _ in range(4):  # trickle one more header line on each socket: it must not buy time
            time.sleep(0.4)
            for s in socks:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
        closed = 0
        for s in socks:
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError, OSError):
                closed += 1
        assert closed == len(socks), f"{len(socks) - closed} slow sockets still open after {time.monotonic() - t0:.1f} s"
        Client(srv).close()
    finally:
        for s in socks:
            s.close()
        stop_server(srv)


def test_slow_sockets_from_many_addresses_cannot_fill_the_server(tmp_path):
    """Slowloris from many addresses, each under the per-address cap, three times the server-wide
    cap, inside the header timeout: the longest-waiting ones make room, and browsers are served."""
    srv = start_server(tmp_path, header_timeout_s=60.0, max_connections=40, max_connections_per_ip=5)
    socks: list[socket.socket] = []
    try:
        for i in range(120):  # 24 addresses x 5 sockets; none ever completes a request
            s = socket.socket()
            s.bind((f"127.0.0.{10 + i % 24}", 0))
            s.settimeout(5)
            s.connect((srv.settings.host, srv.settings.port))
            s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        codes = []
        for k in range(5):
            with _http(f"127.0.0.{200 + k}") as http:
                codes.append(http.get(srv.url + "/api/status").status_code)
        assert codes == [200] * 5, codes  # was 503 (uvicorn's limit_concurrency) until the header timeout
        assert Client(srv).ready["type"] == "ready"  # and a session opens
        still_open = 0
        for s in socks:
            s.settimeout(0.05)
            try:
                still_open += s.recv(1) != b""
            except TimeoutError:
                still_open += 1
            except OSError:
                pass
        assert still_open < 40, still_open  # the oldest were closed to make room; the cap held
    finally:
        for s in socks:
            s.close()
        stop_server(srv)


class _Models:
    class character:  # noqa: N801 - a stand-in attribute bag
        name = "Mio"


def _hub(tmp_path, **settings) -> Hub:
    hub = Hub.__new__(Hub)  # check_headers needs only the settings
    hub.settings = ServeSettings(data_dir=str(tmp_path), **settings)
    return hub


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0", "::"])
def test_host_and_origin_checks_stay_on_for_any_bind_address(tmp_path, bind):
    hub = _hub(tmp_path, host=bind)
    for ok in ({"host": "127.0.0.1:8765"}, {"host": "localhost:8765", "origin": "http://localhost:8765"},
               {"host": "[::1]:8765"}, {"host": "192.168.1.5:8765", "origin": "http://192.168.1.5:8765"}):
        hub.check_headers(ok)
    # DNS rebinding: the attacker's name resolves to this machine; Host and Origin both say evil.example
    for bad, code in (({"host": "evil.example:8765", "origin": "http://evil.example:8765"}, "bad_host"),
                      ({"host": "evil.example:8765"}, "bad_host"), ({"host": ""}, "bad_host"), ({"host": "[::1"}, "bad_host"),
                      ({"host": "127.0.0.1:8765", "origin": "http://evil.example"}, "bad_origin"),
                      ({"host": "127.0.0.1:8765", "origin": "null"}, "bad_origin"),
                      ({"host": "127.0.0.1:8765", "origin": "file://127.0.0.1:8765"}, "bad_origin")):
        with pytest.raises(Refused) as e:
            hub.check_headers(bad)
        assert e.value.code == code and e.value.status == 403, bad
    named = _hub(tmp_path, host=bind, allowed_hosts=("mybox.lan",))
    named.check_headers({"host": "MyBox.lan:8765", "origin": "http://mybox.lan:8765"})
