"""CPU priority of a reply's work once its first sound is out.

On two cores the avatar's frames (25 per second per session, each with a deadline) compete with
the LLM writing the rest of a reply and the voice synthesising its later clauses. That work has
slack -- the LLM writes ~20 tokens a second while the voice speaks ~3, and a clause is synthesised
in a fraction of its length -- while a frame that misses its slot is skipped. So once a reply's
first clause is written, the thread writing the rest lowers its own priority (nice +10 on Linux:
~1/10 of a normal thread's CPU share when the cores are contended, all of it when they are not),
and later clauses are synthesised on such threads. The first clause, which the user waits for,
keeps normal priority. Raising a thread's nice needs no privilege; lowering it again would, so each
of these jobs gets a fresh thread that ends with it.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
BACKGROUND_NICE = 10


def lower_this_thread(nice: int = BACKGROUND_NICE) -> bool:
    """Raise the calling thread's nice value to `nice` (never lowers it); False where unsupported."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return False
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)  # on Linux PRIO_PROCESS with a tid is that thread
        return True
    except OSError:
        return False


def run_in_thread(fn: Callable[..., T], *args, background: bool = False, name: str = "mio-job") -> concurrent.futures.Future:
    """Run fn(*args) on a fresh daemon thread (at background priority if asked); its Future."""
    fut: concurrent.futures.Future = concurrent.futures.Future()

    def main() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        if background:
            lower_this_thread()
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
            fut.set_exception(e)

    threading.Thread(target=main, name=name, daemon=True).start()
    return fut
