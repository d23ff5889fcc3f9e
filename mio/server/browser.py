"""Debian's Chromium under Playwright, with the flags that work on these machines (INSTALL-NOTES.md).

Never `playwright install`: the browser is the system's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",  # audio may start without a click in tests
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",  # a fake microphone
)


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@contextlib.contextmanager
def launch_chromium(extra_args: tuple[str, ...] = (), headless: bool = True) -> Iterator[object]:
    """Chromium with a fresh user-data-dir; yields a Playwright BrowserContext. The page's
    Content-Security-Policy forbids eval, which Playwright's `wait_for_function` needs: bypassed."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("Chromium not found: install Debian's chromium package (scripts/setup.sh does)")
    with tempfile.TemporaryDirectory(prefix="mio-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=exe, headless=headless,
                                                    args=[*FLAGS, *extra_args],
                                                    viewport={"width": 1100, "height": 760}, bypass_csp=True)
        try:
            yield ctx
        finally:
            ctx.close()
