"""A TCP proxy in front of a test's server that can keep one answer from its client.

A write whose answer is lost on the way back (a proxy reset, a client timeout, a crash
after the commit) is the case an Idempotency-Key exists for: the client cannot tell
whether it landed. :class:`Proxy` forwards every connection between a client and the
server byte for byte, and :meth:`Proxy.hold` arms it for the next request sent with a
given method: that request reaches the server, whose whole answer the proxy reads and
keeps (:class:`Held`) instead of forwarding it. The test then decides what happens
before :meth:`Held.cut` closes the client's connection without a byte of the answer:
nothing (a dropped response), or a kill of the server (a crash between the commit and
the answer reaching the client).

Everything is bounded by an event, never by a delay: :meth:`Held.wait` returns once the
whole answer was read (its ``Content-Length`` complete), and the server answers only
once the write committed. Connections are threads; the proxy listens on 127.0.0.1 only
and closes every connection when its ``with`` ends.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Held", "Proxy", "proxy"]

#: Bytes read from a socket at a time.
CHUNK: Final = 65536
#: Seconds a test waits for a held answer: only a server that never answers reaches it.
PATIENCE: Final = 120.0


@dataclass
class Held:
    """The answer to one request, read from the server and kept from the client."""

    method: bytes
    answer: bytearray = field(default_factory=bytearray)
    complete: threading.Event = field(default_factory=threading.Event)
    client: socket.socket | None = None

    def feed(self, data: bytes) -> None:
        """Keep ``data``; mark the answer complete once its body is all in."""
        self.answer += data
        head, separator, body = bytes(self.answer).partition(b"\r\n\r\n")
        if not separator:
            return
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if status in {204, 304} or len(body) >= length:
            self.complete.set()

    def wait(self) -> bytes:
        """The whole answer, once the server has sent it."""
        assert self.complete.wait(PATIENCE), f"no answer to the held {self.method.decode()}"
        return bytes(self.answer)

    @property
    def status(self) -> int:
        return int(self.wait().split(b"\r\n", 1)[0].split()[1])

    @property
    def headers(self) -> dict[str, str]:
        """The answer's header fields, names lower-cased (each name once here)."""
        head = self.wait().partition(b"\r\n\r\n")[0].decode("latin-1")
        fields = (line.partition(":") for line in head.split("\r\n")[1:])
        return {name.strip().lower(): value.strip() for name, _, value in fields}

    @property
    def body(self) -> bytes:
        return self.wait().partition(b"\r\n\r\n")[2]

    def cut(self) -> None:
        """Close the client's connection: it gets no byte of the answer."""
        assert self.client is not None, "no connection holds this answer"
        with suppress(OSError):
            self.client.shutdown(socket.SHUT_RDWR)
        self.client.close()


class Proxy:
    """Forwards connections on :attr:`port` to ``target_port`` on 127.0.0.1."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._armed: Held | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self, method: str) -> Held:
        """Keep the answer to the next request sent with ``method`` from its client."""
        held = Held(method.encode())
        with self._lock:
            assert self._armed is None, "one held answer at a time"
            self._armed = held
        return held

    def serve(self) -> None:
        """Accept connections until :meth:`close`."""
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()  # nothing listens: as the client would see it directly
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            holding: list[Held] = []
            threading.Thread(
                target=self._requests, args=(client, server, holding), daemon=True
            ).start()
            threading.Thread(
                target=self._answers, args=(server, client, holding), daemon=True
            ).start()

    def _requests(self, client: socket.socket, server: socket.socket, holding: list[Held]) -> None:
        """Client to server, byte for byte; the armed request marks its connection."""
        while data := _receive(client):
            with self._lock:
                armed = self._armed
                if armed is not None and data.startswith(armed.method + b" "):
                    armed.client = client
                    holding.append(armed)
                    self._armed = None
            if not _send(server, data):
                break
        with suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _answers(self, server: socket.socket, client: socket.socket, holding: list[Held]) -> None:
        """Server to client, byte for byte, except a held answer, which is kept."""
        while data := _receive(server):
            if holding:
                holding[0].feed(data)
            elif not _send(client, data):
                break
        if not holding:
            with suppress(OSError):
                client.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting, and close every connection."""
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        # Closing alone would leave the accepting thread blocked; a shutdown wakes it.
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for each in sockets:
            with suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()


def _receive(connection: socket.socket) -> bytes:
    try:
        return connection.recv(CHUNK)
    except OSError:
        return b""


def _send(connection: socket.socket, data: bytes) -> bool:
    try:
        connection.sendall(data)
    except OSError:
        return False
    return True


@contextmanager
def proxy(target_port: int) -> Iterator[Proxy]:
    """A :class:`Proxy` to ``target_port``, serving until the ``with`` ends."""
    running = Proxy(target_port)
    thread = threading.Thread(target=running.serve, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.close()
        thread.join(timeout=PATIENCE)
