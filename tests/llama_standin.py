"""A stand-in for ``llama-server`` in the supervision tests: answers GET /health with 200 on
``--host``/``--port`` and nothing else. ``--ignore-sigterm`` makes it ignore SIGTERM (a
child that hangs on stop)."""

from __future__ import annotations

import argparse
import signal
from http.server import BaseHTTPRequestHandler, HTTPServer


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ignore-sigterm", action="store_true")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    HTTPServer((args.host, args.port), Health).serve_forever()


if __name__ == "__main__":
    main()
