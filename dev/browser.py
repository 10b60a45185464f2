"""A real Chromium for the pages' tests and screenshots: the system's, driven by Playwright.

No browser is downloaded (never `playwright install`): Debian's `chromium` package, or the binary
named by CHROMIUM (e.g. CHROMIUM=/usr/bin/chromium-browser). `.ci/run` installs the package
when it is missing and it runs as root.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

HOW_TO_GET_ONE = (
    "no Chromium found for the browser tests: `sudo apt-get install -y chromium` (Debian/Ubuntu), "
    "or set CHROMIUM=/path/to/chromium"
)

# What works headless in a container, as root, offline: no sandbox, no GPU, nothing phoning home.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium to drive, or None when there is none."""
    if named := os.environ.get("CHROMIUM"):
        return named if os.access(named, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium with a fresh profile (Playwright makes a temporary user data dir)."""
    path = chromium_path()
    if path is None:
        raise RuntimeError(HOW_TO_GET_ONE)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()
