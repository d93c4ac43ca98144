"""Fixtures shared by the trigger tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the trigger's sleeps and return at once (real sleeps are asserted to happen)."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float, *args: Any, **kwargs: Any) -> None:
        recorded.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("airflow_provider_segmind.triggers.segmind.asyncio.sleep", fake_sleep)
    # These tests assert the sleeps between polls; the first poll's random spread has its own test.
    monkeypatch.setattr(SegmindRequestTrigger, "first_poll_spread", 0.0)
    return recorded
