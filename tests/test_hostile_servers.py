"""Hostile servers on loopback: every wait ends by its deadline, no busy loop, no leaked key.

The servers here misbehave below HTTP (bytes trickled one at a time, headers that never end,
gzip bodies, error pages that echo the key), which a well-behaved test server cannot do. Each
test bounds what it measures with a generous margin over the deadline: the point is that the
wait ends at all (before the fix it lasted as long as the server cared to trickle).
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.deadline import Deadline
from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.policy import RetryPolicy
from airflow_provider_segmind.testing.context import run_trigger
from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger
from tests.hooks.conftest import image_bytes
from tests.hostile import (
    HostileServer,
    Request,
    answer,
    elapsed,
    head,
    hostile_server,
    trickle_body,
    trickle_head,
)

if TYPE_CHECKING:
    import socket

KEY = "SG_hostile_test_key_0123456789"
#: Slack over a deadline for thread wake-ups on a shared, noisy 2-core machine. The servers
#: below would hold a client for 20 s or more without the deadline.
MARGIN = 3.0
#: No retries: each test looks at one attempt's bound.
ONE_TRY = RetryPolicy(max_attempts=1, retry_rate_limits=False)


def _point_default_at(monkeypatch: pytest.MonkeyPatch, url: str, **extra: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMIND_DEFAULT",
        json.dumps({"conn_type": "segmind", "host": url, "password": KEY, "extra": extra}),
    )
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)


# -- the worker (requests) -------------------------------------------------------------------


def test_trickled_download_ends_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    with hostile_server(trickle_body("image/png", declared=80, interval=0.25)) as server:
        _point_default_at(monkeypatch, server.url)
        hook = SegmindHook(retry_policy=ONE_TRY)
        took, err = elapsed(
            lambda: hook.download(f"{server.url}/out.png", io.BytesIO(), deadline=Deadline.after(1.5))
        )
    assert isinstance(err, exc.SegmindTimeoutError), err
    assert 1.4 <= took <= 1.5 + MARGIN
    assert "stopped waiting" in str(err)


def test_without_a_deadline_connect_plus_read_timeout_bounds_the_whole_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each byte arrives well within the 1 s read timeout; the answer as a whole does not."""
    with hostile_server(trickle_body("image/png", declared=80, interval=0.25)) as server:
        _point_default_at(monkeypatch, server.url, connect_timeout=0.5, read_timeout=1)
        hook = SegmindHook(retry_policy=ONE_TRY)
        took, err = elapsed(lambda: hook.download(f"{server.url}/out.png", io.BytesIO()))
    assert isinstance(err, exc.SegmindTimeoutError), err
    assert took <= 1.5 + MARGIN


def test_trickled_headers_end_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    with hostile_server(trickle_head(interval=0.2)) as server:
        _point_default_at(monkeypatch, server.url, connect_timeout=0.5, read_timeout=1)
        hook = SegmindHook(retry_policy=ONE_TRY)
        took, err = elapsed(hook.get_credits)
    assert isinstance(err, exc.SegmindTimeoutError), err
    assert took <= 1.5 + MARGIN


def test_trickled_generation_ends_at_timeout_and_says_it_may_be_charged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with hostile_server(trickle_body("image/png", declared=80, interval=0.25)) as server:
        _point_default_at(monkeypatch, server.url)
        hook = SegmindHook(retry_policy=RetryPolicy(max_attempts=3))
        took, err = elapsed(lambda: hook.generate("gpt-image-1.5", prompt="a fox", timeout=1.5))
        posts = [r for r in server.requests if r.method == "POST"]
    assert isinstance(err, exc.SegmindTimeoutError), err
    assert err.may_have_been_charged
    assert took <= 1.5 + MARGIN
    assert len(posts) == 1  # a paid POST that timed out is never re-sent


def test_a_deadline_already_passed_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    with hostile_server(answer("200 OK", b"{}")) as server:
        _point_default_at(monkeypatch, server.url)
        hook = SegmindHook(retry_policy=ONE_TRY)
        with pytest.raises(exc.SegmindTimeoutError) as info:
            hook.submit("gpt-image-1.5", prompt="a fox", deadline=Deadline(time.time() - 1))
        assert server.requests == []
    assert not info.value.may_have_been_charged


