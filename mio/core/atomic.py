"""Outputs that appear whole or not at all.

    with atomic_output("out/hello.mp4") as tmp:   # tmp = out/.hello.mp4.<pid>.partial
        write_everything_to(tmp)
    # only now does out/hello.mp4 exist: renamed from tmp after fsync; on any exception tmp is gone

A process killed mid-write (SIGKILL, power loss, a crash in a codec) leaves at most a hidden
`.NAME.<pid>.partial` beside the output, never a truncated file under the output's own name; the
next write to the same name deletes partials whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from mio.core.errors import InputError

PARTIAL = ".partial"
RECORDING_KINDS = {".mp4": "video with sound", ".wav": "the voice only"}  # what a recording's `-o FILE` may end in


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_partials(path: Path) -> int:
    """Delete partial files of `path` left by processes that no longer exist; returns how many."""
    removed = 0
    for p in path.parent.glob(f".{path.name}.*{PARTIAL}"):
        pid = p.name[len(path.name) + 2: -len(PARTIAL)]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """Make `tmp` durable and rename it to `path` (atomic on one file system)."""
    _fsync(tmp)
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself is durable once the folder is synced
        _fsync(path.parent)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`; renamed to `path` when the block ends without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    tmp = partial_path(path)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """`Path.write_text`, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def check_output(path: str | Path, kinds: dict[str, str] = RECORDING_KINDS) -> Path:
    """The output path if a media file can be written there, else a one-line InputError. Call it
    before any work, so a typo in `-o` costs nothing."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a folder; give a file name ending in {' or '.join(kinds)}")
    if p.suffix.lower() not in kinds:
        accepted = " or ".join(f"{s} ({what})" for s, what in kinds.items())
        got = f"'{p.suffix}'" if p.suffix else "no extension"
        raise InputError(f"cannot write {str(p)!r}: {got} is not a file type this command writes; end the name in {accepted}")
    parent = next((d for d in (p.parent, *p.parent.parents) if d.exists()), Path("."))
    if not parent.is_dir():
        raise InputError(f"cannot write {p}: {parent} is a file, not a folder")
    try:  # the real test (permissions, read-only or pseudo file systems, a full disk)
        p.parent.mkdir(parents=True, exist_ok=True)
        probe = partial_path(p)
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise InputError(f"cannot write {p}: {e.strerror or e}") from None
    return p
