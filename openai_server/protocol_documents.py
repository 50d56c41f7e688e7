"""Wire schemas of the document endpoints: /v1/embeddings, /v1/files and /v1/collections.

The chat and completion schemas are in openai_server/protocol.py; this module holds the
families that serve documents, fields in the order of OpenAI's API reference where
OpenAI defines the endpoint (embeddings, files), and h2oGPT's own for collections.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from openai_server.protocol import OpenAIBaseModel

MAX_EMBEDDING_INPUTS = 2048  # OpenAI's limit per request
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


# --- embeddings ----------------------------------------------------------------------------
class EmbeddingRequest(OpenAIBaseModel):
    """POST /v1/embeddings. ``model`` is accepted and ignored: the server's embedding model
    (``--hf_embedding_model``) answers."""

    input: str | list[str] | list[int] | list[list[int]] = Field(
        ..., description=f"A text, a list of up to {MAX_EMBEDDING_INPUTS} texts, or token ids of "
        "the embedding model's own vocabulary (one list, or a list of lists); not empty. An "
        "input longer than the model's window is a 400."
    )
    model: str | None = Field(None, description="Accepted for compatibility; ignored.")
    dimensions: int | None = Field(None, ge=1, description="Must equal the model's dimension when given.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="'base64': little-endian float32 bytes, base64-encoded."
    )
    user: str | None = Field(None, description="'username:password' when --auth_access=closed.")

    @field_validator("input")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        elif value and all(isinstance(t, int) for t in value):
            value = [value]  # one token array
        inputs = list(value)
        if not inputs:
            raise ValueError("must not be empty")
        if len(inputs) > MAX_EMBEDDING_INPUTS:
            raise ValueError(f"takes at most {MAX_EMBEDDING_INPUTS} inputs, got {len(inputs)}")
        if any(not t for t in inputs):
            raise ValueError("inputs must not be empty strings or empty token lists")
        if any(isinstance(t, list) and any(i < 0 for i in t) for t in inputs):
            raise ValueError("token ids must not be negative")
        return inputs

    def inputs(self) -> list[str] | list[list[int]]:
        """Texts, or token id lists (never a mix: the schema allows one kind)."""
        return self.input  # type: ignore[return-value]  # a list after _inputs


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# --- files ---------------------------------------------------------------------------------
class FileObject(BaseModel):
    """An uploaded file, as OpenAI's file object."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


# --- collections (h2oGPT) -------------------------------------------------------------------
class CollectionCreate(OpenAIBaseModel):
    """POST /v1/collections."""

    name: str = Field(..., description="3 to 63 letters, digits, '_' or '-'.")
    scope: Literal["personal", "shared"] = Field(
        "personal", description="'personal': yours only; 'shared': every user sees it."
    )


class Collection(BaseModel):
    object: Literal["collection"] = "collection"
    name: str
    scope: Literal["personal", "shared"]
    builtin: bool = False


class CollectionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Collection]


class CollectionDeleted(BaseModel):
    object: Literal["collection"] = "collection"
    name: str
    deleted: bool = True


class FileReference(OpenAIBaseModel):
    """POST /v1/collections/{name}/files as JSON: ingest files uploaded with /v1/files."""

    file_id: str | list[str] = Field(..., description="One id, or a list of ids, from /v1/files.")
    chunk: bool = Field(True, description="Split into chunks (False: one chunk per page).")
    chunk_size: int | None = Field(None, ge=16, description="Chunk size in tokens (default --chunk_size).")

    def ids(self) -> list[str]:
        return [self.file_id] if isinstance(self.file_id, str) else list(self.file_id)


class TextIngest(OpenAIBaseModel):
    """POST /v1/collections/{name}/text."""

    text: str = Field(..., min_length=1, description="The text to add.")
    source: str = Field("text.txt", min_length=1, description="Its source name in answers.")
    chunk: bool = True
    chunk_size: int | None = Field(None, ge=16)


class IngestedFile(BaseModel):
    source: str
    status: Literal["added", "updated", "skipped", "failed"]
    chunks: int = 0
    reason: str = ""


class IngestResult(BaseModel):
    """What an ingestion did, file by file."""

    object: Literal["collection.ingestion"] = "collection.ingestion"
    collection: str
    files: list[IngestedFile]
    summary: str


class Source(BaseModel):
    object: Literal["collection.source"] = "collection.source"
    source: str
    chunks: int
    hash: str
    ingested_at: str


class SourceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Source]


class SourcesDeleted(BaseModel):
    object: Literal["collection.sources.deleted"] = "collection.sources.deleted"
    collection: str
    deleted: list[str]
