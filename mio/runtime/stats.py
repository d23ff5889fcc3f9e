"""Per-stage timings of a session: wall time spent and media time produced, for RTFs and latencies."""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class StageStats:
    calls: int = 0
    seconds: list[float] = field(default_factory=list)  # wall time per call
    media: float = 0.0  # seconds of media produced (audio, video)

    @property
    def total(self) -> float:
        return sum(self.seconds)

    @property
    def rtf(self) -> float | None:
        return self.total / self.media if self.media > 0 else None

    def summary(self) -> dict[str, float | int | None]:
        s = self.seconds
        return {
            "calls": self.calls,
            "total_s": round(self.total, 4),
            "median_ms": round(1000 * statistics.median(s), 3) if s else None,
            "p90_ms": round(1000 * sorted(s)[int(0.9 * (len(s) - 1))], 3) if s else None,
            "media_s": round(self.media, 3),
            "rtf": round(self.rtf, 4) if self.rtf is not None else None,
        }


class Stats:
    def __init__(self) -> None:
        self.stages: dict[str, StageStats] = defaultdict(StageStats)
        self.events: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float, media: float = 0.0) -> None:
        with self._lock:
            st = self.stages[stage]
            st.calls += 1
            st.seconds.append(seconds)
            st.media += media

    def mark(self, event: str, value: float) -> None:
        with self._lock:
            self.events[event].append(value)

    class _Timer:
        def __init__(self, stats: Stats, stage: str, media: float) -> None:
            self.stats, self.stage, self.media = stats, stage, media

        def __enter__(self) -> Stats._Timer:
            self.t0 = time.perf_counter()
            return self

        def __exit__(self, *exc: object) -> None:
            self.stats.add(self.stage, time.perf_counter() - self.t0, self.media)

    def time(self, stage: str, media: float = 0.0) -> Stats._Timer:
        return Stats._Timer(self, stage, media)

    def summary(self) -> dict[str, object]:
        return {
            "stages": {k: v.summary() for k, v in sorted(self.stages.items())},
            "events": {k: [round(x, 4) for x in v] for k, v in sorted(self.events.items())},
        }
