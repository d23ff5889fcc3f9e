"""Fixtures for the server tests: a live server on fake models in a background thread, and a client."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from mio.runtime.transports.web import AUDIO, VIDEO, unpack
from mio.server.background import BackgroundServer
from tests.fakes import fake_models

LONG_REPLY = " ".join(f"Sentence number {i} is here." for i in range(10))


class FakeASR:
    """Stands in for whisper: every utterance 'says' the same words."""

    sample_rate = 16000

    def __init__(self, text: str = "hello from the microphone") -> None:
        self.text = text
        self.calls: list[float] = []  # seconds of audio per call

    def transcribe(self, samples: np.ndarray, sample_rate: int, context: str | None = None) -> str:
        self.calls.append(len(samples) / sample_rate)
        return self.text


class Client:
    """A synchronous WebSocket client that keeps every message it received."""

    def __init__(self, srv: BackgroundServer, mode: str = "browser", headers: dict | None = None, **body) -> None:
        r = httpx.post(srv.url + "/api/session", json={"mode": mode, **body}, headers=headers)
        assert r.status_code == 200, r.text
        self.token = r.json()["token"]
        self.ws = connect(srv.ws_url + r.json()["ws"], max_size=1 << 24).__enter__()
        self.events: list[dict] = []
        self.audio: list[tuple[float, int, np.ndarray]] = []  # (pts, turn, samples)
        self.video: list[tuple[float, int, bytes]] = []  # (pts, index, jpeg)
        self.ready = self.wait("ready", timeout=60)

    def send(self, msg: dict | str | bytes) -> None:
        self.ws.send(json.dumps(msg) if isinstance(msg, dict) else msg)

    def _recv(self, timeout: float) -> None:
        raw = self.ws.recv(timeout=timeout)
        if isinstance(raw, bytes):
            kind, aux1, aux2, pts, payload = unpack(raw)
            if kind == AUDIO:
                self.audio.append((pts, aux2, np.frombuffer(payload, "<f4")))
            elif kind == VIDEO:
                self.video.append((pts, aux1, payload))
        else:
            self.events.append(json.loads(raw))

    def wait(self, kind: str, timeout: float = 10.0, **match) -> dict:
        """The first event of `kind` (matching `match`) not yet returned by an earlier wait."""
        deadline = time.monotonic() + timeout
        seen = getattr(self, "_seen", set())
        self._seen = seen
        while True:
            for i, e in enumerate(self.events):
                if i not in seen and e["type"] == kind and all(e.get(k) == v for k, v in match.items()):
                    seen.add(i)
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind!r} event {match or ''}; got {[e['type'] for e in self.events]}")
            self._recv(left)

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._recv(left)
            except TimeoutError:
                return

    def errors(self) -> list[dict]:
        return [e for e in self.events if e["type"] == "error"]

    def close(self) -> None:
        self.ws.close()


def start_server(tmp_path, reply: str | None = None, asr: FakeASR | None = None, **settings):
    models = fake_models(reply=reply)
    models.asr = asr
    srv = BackgroundServer(models, data_dir=str(tmp_path), **settings).__enter__()
    srv.models = models
    return srv


def stop_server(srv) -> None:
    srv.__exit__(None, None, None)
    srv.models.close()


def wait_until(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


@pytest.fixture
def server(tmp_path):
    srv = start_server(tmp_path, reply=LONG_REPLY, asr=FakeASR(), max_sessions=2)
    yield srv
    stop_server(srv)
