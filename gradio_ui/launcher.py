"""Start the Gradio UI and its API inside the engine process; ``start()`` returns a Service.

Offline by construction: analytics off (``GRADIO_ANALYTICS_ENABLED=False`` is set by
``src.offline`` before Gradio is imported, and again on the Blocks), the default theme's
fonts are served locally, no share link, no server-side rendering (which would need Node). Over HTTPS with
--ssl_certfile (docs/operations.md).
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from gradio_ui.access import Access
from gradio_ui.app import CSS, create_ui
from gradio_ui.context import UIContext
from src.evaluate import Evaluator
from src.media import MediaServices
from src.settings import Settings
from src.storage.chats import ChatStore
from src.storage.database import Database

log = logging.getLogger(__name__)

CONCURRENCY = 16
"""Events that may run at once per handler; the engine queues the generations itself."""


class GradioService:
    """The running UI; ``stop()`` closes its server."""

    def __init__(self, blocks: gr.Blocks, url: str, database: Database | None = None) -> None:
        self.blocks = blocks
        self.url = url
        self.database = database

    def stop(self) -> None:
        self.blocks.close(verbose=False)
        if self.database is not None:
            self.database.close()


def open_chats(settings: Settings) -> tuple[Database | None, ChatStore | None]:
    """The saved chats' store on --database_url (or the SQLite file under --db_root)."""
    if not settings.save_chats:
        return None, None
    database = Database.open(settings.database_url, settings.db_root)
    return database, ChatStore(database, settings.guest_chat_ttl_hours)


def start(settings: Settings, evaluator: Evaluator, documents: Any | None = None, *,
          media: MediaServices | None = None) -> GradioService:
    """Build the UI over ``evaluator`` (and the speech and image services) and serve it on
    --server_name:--server_port."""
    access = Access(settings)
    database, chats = open_chats(settings)
    ctx = UIContext(settings, evaluator, access, documents or evaluator.docs,
                    media=media or MediaServices.from_settings(settings), chats=chats)
    blocks = create_ui(ctx)
    blocks.queue(default_concurrency_limit=CONCURRENCY)
    _, url, _ = blocks.launch(
        server_name=settings.server_name,
        server_port=settings.server_port,
        prevent_thread_lock=True,
        share=False,
        auth=access.login if access.login_required else None,
        auth_message="Log in to h2oGPT" if access.login_required else None,
        ssr_mode=False,
        quiet=True,
        show_error=True,
        footer_links=["api"],
        enable_monitoring=False,
        mcp_server=False,
        pwa=False,
        ssl_certfile=settings.ssl_certfile or None,
        ssl_keyfile=(settings.ssl_keyfile or settings.ssl_certfile) or None,  # the key may be in the cert file
        ssl_keyfile_password=settings.ssl_keyfile_password or None,
        ssl_verify=False,  # Gradio's check that it answers: a self-signed certificate is fine
        css=CSS,
    )
    log.info("Gradio UI on %s", url)
    return GradioService(blocks, url, database)
