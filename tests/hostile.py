"""Hostile HTTP servers on loopback: raw sockets that misbehave the way a broken proxy or a
malicious host can, below what an HTTP library would let a well-behaved test server do.

Each server runs a script per request: ``script(server, sock, request)`` gets the server, the
accepted socket and the parsed request, and writes whatever bytes it likes, as slowly as it
likes (``server.sleep`` returns False once the server is stopping, so scripts end with a test).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Script = Callable[["HostileServer", socket.socket, "Request"], None]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HostileServer:
    """A loopback server that answers every request with ``script``; records requests."""

    script: Script
    requests: list[Request] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._sockets.append(sock)
            thread = threading.Thread(target=self._handle, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _handle(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(30)
            try:
                while not self.stopping.is_set():
                    request = _read_request(sock)
                    if request is None:
                        return
                    self.requests.append(request)
                    self.script(self, sock, request)
            except OSError:
                return

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; False once it is (scripts then give up)."""
        return not self.stopping.wait(seconds)

    def close(self) -> None:
        self.stopping.set()
        self._listener.close()
        self._accept.join(5)
        for sock in self._sockets:  # wake handlers waiting for a next request on keep-alive
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, path, headers, rest[:length])


@contextlib.contextmanager
def hostile_server(script: Script) -> Iterator[HostileServer]:
    server = HostileServer(script)
    try:
        yield server
    finally:
        server.close()


def head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def answer(status: str, body: bytes, content_type: str = "application/json", **extra: str) -> Script:
    """A script that answers properly, every time."""
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **extra}

    def script(server: HostileServer, sock: socket.socket, request: Request) -> None:
        sock.sendall(head(status, headers))
        sock.sendall(body)  # not joined to the head: no copy of a big body in this process

    return script


def trickle_body(content_type: str, declared: int, interval: float) -> Script:
    """Headers at once, then the body one byte every ``interval`` s (until the server stops)."""

    def script(server: HostileServer, sock: socket.socket, request: Request) -> None:
        sock.sendall(head("200 OK", {"Content-Type": content_type, "Content-Length": str(declared)}))
        payload = b"\x89PNG\r\n\x1a\n" + b"\0" * declared
        for index in range(declared):
            sock.sendall(payload[index : index + 1])
            if not server.sleep(interval):
                return

    return script


def trickle_head(interval: float) -> Script:
    """The status line and headers one byte every ``interval`` s: no per-read timeout trips."""

    def script(server: HostileServer, sock: socket.socket, request: Request) -> None:
        text = head("200 OK", {"Content-Type": "application/json", "X-Padding": "x" * 4000})
        for index in range(len(text)):
            sock.sendall(text[index : index + 1])
            if not server.sleep(interval):
                return

    return script


def elapsed(func: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Run ``func``; return the seconds it took and what it raised."""
    started = time.monotonic()
    try:
        func()
    except BaseException as err:  # the caller asserts on it
        return time.monotonic() - started, err
    return time.monotonic() - started, None
