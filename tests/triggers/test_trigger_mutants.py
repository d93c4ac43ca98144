"""Trigger behaviours that mutation testing (scripts/mutation.sh) found untested.

``output_urls_from_event`` is what the operator and the sensor trust after an event crossed a
process boundary: it must refuse an event with nothing to download, and each error it raises must
keep Segmind's words and the request id (the structured field callers branch on).

The trigger itself must poll with the task's own connection and the URLs Segmind handed out, end
the result fetch by its deadline too, count one failure per poll, and say why it timed out.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.hooks.segmind_async import SegmindAsyncHook
from airflow_provider_segmind.policy import RetryPolicy
from airflow_provider_segmind.testing.context import run_trigger
from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger, output_urls_from_event
from tests.hostile import answer, hostile_server

if TYPE_CHECKING:
    from airflow_provider_segmind.testing import SegmindTestServer

KEY = "SG_trigger_mutants_secret_0123456789"
BASE = "https://api.segmind.test"
CDN_URL = "https://images.segmind.test/r1/0.png"


class TimedOut(Exception):
    def __init__(self, request_id: str, message: str) -> None:
        super().__init__(request_id, message)
        self.request_id = request_id
        self.message = message


def event(status: str, **fields: Any) -> dict[str, Any]:
    return {"status": status, "request_id": "r1", "message": "", "output_urls": [], **fields}


@pytest.mark.parametrize(
    "urls",
    [[], "https://images.segmind.test/r1/0.png", ["https://images.segmind.test/r1/0.png", 7], None],
    ids=["empty-list", "a-string-not-a-list", "a-non-string-url", "missing"],
)
def test_success_without_usable_urls_is_refused(urls: Any) -> None:
    """A success with nothing to download must fail the task, not succeed with no image."""
    with pytest.raises(exc.SegmindBadResponseError, match="no output URLs"):
        output_urls_from_event(event("success", output_urls=urls), on_timeout=TimedOut)


def test_success_returns_the_request_and_its_urls() -> None:
    urls = ["https://images.segmind.test/r1/0.png", "https://images.segmind.test/r1/1.png"]
    assert output_urls_from_event(event("success", output_urls=urls), on_timeout=TimedOut) == ("r1", urls)


def test_failed_keeps_segmind_text_and_request_id() -> None:
    with pytest.raises(exc.SegmindRequestFailedError) as info:
        output_urls_from_event(event("failed", message="prompt rejected"), on_timeout=TimedOut)
    assert info.value.request_id == "r1"
    assert info.value.error_text == "prompt rejected"
    assert info.value.message == "The queued request failed."


def test_failed_without_text_has_no_made_up_error_text() -> None:
    with pytest.raises(exc.SegmindRequestFailedError) as info:
        output_urls_from_event(event("failed", message=None), on_timeout=TimedOut)
    assert info.value.error_text in (None, "")


@pytest.mark.parametrize("message", ["Request r1 did not finish before the deadline.", ""])
def test_timeout_hands_request_id_and_message_to_the_caller(message: str) -> None:
    with pytest.raises(TimedOut) as info:
        output_urls_from_event(event("timeout", message=message), on_timeout=TimedOut)
    assert (info.value.request_id, info.value.message) == ("r1", message)


def test_polling_error_keeps_the_trigger_message_and_request_id() -> None:
    message = "10 polls in a row failed; the last one: GET /v2/requests/r1/status: server error."
    with pytest.raises(exc.SegmindError) as info:
        output_urls_from_event(event("error", message=message), on_timeout=TimedOut)
    assert info.value.message == message
    assert info.value.request_id == "r1"


def test_polling_error_without_message_still_says_what_failed() -> None:
    with pytest.raises(exc.SegmindError) as info:
        output_urls_from_event(event("error", message=""), on_timeout=TimedOut)
    assert info.value.message == "Polling the request failed."
    assert info.value.request_id == "r1"


# -- the trigger's polling -------------------------------------------------------------------------


def scripted_trigger(
    monkeypatch: pytest.MonkeyPatch, handler: Any, *, seconds: float = 600, **kwargs: Any
) -> SegmindRequestTrigger:
    """A trigger whose hook answers from ``handler`` (an async httpx handler), one try per call."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMIND_DEFAULT", json.dumps({"conn_type": "segmind", "host": BASE, "password": KEY})
    )
    trigger = SegmindRequestTrigger(
        segmind_conn_id="segmind_default", request_id="r1", deadline=time.time() + seconds, **kwargs
    )
    transport = httpx.MockTransport(handler)
    monkeypatch.setattr(
        trigger,
        "_hook",
        lambda: SegmindAsyncHook(
            "segmind_default",
            retry_policy=RetryPolicy(max_attempts=1, retry_rate_limits=False),
            transport=transport,
        ),
    )
    return trigger


