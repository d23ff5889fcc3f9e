"""Scale-out helpers: sticky routing to a worker, the shared LLM server, the measured admission cap.

Past one machine (docs/deploy.md) Mio is several `mio serve` workers behind a standard reverse
proxy (Debian's nginx) that keeps each conversation on the worker that holds its session, and a
Thinker on one OpenAI-compatible server (llama.cpp's, via llama-cpp-python) that every worker
shares (`thinker.backend=openai`). Nothing here is a cluster manager: the proxy and the LLM server
are the standard ones, these are the few lines Mio needs to fit them.

- `sticky_cookie`: a worker started with `--worker-id w2` names itself in a `mio_worker` cookie on
  the POST /api/session answer; nginx maps that cookie to the worker's address, so the WebSocket
  that follows (with the one-use token only that worker knows) reaches the same process.
- `nginx_config`: that proxy configuration for a list of workers.
- `llm_server_command`: the `python -m llama_cpp.server` command for the embedded model.
- `measured_capacity`: the admission cap from `mio bench serve` runs on this machine.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mio.core.paths import cache_root

STICKY_COOKIE = "mio_worker"
CAPACITY_FILE = "capacity.json"  # under the cache root: what `mio bench serve` measured here
# What a session needs to count as held (issue 18): frame rate while speaking, A/V offset, audio.
MIN_FPS = 24.0
MAX_AV_OFFSET_S = 0.04
FALLBACK_CAP = 2  # no measurement on this machine yet


def sticky_cookie(response, worker_id: str | None) -> None:
    """Name the worker in a cookie on the session answer (no-op for a lone server)."""
    if worker_id:
        response.set_cookie(STICKY_COOKIE, worker_id, httponly=True, samesite="strict", path="/")


def nginx_config(workers: dict[str, str], listen: str, prefix: str) -> str:
    """nginx.conf for `workers` ({worker id: "host:port"}) behind `listen` ("127.0.0.1:8765").

    A request with a `mio_worker` cookie goes to that worker; one without (a new visitor's
    POST /api/session) to the least busy worker, and on to the next if it answers 503 (full).
    WebSockets are upgraded and kept open for an hour."""
    routes = "\n".join(f"        {wid} {addr};" for wid, addr in workers.items())
    servers = "\n".join(f"        server {addr} max_fails=0;" for addr in workers.values())
    return f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    map $cookie_{STICKY_COOKIE} $mio_backend {{
{routes}
        default mio_pool;
    }}
    upstream mio_pool {{
        least_conn;
{servers}
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://$mio_backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_next_upstream error timeout http_503 non_idempotent;
        }}
    }}
}}
"""


def llm_server_command(model: str | Path, host: str = "127.0.0.1", port: int = 8080, threads: int = 2,
                       n_ctx: int = 4096) -> list[str]:
    """llama-cpp-python's OpenAI-compatible server for `model` (a GGUF)."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", host, "--port", str(port),
            "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", str(n_ctx),
            "--verbose", "False"]


def capacity_path() -> Path:
    return cache_root() / CAPACITY_FILE


def record_capacity(result: dict) -> Path:
    """Keep what a `mio bench serve` run says about N sessions on this machine (keyed by cores)."""
    path = capacity_path()
    data = json.loads(path.read_text()) if path.is_file() else {}
    s = result["summary"]
    held = (s.get("fps_while_speaking_min") or 0) >= MIN_FPS and \
        (s.get("av_offset_p95_s_max") or 0) <= MAX_AV_OFFSET_S and s.get("audio_dropped", 1) == 0
    key = f"{os.cpu_count()}cpu"
    data.setdefault(key, {})[str(s["sessions"])] = {
        "held": held, "fps_while_speaking_min": s.get("fps_while_speaking_min"),
        "av_offset_p95_s_max": s.get("av_offset_p95_s_max"), "audio_dropped": s.get("audio_dropped")}
    from mio.core.atomic import write_text

    return write_text(path, json.dumps(data, indent=2))  # a half-written file would stop `mio serve`


def measured_capacity() -> tuple[int, str]:
    """(sessions this machine holds at full quality, why). The largest session count whose last
    `mio bench serve --sessions N` held every session at >= 24 fps while speaking, A/V offset
    P95 <= 40 ms and no dropped audio, and no smaller count failed; FALLBACK_CAP unmeasured."""
    path = capacity_path()
    runs = (json.loads(path.read_text()) if path.is_file() else {}).get(f"{os.cpu_count()}cpu", {})
    if not runs:
        return FALLBACK_CAP, f"not measured on this machine (run `mio bench serve --sessions 2`); default {FALLBACK_CAP}"
    cap = 0
    for n in sorted(int(k) for k in runs):
        if not runs[str(n)]["held"]:
            break
        cap = n
    cap = max(1, cap)  # one session is always admitted: it degrades (skips frames) rather than refuses
    return cap, f"measured by `mio bench serve` ({path}): {json.dumps(runs)}"
