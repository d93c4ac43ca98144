"""``httpx.AsyncClient``s shared by the triggers of a triggerer, per event loop and client settings.

A triggerer runs hundreds of triggers in one event loop. A client per trigger costs a TLS context
and a connection pool each (about 840 KB measured), and a connection per trigger. Shared clients
cost one context each, and their pools reuse a few keep-alive connections for every poll. A
client carries no key and no base URL (each request names its URL and brings its own headers),
so triggers of different Segmind connections may share one; what must match is what the client
holds: its timeouts and its transport.

One client is shared by at most ``USERS_PER_CLIENT`` triggers; more triggers get more clients.
httpx's pool looks through every waiting request and every connection each time it hands a
connection out, so one pool serving a thousand triggers spends more CPU per poll the more
triggers there are; pools of a bounded size keep the cost per poll flat.

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

#: Triggers served by one client at most.
USERS_PER_CLIENT = 100
#: Connections one client opens, and keeps alive, at most; polls queue for one beyond that.
MAX_CONNECTIONS = 16


@dataclass
class _Entry:
    client: httpx.AsyncClient
    users: int = 0


_ClientKey = tuple[float, float, int | None]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_ClientKey, list[_Entry]]] = (
    weakref.WeakKeyDictionary()
)


def acquire(
    settings: ConnectionSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A shared client for ``settings`` in the running loop; hand it back with ``release``."""
    entries = _clients.setdefault(asyncio.get_running_loop(), {}).setdefault(_key(settings, transport), [])
    entry = min(entries, key=lambda e: e.users, default=None)
    if entry is None or entry.users >= USERS_PER_CLIENT:
        entry = _Entry(_new_client(settings, transport))
        entries.append(entry)
    entry.users += 1
    return entry.client


async def release(
    client: httpx.AsyncClient, settings: ConnectionSettings, transport: httpx.AsyncBaseTransport | None = None
) -> None:
    """Give back a client from ``acquire``; the last user's release closes it."""
    key = _key(settings, transport)
    per_loop = _clients.get(asyncio.get_running_loop(), {})
    entries = per_loop.get(key, [])
    for entry in entries:
        if entry.client is client:
            entry.users -= 1
            if entry.users <= 0:
                entries.remove(entry)
                if not entries:
                    del per_loop[key]
                await client.aclose()
            return


def clients_in_use() -> int:
    """How many shared clients the running loop holds (for tests and benchmarks)."""
    return sum(len(entries) for entries in _clients.get(asyncio.get_running_loop(), {}).values())


def _new_client(
    settings: ConnectionSettings, transport: httpx.AsyncBaseTransport | None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
        transport=transport,
        follow_redirects=False,
        headers={"User-Agent": "airflow-provider-segmind"},
    )


def _key(settings: ConnectionSettings, transport: httpx.AsyncBaseTransport | None) -> _ClientKey:
    return (settings.connect_timeout, settings.read_timeout, id(transport) if transport is not None else None)
