"""The UI in real headless Chromium: streaming chat, stop, regenerate, undo, clear; no CDN."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.browser import browser_context, open_page
from tests.e2e.gradio_server import GradioApp

BOT = "#chatbot [data-testid='bot']"
USER = "#chatbot [data-testid='user']"
SCREENSHOT = ROOT / "docs" / "images" / "ui-chat-with-sources.png"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GradioApp]:
    server = GradioApp(tmp_path_factory.mktemp("gradio_ui"), "--max_new_tokens=48", "--temperature=0").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with browser_context(tmp_path_factory.mktemp("chromium")) as ctx:
        yield ctx


@pytest.fixture
def page(context: Any, app: GradioApp) -> Iterator[Any]:
    page = open_page(context, app.url)
    page.locator("#prompt textarea").wait_for()
    yield page
    assert page.outside == [], f"the UI fetched from outside: {page.outside}"
    page.close()


def send(page: Any, text: str) -> None:
    page.locator("#prompt textarea").fill(text)
    page.locator("#submit").click()


def set_number(page: Any, elem: str, value: str, tries: int = 5) -> None:
    """Type ``value`` into a slider's number box and wait until the slider holds it.

    A slider in an accordion is drawn when the accordion opens and then takes its value from
    the page: a value typed in the first tens of milliseconds is put back (seen in a probe:
    40 typed 19 ms after the box appeared read 32 again at 61 ms), so the value is checked
    after a pause and typed again if it was lost."""
    box = page.locator(f"#{elem} input[type=number]")
    slider = page.locator(f"#{elem} input[type=range]")
    for _ in range(tries):
        box.fill(value)
        box.press("Tab")  # the slider takes the value on blur
        time.sleep(0.5)
        if box.input_value() == value and slider.input_value() == value:
            return
    raise AssertionError(f"#{elem} does not keep {value}: {box.input_value()} / {slider.input_value()}")


def wait_answer_done(page: Any, timeout: float = 90.0) -> str:
    """The last answer once it has stopped changing for a while."""
    deadline = time.monotonic() + timeout
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        bots = page.locator(BOT)
        text = bots.last.inner_text() if bots.count() else ""
        if text != last:
            last, stable_since = text, time.monotonic()
        elif text and time.monotonic() - stable_since > 2.0:
            return text
        time.sleep(0.1)
    raise AssertionError(f"the answer did not settle: {last!r}")


def test_answer_streams_into_the_chat(page: Any):
    send(page, "Count from one to twenty, in words.")
    page.locator(USER).last.wait_for()
    seen: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        bots = page.locator(BOT)
        text = bots.last.inner_text() if bots.count() else ""
        if text and (not seen or text != seen[-1]):
            seen.append(text)
        if len(seen) >= 3:
            break
        time.sleep(0.05)
    final = wait_answer_done(page)
    assert len(seen) >= 3, f"expected the answer to grow in steps, saw {seen}"
    assert all(final.startswith(s.strip()[:10]) for s in seen)
    assert page.locator(USER).last.inner_text().startswith("Count from one")


def test_stop_regenerate_undo_clear(page: Any):
    page.locator("#settings_panel").click()
    set_number(page, "max_new_tokens", "400")
    send(page, "Write a long story about a dragon.")
    page.locator(BOT).last.wait_for()
    page.locator("#stop").click()
    stopped = wait_answer_done(page)
    assert stopped and len(stopped.split()) < 300, "stop should end the answer early"

    page.locator("#max_new_tokens input[type=number]").fill("16")
    page.locator("#max_new_tokens input[type=number]").press("Enter")
    page.locator("#regenerate").click()
    regenerated = wait_answer_done(page)
    assert regenerated and regenerated != stopped
    assert page.locator(USER).count() == 1 and page.locator(BOT).count() == 1

    send(page, "And a second question?")
    wait_answer_done(page)
    assert page.locator(USER).count() == 2
    page.locator("#undo").click()
    page.wait_for_function("document.querySelectorAll(\"#chatbot [data-testid='user']\").length == 1")
    assert page.locator("#prompt textarea").input_value() == "And a second question?"

    page.locator("#clear").click()
    page.wait_for_function("document.querySelectorAll(\"#chatbot [data-testid='user']\").length == 0")
    assert page.locator(BOT).count() == 0


def test_settings_panel_shows_the_flag_defaults(page: Any):
    page.locator("#settings_panel").click()
    assert page.locator("#max_new_tokens input[type=number]").input_value() == "48"
    assert page.locator("#temperature input[type=number]").input_value() == "0"
    assert page.locator("#repetition_penalty input[type=number]").input_value() == "1.07"


def test_upload_a_file_and_ask_about_it_with_sources(page: Any, tmp_path):
    doc = tmp_path / "zephyr_report.txt"
    doc.write_text("The Zephyr rocket report. The launch code of the Zephyr rocket is PURPLE-42. "
                   "The rocket launches from Andøya in March 2027.\n")
    page.locator("#upload input[type=file]").set_input_files(str(doc))
    page.locator("#upload_status").get_by_text("added").wait_for()
    assert "zephyr_report.txt" in page.locator("#upload_status").inner_text()
    assert page.locator("#langchain_mode input").input_value() == "MyData"

    send(page, "What is the launch code of the Zephyr rocket?")
    wait_answer_done(page)
    sources = page.locator("#chatbot").get_by_text("Sources (1)")
    sources.wait_for()
    sources.click()
    page.locator("#chatbot .h2ogpt-source summary").first.click()
    entry = page.locator("#chatbot .h2ogpt-source").first
    assert "zephyr_report.txt" in entry.inner_text() and "score" in entry.inner_text()
    assert "PURPLE-42" in entry.inner_text()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    page.locator("#documents_panel").click()
    page.locator("#sources").get_by_text("zephyr_report.txt").wait_for()
