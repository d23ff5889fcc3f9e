"""The CPU meter that sizes llama.cpp's thread count: other processes' load counts, our own does not."""

import subprocess
import sys
import threading
import time

import pytest

from mio.core.cpu import CpuMeter, threads_for

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
