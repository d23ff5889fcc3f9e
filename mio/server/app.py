"""`mio serve`: talk to the character in the browser (FastAPI + WebSocket), or drive a game engine.

    app = create_app(models, ServeSettings(port=8765))   # models: mio.runtime.session.Models

HTTP
    GET  /                  the page (mio/server/static/)
    GET  /api/characters    the character packs a session can use
    POST /api/session       {character?, mode?: "browser"|"params", user_id?} -> {token, ws, ...}
                            503 {"error": "busy"} when `max_sessions` are live
    POST /api/rating        {token, rating: 1..5, comment?} after (or during) the session
    GET  /api/status        live sessions and capacity
WebSocket (protocol: mio.runtime.transports.web)
    /ws/session?token=...   the page: JPEG video + float32 audio + JSON events; text, mic, barge-in
    /ws/params?token=...    game engines: FaceFrame / BodyFrame JSON (+ the audio), no rendering

Reliability (ARCHITECTURE.md §9): binds 127.0.0.1 by default; a session needs a single-use token
that expires; Host and Origin headers are checked (no cross-site pages, no DNS rebinding);
message sizes and outgoing queues are bounded; beyond `max_sessions` a clear "busy" refusal;
each WebSocket has its own `Session` (own memory) over the shared weights; a disconnect aborts
the session at once; malformed input gets an `error` message, never a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect

from mio.core.errors import ConfigError, InputError
from mio.core.layouts import ARKIT_BLENDSHAPES, LAYOUTS
from mio.runtime.transports.web import MODES, ClientStalled, WebLimits, WebTransport, find_story_clock
from mio.server.scale import sticky_cookie
from mio.server.store import SessionStore
from mio.thinker.persona import STORIES_DIR, Character, load_character

log = logging.getLogger("mio.server")
STATIC_DIR = Path(__file__).resolve().parent / "static"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_USER_ID_CHARS = 64


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"  # bind address; 0.0.0.0 exposes the server to the network
    port: int = 8765
    max_sessions: int = 2  # live sessions at once (each renders 25 fps; 2 cores hold about two)
    allowed_origins: tuple[str, ...] = ()  # browser origins besides the page's own
    allowed_hosts: tuple[str, ...] = ()  # Host names besides localhost / 127.0.0.1 / the bind address
    access_key: str | None = None  # when set, POST /api/session needs it ("Authorization: Bearer KEY")
    token_ttl_s: float = 30.0  # an issued token holds a slot this long before it is used
    rating_ttl_s: float = 3600.0  # a session's token can rate it this long after it ends
    idle_timeout_s: float = 900.0  # a silent client is disconnected after this
    data_dir: str = "out/serve"  # sessions.sqlite: transcripts and ratings
    ws_max_size: int = 1 << 20  # the WebSocket layer closes the connection above this (1009)
    limits: WebLimits = field(default_factory=WebLimits)  # per-message limits answered with errors
    worker_id: str | None = None  # behind a sticky proxy: this worker's name (mio.server.scale)


class Refused(Exception):
    """A request the server turns down: HTTP status, machine code and a sentence for the user."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Ticket:
    token: str
    character_id: str
    character: Character
    mode: str
    user_id: str
    issued: float
    session_id: str | None = None
    closed: float | None = None


@dataclass
class Live:
    ticket: Ticket
    session: Any  # mio.runtime.session.Session
    transport: WebTransport


class _NoRender:
    """Parameter streams need no pixels: a 1x1 stand-in keeps the session's stages unchanged."""

    width = height = 1

    def render(self, face, joints, camera=None, look=None) -> np.ndarray:
        return np.zeros((1, 1, 3), np.uint8)


