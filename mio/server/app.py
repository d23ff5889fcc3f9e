"""`mio serve`: talk to the character in the browser (FastAPI + WebSocket), or drive a game engine.

    app = create_app(models, ServeSettings(port=8765))   # models: mio.runtime.session.Models

HTTP
    GET  /                  the page (mio/server/static/)
    GET  /api/characters    the character packs a session can use
    POST /api/session       {character?, mode?: "browser"|"params", user_id?} -> {token, ws, ...}
                            503 {"error": "busy"} when `max_sessions` are live
    POST /api/rating        {token, rating: 1..5, comment?} after (or during) the session
    GET  /api/status        live sessions and capacity
WebSocket (protocol: mio.runtime.transports.messages)
    /ws/session?token=...   the page: JPEG video + float32 audio + JSON events; text, mic, barge-in
    /ws/params?token=...    game engines: FaceFrame / BodyFrame JSON (+ the audio), no rendering

Reliability (docs/architecture.md §9): binds 127.0.0.1 by default; a session needs a single-use token
that expires; Host and Origin headers are checked for any bind address (no cross-site pages, no
DNS rebinding); message sizes and outgoing queues are bounded; beyond `max_sessions` a clear
"busy" refusal; each WebSocket has its own `Session` (own memory) over the shared weights; a
disconnect aborts the session at once; malformed input gets an `error` message, never a crash.

Nobody on the port can lock the others out (issue 20 item 6):
- a token holds no slot: capacity is taken when its WebSocket opens, and a token unused for
  `token_ttl_s` (10 s; the page connects at once) is gone; each address keeps at most
  MAX_PENDING_PER_CLIENT unused tokens and the server `max_pending_tokens`, oldest dropped first;
- POST /api/session is rate-limited per address (`session_rate_per_min`, `session_burst`: 429
  with Retry-After);
- a session with no user activity (typing, speech, interrupting; pings do not count, nor does a
  reply being spoken) gets a warning `idle_warning_s` before `idle_timeout_s` (5 min) and is then
  closed, so an abandoned tab frees its slot in minutes;
- request bodies are typed pydantic models (mio.server.protocol), read up to `max_body_bytes` as the
  header announces and as the stream delivers (413 either way, nothing larger is buffered); every
  route depends on the Host/Origin check, and one exception handler turns a `Refused` into its
  JSON answer;
- connections: a request's headers must arrive within `header_timeout_s`, an address may hold
  `max_connections_per_ip` sockets and the server `max_connections` (mio.server.limits).
"""

from typing import Annotated  # no postponed annotations: FastAPI reads these of the routes defined below

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mio.server.hub import STATIC_DIR, Hub, ServeSettings, ws_path
from mio.server.limits import guarded_http
from mio.server.protocol import RatingRequest, Refused, SessionRequest, client_address, parse_body
from mio.server.scale import sticky_cookie


def create_app(models, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    hub = Hub(models, settings)
    app = FastAPI(title="Mio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub

    @app.exception_handler(Refused)
    async def refused(_request: Request, r: Refused) -> JSONResponse:
        headers = {"Retry-After": str(r.retry_after)} if r.retry_after else None
        return JSONResponse({"error": r.code, "message": r.message}, status_code=r.status, headers=headers)

    def checked(request: Request) -> None:
        """Host and Origin must name this server (every API route depends on this)."""
        hub.check_headers(request.headers)

    async def read_body(request: Request, _: Annotated[None, Depends(checked)]) -> bytes:
        """The body, refused with 413 as soon as the header or the stream shows it is too large
        (after the headers are checked: a cross-site page learns nothing)."""
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise Refused(400, "bad_request", "Content-Length is not a number")
            if int(declared) > limit:
                raise Refused(413, "too_large", f"a request body of {declared} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refused(413, "too_large", f"the request body is over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def session_request(raw: Annotated[bytes, Depends(read_body)]) -> SessionRequest:
        return parse_body(raw, SessionRequest)

    async def rating_request(raw: Annotated[bytes, Depends(read_body)]) -> RatingRequest:
        return parse_body(raw, RatingRequest)

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

    @app.get("/api/characters", dependencies=[Depends(checked)])
    async def characters() -> JSONResponse:
        return JSONResponse({"default": hub.default_character, "characters": [
            {"id": k, "name": c.name, "summary": c.summary, "greeting": c.greeting}
            for k, c in hub.characters.items()]})

    @app.post("/api/session")
    async def new_session(request: Request, body: Annotated[SessionRequest, Depends(session_request)]) -> JSONResponse:
        ticket = hub.issue(body, request.headers, client_address(request))
        response = JSONResponse({"token": ticket.token, "ws": f"/ws/{ws_path(ticket.mode)}?token={ticket.token}",
                                 "mode": ticket.mode, "character": ticket.character_id,
                                 "expires_in_s": settings.token_ttl_s})
        sticky_cookie(response, settings.worker_id)  # the WebSocket must reach this worker
        return response

    @app.post("/api/rating")
    async def rating(body: Annotated[RatingRequest, Depends(rating_request)]) -> JSONResponse:
        return JSONResponse({"ok": True, "session_id": hub.rate(body)})

    @app.get("/api/status", dependencies=[Depends(checked)])
    async def status() -> JSONResponse:
        return JSONResponse(hub.status())

    @app.websocket("/ws/session")
    async def ws_session(ws: WebSocket) -> None:
        await hub.serve(ws, "browser")

    @app.websocket("/ws/params")
    async def ws_params(ws: WebSocket) -> None:
        await hub.serve(ws, "params")

    return app


def uvicorn_config(app: FastAPI, settings: ServeSettings, **overrides):
    """uvicorn's Config with Mio's connection limits (mio.server.limits)."""
    import uvicorn

    kw = dict(host=settings.host, port=settings.port, ws="websockets-sansio", ws_max_size=settings.ws_max_size,
              http=guarded_http(settings.header_timeout_s, settings.max_connections_per_ip),
              limit_concurrency=settings.max_connections, timeout_keep_alive=settings.keep_alive_s,
              log_level="info", timeout_graceful_shutdown=3)
    return uvicorn.Config(app, **{**kw, **overrides})


def run(models, settings: ServeSettings) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    import uvicorn

    uvicorn.Server(uvicorn_config(create_app(models, settings), settings)).run()
