"""Must show: two unauthenticated clients hammering POST /api/session cannot keep a browser user out.

Against a real `mio serve` (real models, --max-sessions 2) on 127.0.0.1:PORT. Two hammerers, each
its own loopback address (127.0.0.2, 127.0.0.3), POST /api/session as fast as the server answers
for the whole run, never opening the socket. Meanwhile a browser user (127.0.0.9) does what the
page does, every few seconds: POST /api/session with the page's Origin, open the WebSocket, wait
for `ready`, type one line, wait for the reply's first audio, leave. Prints every attempt and the
hammerers' status codes.

    mio serve --port 8799 --max-sessions 2 --no-asr &     # then, once it answers:
    python scripts/hostile/lockout.py 8799 90"""
import collections
import json
import sys
import threading
import time

import httpx
from websockets.sync.client import connect

from mio.runtime.transports.messages import AUDIO, unpack

port = int(sys.argv[1])
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 90
url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
stop = threading.Event()
codes = {a: collections.Counter() for a in ("127.0.0.2", "127.0.0.3")}

def hammer(addr):
    with httpx.Client(transport=httpx.HTTPTransport(local_address=addr), timeout=10) as h:
        while not stop.is_set():
            try:
                codes[addr][h.post(url + "/api/session", json={}).status_code] += 1
            except httpx.HTTPError as e:
                codes[addr][type(e).__name__] += 1

def browser():
    t0 = time.perf_counter()
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9"), timeout=30) as h:
        r = h.post(url + "/api/session", json={}, headers={"Origin": url})
    if r.status_code != 200:
        return f"POST {r.status_code} {r.text[:100]}"
    with connect(ws_url + r.json()["ws"], origin=url, open_timeout=30, max_size=None) as ws:
        while True:
            m = ws.recv(timeout=60)
            if isinstance(m, str) and json.loads(m)["type"] in ("ready", "error"):
                break
        ready = time.perf_counter() - t0
        if json.loads(m)["type"] != "ready":
            return f"refused on the socket: {m[:120]}"
        ws.send(json.dumps({"type": "text", "text": "Hello, who are you?"}))
        t1 = time.perf_counter()
        while True:
            m = ws.recv(timeout=120)
            if isinstance(m, bytes) and unpack(m)[0] == AUDIO:  # the reply's first audio
                return f"ready after {ready:.2f} s, the reply's first audio {time.perf_counter() - t1:.2f} s after typing"

threads = [threading.Thread(target=hammer, args=(a,), daemon=True) for a in codes]
for t in threads:
    t.start()
time.sleep(3)  # the hammering is on before the user comes
results, end = [], time.time() + seconds
while time.time() < end:
    try:
        res = browser()
    except Exception as e:  # noqa: BLE001
        res = f"FAILED {type(e).__name__}: {e}"
    results.append(res)
    print(f"browser user, attempt {len(results)}: {res}", flush=True)
    time.sleep(5)
stop.set()
for t in threads:
    t.join(15)
for a, c in codes.items():
    print(f"hammerer {a}: {sum(c.values())} POSTs, status codes {dict(c)}")
ok = sum(r.startswith("ready") for r in results)
print(f"browser user got in {ok} of {len(results)} times")
with httpx.Client() as h:
    print("status:", h.get(url + "/api/status").text)
