"""A real WebSocket echo server (the `websockets` package) on 127.0.0.1, run in a thread,
and a raw TCP upstream that answers 101 to anything, for the tests of WebSocket proxying.

The echo server remembers each handshake's headers (by the client's X-Request-Id) so a
test can see what the gateway forwarded. A message "close:NNNN" is answered with a Close
frame with that code.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from websockets.asyncio.server import ServerConnection, serve


class EchoServer:
    def __init__(self) -> None:
        self.handshakes: dict[str, dict[str, str]] = {}
        self.open = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handler(self, ws: ServerConnection) -> None:
        headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        headers[":path"] = ws.request.path
        self.handshakes[headers.get("x-request-id", "")] = headers
        self.open += 1
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("close:"):
                    await ws.close(int(message[6:]), "asked to")
                    return
                await ws.send(message)
        finally:
            self.open -= 1

    async def _main(self) -> None:
        self._stop = self._loop.create_future()
        # No size limit of its own: the gateway's is the one under test.
        async with serve(self._handler, "127.0.0.1", 0, max_size=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    def start(self) -> EchoServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the WebSocket echo server did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(lambda: self._stop and self._stop.set_result(None))
        self._thread.join(30)


@contextmanager
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer().start()
    try:
        yield server
    finally:
        server.stop()


class SwitchingUpstream:
    """Answers every request with `101 Switching Protocols` and then records every byte it
    receives: anything past the first request head would be a smuggled raw stream."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.received: list[bytes] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        with conn:
            conn.settimeout(30)
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                    b"Upgrade: h2c\r\n\r\n"
                )
                while chunk := conn.recv(65536):
                    data += chunk
            except OSError:
                pass
            self.received.append(data)

    def close(self) -> None:
        self.sock.close()
