"""The UI's document controls: upload into a collection, list and delete sources, new collections.

Element ids: ``#upload`` (files), ``#upload_status`` (per-file results), ``#sources``
(the selected collection's sources), ``#refresh_sources``, ``#delete_sources``,
``#new_collection``, ``#collection_scope``, ``#create_collection``, ``#documents_status``.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import gradio as gr

from gradio_ui.context import UIContext, gradio_errors
from gradio_ui.documents import Documents, requester

log = logging.getLogger(__name__)
PROGRESS = gr.Progress()  # Gradio finds the progress parameter by its default


def results_table(results: list[dict[str, Any]]) -> str:
    """Per-file upload results as a Markdown table."""
    rows = ["| File | Result | Chunks |", "|---|---|---|"]
    for r in results:
        status = r["status"] + (f": {r['reason']}" if r.get("reason") else "")
        rows.append(f"| {html.escape(str(r['source']))} | {html.escape(status)} | {r['chunks']} |")
    return "\n".join(rows)


class DocumentPanel:
    """Handlers of the document controls; the components are made by :meth:`build`."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        self.docs = Documents(ctx)

    def collections(self, current: str, request: gr.Request) -> Any:
        """Refresh the collection picker with what this user can see (on page load)."""
        if self.ctx.documents is None:
            return gr.update()
        with gradio_errors():
            names = self.docs.collections(requester(self.ctx, request))
        return gr.update(choices=names, value=current if current in names else names[0])

    def upload(self, files: list[str] | None, langchain_mode: str, h2ogpt_key: str,
               request: gr.Request, progress: gr.Progress = PROGRESS) -> tuple[Any, str, Any, Any]:
        """Add the uploaded files one by one, with progress and a per-file result."""
        if not files:
            return gr.update(), "", gr.update(), gr.update()
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            user = requester(self.ctx, request)
            target = self.docs.upload_collection(langchain_mode)
            results: list[dict[str, Any]] = []
            for i, path in enumerate(files):
                name = Path(path).name
                progress((i, len(files)), desc=f"Adding {name}")
                results.extend(self.docs.add_file(path, name, target, user)["files"])
            names = self.docs.sources(target, user)
        status = f"**{target}**\n\n{results_table(results)}"
        return gr.update(value=None), status, gr.update(value=target), gr.update(choices=names, value=[])

    def sources(self, langchain_mode: str, h2ogpt_key: str, request: gr.Request) -> Any:
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            names = self.docs.sources(langchain_mode, requester(self.ctx, request))
        return gr.update(choices=names, value=[])

    def delete(self, selected: list[str], langchain_mode: str, h2ogpt_key: str,
               request: gr.Request) -> tuple[Any, str]:
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            user = requester(self.ctx, request)
            deleted = self.docs.delete_sources(list(selected or []), langchain_mode, user)
            names = self.docs.sources(langchain_mode, user)
        return gr.update(choices=names, value=[]), f"Deleted {len(deleted)} source(s) from {langchain_mode}."

    def create(self, name: str, scope: str, h2ogpt_key: str, request: gr.Request) -> tuple[Any, str, str]:
        with gradio_errors():
            self.ctx.access.check_key(h2ogpt_key)
            user = requester(self.ctx, request)
            created = self.docs.create_collection(name or "", scope, user)
            names = self.docs.collections(user)
        return gr.update(choices=names, value=created), "", f"Created {scope} collection **{created}**."

    def build(self, langchain_mode: gr.Dropdown, h2ogpt_key: gr.Textbox, blocks: gr.Blocks) -> None:
        """The upload box (in the sidebar, where this is called) and the Documents accordion."""
        s = self.ctx.settings
        upload = gr.File(label="Add documents", file_count="multiple", type="filepath", elem_id="upload")
        upload_status = gr.Markdown(elem_id="upload_status")
        with gr.Accordion("Documents", open=False, elem_id="documents_panel"):
            sources = gr.CheckboxGroup([], label="Sources in the collection", elem_id="sources")
            with gr.Row():
                refresh = gr.Button("Refresh", elem_id="refresh_sources", size="sm")
                delete = gr.Button("Delete selected", elem_id="delete_sources", variant="stop", size="sm")
            scopes = [sc for sc, allowed in (("personal", s.allow_upload_to_my_data),
                                             ("shared", s.allow_upload_to_user_data)) if allowed]
            new_name = gr.Textbox(label="New collection", elem_id="new_collection")
            scope = gr.Radio(scopes or ["personal"], value=(scopes or ["personal"])[0], label="Visible to",
                             elem_id="collection_scope")
            create = gr.Button("Create collection", elem_id="create_collection", size="sm")
            status = gr.Markdown(elem_id="documents_status")
        blocks.load(self.collections, [langchain_mode], [langchain_mode], api_visibility="private")
        upload.upload(self.upload, [upload, langchain_mode, h2ogpt_key],
                      [upload, upload_status, langchain_mode, sources], api_visibility="private")
        langchain_mode.change(self.sources, [langchain_mode, h2ogpt_key], [sources], api_visibility="private")
        refresh.click(self.sources, [langchain_mode, h2ogpt_key], [sources], api_visibility="private")
        delete.click(self.delete, [sources, langchain_mode, h2ogpt_key], [sources, status], api_visibility="private")
        create.click(self.create, [new_name, scope, h2ogpt_key], [langchain_mode, new_name, status], api_visibility="private")
