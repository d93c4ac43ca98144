"""The shared answer-to-error and retry rules, as plain functions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.policy import (
    RetryPolicy,
    error_for_answer,
    extract_error_text,
    is_failed_answer,
    is_retryable,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        (b'{"error": "Invalid API key"}', "application/json", "Invalid API key"),
        (b'{"message": "nope"}', "application/json", "nope"),
        (
            b"<html><head><title>504 Gateway Time-out</title></head></html>",
            "text/html",
            "504 Gateway Time-out",
        ),
        (b"<html><body><h1>Oops</h1> broken</body></html>", "text/html", "Oops broken"),
        (b"", None, None),
        (b"   ", "text/plain", None),
        (b"plain words", "text/plain", "plain words"),
        (b"{broken", "application/json", "{broken"),
    ],
)
def test_extract_error_text(body: bytes, ctype: str | None, expected: str | None) -> None:
    assert extract_error_text(body, ctype) == expected


def test_long_error_text_is_shortened() -> None:
    text = extract_error_text(b'{"error": "' + b"x" * 5000 + b'"}', "application/json")
    assert text is not None and len(text) <= 300


def test_retry_after_forms() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 28 <= (parse_retry_after(format_datetime(when, usegmt=True)) or 0) <= 31
    past = datetime.now(timezone.utc) - timedelta(seconds=30)
    assert parse_retry_after(format_datetime(past, usegmt=True)) == 0.0


def test_failed_answer_detection() -> None:
    assert is_failed_answer(422, b'{"status": "failed", "error": "x"}')
    assert not is_failed_answer(422, b'{"error": "bad field"}')
    assert not is_failed_answer(200, b'{"status": "FAILED"}')


@pytest.mark.parametrize(
    ("status", "post_retry", "get_retry"),
    [
        (400, False, False),
        (401, False, False),
        (404, False, False),
        (406, False, False),
        (429, True, True),
        (500, False, True),
        (502, True, True),
        (503, True, True),
        (504, False, True),
    ],
)
def test_retry_decisions_by_method(status: int, post_retry: bool, get_retry: bool) -> None:
    post = error_for_answer(status, method="POST", what="POST /v1/x")
    get = error_for_answer(status, method="GET", what="GET /v1/x")
    assert is_retryable(post, "POST") is post_retry
    assert is_retryable(get, "GET") is get_retry


def test_connection_errors_by_whether_sent() -> None:
    never_sent = exc.SegmindConnectionError("refused", sent=False)
    sent = exc.SegmindConnectionError("reset", sent=True)
    assert is_retryable(never_sent, "POST")
    assert not is_retryable(sent, "POST")
    assert is_retryable(sent, "GET")
    assert not is_retryable(exc.SegmindTimeoutError("read"), "POST")


def test_policy_can_leave_rate_limits_to_the_caller() -> None:
    limited = exc.SegmindRateLimitError("429", retry_after=3)
    assert RetryPolicy().should_retry(limited, "POST")
    assert not RetryPolicy(retry_rate_limits=False).should_retry(limited, "POST")


def test_wait_honours_retry_after_else_backs_off() -> None:
    policy = RetryPolicy(initial_backoff=1, max_backoff=8)
    assert 10 <= policy.wait_for(exc.SegmindRateLimitError("x", retry_after=10), 1) <= 11
    waits = [policy.wait_for(exc.SegmindServerError("x"), attempt) for attempt in range(1, 8)]
    assert all(0 < w <= 8 for w in waits)
    assert waits[-1] >= 4  # grows to the cap


def test_policy_arguments_checked() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
