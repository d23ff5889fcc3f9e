"""Limits that keep `mio serve` reachable under hostile clients (issue 20 item 6).

- `RateLimiter`: a token bucket per client address, for session creation (POST /api/session).
- `guarded_http(...)`: uvicorn's h11 protocol with two connection limits uvicorn lacks: a *header
  timeout* (a connection must deliver its request line and headers within `header_timeout_s` of
  its first byte, or of connecting; slowloris sockets that trickle a header every few seconds are
  closed) and a per-address connection cap (one address cannot hold every socket). uvicorn's own
  `limit_concurrency` caps the whole server (503 beyond it) and `timeout_keep_alive` closes idle
  keep-alive connections; `uvicorn_config()` in app.py sets all of them. When the server is full,
  a new connection closes the one that has waited longest without sending a complete request, so
  slow sockets from many addresses cannot fill the server-wide cap and keep a browser out: a
  browser sends its headers at once and is never the oldest waiting.

Addresses are the peer's IP as uvicorn reports it (behind a trusted reverse proxy: the
X-Forwarded-For client, see uvicorn's `forwarded_allow_ips`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("mio.server")
MAX_TRACKED_CLIENTS = 10_000  # buckets kept; full (idle) buckets are forgotten first


class RateLimiter:
    """`allow(key)` -> 0.0 if the event may happen now, else the seconds to wait. Each key has a
    bucket of `burst` events refilled at `per_minute`; memory is bounded by MAX_TRACKED_CLIENTS."""

    def __init__(self, per_minute: float, burst: int, clock=time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def allow(self, key: str) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)  # the least recently seen
        return wait


def retry_after(wait_s: float) -> int:
    return max(1, math.ceil(wait_s))


def guarded_http(header_timeout_s: float, max_connections_per_ip: int) -> type[H11Protocol]:
    """An H11Protocol class for uvicorn's `http=`, with a header timeout and a per-IP cap."""
    per_ip: collections.Counter[str] = collections.Counter()
    waiting: dict[H11Protocol, None] = {}  # connections waiting for a request's headers, oldest first

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ip = self.client[0] if self.client else "?"
            if max_connections_per_ip and per_ip[ip] >= max_connections_per_ip:
                log.warning("refusing a connection from %s: %d already open", ip, per_ip[ip])
                transport.abort()
                return
            per_ip[ip] += 1
            self._counted = ip
            limit = self.limit_concurrency
            if limit and len(self.connections) >= limit:  # full: make room, or this one would get a 503
                oldest = next((c for c in waiting if c is not self), None)
                if oldest is not None:
                    log.info("server full: closing the connection from %s that waited longest for its headers",
                             oldest._counted)
                    oldest._stop_waiting()
                    oldest.transport.abort()
            self._watch_headers()

        def _release(self) -> None:
            if self._counted is not None:
                per_ip[self._counted] -= 1
                if per_ip[self._counted] <= 0:
                    del per_ip[self._counted]
                self._counted = None
            self._stop_waiting()

        def _stop_waiting(self) -> None:
            waiting.pop(self, None)
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            self._release()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            self._release()  # the WebSocket protocol owns the socket from here (sessions are capped)
            super().handle_websocket_upgrade(event)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_headers()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch_headers()

        def _watch_headers(self) -> None:
            # Waiting for a request's headers: the clock runs from the first moment of waiting and
            # is not reset by more bytes (a trickle of bytes must not keep a socket forever).
            idle = self._counted is not None and self.conn.their_state is h11.IDLE \
                and not self.transport.is_closing()
            if idle and self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout_s, self._header_timeout)
                waiting[self] = None
            elif not idle and self._header_timer is not None:
                self._stop_waiting()

        def _header_timeout(self) -> None:
            self._stop_waiting()
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.info("closing a connection from %s: no complete request headers within %.0f s",
                         self._counted, header_timeout_s)
                self.transport.close()

    GuardedH11Protocol.per_ip = per_ip  # for tests and /api/status
    GuardedH11Protocol.waiting = waiting
    return GuardedH11Protocol
