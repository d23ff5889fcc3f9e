"""Where Mio keeps what it derives on first use (prepared avatar, memory stores, re-encoded weights)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(override: str | Path | None = None) -> Path:
    """`override` (a config's cache_dir) if given, else `$MIO_CACHE`, else `~/.cache/mio`. Everything
    in it can be deleted; it is rebuilt on use."""
    return Path(override or os.environ.get("MIO_CACHE") or Path.home() / ".cache" / "mio").expanduser()


def memory_folder(memory_dir: str | None) -> str:
    """The folder of the SQLite memory stores: the config's, else `$MIO_MEMORY_DIR`, else
    `<cache>/memory`; ":memory:" means nothing is kept on disk."""
    if memory_dir is not None:
        return memory_dir
    return os.environ.get("MIO_MEMORY_DIR") or str(cache_root() / "memory")
