"""Headless Chromium for UI tests: Debian's /usr/bin/chromium driven by Playwright (no download).

Every page records the requests it makes to hosts other than the app's loopback address,
so a test can prove that the UI loads nothing from a CDN.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL = ("http://127.0.0.1", "data:", "blob:", "about:")


def chromium_path() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        raise RuntimeError("Debian's chromium is missing: apt-get install -y chromium (.ci/run does)")
    return path


@contextmanager
def browser_context(user_data_dir: Path, extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    """A fresh persistent Chromium context; pages get ``page.outside`` (non-local requests).
    ``extra_args`` adds Chromium switches (e.g. a fake microphone playing a WAV file)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=chromium_path(), args=[*ARGS, *extra_args], headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


def open_page(context: Any, url: str) -> Any:
    """A new page on ``url`` that records every non-local request in ``page.outside``."""
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(LOCAL) else None)
    page.outside = outside
    page.goto(url)
    return page
