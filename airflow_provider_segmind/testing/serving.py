"""The HTTP layer of the local Segmind server: aiohttp origins on an event loop in a background thread.

Why aiohttp: the faults must misbehave at the connection level (hang up with no answer, cut an
image short under its Content-Length, trickle a body byte by byte). ASGI servers such as uvicorn
deliberately hide the connection from the application; aiohttp's low-level server hands each
handler its request's transport and lets a response be streamed and abandoned, all through public
API. One event loop holds thousands of keep-alive connections (polling clients) on two threads,
where the hand-written server needed a thread per connection, and a listen backlog of the
kernel's maximum absorbs a burst of connects. The loop runs in its own thread so synchronous test
code can start and stop it.

This module turns requests into :class:`~airflow_provider_segmind.testing.recording.RecordedRequest`
values and :class:`~airflow_provider_segmind.testing.responses.Answer` values into bytes on the
wire; what to answer is decided elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from airflow_provider_segmind.testing.recording import RecordedRequest
from airflow_provider_segmind.testing.responses import Answer, error_answer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from airflow_provider_segmind.testing.clock import Clock

    Responder = Callable[[RecordedRequest], Awaitable[Answer]]

#: Connects queued before accept(); the kernel caps it at net.core.somaxconn. A full queue drops
#: SYNs, and each dropped SYN costs the client a one-second retransmission.
LISTEN_BACKLOG = 4096
#: Idle keep-alive connections are closed after this long, so a long-running server sheds
#: forgotten clients. Long, because the pytest plugin's server lives for the whole session: a
#: client that pooled a connection in one test may reuse it minutes later, and a close racing that
#: reuse would fail a test for the server's sake. Idle connections cost an event loop little.
IDLE_TIMEOUT = 300.0
#: Seconds stop() lets in-flight answers finish before cancelling them (they are cut off anyway).
_SHUTDOWN_GRACE = 0.05
#: Bound on every wait for the loop thread, so a wedged loop cannot hang a test suite.
_THREAD_TIMEOUT = 10.0
#: Threads drawing images, so a slow render never holds up the polls served by the loop.
_RENDER_THREADS = 4


class HttpOrigins:
    """Serves named origins (``api``, ``cdn``), each on its own port, from one event loop thread.

    ``respond`` is awaited for every request, on the loop; ``clock`` stamps the records; ``name``
    prefixes the threads' names (``<name>-http``, ``<name>-render_0``, ...).
    """

    def __init__(
        self, host: str, ports: Mapping[str, int], respond: Responder, clock: Clock, name: str
    ) -> None:
        self._name = name
        self._host = host
        self._ports = dict(ports)
        self._respond = respond
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.ServerRunner] = []
        self._servers: list[web.Server] = []
        self._urls: dict[str, str] = {}
        self._in_flight: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------- life cycle

    def start(self) -> None:
        """Bind every origin and serve; raises OSError (nothing left running) if a port is taken."""
        loop = asyncio.new_event_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(_RENDER_THREADS, thread_name_prefix=f"{self._name}-render")
        )
        thread = threading.Thread(target=_run, args=(loop,), name=f"{self._name}-http", daemon=True)
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            self._call(self._bind())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close the ports, cut off connections and answers in progress, join the threads."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._unbind())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_THREAD_TIMEOUT)
        self._loop = self._thread = None
        self._urls = {}

    def cut_in_flight(self) -> None:
        """Cut off every answer still in progress (a delay, a latency, a trickle).

        Used between tests, so a request a finished test left waiting cannot act on the next
        one's state or hold its connection open.
        """
        if self._loop is not None:
            self._call(self._cancel_in_flight())

    def url(self, origin: str) -> str | None:
        """``http://host:port`` of a running origin, else None."""
        return self._urls.get(origin)

    @property
    def connections(self) -> list[object]:
        """The open client connections of all origins (read on the loop, which changes them)."""
        if self._loop is None:
            return []
        return list(self._call(self._list_connections()))

    async def _list_connections(self) -> list[object]:
        return [connection for server in self._servers for connection in server.connections]

    def _call(self, coroutine: Awaitable[Any]) -> Any:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(_awaited(coroutine), self._loop)
        return future.result(_THREAD_TIMEOUT)

    async def _bind(self) -> None:
        for origin, port in self._ports.items():
            server = web.Server(
                partial(self._handle, origin), access_log=None, keepalive_timeout=IDLE_TIMEOUT
            )
            runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_GRACE)
            await runner.setup()
            self._runners.append(runner)
            self._servers.append(server)
            site = web.TCPSite(runner, self._host, port, backlog=LISTEN_BACKLOG, reuse_address=True)
            await site.start()
            host, bound_port = runner.addresses[0][:2]
            self._urls[origin] = f"http://{host}:{bound_port}"

    async def _unbind(self) -> None:
        await self._cancel_in_flight()
        runners, self._runners, self._servers = self._runners, [], []
        for runner in runners:
            await runner.cleanup()

    async def _cancel_in_flight(self) -> None:
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ----------------------------------------------------------------- requests and answers

    async def _handle(self, origin: str, request: web.BaseRequest) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            try:
                body = await request.read()
            except Exception as exc:  # a malformed chunked body, a body over the size limit
                return _response(request, error_answer(400, f"Unreadable request body: {exc}"))
            answer = await self._respond(self._record(origin, request, body))
            return await _deliver(request, answer)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    def _record(self, origin: str, request: web.BaseRequest, body: bytes) -> RecordedRequest:
        url = urlsplit(request.raw_path)
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return RecordedRequest(
            method=request.method,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            json=parsed,
            origin=origin,
            status=None,
            timestamp=self._clock.time(),
        )


def _run(loop: asyncio.AbstractEventLoop) -> None:
    """The loop thread: serve until stopped, then finish what is pending and join the renderers."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _headers(answer: Answer) -> dict[str, str]:
    headers = dict(answer.headers)
    if answer.content_type is not None:
        headers["Content-Type"] = answer.content_type
    return headers


def _response(request: web.BaseRequest, answer: Answer) -> web.Response:
    response = web.Response(status=answer.status, body=answer.body, headers=_headers(answer))
    if answer.status == 400:
        response.force_close()  # the rest of an unreadable body must not be read as a request
    return response


async def _deliver(request: web.BaseRequest, answer: Answer) -> web.StreamResponse:
    """Put ``answer`` on the wire the way its ``delivery`` says."""
    if answer.delivery == "normal":
        return web.Response(status=answer.status, body=answer.body, headers=_headers(answer))
    if answer.delivery == "drop":
        _hang_up(request)
        # Writing this to the closed transport fails, which aiohttp takes as the client leaving.
        return web.Response(status=500)
    response = web.StreamResponse(status=answer.status, headers=_headers(answer))
    response.content_length = len(answer.body)
    if answer.delivery == "truncate":
        response.force_close()
    try:
        await response.prepare(request)  # sends the status line and headers now
        if request.method == "HEAD":
            return response
        if answer.delivery == "truncate":
            await response.write(answer.body[: len(answer.body) // 2])
            _hang_up(request)
            return response
        for offset in range(len(answer.body)):  # trickle
            await asyncio.sleep(answer.interval)
            await response.write(answer.body[offset : offset + 1])
        await response.write_eof()
    except ConnectionError:
        pass  # the client left first (for a trickle: gave up waiting, as a deadline should)
    return response


def _hang_up(request: web.BaseRequest) -> None:
    """Close the connection after what was written so far is flushed."""
    transport = request.transport
    if transport is not None:
        transport.close()
