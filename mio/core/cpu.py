"""How many cores the machine leaves to this process right now: the busy time of every other
process (from /proc/stat, minus this process's own CPU time), over the last second.

    meter = CpuMeter.shared()
    free = meter.free_cores()        # e.g. 1.6 on 2 cores beside one render process; None: unknown

Why: llama.cpp's threads meet at a spinning barrier after every operation. Two threads pre-fill and
decode ~1.9x faster than one on an idle 2-core machine, but when another process takes one of the
cores, the thread left without a core holds the other at every barrier and a first clause takes
3-6x longer than on one thread (measured beside a busy loop: median 3.5 s vs 0.77 s quiet). So
the embedded LLM asks this meter before each reply (and every few tokens) how many threads the
machine can give it (mio.thinker.llm.llama, `thinker.n_threads=0`).

One daemon thread samples /proc/stat and this process's CPU clock every `period` seconds (a few
microseconds each). Off Linux, or where /proc/stat cannot be read, `free_cores` is None.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import time
from collections.abc import Iterator

from mio.core.shared import Shared

STAT = "/proc/stat"


def _busy_seconds(path: str = STAT) -> float | None:
    """Seconds of CPU time the whole machine has spent busy since boot (all cores)."""
    try:
        with open(path, encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter(Shared):
    """Free cores for this process over the last `window` seconds (see the module docstring)."""

    def __init__(self, period: float = 0.2, window: float = 1.0, path: str = STAT) -> None:
        self.period, self.window, self.path = period, window, path
        self.cores = os.cpu_count() or 1
        self._samples: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=max(2, int(window / period) + 2))
        self._lock = threading.Lock()
        self.available = _busy_seconds(path) is not None
        if self.available:
            self._sample()
            threading.Thread(target=self._loop, name="mio-cpu-meter", daemon=True).start()

    def _sample(self) -> None:
        busy = _busy_seconds(self.path)
        if busy is not None:
            with self._lock:
                self._samples.append((time.monotonic(), busy, time.process_time()))

    def _loop(self) -> None:
        while True:
            time.sleep(self.period)
            self._sample()

    def free_cores(self) -> float | None:
        """Cores not used by other processes over the last window (0 .. cores); None when unknown
        (no /proc/stat, or less than half a window sampled yet)."""
        with self._lock:
            if len(self._samples) < 2:
                return None
            t1, busy1, own1 = self._samples[-1]
            old = [s for s in self._samples if t1 - s[0] <= self.window + 1e-3]
        t0, busy0, own0 = old[0]
        if t1 - t0 < self.window / 2:
            return None
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)
        return max(0.0, min(float(self.cores), self.cores - others))


def threads_for(free: float | None, most: int, spare: float = 0.4) -> int:
    """Threads for a job whose threads wait on each other (llama.cpp): one per core that is free,
    counting a core as free when at least 1 - `spare` of it is (a thread that loses its core for
    a tenth of the time costs little; one that loses it for half stalls the others). Unknown: 1."""
    if free is None:
        return 1
    return max(1, min(most, int(free + spare)))


class Urgent(Shared):
    """Work a listener is waiting for right now (a reply's first clause being voiced: the user hears
    nothing until it is), which work that is ahead of its listener makes room for: the reply's LLM,
    already writing the clauses after it, seconds ahead of the speech, stops between tokens until
    the clause is voiced, so on 2 cores the voice gets a core to itself instead of sharing both with
    two LLM threads and the renderer.

        urgent = Urgent.shared()
        n = urgent.begun                   # the LLM, before handing out its first clause
        with urgent.running(): ...         # the Talker voicing it
        urgent.wait_done(n, timeout=0.25)  # the LLM: until work begun after `n` is done (or timeout)

    Counted, so overlapping urgent work (two sessions) is done only when all of it is.
    """

    def __init__(self) -> None:
        self._running = 0
        self._begun = 0  # urgent runs begun so far
        self._cond = threading.Condition()

    @property
    def begun(self) -> int:
        return self._begun

    @property
    def busy(self) -> bool:
        return self._running > 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with self._cond:
            self._running += 1
            self._begun += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def wait_done(self, after: int, timeout: float) -> float:
        """Wait until urgent work begun after the `after`-th run has begun and all urgent work is
        done, at most `timeout` seconds; the seconds waited."""
        t0 = time.perf_counter()
        with self._cond:
            self._cond.wait_for(lambda: self._begun > after and self._running == 0, timeout)
        return time.perf_counter() - t0