def test_polls_the_status_and_result_urls_segmind_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    """The submit answer's URLs are used as given, not rebuilt from the request id."""
    status_url = f"{BASE}/v2/requests/r1/status?token=from-submit"
    response_url = f"{BASE}/v2/requests/r1?token=from-submit"
    asked: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if str(request.url) == status_url:
            return httpx.Response(200, json={"status": "COMPLETED", "request_id": "r1"})
        if str(request.url) == response_url:
            return httpx.Response(200, json={"status": "COMPLETED", "output": CDN_URL})
        return httpx.Response(404, json={"error": "no such URL"})

    trigger = scripted_trigger(
        monkeypatch, handler, status_url=status_url, response_url=response_url, poll_interval=0.1
    )
    event = run_trigger(trigger)
    assert (event["status"], event["output_urls"]) == ("success", [CDN_URL])
    assert asked == [status_url, response_url]


def test_a_slow_result_ends_at_the_trigger_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The result fetch is bounded by the trigger's deadline like every status poll."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            return httpx.Response(200, json={"status": "COMPLETED", "request_id": "r1"})
        await asyncio.sleep(5)
        return httpx.Response(200, json={"status": "COMPLETED", "output": CDN_URL})

    trigger = scripted_trigger(monkeypatch, handler, seconds=0.5, poll_interval=0.1)
    started = time.monotonic()
    event = run_trigger(trigger)
    assert time.monotonic() - started < 2.0
    assert event["status"] == "timeout"
    assert event["message"].startswith("Request r1 did not finish before the deadline. Last problem: ")
    assert "stopped waiting at the trigger's deadline" in event["message"]


def test_timeout_after_clean_polls_names_no_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "PROCESSING", "request_id": "r1"})

    event = run_trigger(scripted_trigger(monkeypatch, handler, seconds=0.3, poll_interval=0.1))
    assert event == {
        "status": "timeout",
        "request_id": "r1",
        "message": "Request r1 did not finish before the deadline.",
        "output_urls": [],
    }


def test_polls_with_the_task_connection_not_the_default(
    segmind_server: SegmindTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task on its own Segmind connection is polled with that connection's host and key."""
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_SEGMIND", segmind_server.airflow_connection_json())
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMIND_DEFAULT",
        json.dumps({"conn_type": "segmind", "host": segmind_server.base_url, "password": "SG_wrong_key_000"}),
    )
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    handle = SegmindHook("other_segmind").submit("gpt-image-1.5", {"prompt": "a red bicycle"})
    trigger = SegmindRequestTrigger(
        segmind_conn_id="other_segmind",
        request_id=handle.request_id,
        status_url=handle.status_url,
        response_url=handle.response_url,
        deadline=time.time() + 20,
        poll_interval=0.1,
    )
    event = run_trigger(trigger)
    assert event["status"] == "success", event["message"]


def test_each_failed_poll_is_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """max_consecutive_errors counts requests: the trigger's hook makes one try per poll."""
    with hostile_server(answer("503 Service Unavailable", b'{"error": "down"}')) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps({"conn_type": "segmind", "host": server.url, "password": KEY}),
        )
        trigger = SegmindRequestTrigger(
            segmind_conn_id="segmind_default",
            request_id="r1",
            deadline=time.time() + 30,
            poll_interval=0.05,
            max_consecutive_errors=2,
        )
        event = run_trigger(trigger)
    assert event["status"] == "error"
    assert event["message"].startswith("2 polls in a row failed; the last one: HTTP 503")
    assert len(server.requests) == 2


