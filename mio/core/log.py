"""Mio's log lines: library code logs to `mio.*` loggers (`logging.getLogger(__name__)`), never prints.

One handler on the `mio` logger writes them to stderr, looked up at each line (so a test capturing
stderr sees them): warnings and errors as `mio: warning: ...` always, progress (INFO) as a dim
`[mio <command>] ...` line once the command line has called `show_progress` (library users and
the server see warnings only, unless they configure logging themselves).
"""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("mio")


class ColourHandler(logging.Handler):
    """Progress dim and tagged; warnings and errors as `mio: warning: ...` / `mio: error: ...`."""

    def __init__(self, tag: str = "mio") -> None:
        super().__init__(logging.DEBUG)
        self.tag = tag

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.levelno >= logging.WARNING:
                line = f"mio: {record.levelname.lower()}: {msg}"
            else:
                line = f"\033[2m[{self.tag}]\033[0m {msg}"
            print(line, file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - a log line must never raise into the code that logs
            self.handleError(record)


def handler() -> ColourHandler:
    """The `mio` logger's handler, installed on first use."""
    for h in LOGGER.handlers:
        if isinstance(h, ColourHandler):
            return h
    h = ColourHandler()
    LOGGER.addHandler(h)
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.WARNING)
    return h


def show_progress(tag: str = "mio") -> None:
    """Show INFO lines too, tagged `[tag]` (the command line calls this for every command)."""
    handler().tag = tag
    LOGGER.setLevel(logging.INFO)


handler()
