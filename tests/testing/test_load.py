"""The local server under the load of a batch: 1,000 deferred tasks polling at once.

Each client is its own ``httpx.AsyncClient`` (one connection), as 1,000 triggers would be; one
TLS context is shared so that building the clients is not what the test measures. No timing is
asserted: the point is that every poll gets an answer, on connections that stay open.
"""

from __future__ import annotations

import asyncio
import resource
import ssl
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from airflow_provider_segmind.testing import SegmindTestServer

CLIENTS = 1000


@pytest.fixture
def enough_file_descriptors() -> None:
    """Client and server ends of 1,000 connections live in this one process."""
    needed = 2 * CLIENTS + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.usefixtures("enough_file_descriptors")
async def test_a_thousand_concurrent_pollers_all_get_answers(segmind_server: SegmindTestServer) -> None:
    server = segmind_server
    server.generation_seconds = 3600  # stays QUEUED/PROCESSING: every poll is a real status check
    headers = {"x-api-key": server.api_key}
    async with httpx.AsyncClient(headers=headers) as submitter:
        submitted = await submitter.post(f"{server.base_url}/v2/gpt-image-1.5", json={"prompt": "batch"})
    status_url = submitted.json()["status_url"]

    tls = ssl.create_default_context()
    clients = [httpx.AsyncClient(headers=headers, verify=tls, timeout=60) for _ in range(CLIENTS)]
    try:
        for poll_round in range(2):  # the first round opens the connections, the second reuses them
            answers = await asyncio.gather(
                *(client.get(status_url) for client in clients), return_exceptions=True
            )
            failures = [answer for answer in answers if isinstance(answer, BaseException)]
            assert failures == [], f"round {poll_round}: {len(failures)} failed, first {failures[0]!r}"
            answered = [answer for answer in answers if isinstance(answer, httpx.Response)]
            assert {answer.status_code for answer in answered} == {200}
            assert {answer.json()["status"] for answer in answered} <= {"QUEUED", "PROCESSING"}
            assert len(server._connections) >= CLIENTS  # all held open at once (keep-alive)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    assert len(server.find(method="GET", path_prefix="/v2/requests/")) == 2 * CLIENTS
