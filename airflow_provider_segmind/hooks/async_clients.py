"""One ``httpx.AsyncClient`` per event loop and client settings, shared by the triggers of a
triggerer.

A triggerer runs hundreds of triggers in one event loop. A client per trigger costs a TLS context
and a connection pool each (about 840 KB measured), and opens a connection per trigger; a shared
client costs one context, and its pool reuses a few keep-alive connections for every poll. The
client carries no key and no base URL (each request names its URL and brings its own headers), so
triggers of different Segmind connections may share it; what must match is what the client
holds: its timeouts and its transport.

A client is closed when its last user releases it. Clients are kept per event loop, since an
``httpx.AsyncClient`` must not be used from another loop (tests run one loop per test).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from airflow_provider_segmind.connection import ConnectionSettings

#: Keep-alive connections a shared client holds; polls queue for one beyond that. Kept well
#: below the number of triggers: a status poll takes milliseconds, and httpx's pool slows down
#: with every connection it holds.
MAX_CONNECTIONS = 64


@dataclass
class _Entry:
    client: httpx.AsyncClient
    users: int = 0


_ClientKey = tuple[float, float, int | None]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_ClientKey, _Entry]] = (
    weakref.WeakKeyDictionary()
)


def acquire(
    settings: ConnectionSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The shared client for ``settings`` in the running loop; call ``release`` when done."""
    loop = asyncio.get_running_loop()
    key = _key(settings, transport)
    per_loop = _clients.setdefault(loop, {})
    entry = per_loop.get(key)
    if entry is None:
        entry = per_loop[key] = _Entry(
            httpx.AsyncClient(
                timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
                limits=httpx.Limits(
                    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
                ),
                transport=transport,
                follow_redirects=False,
                headers={"User-Agent": "airflow-provider-segmind"},
            )
        )
    entry.users += 1
    return entry.client


async def release(settings: ConnectionSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
    """Give back a client from ``acquire``; the last user's release closes it."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop, {})
    key = _key(settings, transport)
    entry = per_loop.get(key)
    if entry is None:
        return
    entry.users -= 1
    if entry.users <= 0:
        del per_loop[key]
        await entry.client.aclose()


def clients_in_use() -> int:
    """How many shared clients the running loop holds (for tests and benchmarks)."""
    return len(_clients.get(asyncio.get_running_loop(), {}))


def _key(settings: ConnectionSettings, transport: httpx.AsyncBaseTransport | None) -> _ClientKey:
    return (settings.connect_timeout, settings.read_timeout, id(transport) if transport is not None else None)
