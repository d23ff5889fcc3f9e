"""Scale-out, small and real (docs/deploy.md): one llama.cpp OpenAI-compatible server holding the
embedded LLM, two `mio serve` workers whose Thinker is that server, and Debian's nginx in front
with sticky sessions. Two visitors through the proxy land on different workers, each WebSocket
reaches the worker that issued its token, and both are answered by the shared LLM."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from mio.server.background import free_port
from mio.server.scale import STICKY_COOKIE, llm_server_command, nginx_config

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(NGINX is None, reason="Debian's nginx is not installed (scripts/setup.sh)")]
ROOT = Path(__file__).resolve().parents[2]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[:4]} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.3)
    raise AssertionError(f"{url} did not come up in {timeout:.0f} s")


@contextlib.contextmanager
def _started(cmd: list[str], log: Path, env: dict | None = None):
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _talk(base: str, ws_base: str, text: str) -> tuple[str, str, int]:
    """One visitor through the proxy: (worker cookie, reply text, audio chunks received)."""
    from websockets.sync.client import connect

    with httpx.Client(base_url=base) as http:
        r = http.post("/api/session", json={})
        assert r.status_code == 200, r.text
        worker = r.cookies.get(STICKY_COOKIE)
        assert worker, "the worker did not name itself in the sticky cookie"
        ws = connect(ws_base + r.json()["ws"], additional_headers={"Cookie": f"{STICKY_COOKIE}={worker}"},
                     max_size=1 << 24, open_timeout=30)
    with ws:
        audio, reply = 0, None
        deadline = time.monotonic() + 120
        sent = False
        while reply is None and time.monotonic() < deadline:
            msg = ws.recv(timeout=deadline - time.monotonic())
            if isinstance(msg, bytes):
                audio += msg[0] == 1
                continue
            event = json.loads(msg)
            if event["type"] == "ready" and not sent:
                ws.send(json.dumps({"type": "text", "text": text}))
                sent = True
            elif event["type"] == "turn_end":
                reply = event["text"]
            elif event["type"] == "error":
                raise AssertionError(event)
        ws.send(json.dumps({"type": "end"}))
    assert reply is not None, "no reply through the proxy"
    return worker, reply, audio


def test_two_workers_behind_nginx_share_one_llama_cpp_server():
    from mio.core.config import ThinkerConfig
    from mio.thinker.llm.llama import served_gguf

    llm_port, proxy_port = free_port(), free_port()
    workers = {"w1": f"127.0.0.1:{free_port()}", "w2": f"127.0.0.1:{free_port()}"}
    with tempfile.TemporaryDirectory(prefix="mio-deploy-") as tmp:
        tmp = Path(tmp)
        (tmp / "nginx.conf").write_text(nginx_config(workers, f"127.0.0.1:{proxy_port}", str(tmp)))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        llm = llm_server_command(served_gguf(ThinkerConfig()), port=llm_port, threads=1, n_ctx=2048)
        with contextlib.ExitStack() as stack:
            llm_proc = stack.enter_context(_started(llm, tmp / "llm.log", env))
            _wait_http(f"http://127.0.0.1:{llm_port}/v1/models", llm_proc, 120)
            procs = []
            for wid, addr in workers.items():
                cmd = [sys.executable, "-m", "mio.cli", "serve", "--port", addr.rsplit(":", 1)[1], "--worker-id", wid,
                       "--max-sessions", "1", "--no-asr", "--data-dir", str(tmp / wid),
                       "--set", "thinker.backend=openai", "--set", f"thinker.url=http://127.0.0.1:{llm_port}/v1",
                       "--set", "render.width=256", "--set", "render.height=256"]
                procs.append(stack.enter_context(_started(cmd, tmp / f"{wid}.log", env)))
            for addr, proc in zip(workers.values(), procs, strict=True):
                _wait_http(f"http://{addr}/api/status", proc, 240)
            proxy = stack.enter_context(_started([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"),
                                                  "-g", "daemon off;"], tmp / "nginx.log"))
            base, ws_base = f"http://127.0.0.1:{proxy_port}", f"ws://127.0.0.1:{proxy_port}"
            _wait_http(base + "/api/status", proxy, 30)

            # Two visitors at once: the first holds w? (max 1 session each), so the second lands on the other.
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                first = pool.submit(_talk, base, ws_base, "Good evening, Captain! Who are you?")
                time.sleep(2.0)
                second = pool.submit(_talk, base, ws_base, "What is the Nautilus?")
                (w_a, reply_a, audio_a), (w_b, reply_b, audio_b) = first.result(), second.result()
            assert {w_a, w_b} == {"w1", "w2"}, (w_a, w_b)
            assert reply_a.strip() and reply_b.strip() and audio_a > 0 and audio_b > 0
            # Both Thinkers were the one llama.cpp server (each worker loaded no LLM of its own).
            for wid in workers:
                log = (tmp / f"{wid}.log").read_text()
                assert "thinker (openai)" in log, log[-2000:]
            assert (tmp / "access.log").read_text().count("/ws/session") >= 2
