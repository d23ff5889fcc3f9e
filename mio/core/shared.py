"""`Shared`: a class with one instance per process, made on first use by `Cls.shared()`.

For what every session of a process uses and nobody should build twice: the CPU meter and its
sampling thread, the urgent-work gate, the forced aligner's acoustic model, the pronunciation
dictionary. Each class has its own lock, so building one (the aligner: ~0.4 s) never holds up
`shared()` of another (the CPU meter is asked before every reply).
"""

from __future__ import annotations

import threading
from typing import ClassVar, Self


class Shared:
    _instances: ClassVar[dict[type, object]] = {}
    _locks: ClassVar[dict[type, threading.Lock]] = {}
    _locks_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls) -> Self:
        """This process's instance of `cls` (built now with no arguments if there is none yet)."""
        inst = Shared._instances.get(cls)
        if inst is not None:
            return inst  # type: ignore[return-value]
        with Shared._locks_lock:
            lock = Shared._locks.setdefault(cls, threading.Lock())
        with lock:
            inst = Shared._instances.get(cls)
            if inst is None:
                inst = Shared._instances[cls] = cls()
            return inst  # type: ignore[return-value]
