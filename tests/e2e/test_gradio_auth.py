"""--auth with a JSON users file and closed access: login page, refused logins, per-user MyData."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError

from gradio_ui.client import GradioClient
from tests.e2e.browser import browser_context, open_page
from tests.e2e.gradio_server import GradioApp

ALICE = ("alice", "wonderland")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GradioApp]:
    workdir = tmp_path_factory.mktemp("gradio_auth")
    users = workdir / "auth.json"
    users.write_text(json.dumps({ALICE[0]: {"password": ALICE[1]}}))
    server = GradioApp(workdir, f"--auth={users}", "--auth_access=closed", "--max_new_tokens=12",
                       "--temperature=0").start()
    yield server
    server.stop()


def test_api_needs_a_login(app: GradioApp):
    with pytest.raises(AuthenticationError):
        Client(app.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(app.url, auth=(ALICE[0], "wrong"), verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(app.url, auth=("mallory", "anything"), verbose=False)  # closed: no registration
    assert GradioClient(app.url, auth=ALICE).question("Say hello.")


def test_my_data_belongs_to_the_logged_in_user(app: GradioApp):
    first = GradioClient(app.url, auth=ALICE)
    first.add_text("Alice keeps her notes here.", name="alice-notes")
    second = GradioClient(app.url, auth=ALICE)  # a new session of the same user
    assert "alice-notes" in second.get_sources()


@pytest.fixture
def context(tmp_path) -> Iterator[Any]:
    with browser_context(tmp_path / "chromium") as ctx:
        yield ctx


def login(page: Any, user: str, password: str) -> None:
    page.get_by_label(re.compile("username", re.I)).fill(user)
    page.get_by_label(re.compile("password", re.I)).fill(password)
    page.get_by_role("button", name=re.compile("login", re.I)).click()


def test_browser_login_then_chat(app: GradioApp, context: Any):
    page = open_page(context, app.url)
    login(page, *ALICE)
    page.locator("#prompt textarea").fill("Say hello.")
    page.locator("#submit").click()
    page.locator("#chatbot [data-testid='bot']").first.wait_for()
    assert page.outside == []


def test_browser_wrong_password_is_refused(app: GradioApp, context: Any):
    page = open_page(context, app.url)
    login(page, ALICE[0], "not-the-password")
    page.get_by_text(re.compile("incorrect credentials", re.I)).wait_for()
    assert page.locator("#prompt").count() == 0
