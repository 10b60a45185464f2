"""What the browser tests of the pages share: the system's Chromium, and a page that is watched."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog, Page

from dev.browser import HOW_TO_GET_ONE, chromium, chromium_path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if chromium_path() is None:
        pytest.skip(HOW_TO_GET_ONE)
    with chromium() as b:
        yield b


class Watched:
    """A page, with what would show that a script of a claim ran: dialogs and page errors.

    Dialogs are dismissed, unless `confirm` says to accept them (a Kill button's confirmation)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.confirm = False
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        if self.confirm:
            dialog.accept()
        else:
            dialog.dismiss()


@pytest.fixture
def page(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(timezone_id="UTC")
    context.set_default_timeout(30_000)
    watched = Watched(context.new_page())
    yield watched
    context.close()
    assert watched.errors == [], "the page had script errors"
