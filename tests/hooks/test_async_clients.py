"""Triggers in one event loop share one httpx client per client settings."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from airflow_provider_segmind.connection import ConnectionSettings
from airflow_provider_segmind.hooks import async_clients
from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.hooks.segmind_async import SegmindAsyncHook
from airflow_provider_segmind.policy import RetryPolicy
from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

if TYPE_CHECKING:
    from airflow_provider_segmind.testing import SegmindTestServer

SETTINGS = ConnectionSettings(base_url="https://api.segmind.test", api_key="SG_a")


async def test_hooks_of_one_loop_share_a_client_until_the_last_release() -> None:
    first, second = SegmindAsyncHook(), SegmindAsyncHook()
    first._settings = second._settings = SETTINGS
    other_key = SegmindAsyncHook()
    other_key._settings = ConnectionSettings(base_url="https://proxy.test", api_key="SG_b")
    client = await first.get_conn()
    assert await second.get_conn() is client
    assert await other_key.get_conn() is client  # the client holds no key, no base URL
    assert async_clients.clients_in_use() == 1
    await first.aclose()
    await other_key.aclose()
    assert not client.is_closed
    await second.aclose()
    assert client.is_closed
    assert async_clients.clients_in_use() == 0


async def test_other_timeouts_or_transports_get_their_own_client() -> None:
    slow = ConnectionSettings(base_url="https://api.segmind.test", api_key="SG_a", read_timeout=300)
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    a = async_clients.acquire(SETTINGS)
    b = async_clients.acquire(slow)
    c = async_clients.acquire(SETTINGS, transport)
    assert len({id(a), id(b), id(c)}) == 3
    for client, settings, used in ((a, SETTINGS, None), (b, slow, None), (c, SETTINGS, transport)):
        await async_clients.release(client, settings, used)
    assert async_clients.clients_in_use() == 0


async def test_a_client_serves_a_bounded_number_of_users() -> None:
    """Beyond USERS_PER_CLIENT, more clients: the cost of httpx's pool grows with its users."""
    taken = [async_clients.acquire(SETTINGS) for _ in range(2 * async_clients.USERS_PER_CLIENT + 1)]
    assert len({id(c) for c in taken}) == 3
    assert async_clients.clients_in_use() == 3
    for client in taken:
        await async_clients.release(client, SETTINGS)
    assert async_clients.clients_in_use() == 0
    assert all(c.is_closed for c in taken)


def test_clients_are_per_event_loop() -> None:
    async def take() -> httpx.AsyncClient:
        client = async_clients.acquire(SETTINGS)
        await async_clients.release(client, SETTINGS)
        return client

    assert asyncio.run(take()) is not asyncio.run(take())


def test_a_batch_of_triggers_polls_through_one_client(segmind_connection: SegmindTestServer) -> None:
    """100 triggers in one loop: all end with their event, over one shared client."""
    segmind_connection.generation_seconds = 0.5
    hook = SegmindHook()
    ids = [hook.submit("gpt-image-1.5", {"quality": "low"}, prompt=f"p{i}").request_id for i in range(100)]
    seen: set[int] = set()

    async def run_all() -> list[dict[str, object]]:
        async def one(request_id: str) -> dict[str, object]:
            trigger = SegmindRequestTrigger(
                segmind_conn_id="segmind_default",
                request_id=request_id,
                deadline=time.time() + 60,
                poll_interval=0.2,
            )
            async for event in trigger.run():
                seen.add(async_clients.clients_in_use())
                return dict(event.payload)
            raise AssertionError("no event")

        return await asyncio.gather(*(one(i) for i in ids))

    events = asyncio.run(run_all())
    assert [e["status"] for e in events] == ["success"] * 100
    assert seen == {1}
    polls = segmind_connection.find(method="GET", origin="api")
    assert len(polls) >= 100
    assert len({r.headers.get("x-api-key") for r in polls}) == 1  # every poll carried the key


@pytest.mark.parametrize("transport_error", [httpx.ConnectError("refused")])
async def test_a_failed_poll_still_releases(transport_error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise transport_error

    hook = SegmindAsyncHook(transport=httpx.MockTransport(fail), retry_policy=RetryPolicy(max_attempts=1))
    hook._settings = SETTINGS
    with pytest.raises(Exception, match="could not connect"):
        await hook.get_status("r1")
    await hook.aclose()
    assert async_clients.clients_in_use() == 0
