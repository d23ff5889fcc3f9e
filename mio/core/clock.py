"""The session clock: one time base for every frame of a session.

Live sessions run on the wall clock (`WallClock`); offline rendering (`mio demo`, `mio say`) runs
on media time (`MediaClock`), which advances only as media is produced, so an MP4 is identical
however fast the machine is.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod


class SessionClock(ABC):
    @abstractmethod
    def now(self) -> float:
        """Seconds since the session started."""

    @property
    @abstractmethod
    def realtime(self) -> bool:
        """True when time runs on its own (wall clock)."""


class WallClock(SessionClock):
    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    @property
    def realtime(self) -> bool:
        return True


class MediaClock(SessionClock):
    """Time = how much media exists; stages move it forward with `advance_to`."""

    def __init__(self) -> None:
        self._t = 0.0

    def now(self) -> float:
        return self._t

    def advance_to(self, t: float) -> None:
        self._t = max(self._t, t)

    @property
    def realtime(self) -> bool:
        return False