def status_script(*answers: httpx.Response, result: httpx.Response | None = None) -> Any:
    """Status polls answered in order (the last one repeated); the result from ``result``."""
    queue = list(answers)
    requests: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if not request.url.path.endswith("/status"):
            return result or httpx.Response(200, json={"status": "COMPLETED", "output": CDN_URL})
        return queue.pop(0) if len(queue) > 1 else queue[0]

    handler.requests = requests  # type: ignore[attr-defined]
    return handler


def polled(status: str, **fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"status": status, "request_id": "r1", **fields})


def down() -> httpx.Response:
    return httpx.Response(503, json={"error": "down"})


@pytest.mark.usefixtures("sleeps")
def test_a_clean_poll_resets_the_failure_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two failures in a row end the wait; two failures apart do not."""
    handler = status_script(down(), polled("QUEUED"), down(), polled("PROCESSING"), polled("COMPLETED"))
    event = run_trigger(scripted_trigger(monkeypatch, handler, poll_interval=1, max_consecutive_errors=2))
    assert event["status"] == "success", event["message"]


@pytest.mark.usefixtures("sleeps")
def test_one_allowed_failure_is_a_valid_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = status_script(down())
    event = run_trigger(scripted_trigger(monkeypatch, handler, poll_interval=1, max_consecutive_errors=1))
    assert event["status"] == "error"
    assert event["message"].startswith("1 polls in a row failed; the last one: HTTP 503")
    assert len(handler.requests) == 1


def test_rate_limit_back_off_starts_at_the_poll_interval_and_grows(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float]
) -> None:
    """A 429 that names no wait: the first wait is the poll interval, later ones grow."""
    limited = httpx.Response(429, json={"error": "slow down"})
    handler = status_script(*[limited] * 7, polled("COMPLETED"))
    event = run_trigger(scripted_trigger(monkeypatch, handler, poll_interval=1))
    assert event["status"] == "success"
    assert len(sleeps) == 7
    assert sleeps[0] == 1.0  # max(poll interval, a first step of at most 1 s)
    assert sleeps[1] <= 2.0
    assert sleeps[-1] >= 16.0  # 1, 2, 4, 8, 16, 32 s steps, each jittered to half..all


@pytest.mark.parametrize(
    ("answers", "result", "message"),
    [
        ([polled("COMPLETED")], httpx.Response(422, json={"status": "FAILED", "error": "NSFW"}), "NSFW"),
        ([polled("COMPLETED")], httpx.Response(422, json={"status": "FAILED"}), "Segmind reported FAILED."),
        (
            [httpx.Response(422, json={"status": "FAILED", "request_id": "r1"})],
            None,
            "Segmind reported FAILED.",
        ),
    ],
    ids=["result-failed", "result-failed-no-text", "status-failed-no-text"],
)
def test_failed_request_event(
    monkeypatch: pytest.MonkeyPatch,
    answers: list[httpx.Response],
    result: httpx.Response | None,
    message: str,
) -> None:
    event = run_trigger(scripted_trigger(monkeypatch, status_script(*answers, result=result)))
    assert event == {"status": "failed", "request_id": "r1", "message": message, "output_urls": []}


def test_a_429_that_names_no_wait_is_waited_out_in_poll_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polling keeps its own pace (the poll interval) on "Retry-After: 0"; it is not slowed to the
    hook's own one-second back-off, nor sped up into a busy loop."""
    with hostile_server(answer("429 Too Many Requests", b"{}", **{"Retry-After": "0"})) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps({"conn_type": "segmind", "host": server.url, "password": KEY}),
        )
        trigger = SegmindRequestTrigger(
            segmind_conn_id="segmind_default", request_id="r1", deadline=time.time() + 1.5, poll_interval=0.1
        )
        event = run_trigger(trigger)
    assert event["status"] == "timeout"
    assert 6 <= len(server.requests) <= 16
