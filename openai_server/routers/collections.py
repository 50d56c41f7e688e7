"""/v1/collections: document collections and ingestion over HTTP (an h2oGPT extension).

Personal collections (MyData and those created with ``scope=personal``) belong to the
requester: the ``X-H2OGPT-User: username:password`` header with --auth, else the API key
(openai_server.identity).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from openai_server.errors import InvalidRequestError
from openai_server.protocol import wire
from openai_server.protocol_documents import CollectionCreate, FileReference, TextIngest
from openai_server.routers.deps import collection_service, identity, owner
from openai_server.serving_documents import Upload

router = APIRouter(tags=["collections"])

INGEST_BODY = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "file_id": {"type": "array", "items": {"type": "string"}},
        "chunk": {"type": "boolean"}, "chunk_size": {"type": "integer"},
    }}},
    "application/json": {"schema": FileReference.model_json_schema()},
}}}


async def _ingest_body(request: Request) -> tuple[list[Upload], FileReference]:
    """The uploads and options of POST .../files: multipart parts, or JSON with file ids."""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            return [], FileReference.model_validate(await request.json())
        form = await request.form()
        uploads = [Upload(part.filename or "", await part.read())
                   for part in form.getlist("file") if isinstance(part, UploadFile)]
        ids = [str(i) for i in form.getlist("file_id") if isinstance(i, str)]
        options = {k: form[k] for k in ("chunk", "chunk_size") if isinstance(form.get(k), str)}
        return uploads, FileReference.model_validate({"file_id": ids, **options})
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRequestError(f"{param}: {first['msg']}", param=param) from None
    except ValueError:  # not JSON, or not a form
        raise InvalidRequestError("send multipart/form-data with 'file' parts, or JSON with "
                                  "'file_id'") from None


@router.get("/collections")
async def list_collections(request: Request) -> dict[str, Any]:
    """The collections the requester can use: built-in, shared and their personal ones."""
    return wire(await collection_service(request).collections(identity(request)))


@router.post("/collections")
async def create_collection(body: CollectionCreate, request: Request) -> dict[str, Any]:
    """Create an empty collection; 409 when the name is taken."""
    return wire(await collection_service(request).create(body, identity(request)))


@router.delete("/collections/{name}")
async def delete_collection(name: str, request: Request) -> dict[str, Any]:
    """Delete a collection and its database (UserData and MyData are emptied)."""
    return wire(await collection_service(request).delete(name, identity(request)))


@router.post("/collections/{name}/files", openapi_extra=INGEST_BODY)
async def add_files(name: str, request: Request) -> dict[str, Any]:
    """Ingest uploaded files (multipart ``file`` parts) or files from /v1/files (``file_id``)."""
    who, (uploads, ref) = identity(request), await _ingest_body(request)
    service = collection_service(request)
    uploads += await service.uploads_of(owner(request), ref.ids())
    return wire(await service.add_files(name, uploads, who, ref.chunk, ref.chunk_size))


@router.post("/collections/{name}/text")
async def add_text(name: str, body: TextIngest, request: Request) -> dict[str, Any]:
    """Ingest raw text under the source name ``source``."""
    return wire(await collection_service(request).add_text(name, body, identity(request)))


@router.get("/collections/{name}/sources")
async def list_sources(name: str, request: Request) -> dict[str, Any]:
    """The files (and texts) of a collection with their chunk counts."""
    return wire(await collection_service(request).sources(name, identity(request)))


@router.delete("/collections/{name}/sources")
async def delete_sources(name: str, request: Request,
                         source: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
    """Delete the named sources (``?source=a.pdf&source=b.txt``); returns those found."""
    return wire(await collection_service(request).delete_sources(name, source or [], identity(request)))