def test_a_non_image_body_that_echoes_the_key_is_not_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 200 labelled image/png whose body is the request echoed back: the key must not show."""

    def echo(server: HostileServer, sock: socket.socket, request: Request) -> None:
        body = f"{request.headers.get('x-api-key', '')} was your key".encode()
        sock.sendall(head("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(body))}) + body)

    with hostile_server(echo) as server:
        _point_default_at(monkeypatch, server.url)
        with pytest.raises(exc.SegmindBadResponseError) as info:
            SegmindHook(retry_policy=ONE_TRY).generate("gpt-image-1.5", prompt="a fox")
        assert server.requests[0].headers["x-api-key"] == KEY  # the key was sent, and echoed
    assert KEY not in str(info.value)
    assert KEY[:8] not in str(info.value)
    assert "did not return an image" in str(info.value)


def test_gzip_encoded_download_is_not_taken_for_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    png = image_bytes("png", size=(256, 256))
    packed = gzip.compress(png)
    assert len(packed) != len(png)
    script = answer("200 OK", packed, "image/png", **{"Content-Encoding": "gzip"})
    with hostile_server(script) as server:
        _point_default_at(monkeypatch, server.url)
        buffer = io.BytesIO()
        downloaded = SegmindHook(retry_policy=ONE_TRY).download(f"{server.url}/out.png", buffer)
    assert buffer.getvalue() == png
    assert downloaded.size_bytes == len(png)


def test_truncated_gzip_download_is_still_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    packed = gzip.compress(image_bytes("png", size=(256, 256)))

    def cut(server: HostileServer, sock: socket.socket, request: Request) -> None:
        headers = {
            "Content-Type": "image/png",
            "Content-Encoding": "gzip",
            "Content-Length": str(len(packed)),
        }
        sock.sendall(head("200 OK", headers) + packed[: len(packed) // 2])
        sock.shutdown(2)

    with hostile_server(cut) as server:
        _point_default_at(monkeypatch, server.url)
        with pytest.raises(exc.SegmindBadResponseError):
            SegmindHook(retry_policy=ONE_TRY).download(f"{server.url}/out.png", io.BytesIO())


# -- the triggerer (httpx) -------------------------------------------------------------------


def _trigger(server: HostileServer, seconds: float, poll_interval: float = 0.5) -> SegmindRequestTrigger:
    return SegmindRequestTrigger(
        segmind_conn_id="segmind_default",
        request_id="req-hostile",
        deadline=time.time() + seconds,
        poll_interval=poll_interval,
    )


def test_trickled_status_poll_ends_at_the_trigger_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    with hostile_server(trickle_head(interval=0.2)) as server:
        _point_default_at(monkeypatch, server.url)
        started = time.monotonic()
        event = run_trigger(_trigger(server, 1.5))
        took = time.monotonic() - started
    assert event["status"] == "timeout"
    assert took <= 1.5 + MARGIN


def test_trickled_status_body_ends_at_the_trigger_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    with hostile_server(trickle_body("application/json", declared=80, interval=0.25)) as server:
        _point_default_at(monkeypatch, server.url)
        started = time.monotonic()
        event = run_trigger(_trigger(server, 1.5))
        took = time.monotonic() - started
    assert event["status"] == "timeout"
    assert took <= 1.5 + MARGIN


def _past_reset() -> str:
    return (datetime.now(timezone.utc) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "0"},
        {"Retry-After": "Thu, 01 Jan 2015 00:00:00 GMT"},
        {"x-rate-limit-reset-at-utc": "past"},
    ],
    ids=["retry-after-0", "retry-after-past-date", "segmind-reset-in-the-past"],
)
def test_429_with_no_wait_is_not_a_busy_loop(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str]
) -> None:
    if headers.get("x-rate-limit-reset-at-utc") == "past":
        headers = {"x-rate-limit-reset-at-utc": _past_reset()}
    script = answer("429 Too Many Requests", b'{"error": "rate_limit_exceeded"}', **headers)
    with hostile_server(script) as server:
        _point_default_at(monkeypatch, server.url)
        event = run_trigger(_trigger(server, 2.5, poll_interval=0.5))
        polls = len(server.requests)
    assert event["status"] == "timeout"
    assert polls <= 2.5 / 0.5 + 2  # one poll per interval at most (it was hundreds)


def test_a_429_longer_than_the_time_left_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    script = answer("429 Too Many Requests", b'{"error": "rate_limit_exceeded"}', **{"Retry-After": "3600"})
    with hostile_server(script) as server:
        _point_default_at(monkeypatch, server.url)
        started = time.monotonic()
        event = run_trigger(_trigger(server, 1.0))
        took = time.monotonic() - started
    assert event["status"] == "timeout"
    assert "rate limited" in event["message"]
    assert took <= 1.0 + MARGIN


def test_the_trigger_waits_for_segmind_reset_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segmind's 429 has no Retry-After: the next poll waits for x-rate-limit-reset-at-utc."""
    reset = datetime.now(timezone.utc) + timedelta(seconds=2)
    limited = answer(
        "429 Too Many Requests",
        b'{"error": "rate_limit_exceeded"}',
        **{"x-rate-limit-reset-at-utc": reset.isoformat().replace("+00:00", "Z")},
    )
    done = answer("200 OK", json.dumps({"status": "FAILED", "error": "moderation"}).encode())
    times: list[float] = []

    def script(server: HostileServer, sock: socket.socket, request: Request) -> None:
        times.append(time.time())
        (limited if len(times) == 1 else done)(server, sock, request)

    with hostile_server(script) as server:
        _point_default_at(monkeypatch, server.url)
        event = run_trigger(_trigger(server, 30, poll_interval=0.2))
    assert event["status"] == "failed"
    assert times[1] >= reset.timestamp() - 0.05


def test_the_trigger_sleep_never_passes_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sleep of the trigger is cut to the time left (a 429 asking for an hour included)."""
    script = answer("429 Too Many Requests", b"{}", **{"Retry-After": "3600"})
    slept: list[tuple[float, float]] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float, *args: Any) -> None:
        slept.append((seconds, trigger.deadline - time.time()))
        await real_sleep(min(seconds, 0.01))

    with hostile_server(script) as server:
        _point_default_at(monkeypatch, server.url)
        trigger = _trigger(server, 60)
        monkeypatch.setattr(asyncio, "sleep", recording_sleep)
        trigger.deadline = time.time() + 0.5
        event = run_trigger(trigger)
    assert event["status"] == "timeout"
    assert slept
    assert all(seconds <= left + 0.01 for seconds, left in slept)
