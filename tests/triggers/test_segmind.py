"""SegmindRequestTrigger with httpx.MockTransport: events, back-off, deadline, serialisation."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from airflow_provider_segmind.hooks.segmind_async import SegmindAsyncHook
from airflow_provider_segmind.policy import RetryPolicy
from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

API_KEY = "SG_trigger_test_secret_0123456789"
BASE = "https://api.segmind.test"
STATUS = f"{BASE}/v2/requests/r1/status"
RESULT = f"{BASE}/v2/requests/r1"
CDN_URL = "https://images.segmind.test/r1/0.png"


@pytest.fixture(autouse=True)
def segmind_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMIND_DEFAULT",
        json.dumps({"conn_type": "segmind", "host": BASE, "password": API_KEY}),
    )


class Script:
    """Answers status and result polls from a list; records every request and every sleep."""

    def __init__(self, status_answers: list[Any], result: Any = None) -> None:
        self.status_answers = list(status_answers)
        self.result = result or httpx.Response(200, json={"status": "COMPLETED", "output": CDN_URL})
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) == RESULT:
            return self.result
        answer = self.status_answers.pop(0) if len(self.status_answers) > 1 else self.status_answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(status: str) -> httpx.Response:
    return httpx.Response(200, json={"status": status, "request_id": "r1"})


def make_trigger(script: Script, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> SegmindRequestTrigger:
    trigger = SegmindRequestTrigger(
        segmind_conn_id="segmind_default",
        request_id="r1",
        status_url=STATUS,
        response_url=RESULT,
        poll_interval=kwargs.pop("poll_interval", 3.0),
        deadline=kwargs.pop("deadline", time.time() + 600),
        **kwargs,
    )
    transport = httpx.MockTransport(script)
    monkeypatch.setattr(
        trigger,
        "_hook",
        lambda: SegmindAsyncHook(
            "segmind_default", retry_policy=RetryPolicy(max_attempts=1), transport=transport
        ),
    )
    return trigger


async def run_to_event(trigger: SegmindRequestTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1  # exactly one event, always
    return events[0]


async def test_completed(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    script = Script([ok("QUEUED"), ok("PROCESSING"), ok("COMPLETED")])
    event = await run_to_event(make_trigger(script, monkeypatch))
    assert event == {
        "status": "success",
        "request_id": "r1",
        "message": "Request completed.",
        "output_urls": [CDN_URL],
    }
    assert sleeps == [3.0, 3.0]
    assert all(r.method == "GET" for r in script.requests)
    assert all(r.headers["x-api-key"] == API_KEY for r in script.requests)


async def test_failed_carries_segmind_text(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    failed = httpx.Response(422, json={"status": "FAILED", "error": "prompt rejected by moderation"})
    event = await run_to_event(make_trigger(Script([ok("QUEUED"), failed]), monkeypatch))
    assert event["status"] == "failed"
    assert event["message"] == "prompt rejected by moderation"
    assert event["output_urls"] == []


async def test_429_waits_retry_after_then_completes(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"})
    script = Script([limited, limited, ok("COMPLETED")])
    event = await run_to_event(make_trigger(script, monkeypatch))
    assert event["status"] == "success"
    assert len(sleeps) == 2
    assert all(7.0 <= s <= 7.7 for s in sleeps)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"error": "boom"}),
        httpx.Response(
            502, text="<html><title>Bad Gateway</title></html>", headers={"Content-Type": "text/html"}
        ),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
)
async def test_transient_errors_back_off_then_complete(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float], failure: Any
) -> None:
    script = Script([failure, failure, ok("PROCESSING"), ok("COMPLETED")])
    event = await run_to_event(make_trigger(script, monkeypatch))
    assert event["status"] == "success"
    # two back-offs (real, non-zero sleeps) then one normal poll interval
    assert len(sleeps) == 3
    assert all(s > 0 for s in sleeps)
    assert sleeps[-1] == 3.0


async def test_consecutive_errors_are_bounded(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    script = Script([httpx.Response(503, json={"error": "down"})])
    event = await run_to_event(make_trigger(script, monkeypatch, max_consecutive_errors=4))
    assert event["status"] == "error"
    assert "4 polls in a row failed" in event["message"]
    assert len(script.requests) == 4
    assert len(sleeps) == 3
    assert API_KEY not in event["message"]


async def test_no_busy_loop_on_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The http provider's trigger sent thousands of requests a second on a 500; this one sleeps."""
    script = Script([httpx.Response(500, json={"error": "x"})])
    trigger = make_trigger(script, monkeypatch, deadline=time.time() + 0.5, poll_interval=0.1)
    event = await run_to_event(trigger)
    assert event["status"] in {"timeout", "error"}
    assert len(script.requests) <= 5


