"""pytest fixtures for testing DAGs and code against a local Segmind-compatible server.

Registered as a ``pytest11`` entry point, so it loads in every pytest run of any project that
installs the provider: it imports nothing at module level beyond pytest and must keep working
when Pillow is not installed (the server is only imported when a fixture is used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_segmind.testing.server import SegmindTestServer


@pytest.fixture
def segmind_server() -> Iterator[SegmindTestServer]:
    """A started server with default settings, stopped after the test."""
    from airflow_provider_segmind.testing.server import SegmindTestServer

    with SegmindTestServer() as server:
        yield server


@pytest.fixture
def segmind_server_factory() -> Iterator[Callable[..., SegmindTestServer]]:
    """Start servers with custom settings (``factory(latency=1.0, ...)``); all stopped after."""
    from airflow_provider_segmind.testing.server import SegmindTestServer

    started: list[SegmindTestServer] = []

    def factory(**settings: Any) -> SegmindTestServer:
        server = SegmindTestServer(**settings).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def segmind_connection(
    segmind_server: SegmindTestServer, monkeypatch: pytest.MonkeyPatch
) -> SegmindTestServer:
    """Point ``segmind_default`` at the local server.

    ``SEGMIND_API_KEY`` is removed so a developer's real key in the shell can neither mask a
    missing connection password nor be sent anywhere by a test.
    """
    monkeypatch.setenv("AIRFLOW_CONN_SEGMIND_DEFAULT", segmind_server.airflow_connection_json())
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    return segmind_server
