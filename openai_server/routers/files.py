"""/v1/files: upload, list, retrieve, download and delete files, scoped to the API key."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from openai_server.protocol import wire
from openai_server.routers.deps import file_service, owner

router = APIRouter(tags=["files"])


@router.post("/files")
async def create_file(request: Request, file: Annotated[UploadFile, File()],
                      purpose: Annotated[str, Form()]) -> dict[str, Any]:
    """Store an uploaded file (multipart: ``file`` and ``purpose``); returns its file object."""
    data = await file.read()
    return wire(await file_service(request).create(owner(request), file.filename, purpose, data))


@router.get("/files")
async def list_files(request: Request, purpose: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
                     order: Literal["asc", "desc"] = "desc", after: str | None = None) -> dict[str, Any]:
    """The files of this API key, newest first unless ``order=asc``."""
    return wire(await file_service(request).list_files(owner(request), purpose, limit, order, after))


@router.get("/files/{file_id}")
async def retrieve_file(file_id: str, request: Request) -> dict[str, Any]:
    """A file object; 404 when this API key has no such file."""
    return wire(await file_service(request).get(owner(request), file_id))


@router.get("/files/{file_id}/content")
async def file_content(file_id: str, request: Request) -> Response:
    """The file's bytes."""
    obj, data = await file_service(request).content(owner(request), file_id)
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{obj.id}"'})


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, request: Request) -> dict[str, Any]:
    """Delete a file (collections it was ingested into keep their chunks)."""
    return wire(await file_service(request).delete(owner(request), file_id))