async def test_non_retryable_error_ends_at_once(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    script = Script([httpx.Response(401, json={"error": "Invalid API key"})])
    event = await run_to_event(make_trigger(script, monkeypatch))
    assert event["status"] == "error"
    assert "Invalid API key" in event["message"]
    assert len(script.requests) == 1


async def test_deadline_passed(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    script = Script([ok("QUEUED")])
    event = await run_to_event(make_trigger(script, monkeypatch, deadline=time.time() - 1))
    assert event["status"] == "timeout"
    assert script.requests == []


async def test_deadline_reached_while_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script([ok("QUEUED")])
    trigger = make_trigger(script, monkeypatch, deadline=time.time() + 0.3, poll_interval=0.1)
    event = await run_to_event(trigger)
    assert event["status"] == "timeout"
    assert 1 <= len(script.requests) <= 5


async def test_completed_without_output(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    script = Script([ok("COMPLETED")], result=httpx.Response(200, json={"status": "COMPLETED"}))
    event = await run_to_event(make_trigger(script, monkeypatch))
    assert event["status"] == "error"
    assert "without an output URL" in event["message"]


def test_serialize_exact_kwargs() -> None:
    trigger = SegmindRequestTrigger(
        segmind_conn_id="segmind_default",
        request_id="r1",
        status_url=STATUS,
        response_url=RESULT,
        poll_interval=4,
        deadline=1_900_000_000.5,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_segmind.triggers.segmind.SegmindRequestTrigger"
    assert kwargs == {
        "segmind_conn_id": "segmind_default",
        "request_id": "r1",
        "deadline": 1_900_000_000.5,
        "status_url": STATUS,
        "response_url": RESULT,
        "poll_interval": 4.0,
        "max_consecutive_errors": 10,
        "submitted_at": None,
        "ticket": None,
        "finish": None,
    }
    assert API_KEY not in json.dumps(kwargs)
    rebuilt = SegmindRequestTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"request_id": "../x"}, "request_id"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"deadline": "tomorrow"}, "deadline"),
        ({"max_consecutive_errors": 0}, "max_consecutive_errors"),
    ],
)
def test_arguments_validated(kwargs: dict[str, Any], error: str) -> None:
    base: dict[str, Any] = {"segmind_conn_id": "segmind_default", "request_id": "r1", "deadline": time.time()}
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError)) as info:
        SegmindRequestTrigger(**base)
    assert error in str(info.value)


async def test_first_poll_is_spread_over_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch deferred at once must not poll in one burst: first polls spread over the interval."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float, *args: Any, **kwargs: Any) -> None:
        recorded.append(seconds)

    monkeypatch.setattr("airflow_provider_segmind.triggers.segmind.asyncio.sleep", fake_sleep)
    firsts = []
    for _ in range(40):
        recorded.clear()
        await run_to_event(make_trigger(Script([ok("COMPLETED")]), monkeypatch, poll_interval=4))
        firsts.append(recorded[0])
    assert all(0 <= first <= 4 for first in firsts)
    assert max(firsts) - min(firsts) > 1  # spread, not one moment
