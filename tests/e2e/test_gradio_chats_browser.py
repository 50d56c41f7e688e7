"""Saved chats on the real page in headless Chromium: ask, reload, find it in the sidebar
with its answer, sources and settings; restart the server, still there; another browser
(another guest) does not see it; rename, search, delete/undo, export/import; a source opens
at its page; at 390 px no horizontal scroll and the chat input on the first screen; no CDN.

Screenshots are kept as artefacts in docs/images/ (docs/ui.md shows them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.docqa.fixtures import paged_pdf
from tests.e2e.browser import browser_context, open_page
from tests.e2e.gradio_server import GradioApp
from tests.e2e.test_gradio_browser import BOT, USER, send, set_number, wait_answer_done

IMAGES = ROOT / "docs" / "images"
QUESTION = "What colour does Ambrose paint the lighthouse?"
PAGES = ["The harbour log, volume one. Boats arrive at dawn and leave at dusk.",
         "The lighthouse keeper Ambrose paints the tower blue every April."]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GradioApp]:
    server = GradioApp(tmp_path_factory.mktemp("gradio_chats_ui"), "--max_new_tokens=32", "--temperature=0",
                       "--top_k_docs=2").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One browser (one guest) for the whole module: its localStorage keeps the guest's token."""
    with browser_context(tmp_path_factory.mktemp("chromium_chats")) as ctx:
        yield ctx


@pytest.fixture(autouse=True)
def close_pages(context: Any) -> Iterator[None]:
    """Each test closes the pages it opened: every open Gradio page holds a heartbeat stream,
    and Chromium opens at most 6 connections to one host, so pages left open by earlier tests
    would stall a later page's load."""
    before = set(context.pages)
    yield
    for page in context.pages:
        if page not in before:
            page.close()


def load(context: Any, url: str) -> Any:
    page = open_page(context, url)
    page.locator("#prompt textarea").wait_for()
    return page


def chat_titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#chat_list label").all_inner_texts()]


