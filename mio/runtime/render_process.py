"""The renderer in a child process.

moderngl never releases Python's GIL: while a frame is drawn and read back (~10 ms of every 40 ms
frame here) no other thread of the process can run Python, so the LLM's token loop, the voice and
the face and body stages wait behind the rasteriser. In its own process the renderer draws beside
them. Measured on 2 cores, the LLM generating while the avatar renders at 25 fps (`mio bench llm`,
README "Decisions"): ~39.5 ms per token with the renderer on a thread, ~30.3 ms with it in a
process, ~29 ms with no renderer at all.

Frames come back through one shared-memory buffer (owned and unlinked by the parent); requests and
errors go over a socket as JSON. One request at a time: the renderer has one GL context. Looks are
added by name or spec (`add_look`, JSON-safe) and picked per frame (`render(..., look=name)`); a
restarted child gets the same looks again.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from mio.core import errors, registry
from mio.core.config import RenderConfig, to_dict
from mio.core.errors import BackendError
from mio.render.camera import Camera

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0  # the first run prepares the avatar asset (~2 min); later ones load it in ~15 ms


def create_renderer(backend: str, config: RenderConfig, look_spec: str | dict | None = None):
    """Build a renderer; `look_spec` (a character pack's look: a preset name or a mapping that changes
    one) becomes its default look."""
    renderer = registry.create("render", backend, config)
    if look_spec is not None:
        try:
            renderer.default_look = renderer.add_look(look_spec)
        except BaseException:
            renderer.close()
            raise
    return renderer


# -- the wire: one JSON message per request and per reply (no pickles); frames in shared memory --
def _error_to_json(e: BaseException) -> dict:
    return {"type": type(e).__name__, "message": str(e)}


def _error_from_json(d: dict) -> Exception:
    cls = getattr(errors, d["type"], None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(d["message"])
    return RuntimeError(f"{d['type']} in the render process: {d['message']}")


def _send(conn: Connection, msg: dict) -> None:
    conn.send_bytes(json.dumps(msg).encode())


def _recv(conn: Connection) -> dict:
    return json.loads(conn.recv_bytes())


def _release(shm: SharedMemory) -> None:
    """Close and unlink the parent's frame buffer (once; safe at interpreter exit)."""
    try:
        shm.close()
        shm.unlink()
    except (FileNotFoundError, BufferError, OSError):
        pass


def _attach(name: str) -> SharedMemory:
    """Open the parent's frame buffer. The parent made it and unlinks it: this process must not
    (Python < 3.13 registers an attached segment with this process's resource tracker, which would
    unlink it when this process exits)."""
    shm = SharedMemory(name=name)
    if sys.version_info < (3, 13):
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")
    return shm


def serve(conn: Connection) -> None:
    """The child's loop. First message: {backend, config, look_spec}; then
    {op: render, face, joints, camera, look, shm} -> {shape} | {error} and {op: add_look, spec} ->
    {name} | {error}, until {op: close} or EOF."""
    setup = _recv(conn)
    try:
        renderer = create_renderer(setup["backend"], RenderConfig(**setup["config"]), setup["look_spec"])
    except Exception as e:  # noqa: BLE001 - reported to the parent, which raises it
        _send(conn, {"error": _error_to_json(e)})
        return
    _send(conn, {"width": renderer.width, "height": renderer.height, "look": renderer.default_look})
    shm: SharedMemory | None = None
    try:
        while True:
            try:
                msg = _recv(conn)
            except EOFError:  # the parent went away
                break
            if msg["op"] == "close":
                break
            if msg["op"] == "add_look":
                try:
                    _send(conn, {"name": renderer.add_look(msg["spec"])})
                except Exception as e:  # noqa: BLE001 - a bad look must not end the renderer
                    _send(conn, {"error": _error_to_json(e)})
                continue
            try:
                joints = None if msg["joints"] is None else np.asarray(msg["joints"], np.float64)
                camera = None if msg["camera"] is None else Camera.from_dict(msg["camera"])
                image = renderer.render(np.asarray(msg["face"], np.float64), joints, camera, msg.get("look"))
                if shm is None or shm.name != msg["shm"]:
                    if shm is not None:
                        shm.close()
                    shm = _attach(msg["shm"])
                if image.nbytes > shm.size:
                    raise BackendError(f"a frame of {image.nbytes} bytes does not fit the {shm.size}-byte buffer")
                np.ndarray(image.shape, np.uint8, buffer=shm.buf)[...] = image
                _send(conn, {"shape": list(image.shape)})
            except Exception as e:  # noqa: BLE001 - bad input must not end the renderer
                _send(conn, {"error": _error_to_json(e)})
    finally:
        if shm is not None:
            shm.close()
        renderer.close()
        conn.close()


