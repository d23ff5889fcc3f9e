"""Run the server in a background thread of this process (for `mio bench serve` and the tests)."""

from __future__ import annotations

import socket
import threading
import time

from mio.server.app import ServeSettings, create_app


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """`with BackgroundServer(models, settings) as srv:` -> srv.url, srv.hub; stops on exit."""

    def __init__(self, models, settings: ServeSettings | None = None, **overrides) -> None:
        import dataclasses

        import uvicorn

        from mio.server.app import uvicorn_config

        settings = settings or ServeSettings()
        if settings.port == 0 or "port" not in overrides and settings.port == ServeSettings.port:
            overrides.setdefault("port", free_port(settings.host))
        self.settings = dataclasses.replace(settings, **overrides)
        self.app = create_app(models, self.settings)
        self.hub = self.app.state.hub
        config = uvicorn_config(self.app, self.settings, log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mio-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.settings.host}:{self.settings.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
