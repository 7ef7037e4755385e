"""A target for health-check tests: a real HTTP server on 127.0.0.1 (a thread of the test
process) that a test switches to failing, closes, and opens again on the same port."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any

# What the gateway's probes send as User-Agent (core-rs/src/upstream/health.rs).
UA = "pygate-health-check"


class Site:
    """One target: answers 200 {"site": name}, or, when failing, 503 on /health and 500
    elsewhere. It records every request it gets (path, Host, User-Agent)."""

    def __init__(self, name: str, failing_body: str = "") -> None:
        self.name = name
        self.failing = False
        # Sent (as JSON field "detail") while failing: what a probe must never show.
        self.failing_body = failing_body
        self.seen: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self.port = 0
        self.open()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def open(self) -> None:
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen = (self.path, self.headers.get("Host", ""), self.headers.get("User-Agent", ""))
                with site._lock:
                    site.seen.append(seen)
                ok = not site.failing
                status = 200 if ok else 503 if self.path == "/health" else 500
                answer: dict[str, Any] = {"site": site.name, "ok": ok}
                if not ok and site.failing_body:
                    answer["detail"] = site.failing_body
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening: connects are refused until `open()`."""
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def probes(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [s for s in self.seen if s[2] == UA]

    def client_requests(self) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s[2] != UA)
