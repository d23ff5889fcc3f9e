"""Issue 20's hostile inputs, tried against a running `mio serve` (real models) as a new user would:
malformed WebSocket messages, the stored transcript's times, 100 MB HTTP bodies, 1,000 slowloris
sockets from one address and from 200, and DNS-rebinding Host/Origin headers. Prints what each got.

    mio serve --port 8799 --no-asr --data-dir /tmp/serve &     # then, once it answers:
    python scripts/hostile/clients.py 8799 /tmp/serve $(pgrep -f "serve --port 8799")

Linux only (other loopback addresses 127.0.0.x reach a server on 127.0.0.1)."""
import collections
import json
import os
import socket
import sqlite3
import sys
import time

import httpx
from websockets.sync.client import connect

port, data_dir, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"

def rss_mb():
    return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024

def session():
    r = httpx.post(url + "/api/session", json={}, headers={"Origin": url})
    ws = connect(ws_url + r.json()["ws"], origin=url, max_size=None)
    while True:
        m = ws.recv(timeout=60)
        if isinstance(m, str) and json.loads(m)["type"] == "ready":
            return ws, json.loads(m)

def next_json(ws, timeout=30, want=None):
    end = time.time() + timeout
    while time.time() < end:
        m = ws.recv(timeout=max(0.1, end - time.time()))
        if isinstance(m, str):
            d = json.loads(m)
            if want is None or d["type"] in want:
                return d
    return None

# 1. WebSocket: malformed messages, then a real one
ws, ready = session()
for name, msg in [("100,000 nested [", "[" * 100_000), ("100,000 nested {\"a\":", '{"a":' * 100_000),
                  ("not JSON", "hello{"), ("a JSON number", "42"), ("unknown type", '{"type": "launch_missiles"}'),
                  ("wrong field type", '{"type": "text", "text": 123}'), ("text of 1 MB", json.dumps({"type": "text", "text": "a" * 1_000_000})),
                  ("random bytes", os.urandom(3000)), ("an empty binary frame", b"")]:
    ws.send(msg)
    d = next_json(ws, 10, want=("error",))
    print(f"ws {name}: {('error reply: ' + d.get('code', '') + ' ' + d.get('message', '')[:90]) if d else 'NO error reply'}")
ws.send(json.dumps({"type": "text", "text": "Hello, who are you?"}))
d = next_json(ws, 120, want=("turn_end", "error"))
print(f"ws after all that, a real line: {d['type'] if d else 'NO ANSWER'}")
ws.close()
time.sleep(1)

# 2. stored transcripts: the reply's time is not the user's
db = sqlite3.connect(os.path.join(data_dir, "sessions.sqlite"))
(transcript,) = db.execute("select transcript from sessions order by started desc limit 1").fetchone()
print("stored transcript (role, pts):", [(t["role"], round(t["pts"], 2)) for t in json.loads(transcript)])

# 3. HTTP body of 100 MB, with and without a Content-Length
before = rss_mb()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {100 << 20}\r\n\r\n".encode())
print("100 MB body announced:", s.recv(300).split(b"\r\n")[0].decode())
s.close()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
sent = 0
try:
    chunk = b"a" * (1 << 20)
    while sent < (100 << 20):
        s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sent += len(chunk)
except OSError:
    pass
s.settimeout(5)
try:
    head = s.recv(300).split(b"\r\n")[0].decode()
except OSError as e:
    head = f"connection closed ({type(e).__name__})"
print(f"100 MB chunked body: {head} after {sent >> 20} MB sent; server RSS {before:.0f} -> {rss_mb():.0f} MB")
s.close()

# 4. slowloris: 1,000 sockets that never finish their headers, from one address and from 200
def closed(c):
    c.settimeout(0.001)
    try:
        return c.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True

for addresses in (1, 200):
    socks, refused = [], 0
    for i in range(1000):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(f"127.0.0.{2 + i % addresses}", 0))
            c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(c)
        except OSError:
            refused += 1
    t0 = time.time()
    time.sleep(0.5)
    dropped_now = sum(closed(c) for c in socks)
    codes = []
    while True:
        codes.append(httpx.get(url + "/api/status", timeout=10).status_code)
        n_open = sum(not closed(c) for c in socks)
        if n_open == 0 or time.time() - t0 > 60:
            break
        time.sleep(1)
    print(f"slowloris from {addresses} address(es): {len(socks)} connected, {dropped_now} closed by the server within 0.5 s "
          f"(per-address cap, or the oldest waiting closed when the server is full), the rest after {time.time() - t0:.1f} s (header timeout); {n_open} still open; "
          f"a browser's GET /api/status once a second meanwhile: {dict(collections.Counter(codes))}")
    for c in socks:
        c.close()
    time.sleep(1)

# 5. DNS rebinding: a foreign Host / Origin
for h in ({"Host": "evil.example"}, {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"},
          {"Host": "evil.example", "Origin": "http://evil.example"}):
    print(f"POST /api/session with {h}: {httpx.post(url + '/api/session', json={}, headers=h).status_code}")