def wait_titles(page: Any, check: Any, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        titles = chat_titles(page)
        if check(titles):
            return titles
        time.sleep(0.2)
    raise AssertionError(f"chat list never matched: {chat_titles(page)}")


def open_chat(page: Any, title: str) -> None:
    page.locator("#chat_list label", has_text=title).first.click()
    page.locator(USER).first.wait_for()


@pytest.fixture(scope="module")
def asked(app: GradioApp, context: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A chat asked over an uploaded two-page PDF, with max_new_tokens changed to 40."""
    page = load(context, app.url)
    doc = tmp_path_factory.mktemp("docs") / "harbour_log.pdf"
    doc.write_bytes(paged_pdf(PAGES))
    page.locator("#upload input[type=file]").set_input_files(str(doc))
    page.locator("#upload_status").get_by_text("added").wait_for()
    page.locator("#settings_panel").click()
    set_number(page, "max_new_tokens", "40")
    send(page, QUESTION)
    answer = wait_answer_done(page)
    page.locator("#chatbot").get_by_text("Sources (").first.wait_for()
    wait_titles(page, lambda t: QUESTION in t)
    page.close()
    return answer


def test_ask_reload_and_find_the_chat_with_answer_sources_and_settings(app: GradioApp, context: Any, asked: str):
    page = load(context, app.url)
    assert wait_titles(page, lambda t: QUESTION in t)[0] == QUESTION  # newest first, titled by the question
    assert page.locator(USER).count() == 0  # a reload starts a new chat
    open_chat(page, QUESTION)
    page.locator("#chatbot").get_by_text("Sources (").first.wait_for()
    assert page.locator(USER).first.inner_text().strip() == QUESTION
    assert asked.strip()[:20] in page.locator("#chatbot").inner_text()
    page.locator("#settings_panel").click()
    expect(page.locator("#max_new_tokens input[type=number]")).to_have_value("40")  # the flag says 32
    assert page.locator("#langchain_mode input").input_value() == "MyData"
    page.screenshot(path=str(IMAGES / "ui-saved-chats.png"))

    send(page, "And when does he paint it?")  # continuing the reopened chat
    wait_answer_done(page)
    page.reload()
    page.locator("#prompt textarea").wait_for()
    wait_titles(page, lambda t: QUESTION in t)
    open_chat(page, QUESTION)
    page.wait_for_function(f"document.querySelectorAll(\"{USER}\").length == 2")
    assert chat_titles(page).count(QUESTION) == 1  # appended, not a second chat
    assert page.outside == []


def test_a_source_opens_at_its_page_with_the_chunk_highlighted(app: GradioApp, context: Any, asked: str):
    page = load(context, app.url)
    wait_titles(page, lambda t: QUESTION in t)
    open_chat(page, QUESTION)
    page.locator("#source_viewer").click()
    page.locator("#source_pick input").click()
    page.locator("#source_pick li", has_text="harbour_log.pdf · page 2").first.click()
    mark = page.locator("#source_view mark")
    mark.wait_for()
    assert "Ambrose paints the tower blue" in mark.inner_text()
    assert page.evaluate("""() => { const m = document.querySelector('#source_view mark');
        let e = m.closest('.h2ogpt-chunk');
        while (e && !e.matches('h5.h2ogpt-page')) e = e.previousElementSibling;
        return e ? e.innerText : null; }""") == "page 2"
    page.screenshot(path=str(IMAGES / "ui-source-at-page.png"))
    assert page.outside == []


def test_rename_search_delete_undo_export_import(app: GradioApp, context: Any, asked: str, tmp_path: Path):
    page = load(context, app.url)
    send(page, "Name a bird.")
    wait_answer_done(page)
    wait_titles(page, lambda t: "Name a bird." in t)
    page.locator("#chat_title textarea, #chat_title input").first.fill("Birds and more")
    page.locator("#rename_chat").click()
    titles = wait_titles(page, lambda t: "Birds and more" in t)
    assert "Name a bird." not in titles

    page.locator("#chat_search input, #chat_search textarea").first.fill("birds")
    assert wait_titles(page, lambda t: t == ["Birds and more"]) == ["Birds and more"]
    page.locator("#chat_search input, #chat_search textarea").first.fill("ambrose")  # matches the answer text
    wait_titles(page, lambda t: QUESTION in t and "Birds and more" not in t)
    page.locator("#chat_search input, #chat_search textarea").first.fill("")
    wait_titles(page, lambda t: len(t) >= 2)

    open_chat(page, "Birds and more")
    page.locator("#chat_io").click()
    page.locator("#export_scope label", has_text="This chat").click()
    page.locator("#export_json").click()
    link = page.locator("#chat_export a[href]").first
    link.wait_for()
    exported = httpx.get(urljoin(app.url, str(link.get_attribute("href"))), timeout=30).json()
    assert list(exported) == ["Birds and more"] and exported["Birds and more"][0][0] == "Name a bird."

    page.locator("#delete_chat").click()
    wait_titles(page, lambda t: "Birds and more" not in t)
    assert page.locator(USER).count() == 0
    page.locator("#undo_delete").click()
    wait_titles(page, lambda t: "Birds and more" in t)
    page.locator(USER).first.wait_for()
    assert page.locator(USER).first.inner_text().strip() == "Name a bird."

    upload = tmp_path / "chats.json"
    upload.write_text(json.dumps(exported))
    with page.expect_file_chooser() as chooser:
        page.locator("#import_chats").click()
    chooser.value.set_files(str(upload))
    page.locator("#chat_status").get_by_text("Imported 1 chat").wait_for()
    wait_titles(page, lambda t: t.count("Birds and more") == 2)
    page.locator("#export_markdown").click()
    page.wait_for_function("document.querySelector('#chat_export a[href]')?.href.endsWith('.md')")
    markdown = httpx.get(urljoin(app.url, str(page.locator("#chat_export a[href]").first.get_attribute("href"))),
                         timeout=30).text
    assert markdown.startswith("# Birds and more") and "> Name a bird." in markdown
    assert page.outside == []


def test_another_guest_does_not_see_the_chats(app: GradioApp, context: Any, asked: str):
    """A browser without this one's localStorage is another guest (one Playwright per process:
    the same Chromium with its storage emptied, then given back)."""
    page = load(context, app.url)
    wait_titles(page, lambda t: QUESTION in t)
    mine = page.evaluate("localStorage.getItem('h2ogpt_guest')")
    assert mine
    try:
        page.evaluate("localStorage.clear()")
        page.reload()
        page.locator("#prompt textarea").wait_for()
        page.wait_for_function("localStorage.getItem('h2ogpt_guest') !== null")
        assert page.evaluate("localStorage.getItem('h2ogpt_guest')") != mine
        send(page, "A question of the second guest.")
        wait_answer_done(page)
        assert wait_titles(page, lambda t: bool(t)) == ["A question of the second guest."]
    finally:
        page.evaluate("v => localStorage.setItem('h2ogpt_guest', v)", mine)
    page.reload()
    page.locator("#prompt textarea").wait_for()
    titles = wait_titles(page, lambda t: QUESTION in t)
    assert "A question of the second guest." not in titles
    assert page.outside == []


def test_the_phone_layout_puts_the_chat_first_without_horizontal_scroll(app: GradioApp, context: Any, asked: str):
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(app.url)
    page.locator("#prompt textarea").wait_for()
    page.wait_for_function("!document.querySelector('#chat_sidebar').classList.contains('open')")
    time.sleep(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#prompt textarea").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 844, box
    submit = page.locator("#submit").bounding_box()
    assert submit is not None and submit["y"] + submit["height"] <= 844, submit
    page.screenshot(path=str(IMAGES / "ui-phone-390.png"))
    page.close()


def test_restart_keeps_the_chats(app: GradioApp, context: Any, asked: str):
    app.stop()
    app.start()
    page = load(context, app.url)
    wait_titles(page, lambda t: QUESTION in t)
    open_chat(page, QUESTION)
    page.locator("#chatbot").get_by_text("Sources (").first.wait_for()
    assert page.locator(USER).first.inner_text().strip() == QUESTION
    assert page.locator(BOT).count() >= 1
    assert page.outside == []
