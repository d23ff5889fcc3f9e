"""Shared: one instance per class and process, built once even when first asked from many threads;
building one class's instance never holds up another's."""

import threading
import time

from mio.core.shared import Shared


class Slow(Shared):
    built = 0

    def __init__(self) -> None:
        time.sleep(0.3)
        type(self).built += 1


class Quick(Shared):
    pass


def test_one_instance_per_class_and_a_slow_build_holds_up_no_other_class():
    got: list[Slow] = []
    threads = [threading.Thread(target=lambda: got.append(Slow.shared())) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.05)  # Slow is being built now
    t0 = time.perf_counter()
    quick = Quick.shared()
    assert time.perf_counter() - t0 < 0.1
    for t in threads:
        t.join()
    assert Slow.built == 1 and len(got) == 8 and all(s is got[0] for s in got)
    assert Quick.shared() is quick and not isinstance(quick, Slow)
