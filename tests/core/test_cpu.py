"""The CPU meter that sizes llama.cpp's thread count: other processes' load counts, our own does not."""

import subprocess
import sys
import threading
import time

import pytest

from mio.core.cpu import CpuMeter, Urgent, threads_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")


def _settled(meter: CpuMeter) -> float:
    time.sleep(meter.window + 2 * meter.period)
    free = meter.free_cores()
    assert free is not None and 0.0 <= free <= meter.cores
    return free


def test_another_process_busy_takes_a_core_our_own_threads_do_not():
    meter = CpuMeter(period=0.1, window=0.6)
    assert meter.available
    quiet = _settled(meter)

    stop = threading.Event()

    def spin() -> None:  # this process's own work (the LLM's threads): not counted against it
        x = 0
        while not stop.is_set():
            x += 1

    t = threading.Thread(target=spin, daemon=True)
    t.start()
    try:
        own = _settled(meter)
    finally:
        stop.set()
        t.join()
    assert own > quiet - 0.35, (quiet, own)

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        other = _settled(meter)
    finally:
        hog.kill()
        hog.wait()
    assert other < quiet - 0.6, (quiet, other)  # a whole core went to someone else


def test_threads_follow_the_free_cores():
    assert threads_for(None, 2) == 1  # unknown: the safe count
    assert threads_for(2.0, 2) == 2 and threads_for(1.7, 2) == 2
    assert threads_for(1.5, 2) == 1  # a second thread that loses its core half the time stalls the first
    assert threads_for(0.2, 2) == 1
    assert threads_for(7.9, 4) == 4  # never more than asked for


def test_unreadable_stat_means_unknown(tmp_path):
    meter = CpuMeter(path=str(tmp_path / "missing"))
    assert not meter.available and meter.free_cores() is None


def test_urgent_work_holds_the_waiters_until_it_is_done():
    """Urgent: a waiter waits for urgent work begun after it looked (all of it, when two runs
    overlap), passes at once when that work is already done, and never waits past its timeout."""
    urgent = Urgent()
    n = urgent.begun

    def hold(seconds: float) -> None:
        with urgent.running():
            time.sleep(seconds)

    threading.Thread(target=hold, args=(0.3,)).start()
    threading.Thread(target=hold, args=(0.15,)).start()
    waited = urgent.wait_done(n, 5.0)
    assert 0.25 < waited < 2.0 and not urgent.busy  # done when the longer of the two ended
    assert urgent.wait_done(n, 5.0) < 0.05  # already done
    assert 0.04 < urgent.wait_done(urgent.begun, 0.05) < 1.0  # nothing begins: the timeout bounds the wait
