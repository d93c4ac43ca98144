"""The ``requests`` session of the worker's hook: the key stays on the API's origin, and every
request ends by its deadline, whatever the server does.

``requests`` has per-read timeouts only: a server that sends its headers and then one byte every
two seconds never trips a 120 s read timeout, and holds the worker for ever. So each request runs
inside a :class:`DeadlineScope`: the connections it uses are tracked (through urllib3 connection
classes that report themselves when they send), and when the deadline passes a timer shuts their
sockets down. The blocked read returns at once, ``requests`` raises, and the hook sees that the
scope expired and raises a timeout error. Per-read timeouts are still set, cut to the time left.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_segmind.connection import API_KEY_HEADER, origin_of

if TYPE_CHECKING:
    from airflow_provider_segmind.deadline import Deadline

_local = threading.local()


class DeadlineScope:
    """Shut down the sockets of the requests made inside it once ``deadline`` passes.

    Started before a request is sent and stopped once its whole body is read. ``expired``
    tells the caller that a failure it sees was the deadline, not the server.
    """

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.expired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._outer: DeadlineScope | None = None

    def start(self) -> DeadlineScope:
        """Become the thread's scope and arm the timer."""
        self._outer = getattr(_local, "scope", None)
        _local.scope = self
        self._timer = threading.Timer(self.deadline.remaining(), self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Disarm the timer and hand the thread back to the scope it had before (idempotent)."""
        if self._timer is None:
            return
        self._timer.cancel()
        self._timer = None
        if getattr(_local, "scope", None) is self:
            _local.scope = self._outer
        with self._lock:
            self._connections.clear()

    def track(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)
            late = self.expired
        if late:
            _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)


def _shut(connection: Any) -> None:
    """Wake any thread blocked reading ``connection``'s socket (a read then returns EOF)."""
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):
        # The plain socket's shutdown, also for TLS sockets: SSLSocket.shutdown would first drop
        # the SSL object under the feet of the thread reading it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def current_scope() -> DeadlineScope | None:
    return getattr(_local, "scope", None)


class _Tracked:
    """Mixin for urllib3 connections: report to the thread's deadline scope when used."""

    def connect(self) -> None:
        _report(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        _report(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


def _report(connection: Any) -> None:
    scope = current_scope()
    if scope is not None:
        scope.track(connection)


class _TrackedHTTPConnection(_Tracked, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_TRACKED_POOLS = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose pools hand out tracked connections (direct and through HTTP proxies)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_TRACKED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if getattr(manager, "pool_classes_by_scheme", None) is not None and not proxy.startswith("socks"):
            manager.pool_classes_by_scheme = dict(_TRACKED_POOLS)
        return manager


class ApiSession(requests.Session):
    """A session that never carries the API key off the API's origin, and honours deadlines.

    ``requests`` strips ``Authorization`` on a cross-host redirect but keeps custom headers such
    as ``x-api-key``; a redirect from the API to the CDN would otherwise hand the key to the CDN.
    """

    def __init__(self, api_base_url: str) -> None:
        super().__init__()
        self._api_origin = origin_of(api_base_url)
        adapter = _DeadlineAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["User-Agent"] = "airflow-provider-segmind"

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        if origin_of(prepared_request.url or "") != self._api_origin:
            prepared_request.headers.pop(API_KEY_HEADER, None)
