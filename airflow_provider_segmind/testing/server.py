"""A local, Segmind-compatible HTTP server for tests, demos and users' own DAG tests.

The live API costs money and cannot be reached from CI, while a mock object would not exercise
what actually breaks in production: connection pooling, keep-alive, timeouts, headers, status
codes, a CDN on a second origin. So this is a real HTTP/1.1 server on loopback, two origins in
fact (the API and a stand-in for ``images.segmind.com``). Everything a client can observe is
recorded so tests can assert on it, and misbehaviour is scripted with
:class:`~airflow_provider_segmind.testing.faults.Fault`.

:class:`SegmindTestServer` only puts the pieces together, each in its own module: ``settings``
(what a test may change), ``backend`` (state, no sockets), ``routes`` (which request is this),
``responses`` (what to answer), ``serving`` (aiohttp, imported on start) and ``recording``.

Pillow and aiohttp are only needed once the server starts; importing this module imports neither.
"""

from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING, Generic, TypeVar, cast, overload

from airflow_provider_segmind.testing.backend import SegmindBackend
from airflow_provider_segmind.testing.recording import RecordedRequest
from airflow_provider_segmind.testing.responses import Addresses, Answer, Call, error_answer, respond
from airflow_provider_segmind.testing.routes import match_route
from airflow_provider_segmind.testing.settings import (
    DEFAULT_API_KEY,
    RATE_LIMIT_HEADERS,
    RATE_LIMIT_SCOPES,
    V1_RESPONSE_MODES,
    ServerSettings,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from types import TracebackType

    from airflow_provider_segmind.testing.clock import Clock
    from airflow_provider_segmind.testing.faults import Fault
    from airflow_provider_segmind.testing.serving import HttpOrigins

__all__ = [
    "DEFAULT_API_KEY",
    "RATE_LIMIT_HEADERS",
    "RATE_LIMIT_SCOPES",
    "V1_RESPONSE_MODES",
    "RecordedRequest",
    "SegmindTestServer",
]

T = TypeVar("T")


class _Setting(Generic[T]):
    """An attribute of the server that reads and changes one field of its settings.

    Changes go through :meth:`SegmindBackend.update`, so they are validated, and
    :meth:`SegmindTestServer.restore_defaults` undoes every one of them.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, server: None, owner: type) -> _Setting[T]: ...

    @overload
    def __get__(self, server: SegmindTestServer, owner: type) -> T: ...

    def __get__(self, server: SegmindTestServer | None, owner: type) -> T | _Setting[T]:
        if server is None:
            return self
        return cast("T", getattr(server._backend.settings, self._name))

    def __set__(self, server: SegmindTestServer, value: T) -> None:
        server._backend.update(**{self._name: value})


def _require_dependencies() -> None:
    """Fail at start() with the fix, rather than with a 500 on the first image request.

    Looking up ``PIL.Image`` runs only Pillow's small top-level package; the image modules load
    when the first image is drawn.
    """
    for module, what in (
        ("PIL.Image", "draws real images and needs Pillow"),
        ("aiohttp", "serves HTTP with aiohttp"),
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            raise ImportError(
                f"the Segmind test server {what}: pip install 'airflow-provider-segmind[testing]'"
            )


class SegmindTestServer:
    """A local stand-in for ``api.segmind.com`` plus its image CDN, for tests and demos.

    Use it as a context manager (or ``start()``/``stop()``); ``base_url`` and ``cdn_url`` exist
    once it is started. Every setting (``latency``, ``generation_seconds``, ``rate_limit``,
    ``rate_limit_headers``, ``v1_response``, ``api_key``, ...; see
    :class:`~airflow_provider_segmind.testing.settings.ServerSettings`) and ``credits`` may be
    changed while it runs, so one server can walk a client through several situations;
    :meth:`restore_defaults` puts back what the constructor was given.

    Every accepted generation (v1 or v2) costs ``price * images_per_request``, charged when it
    is accepted, before ``latency`` or the v2 queue time: like the real service, a client that
    times out and retries pays twice, which is exactly what tests need to be able to see.
    ``generation_seconds`` is read at submission, so changing it affects later v2 requests only.

    ``clock`` (default: the system's) is what job progress, rate-limit windows, result expiry
    and request timestamps run on; pass a
    :class:`~airflow_provider_segmind.testing.clock.ManualClock` to move them without sleeping.
    ``latency``, ``delay`` and ``trickle`` stay real waits: they exist to exercise clients' timeouts.
    ``name`` prefixes the names of the server's threads, to tell servers apart in a thread dump.
    """

    api_key: _Setting[str] = _Setting()
    latency: _Setting[float] = _Setting()
    generation_seconds: _Setting[float] = _Setting()
    rate_limit: _Setting[tuple[int, float] | None] = _Setting()
    rate_limit_scope: _Setting[str] = _Setting()
    rate_limit_headers: _Setting[str] = _Setting()
    send_retry_after: _Setting[bool] = _Setting()
    price: _Setting[float] = _Setting()
    v1_response: _Setting[str] = _Setting()
    images_per_request: _Setting[int] = _Setting()
    known_models: _Setting[frozenset[str] | None] = _Setting()
    retired_models: _Setting[frozenset[str]] = _Setting()
    result_ttl: _Setting[float] = _Setting()

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        latency: float = 0.0,
        generation_seconds: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_scope: str = "generate",
        send_retry_after: bool = True,
        credits: float = 100.0,
        price: float = 0.154,
        v1_response: str = "bytes",
        images_per_request: int = 1,
        known_models: Collection[str] | None = None,
        retired_models: Collection[str] = (),
        result_ttl: float = 3600.0,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_port: int = 0,
        *,
        rate_limit_headers: str = "retry_after",
        clock: Clock | None = None,
        name: str = "segmind-test",
    ) -> None:
        settings = ServerSettings(
            api_key=api_key,
            latency=latency,
            generation_seconds=generation_seconds,
            rate_limit=rate_limit,
            rate_limit_scope=rate_limit_scope,
            rate_limit_headers=rate_limit_headers,
            send_retry_after=send_retry_after,
            price=price,
            v1_response=v1_response,
            images_per_request=images_per_request,
            known_models=frozenset(known_models) if known_models is not None else None,
            retired_models=frozenset(retired_models),
            result_ttl=result_ttl,
        )
        self.host = host
        self.port = port
        self.cdn_port = cdn_port
        self.name = name
        self._backend = SegmindBackend(settings, credits, clock)
        self._origins: HttpOrigins | None = None
        self._addresses: Addresses | None = None

    # ----------------------------------------------------------------- state

    @property
    def settings(self) -> ServerSettings:
        """All settings in force, as one immutable value."""
        return self._backend.settings

    @property
    def credits(self) -> float:
        return self._backend.credits

    @credits.setter
    def credits(self, value: float) -> None:
        self._backend.credits = value

    # ----------------------------------------------------------------- addresses

    @property
    def running(self) -> bool:
        return self._addresses is not None

    @property
    def base_url(self) -> str:
        return self._running_addresses().base_url

    @property
    def cdn_url(self) -> str:
        return self._running_addresses().cdn_url

    def _running_addresses(self) -> Addresses:
        if self._addresses is None:
            raise RuntimeError(
                "SegmindTestServer is not running; call start() or use it as a context manager"
            )
        return self._addresses

    def airflow_connection_json(self) -> str:
        """The value for ``AIRFLOW_CONN_<ID>`` that points the provider at this server."""
        return json.dumps({"conn_type": "segmind", "host": self.base_url, "password": self.api_key})

    def airflow_env(self, conn_id: str = "segmind_default") -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.airflow_connection_json()}

    # ----------------------------------------------------------------- life cycle

    def start(self) -> SegmindTestServer:
        """Bind both origins (``port``, ``cdn_port``; 0 picks a free one) and serve them."""
        if self._origins is not None:
            raise RuntimeError("SegmindTestServer is already running")
        _require_dependencies()
        from airflow_provider_segmind.testing.serving import HttpOrigins

        ports = {"api": self.port, "cdn": self.cdn_port}
        origins = HttpOrigins(self.host, ports, self._respond, self._backend.clock, self.name)
        origins.start()
        self._origins = origins
        self._addresses = Addresses(str(origins.url("api")), str(origins.url("cdn")))
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and join every thread; safe to call twice."""
        origins, self._origins, self._addresses = self._origins, None, None
        if origins is not None:
            origins.stop()

    def __enter__(self) -> SegmindTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def _connections(self) -> list[object]:
        """Open client connections (for tests of stop())."""
        return self._origins.connections if self._origins is not None else []

    # ----------------------------------------------------------------- test controls

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a snapshot)."""
        return self._backend.log.snapshot()

    def find(
        self,
        method: str | None = None,
        path_prefix: str | None = None,
        origin: str | None = None,
        status: int | None = None,
    ) -> list[RecordedRequest]:
        """The recorded requests matching every filter given, in arrival order."""
        return self._backend.log.find(method, path_prefix, origin, status)

    def subscribe(self, listener: Callable[[RecordedRequest], None]) -> None:
        """Call ``listener(record)`` for every request once its answer is decided.

        ``record.status`` is then filled in (None for a connection dropped on purpose). It runs
        on the serving thread, so it must be quick (the CLI's ``--record-file`` appends a line).
        :meth:`reset` keeps listeners, :meth:`restore_defaults` drops them (as the pytest plugin
        does between tests).
        """
        self._backend.log.subscribe(listener)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each hits the next ``times`` requests its ``endpoint`` matches."""
        self._backend.faults.add(*faults)

    @property
    def faults(self) -> list[Fault]:
        """Faults not yet used up, in the order they will be applied."""
        return self._backend.faults.pending()

    def clear_faults(self) -> None:
        self._backend.faults.clear()

    def fail_next_v2(self, error: str = "Content moderation: prompt rejected", count: int = 1) -> None:
        """Make the next ``count`` accepted v2 submissions end FAILED with ``error``."""
        self._backend.fail_next_v2(error, count)

    def reset(self) -> None:
        """Forget requests, faults, v2 requests and the rate-limit window (credits and settings stay).

        Answers still in progress (a ``delay``, a ``latency``, a ``trickle``) are cut off first,
        so nothing that started before the reset acts on the state after it.
        """
        self._cut_in_flight()
        self._backend.reset()

    def restore_defaults(self) -> None:
        """:meth:`reset`, and credits and every setting back to what the constructor was given;
        listeners (:meth:`subscribe`) are dropped.

        What the pytest plugin does between tests sharing the session's server.
        """
        self._cut_in_flight()
        self._backend.restore_defaults()

    def _cut_in_flight(self) -> None:
        if self._origins is not None:
            self._origins.cut_in_flight()

    # ----------------------------------------------------------------- answering

    async def _respond(self, record: RecordedRequest) -> Answer:
        """Record, route and answer one request (on the serving loop)."""
        backend = self._backend
        backend.log.add(record)
        route = match_route(record.method, record.path, record.origin)
        try:
            answer = await respond(Call(backend, record, route, self._running_addresses()))
        except Exception as exc:  # a bug in the server must surface to the client, not kill it
            answer = error_answer(500, f"Segmind test server error: {exc!r}")
        backend.log.set_status(record, None if answer.delivery == "drop" else answer.status)
        return answer

    def __repr__(self) -> str:
        where = self.base_url if self.running else "not running"
        return f"<SegmindTestServer {where}>"
