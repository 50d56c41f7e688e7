"""Token-aware chunking with LangChain's recursive splitter.

Chunk sizes are counted in the embedding model's tokens (``chunk_size`` 512 by default,
as in h2oGPT); the splitter cuts at paragraphs, then lines, sentences and words.
"""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

DEFAULT_CHUNK_SIZE = 512
DEFAULT_CHUNK_OVERLAP = 0


def make_splitter(
    count_tokens: Callable[[str], int],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 2),
        length_function=count_tokens,
        separators=["\n\n", "\n", ". ", " ", ""],
        keep_separator="end",
    )


def split_documents(
    documents: list[Document],
    count_tokens: Callable[[str], int],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk: bool = True,
) -> list[Document]:
    """Split ``documents`` into chunks of at most ``chunk_size`` tokens (metadata is kept).

    With ``chunk=False`` each document (page) is kept whole, as h2oGPT's ``chunk`` flag does.
    """
    if not chunk:
        return [d for d in documents if d.page_content.strip()]
    splitter = make_splitter(count_tokens, chunk_size)
    chunks = splitter.split_documents(documents)
    return [c for c in chunks if c.page_content.strip()]
