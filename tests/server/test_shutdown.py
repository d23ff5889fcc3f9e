"""`mio serve` stopped by SIGTERM (systemd, docker stop, kill) releases everything: the render
process's shared memory is unlinked (no "leaked shared_memory objects" at exit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from mio.server.background import free_port

pytestmark = pytest.mark.slow
SHM = Path("/dev/shm")


def test_sigterm_releases_shared_memory(tmp_path):
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    before = set(os.listdir(SHM))
    proc = subprocess.Popen([sys.executable, "-m", "mio.cli", "serve", "--port", str(port), "--no-asr",
                             "--data-dir", str(tmp_path)], cwd=root, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/api/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.5)
        r = httpx.post(url + "/api/session", json={})
        with connect(f"ws://127.0.0.1:{port}" + r.json()["ws"], max_size=1 << 24) as ws:
            frames = 0
            while frames < 10:  # video frames: the render process has drawn into shared memory
                frames += isinstance(ws.recv(timeout=60), bytes)
            during = set(os.listdir(SHM)) - before
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err[-2000:]
    assert "leaked" not in err and "Traceback" not in err, err[-2000:]
    assert not during & set(os.listdir(SHM)), "shared memory left behind"
