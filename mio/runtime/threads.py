"""Fresh worker threads for a session's replies and clauses.

Each reply (mio.runtime.processors.ThinkerProcessor) and each clause's synthesis (TalkerProcessor)
runs on a thread of its own that ends with it: a discarded speculative reply may still be finishing
its clause while the next reply waits for it, and neither may hold up the default executor that
the stages' other work (rendering, JPEG, alignment) runs in.

Not done here, on purpose: lowering these threads' CPU priority once a reply's first clause is out.
It looks free (the rest of a reply has seconds of slack; a video frame has none), but these threads
run Python and so take turns on the interpreter lock: a niced thread that holds the lock while the
scheduler gives its core to other work stalls every thread of the server. With two sessions on a
machine loaded by other jobs (load 12 on 2 cores) the server's event loop stopped answering
WebSocket pings for 20 s and both sessions were closed.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_in_thread(fn: Callable[..., T], *args, name: str = "mio-job") -> concurrent.futures.Future:
    """Run fn(*args) on a fresh daemon thread; its Future."""
    fut: concurrent.futures.Future = concurrent.futures.Future()

    def main() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
            fut.set_exception(e)

    threading.Thread(target=main, name=name, daemon=True).start()
    return fut
