"""pytest fixtures for testing DAGs and code against a local Segmind-compatible server.

Registered as a ``pytest11`` entry point, so it loads in every pytest run of any project that
installs the provider: it imports nothing at module level beyond pytest and must keep working
when Pillow is not installed (the server is only imported when a fixture is used).

Like pytest-httpserver, one server serves the whole session and is put back to its defaults
around every test (requests, faults, v2 requests, rate-limit window, credits and every setting,
answers still in progress cut off), so a suite pays for one server start, not one per test, and
no test sees what another left behind. ``segmind_server_factory`` still starts dedicated servers,
for custom constructor settings or tests that stop their server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_segmind.testing.server import SegmindTestServer


@pytest.fixture(scope="session")
def segmind_session_server() -> Iterator[SegmindTestServer]:
    """The session's server, started on first use. Tests should use ``segmind_server``, which
    resets it; this one is for session-scoped fixtures that need the address."""
    from airflow_provider_segmind.testing.server import SegmindTestServer

    with SegmindTestServer(name="segmind-session") as server:
        yield server


@pytest.fixture
def segmind_server(segmind_session_server: SegmindTestServer) -> Iterator[SegmindTestServer]:
    """The session's server with default settings, clean for this test and cleaned after it."""
    server = segmind_session_server
    if not server.running:  # a test stopped it
        server.start()
    server.restore_defaults()
    yield server
    if server.running:
        server.restore_defaults()


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
