"""Fixtures for hook tests: a connection in the environment, a recorded sleep, tiny images."""

from __future__ import annotations

import io
import json
import time

import pytest

from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.policy import RetryPolicy

API_KEY = "SG_unit_test_secret_key_0123456789"
BASE = "https://api.segmind.test"
CDN = "https://images.segmind.test"


def image_bytes(fmt: str = "png", size: tuple[int, int] = (8, 6)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, format=fmt.upper())
    return buffer.getvalue()


@pytest.fixture
def segmind_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """The default connection points at a fake base URL with a known key."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMIND_DEFAULT",
        json.dumps({"conn_type": "segmind", "host": BASE, "password": API_KEY}),
    )
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    return API_KEY


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record tenacity's sleeps instead of sleeping (tenacity sleeps through time.sleep)."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


@pytest.fixture
def hook(segmind_env: str) -> SegmindHook:
    # 429s are bounded by max_wait (not attempts): a small budget keeps rate-limit tests short.
    return SegmindHook(
        retry_policy=RetryPolicy(max_attempts=4, max_wait=0.1, initial_backoff=0.01, max_backoff=0.02)
    )


@pytest.fixture
def patient_hook(segmind_env: str) -> SegmindHook:
    """A hook that waits out rate limits of a minute (the sleeps are recorded, not slept)."""
    return SegmindHook(
        retry_policy=RetryPolicy(max_attempts=4, max_wait=60, initial_backoff=0.01, max_backoff=0.02)
    )
