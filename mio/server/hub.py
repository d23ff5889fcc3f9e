"""The sessions of one server process: tokens, capacity, the Host/Origin checks and one WebSocket's
life (a `Session` over the shared weights, its transport, its idle watch and stored transcript).

Nobody on the port can lock the others out (issue 20 item 6): a token holds no slot (capacity is
taken when its WebSocket opens) and expires after `token_ttl_s`; each address keeps at most
MAX_PENDING_PER_CLIENT unused tokens and the server `max_pending_tokens`, oldest dropped first;
POST /api/session is rate-limited per address; a session without user activity is warned, then
closed after `idle_timeout_s`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import hmac
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from starlette.websockets import WebSocketDisconnect

from mio.core.errors import ConfigError, InputError
from mio.core.layouts import ARKIT_BLENDSHAPES, LAYOUTS
from mio.runtime.transports.messages import (
    BodyInfo,
    CharacterInfo,
    ClosedOut,
    ErrorOut,
    FaceInfo,
    LimitsInfo,
    ReadyOut,
    ServerMessage,
)
from mio.runtime.transports.web import MODES, ClientStalled, WebLimits, WebTransport, find_story_clock
from mio.server.limits import RateLimiter, retry_after
from mio.server.protocol import RatingRequest, Refused, SessionRequest, client_address
from mio.server.store import SessionStore
from mio.thinker.persona import Character, known_characters, load_character

log = logging.getLogger("mio.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
MAX_USER_ID_CHARS = 64
MAX_PENDING_PER_CLIENT = 8  # unused tokens one address may hold; a newer one drops its oldest
WATCH_PERIOD_S = 1.0  # how often a session's idle clock is looked at


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"  # bind address; 0.0.0.0 exposes the server to the network
    port: int = 8765
    max_sessions: int = 2  # live sessions at once (each renders 25 fps; 2 cores hold about two)
    allowed_origins: tuple[str, ...] = ()  # browser origins besides the page's own
    allowed_hosts: tuple[str, ...] = ()  # Host names besides localhost / 127.0.0.1 / the bind address
    access_key: str | None = None  # when set, POST /api/session needs it ("Authorization: Bearer KEY")
    token_ttl_s: float = 10.0  # an issued token is valid this long (it holds no slot: the page connects at once)
    rating_ttl_s: float = 3600.0  # a session's token can rate it this long after it ends
    idle_timeout_s: float = 300.0  # a session without user activity is closed after this ...
    idle_warning_s: float = 60.0  # ... after a warning this long before
    session_rate_per_min: float = 20.0  # new sessions per address per minute (0: unlimited) ...
    session_burst: int = 10  # ... after a burst of this many
    max_pending_tokens: int = 256  # unused tokens on the whole server (oldest dropped)
    max_sessions_per_client: int = 0  # live sessions one address may hold (0: any up to max_sessions)
    max_body_bytes: int = 64 * 1024  # HTTP request bodies (they are small JSON objects)
    header_timeout_s: float = 10.0  # a request's line and headers must arrive within this
    max_connections: int = 256  # open sockets on the server (uvicorn's limit_concurrency: 503 beyond)
    max_connections_per_ip: int = 64  # open sockets per address (0: no cap); behind a proxy, raise it
    keep_alive_s: int = 5  # an idle keep-alive connection is closed after this
    data_dir: str = "out/serve"  # sessions.sqlite: transcripts and ratings
    ws_max_size: int = 1 << 20  # the WebSocket layer closes the connection above this (1009)
    limits: WebLimits = field(default_factory=WebLimits)  # per-message limits answered with errors
    worker_id: str | None = None  # behind a sticky proxy: this worker's name (mio.server.scale)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class Ticket:
    token: str
    character_id: str
    character: Character
    mode: str
    user_id: str
    issued: float
    client: str = "unknown"
    session_id: str | None = None
    closed: float | None = None
    anonymous: bool = True  # no user_id given: a fresh visitor, whose lines episodic memory does not keep


@dataclass
class Live:
    ticket: Ticket
    session: Any  # mio.runtime.session.Session
    transport: WebTransport


class IdleTimeout(Exception):
    """The user did nothing for `idle_timeout_s`."""


class _NoRender:
    """Parameter streams need no pixels: a 1x1 stand-in keeps the session's stages unchanged."""

    width = height = 1

    def render(self, face, joints, camera=None, look=None) -> np.ndarray:
        return np.zeros((1, 1, 3), np.uint8)


