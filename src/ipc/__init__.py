"""The engine's IPC: ZeroMQ (ROUTER/DEALER) with msgpack frames, streaming and cancellation.

``server.IpcServer`` runs in the engine process (the generate.py process) and serves a
registry of methods; ``client.EngineClient`` is used by each OpenAI API worker. Neither
side imports torch; the engine's own methods are registered by ``services``.

Wire format (one msgpack map per ZeroMQ message; the ROUTER adds the peer identity):

- request  ``{"id": int, "op": "call" | "stream" | "cancel" | "ping", "method": str, "args": map}``
- reply    ``{"id": int, "op": "ack" | "result" | "chunk" | "end" | "error" | "pong", ...}``
  where ``result``/``chunk`` carry ``data`` and ``error`` carries ``error: {type, message}``.
"""
