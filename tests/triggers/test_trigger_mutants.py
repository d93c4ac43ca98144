"""Trigger behaviours that mutation testing (scripts/mutation.sh) found untested.

``output_urls_from_event`` is what the operator and the sensor trust after an event crossed a
process boundary: it must refuse an event with nothing to download, and each error it raises must
keep Segmind's words and the request id (the structured field callers branch on).
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.triggers.segmind import output_urls_from_event


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