def list_characters(default: Character) -> dict[str, Character]:
    """Every character a session may choose: stand-alone packs and the cast of each story pack."""
    names = known_characters()
    found: dict[str, Character] = {}
    for name in names:
        try:
            found[name] = load_character(name)
        except ConfigError as e:  # a broken pack is skipped, the others stay usable
            log.warning("skipping character %s: %s", name, e)
    if not any(c.name == default.name for c in found.values()):
        found[getattr(default, "id", None) or default.name.lower()] = default
    return found


def face_names(layout: str) -> list[str]:
    spec = LAYOUTS[layout]
    names: list[str] = []
    for part, n in spec.parts:
        if part == "blendshapes" and n == len(ARKIT_BLENDSHAPES):
            names += list(ARKIT_BLENDSHAPES)
        else:
            names += [f"{part}_{i}" for i in range(n)]
    return names


class Hub:
    """Tokens, capacity and the live sessions of one server process."""

    def __init__(self, models, settings: ServeSettings) -> None:
        self.models, self.settings = models, settings
        self.store = SessionStore(settings.data_dir)
        self.characters = list_characters(models.character)
        self.default_character = next((k for k, c in self.characters.items() if c.name == models.character.name),
                                      next(iter(self.characters)))
        self.tickets: collections.OrderedDict[str, Ticket] = collections.OrderedDict()  # oldest first
        self.live: dict[str, Live] = {}
        self.session_rate = RateLimiter(settings.session_rate_per_min, settings.session_burst)
        if hasattr(models, "prepare"):  # every voice and look a session may pick, loaded before "ready"
            models.prepare(self.characters.values(), progress=lambda msg: log.info("%s", msg))

    # -- requests ---------------------------------------------------------------------------
    def check_headers(self, headers) -> None:
        """Host must name this server (DNS rebinding) and a browser Origin must be allowed, for
        any bind address: a name the server does not know is refused even on 0.0.0.0 (an IP
        address is fine: a rebinding page always arrives under its own domain name)."""
        s = self.settings
        host_header = headers.get("host", "")
        try:
            hostname = (urlsplit(f"//{host_header}").hostname or "").lower()
        except ValueError:  # "[::1" and other unparsable hosts
            hostname = ""
        named = {*LOCAL_HOSTS, *(h.lower() for h in s.allowed_hosts)}
        if s.host not in WILDCARD_HOSTS:
            named.add(s.host.lower())
        if not hostname or (hostname not in named and not _is_ip(hostname)):
            raise Refused(403, "bad_host", f"host {hostname or host_header!r} is not served here; start the server "
                                           f"with --allow-host {hostname or 'NAME'} to answer to that name")
        origin = headers.get("origin")
        if origin is None:  # not a browser (a game engine, a script): the token is the key
            return
        try:
            parts = urlsplit(origin)
        except ValueError:
            parts = None
        # The page's own origin (its Host passed the check above), or one the user allowed.
        if parts is not None and parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower():
            return
        if origin.rstrip("/") in s.allowed_origins:
            return
        raise Refused(403, "bad_origin", f"origin {origin!r} is not allowed; start the server with "
                                         f"--allow-origin {origin} to allow it")

    def _expire(self) -> None:
        now = time.monotonic()
        for tok, t in list(self.tickets.items()):
            unused_too_long = t.session_id is None and now - t.issued > self.settings.token_ttl_s
            rated_window_over = t.closed is not None and now - t.closed > self.settings.rating_ttl_s
            if unused_too_long or rated_window_over:
                del self.tickets[tok]

    def _pending(self, client: str | None = None) -> list[Ticket]:
        """Unused tokens (of one address), oldest first."""
        return [t for t in self.tickets.values() if t.session_id is None and (client is None or t.client == client)]

    def _live_of(self, client: str) -> int:
        return sum(1 for lv in self.live.values() if lv.ticket.client == client)

    def busy_message(self) -> str:
        n = self.settings.max_sessions
        return (f"{self.models.character.name} is already talking with {n} "
                f"{'person' if n == 1 else 'people'} (the limit on this server); please try again in a minute")

    def _check_client_cap(self, client: str) -> None:
        cap = self.settings.max_sessions_per_client
        if cap and self._live_of(client) >= cap:
            raise Refused(503, "busy", f"you already have {cap} session{'s' if cap > 1 else ''} open here "
                                       "(the limit per visitor); close one and try again")

    def issue(self, body: SessionRequest | dict[str, Any], headers, client: str = "unknown") -> Ticket:
        """A token for one session. It holds no slot: capacity is taken when its WebSocket opens,
        so a client asking for tokens over and over keeps nobody out."""
        if isinstance(body, dict):
            body = SessionRequest.model_validate(body)
        self.check_headers(headers)
        wait = self.session_rate.allow(client)
        if wait:
            raise Refused(429, "rate_limited", f"too many new sessions from {client}; try again in "
                                               f"{retry_after(wait)} s", retry_after=retry_after(wait))
        key = self.settings.access_key
        if key is not None:
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or (body.key or "")
            if not hmac.compare_digest(given.encode(), key.encode()):
                raise Refused(401, "bad_key", "this server needs an access key")
        character_id = body.character or self.default_character
        if character_id not in self.characters:
            raise Refused(400, "bad_character", f"unknown character {character_id!r}; "
                                                f"choose one of {', '.join(self.characters)}")
        mode = body.mode or "browser"
        if mode not in MODES:
            raise Refused(400, "bad_mode", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        # The Thinker remembers a user across sessions (episodic memory), so a user id is a key to
        # memories: only trusted clients (holding the access key) may name one; everybody else is
        # a fresh anonymous visitor, whose lines are not kept (no later session could recall them).
        if body.user_id is not None and key is None:
            raise Refused(403, "bad_user", "naming a user_id needs the server's access key (--access-key)")
        user_id = body.user_id or f"web-{secrets.token_hex(6)}"
        self._expire()
        if len(self.live) >= self.settings.max_sessions:  # said now, so the page need not try the socket
            raise Refused(503, "busy", self.busy_message())
        self._check_client_cap(client)
        # Bound the unused tokens: per address first (a flood drops only the flooder's own tokens),
        # then on the whole server.
        for old in self._pending(client)[: -MAX_PENDING_PER_CLIENT + 1 or None]:
            del self.tickets[old.token]
        for old in self._pending()[: max(0, len(self._pending()) - self.settings.max_pending_tokens + 1)]:
            del self.tickets[old.token]
        token = secrets.token_urlsafe(24)
        ticket = Ticket(token, character_id, self.characters[character_id], mode, user_id, time.monotonic(), client,
                        anonymous=body.user_id is None)
        self.tickets[token] = ticket
        return ticket

    def claim(self, token: str, mode: str, client: str = "unknown") -> Ticket:
        self._expire()
        ticket = self.tickets.get(token or "")
        if ticket is None:
            raise Refused(401, "bad_token", "unknown or expired session token; ask POST /api/session for a new one")
        if ticket.session_id is not None:
            raise Refused(401, "bad_token", "this session token was already used")
        if ticket.mode != mode:
            raise Refused(400, "bad_mode", f"this token is for a {ticket.mode} session; use /ws/{ws_path(ticket.mode)}")
        if len(self.live) >= self.settings.max_sessions:
            raise Refused(503, "busy", self.busy_message())
        self._check_client_cap(client)
        return ticket

    def rate(self, body: RatingRequest | dict[str, Any]) -> str:
        if isinstance(body, dict):
            body = RatingRequest.model_validate(body)
        self._expire()
        ticket = self.tickets.get(body.token)
        if ticket is None or ticket.session_id is None:
            raise Refused(404, "bad_token", "no session for this token (it was never used, or rating closed)")
        try:
            self.store.rate(ticket.session_id, body.rating, body.comment)
        except InputError as e:
            raise Refused(400, "bad_rating", str(e)) from None
        return ticket.session_id

    def status(self) -> dict[str, Any]:
        self._expire()
        return {"live_sessions": len(self.live), "pending_tokens": len(self._pending()),
                "max_sessions": self.settings.max_sessions,
                "available": max(0, self.settings.max_sessions - len(self.live))}

    # -- one WebSocket ----------------------------------------------------------------------
    async def serve(self, ws, mode: str) -> None:
        from mio.runtime.session import Session

        try:
            self.check_headers(ws.headers)
        except Refused as r:
            await ws.close(code=1008, reason=r.code)  # before accept: a cross-site page learns nothing
            return
        await ws.accept()
        try:
            ticket = self.claim(ws.query_params.get("token", ""), mode, client_address(ws))
        except Refused as r:
            await _send_now(ws, ErrorOut(code=r.code, message=r.message))
            await ws.close(code=1013 if r.code == "busy" else 1008, reason=r.code)
            return

        async def send(payload: str | bytes) -> None:
            if isinstance(payload, bytes):
                await ws.send_bytes(payload)
            else:
                await ws.send_text(payload)

        transport = WebTransport(send, mode=mode, limits=self.settings.limits)
        view = copy.copy(self.models)  # shares every weight; only the character (and renderer) differ
        view.character = ticket.character
        if mode == "params":
            view.renderer = _NoRender()
        session = Session(view, realtime=True, user_id=ticket.user_id, on_frame=transport.on_frame,
                          remember=not ticket.anonymous)
        transport.attach(session)
        ticket.session_id = session.id
        self.live[session.id] = Live(ticket, session, transport)
        self.store.begin(session.id, user_id=ticket.user_id, character=ticket.character_id, mode=mode)
        tasks: list[asyncio.Task] = []
        reason = "client left"
        try:
            await session.start()
            transport.send(self._ready(ticket, session))

            async def receive() -> None:
                while True:
                    msg = await ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        return
                    data = msg.get("bytes")
                    await transport.handle(data if data is not None else (msg.get("text") or ""))

            tasks = [asyncio.create_task(receive(), name="ws-receive"),
                     asyncio.create_task(transport.run_sender(), name="ws-send"),
                     asyncio.create_task(transport.ended.wait(), name="ws-end"),
                     asyncio.create_task(self._watch_idle(transport), name="ws-idle"),
                     asyncio.create_task(self._keep_transcript(session.id, transport), name="ws-store")]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                exc = t.exception()
                if isinstance(exc, IdleTimeout):
                    reason = "idle"
                    with contextlib.suppress(Exception):
                        await _send_now(ws, ErrorOut(code="idle", message=str(exc)))
                elif isinstance(exc, ClientStalled):
                    reason = "stalled"
                elif exc is not None and not isinstance(exc, WebSocketDisconnect | OSError):
                    reason = f"error: {exc}"
                    log.exception("session %s failed", session.id, exc_info=exc)
                elif t.get_name() == "ws-end":
                    reason = "ended by client"
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await session.abort()
                stats = {"end": reason, **dict(transport.stats),
                         "ttfa_s": [round(t.first_audio - t.t_input, 4) for t in session.timings if t.first_audio],
                         "errors": session.errors[-20:]}
                await asyncio.to_thread(self.store.finish, session.id, transport.transcript, stats)
            finally:
                del self.live[session.id]
                ticket.closed = time.monotonic()
                with contextlib.suppress(Exception):
                    await _send_now(ws, ClosedOut(session_id=session.id, reason=reason))
                    await ws.close(code=1000)

    async def _keep_transcript(self, session_id: str, transport: WebTransport) -> None:
        """Store the transcript whenever it changes (one writer per session, so writes keep their order)."""
        while True:
            await transport.transcript_changed.wait()
            transport.transcript_changed.clear()
            try:
                await asyncio.to_thread(self.store.save_transcript, session_id, list(transport.transcript))
            except Exception:  # noqa: BLE001 - a full disk must not end the conversation; finish() retries
                log.exception("could not store the transcript of session %s", session_id)

    async def _watch_idle(self, transport: WebTransport) -> None:
        """Warn, then raise IdleTimeout, when the user has done nothing for `idle_timeout_s`
        (a reply being spoken counts as activity; pings do not)."""
        s = self.settings
        warned = False
        while True:
            await asyncio.sleep(min(WATCH_PERIOD_S, s.idle_timeout_s / 4))
            now = time.monotonic()
            if transport.speaking() or transport.replying:
                transport.last_activity = now
            idle = now - transport.last_activity
            left = s.idle_timeout_s - idle
            if left <= 0:
                raise IdleTimeout(f"closed after {s.idle_timeout_s:.0f} s without a message, to free the place "
                                  "for others; start again to continue")
            if left <= s.idle_warning_s and not warned:
                warned = True
                transport.send(ErrorOut(code="idle_warning", seconds_left=round(left),
                                        message=f"Still there? This session closes in {left:.0f} s unless you "
                                                "type or speak."))
            elif left > s.idle_warning_s:
                warned = False

    def _ready(self, ticket: Ticket, session) -> ReadyOut:
        cfg = self.models.config
        params = ticket.mode == "params"
        layout = session.face.layout.name if params else ""
        return ReadyOut(
            session_id=session.id, mode=ticket.mode,
            character=CharacterInfo(id=ticket.character_id, name=ticket.character.name,
                                    greeting=ticket.character.greeting),
            fps=cfg.fps, audio_sample_rate=cfg.talker.sample_rate, mic_sample_rate=16000,
            asr=self.models.asr is not None, story_time=find_story_clock(session) is not None,
            limits=LimitsInfo(max_message_bytes=self.settings.limits.max_message_bytes,
                              max_text_chars=cfg.thinker.max_input_chars),
            face=FaceInfo(layout=layout, names=face_names(layout)) if params else None,
            body=BodyInfo(layout="humanml3d263", joints=22) if params else None)


async def _send_now(ws, msg: ServerMessage) -> None:
    """A message sent outside the session's queue (before it exists, or after it ended): Starlette's
    compact JSON, non-ASCII unescaped, as these messages have always been sent."""
    await ws.send_json(msg.model_dump())


def ws_path(mode: str) -> str:
    return "session" if mode == "browser" else "params"
