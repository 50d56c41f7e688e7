"""The engine's IPC: HTTP/1.1 on a Unix socket with msgpack bodies, streaming and cancellation.

``server.IpcServer`` runs in the engine process (the generate.py process) and serves a
registry of methods; ``client.EngineClient`` is used by each OpenAI API worker. Neither
side imports torch; the engine's own methods are registered by ``services``.

Wire format (every body is msgpack; ``Content-Type: application/msgpack``):

- ``POST /call/<method>``, body: the args map. Answer: one map, ``{"op": "result", "data": ...}``
  or ``{"op": "error", "error": {"code": str, "message": str, "param": str | None}}``
  (the stable codes of ``src/errors.py``).
- ``POST /stream/<method>``, body: the args map, header ``X-Stream-Id: <id>``. Answer: a
  chunked body of maps, ``{"op": "chunk", "data": ...}`` per item, then ``{"op": "end"}``
  or an ``error`` map. Closing the connection cancels the stream; so does the call
  ``cancel`` with ``{"id": <id>}``, which also reaches a stream still waiting in the
  engine's queue.
- An unknown method answers an ``error`` map of code ``internal_error``.
"""

MSGPACK = "application/msgpack"