class RenderProcess:
    """`render(face, joints, camera, look)` in a child process; the same frames as calling the renderer."""

    def __init__(self, backend: str, config: RenderConfig, look_spec: str | dict | None = None) -> None:
        self._args = (backend, config, look_spec)
        self._looks: dict[str, str | dict] = {}  # name -> the spec it came from, replayed on a restart
        self._lock = threading.Lock()
        self._shm: SharedMemory | None = None
        self._shm_release: weakref.finalize | None = None  # unlinks the buffer even if close() is never called
        self._closed = False
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        backend, config, look_spec = self._args
        ours, theirs = socket.socketpair()
        # A fresh interpreter, not multiprocessing's spawn: that re-imports the caller's __main__,
        # which breaks any script without an `if __name__ == "__main__"` guard.
        self._proc = subprocess.Popen([sys.executable, "-m", "mio.runtime.render_process", str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),))
        theirs.close()
        self._conn = Connection(ours.detach())
        _send(self._conn, {"backend": backend, "config": to_dict(config), "look_spec": look_spec})
        if not self._conn.poll(START_TIMEOUT_S):
            self._kill()
            raise BackendError(f"the render process did not start within {START_TIMEOUT_S:.0f} s")
        reply = self._exchange(None)
        if "error" in reply:
            self._kill()
            raise _error_from_json(reply["error"])
        self.width, self.height, self.default_look = reply["width"], reply["height"], reply["look"]
        for spec in self._looks.values():  # a restarted child: the looks the old one had
            reply = self._exchange({"op": "add_look", "spec": spec})
            if "error" in reply:
                self._kill()
                raise _error_from_json(reply["error"])

    def _exchange(self, msg: dict | None) -> dict:
        """Send `msg` (None: only wait) and return the reply; a dead child is a BackendError."""
        try:
            if msg is not None:
                _send(self._conn, msg)
            return _recv(self._conn)
        except (EOFError, OSError) as e:
            code = self._proc.wait(timeout=5)
            raise BackendError(f"the render process exited (exit code {code})") from e

    def _buffer(self, nbytes: int) -> SharedMemory:
        if self._shm is None or self._shm.size < nbytes:
            if self._shm_release is not None:
                self._shm_release()
            self._shm = SharedMemory(create=True, size=nbytes)
            self._shm_release = weakref.finalize(self, _release, self._shm)
        return self._shm

    def _request(self, msg: dict) -> dict:
        """One exchange; a child that died (a GL driver crash) is started once more (with its looks)
        and asked again. A second death in a row, or an error reply, is the caller's error."""
        try:
            reply = self._exchange(msg)
        except BackendError as e:
            log.warning(f"{e}; starting a new one")
            self._kill()
            self.restarts += 1
            self._start()
            reply = self._exchange(msg)
        if "error" in reply:
            raise _error_from_json(reply["error"])
        return reply

    def add_look(self, spec: str | dict) -> str:
        """Prepare a look in the child (see AnnyRenderer.add_look); returns its name."""
        with self._lock:
            if self._closed:
                raise RuntimeError("renderer is closed")
            name = self._request({"op": "add_look", "spec": spec})["name"]
            self._looks.setdefault(name, spec)
            return name

    @property
    def looks(self) -> tuple[str, ...]:
        return (self.default_look, *(n for n in self._looks if n != self.default_look))

    def render(self, face: np.ndarray, joints: np.ndarray | None, camera=None, look: str | None = None) -> np.ndarray:
        w, h = (camera.width, camera.height) if camera is not None else (self.width, self.height)
        with self._lock:
            if self._closed:
                raise RuntimeError("renderer is closed")
            shm = self._buffer(max(int(w) * int(h) * 3, 1))
            msg = {"op": "render", "face": np.asarray(face, np.float64).tolist(),
                   "joints": None if joints is None else np.asarray(joints, np.float64).tolist(),
                   "camera": None if camera is None else camera.to_dict(), "look": look, "shm": shm.name}
            reply = self._request(msg)
            return np.ndarray(reply["shape"], np.uint8, buffer=shm.buf).copy()  # the next frame overwrites it

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._conn.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                _send(self._conn, {"op": "close"})
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self._kill()
            if self._shm_release is not None:
                self._shm_release()
                self._shm, self._shm_release = None, None


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