def list_characters(default: Character) -> dict[str, Character]:
    """Every character a session may choose: stand-alone packs and the cast of each story pack."""
    from mio.thinker import persona

    known = getattr(persona, "known_characters", None)
    names = known() if callable(known) else (
        [d.name for d in sorted(STORIES_DIR.iterdir()) if (d / "character.yaml").is_file()] if STORIES_DIR.is_dir() else [])
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
        self.tickets: dict[str, Ticket] = {}
        self.live: dict[str, Live] = {}
        if hasattr(models, "prepare"):  # every voice and look a session may pick, loaded before "ready"
            models.prepare(self.characters.values(), progress=lambda msg: log.info("%s", msg))

    # -- requests ---------------------------------------------------------------------------
    def check_headers(self, headers) -> None:
        """Host must name this server (DNS rebinding) and a browser Origin must be allowed."""
        s = self.settings
        host_header = headers.get("host", "")
        hostname = urlsplit(f"//{host_header}").hostname or ""
        wildcard = s.host in ("0.0.0.0", "::", "")
        allowed = {*LOCAL_HOSTS, s.host, *s.allowed_hosts}
        if not (wildcard and not s.allowed_hosts) and hostname not in allowed:
            raise Refused(403, "bad_host", f"host {hostname!r} is not served here")
        origin = headers.get("origin")
        if origin is None:  # not a browser (a game engine, a script): the token is the key
            return
        if urlsplit(origin).netloc == host_header or origin.rstrip("/") in s.allowed_origins:
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

    def _pending(self) -> int:
        return sum(1 for t in self.tickets.values() if t.session_id is None)

    def busy_message(self) -> str:
        n = self.settings.max_sessions
        return (f"{self.models.character.name} is already talking with {n} "
                f"{'person' if n == 1 else 'people'} (the limit on this server); please try again in a minute")

    def issue(self, body: dict[str, Any], headers) -> Ticket:
        self.check_headers(headers)
        key = self.settings.access_key
        if key is not None:
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or str(body.get("key") or "")
            if not hmac.compare_digest(given.encode(), key.encode()):
                raise Refused(401, "bad_key", "this server needs an access key")
        character_id = body.get("character") or self.default_character
        if not isinstance(character_id, str) or character_id not in self.characters:
            raise Refused(400, "bad_character", f"unknown character {character_id!r}; "
                                                f"choose one of {', '.join(self.characters)}")
        mode = body.get("mode") or "browser"
        if mode not in MODES:
            raise Refused(400, "bad_mode", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        # The Thinker remembers a user across sessions (episodic memory), so a user id is a key to
        # memories: only trusted clients (holding the access key) may name one; everybody else is
        # a fresh anonymous visitor whose memories no other session can reach.
        user_id = body.get("user_id")
        if user_id is not None and (not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_CHARS):
            raise Refused(400, "bad_user", f"user_id must be text of at most {MAX_USER_ID_CHARS} characters")
        if user_id is not None and key is None:
            raise Refused(403, "bad_user", "naming a user_id needs the server's access key (--access-key)")
        user_id = user_id or f"web-{secrets.token_hex(6)}"
        self._expire()
        if len(self.live) + self._pending() >= self.settings.max_sessions:
            raise Refused(503, "busy", self.busy_message())
        token = secrets.token_urlsafe(24)
        ticket = Ticket(token, character_id, self.characters[character_id], mode, user_id, time.monotonic())
        self.tickets[token] = ticket
        return ticket

    def claim(self, token: str, mode: str) -> Ticket:
        self._expire()
        ticket = self.tickets.get(token or "")
        if ticket is None:
            raise Refused(401, "bad_token", "unknown or expired session token; ask POST /api/session for a new one")
        if ticket.session_id is not None:
            raise Refused(401, "bad_token", "this session token was already used")
        if ticket.mode != mode:
            raise Refused(400, "bad_mode", f"this token is for a {ticket.mode} session; use /ws/{_path(ticket.mode)}")
        if len(self.live) >= self.settings.max_sessions:  # the slot this token held may have expired
            raise Refused(503, "busy", self.busy_message())
        return ticket

    def rate(self, body: dict[str, Any]) -> str:
        self._expire()
        ticket = self.tickets.get(str(body.get("token") or ""))
        if ticket is None or ticket.session_id is None:
            raise Refused(404, "bad_token", "no session for this token (it was never used, or rating closed)")
        try:
            self.store.rate(ticket.session_id, body.get("rating"), body.get("comment"))
        except InputError as e:
            raise Refused(400, "bad_rating", str(e)) from None
        return ticket.session_id

    def status(self) -> dict[str, Any]:
        self._expire()
        return {"live_sessions": len(self.live), "pending_tokens": self._pending(),
                "max_sessions": self.settings.max_sessions,
                "available": max(0, self.settings.max_sessions - len(self.live) - self._pending())}

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
            ticket = self.claim(ws.query_params.get("token", ""), mode)
        except Refused as r:
            await ws.send_json({"type": "error", "code": r.code, "message": r.message})
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
        session = Session(view, realtime=True, user_id=ticket.user_id, on_frame=transport.on_frame)
        transport.attach(session)
        ticket.session_id = session.id
        self.live[session.id] = Live(ticket, session, transport)
        self.store.begin(session.id, user_id=ticket.user_id, character=ticket.character_id, mode=mode)
        tasks: list[asyncio.Task] = []
        reason = "client left"
        try:
            await session.start()
            transport.send_json(self._ready(ticket, session))

            async def receive() -> None:
                while True:
                    msg = await asyncio.wait_for(ws.receive(), self.settings.idle_timeout_s)
                    if msg["type"] == "websocket.disconnect":
                        return
                    data = msg.get("bytes")
                    await transport.handle(data if data is not None else (msg.get("text") or ""))

            tasks = [asyncio.create_task(receive(), name="ws-receive"),
                     asyncio.create_task(transport.run_sender(), name="ws-send"),
                     asyncio.create_task(transport.ended.wait(), name="ws-end")]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                exc = t.exception()
                if isinstance(exc, asyncio.TimeoutError):
                    reason = "idle"
                    with contextlib.suppress(Exception):
                        await ws.send_json({"type": "error", "code": "idle", "message": "closed after "
                                            f"{self.settings.idle_timeout_s:.0f} s without a message"})
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
                    await ws.send_json({"type": "closed", "session_id": session.id, "reason": reason})
                    await ws.close(code=1000)

    def _ready(self, ticket: Ticket, session) -> dict[str, Any]:
        cfg = self.models.config
        msg = {"type": "ready", "session_id": session.id, "mode": ticket.mode,
               "character": {"id": ticket.character_id, "name": ticket.character.name,
                             "greeting": ticket.character.greeting},
               "fps": cfg.fps, "audio_sample_rate": cfg.talker.sample_rate, "mic_sample_rate": 16000,
               "asr": self.models.asr is not None, "story_time": find_story_clock(session) is not None,
               "limits": {"max_message_bytes": self.settings.limits.max_message_bytes,
                          "max_text_chars": cfg.thinker.max_input_chars}}
        if ticket.mode == "params":
            layout = session.face.layout.name
            msg["face"] = {"layout": layout, "names": face_names(layout)}
            msg["body"] = {"layout": "humanml3d263", "joints": 22}
        return msg


def _path(mode: str) -> str:
    return "session" if mode == "browser" else "params"


def create_app(models, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    hub = Hub(models, settings)
    app = FastAPI(title="Mio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub

    def refused(r: Refused) -> JSONResponse:
        return JSONResponse({"error": r.code, "message": r.message}, status_code=r.status)

    async def json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > settings.limits.max_message_bytes:
            raise Refused(413, "too_large", "request body too large")
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise Refused(400, "bad_json", "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "bad_json", "the request body must be a JSON object")
        return body

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                                       "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/characters")
    async def characters(request: Request) -> JSONResponse:
        try:
            hub.check_headers(request.headers)
        except Refused as r:
            return refused(r)
        return JSONResponse({"default": hub.default_character, "characters": [
            {"id": k, "name": c.name, "summary": c.summary, "greeting": c.greeting}
            for k, c in hub.characters.items()]})

    @app.post("/api/session")
    async def new_session(request: Request) -> JSONResponse:
        try:
            ticket = hub.issue(await json_body(request), request.headers)
        except Refused as r:
            return refused(r)
        response = JSONResponse({"token": ticket.token, "ws": f"/ws/{_path(ticket.mode)}?token={ticket.token}",
                                 "mode": ticket.mode, "character": ticket.character_id,
                                 "expires_in_s": settings.token_ttl_s})
        sticky_cookie(response, settings.worker_id)  # the WebSocket must reach this worker
        return response

    @app.post("/api/rating")
    async def rating(request: Request) -> JSONResponse:
        try:
            hub.check_headers(request.headers)
            session_id = hub.rate(await json_body(request))
        except Refused as r:
            return refused(r)
        return JSONResponse({"ok": True, "session_id": session_id})

    @app.get("/api/status")
    async def status(request: Request) -> JSONResponse:
        try:
            hub.check_headers(request.headers)
        except Refused as r:
            return refused(r)
        return JSONResponse(hub.status())

    @app.websocket("/ws/session")
    async def ws_session(ws: WebSocket) -> None:
        await hub.serve(ws, "browser")

    @app.websocket("/ws/params")
    async def ws_params(ws: WebSocket) -> None:
        await hub.serve(ws, "params")

    return app


def run(models, settings: ServeSettings) -> None:
    """Serve until Ctrl-C."""
    import uvicorn

    app = create_app(models, settings)
    uvicorn.run(app, host=settings.host, port=settings.port, ws="websockets-sansio", ws_max_size=settings.ws_max_size,
                log_level="info", timeout_graceful_shutdown=3)
