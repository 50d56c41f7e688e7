"""Document Q&A: loaders, chunking, embeddings, Chroma collections and the DocumentService.

The UI and the API use :class:`src.docqa.service.DocumentService`; evaluate() uses it to
retrieve chunks and :mod:`src.docqa.actions` to turn them into prompts.
"""
