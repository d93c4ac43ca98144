"""Policy behaviours that mutation testing (scripts/mutation.sh) found untested.

Each test states a rule a user relies on: which status is which typed error (the type decides
Airflow retries), when a failed call says it may have been charged, how long a 429 asks to wait
(Segmind's reset moment in every format, never a wait read from a nonsense header), and that a
synchronous retry loop never sleeps past its deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.deadline import Deadline
from airflow_provider_segmind.policy import (
    RetryPolicy,
    error_for_answer,
    is_retryable,
    parse_reset_at,
    parse_retry_after,
    rate_limit_wait,
)

NOW = 1_900_000_000.0  # a fixed "now", in Unix seconds
RESET = "x-rate-limit-reset-at-utc"


# -- status -> typed error -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_cls"),
    [
        (402, exc.SegmindInsufficientCreditsError),
        (406, exc.SegmindInsufficientCreditsError),
        (408, exc.SegmindTimeoutError),
        (409, exc.SegmindValidationError),
        (413, exc.SegmindValidationError),
        (418, exc.SegmindValidationError),
        (302, exc.SegmindBadResponseError),
        (304, exc.SegmindBadResponseError),
    ],
)
def test_less_common_statuses_map_to_typed_errors(status: int, error_cls: type[exc.SegmindError]) -> None:
    err = error_for_answer(status, method="GET", what="GET /v2/requests/r1/status", request_id="r1")
    assert type(err) is error_cls
    assert (err.status_code, err.request_id) == (status, "r1")
    assert err.message.startswith("GET /v2/requests/r1/status: ")


def test_a_4xx_is_never_retried_and_a_408_is_retried_only_on_get() -> None:
    """A client error cannot be fixed by sending it again; a 408 GET is free to repeat."""
    for status in (409, 413, 418):
        assert not is_retryable(error_for_answer(status, method="GET", what="GET /x"), "GET")
    assert is_retryable(error_for_answer(408, method="GET", what="GET /x"), "GET")
    assert not is_retryable(error_for_answer(408, method="POST", what="POST /x"), "POST")


def test_unexpected_status_message() -> None:
    err = error_for_answer(302, method="GET", what="GET /v1/x")
    assert err.message == "GET /v1/x: unexpected HTTP status."


def test_timeout_status_message() -> None:
    err = error_for_answer(408, method="GET", what="GET /v1/x")
    assert err.message == "GET /v1/x: the server timed out."


def test_422_that_says_failed_is_a_failed_request_not_a_bad_request() -> None:
    body = b'{"status": "failed", "error": "NSFW content detected"}'
    err = error_for_answer(422, method="POST", what="POST /v1/x", body=body, content_type="application/json")
    assert type(err) is exc.SegmindRequestFailedError
    assert err.message == "POST /v1/x: the request failed."
    assert (err.status_code, err.error_text) == (422, "NSFW content detected")
    plain = error_for_answer(422, method="POST", what="POST /v1/x", body=b'{"error": "size is wrong"}')
    assert type(plain) is exc.SegmindValidationError


@pytest.mark.parametrize(
    ("method", "status", "charged"),
    [
        ("POST", 500, True),
        ("POST", 504, True),
        ("POST", 502, False),
        ("POST", 503, False),
        ("GET", 500, False),
        ("GET", 504, False),
    ],
)
def test_only_a_post_that_may_have_started_says_it_may_have_been_charged(
    method: str, status: int, charged: bool
) -> None:
    """A GET costs nothing, and a 502/503 never reached a backend: neither sends users to check usage."""
    err = error_for_answer(status, method=method, what=f"{method} /v1/x")
    assert err.may_have_been_charged is charged


def test_403_and_401_give_different_advice() -> None:
    forbidden = error_for_answer(403, method="POST", what="POST /v1/x")
    assert forbidden.hint == (
        "The key was accepted but may not use this model or endpoint; check the account's "
        "plan and the model slug."
    )
    unauthorised = error_for_answer(401, method="POST", what="POST /v1/x")
    assert unauthorised.hint == exc.SegmindAuthenticationError.default_hint


def test_only_410_says_the_model_was_retired() -> None:
    assert error_for_answer(410, method="POST", what="POST /v1/x").message == (
        "POST /v1/x: not found. The model has been retired."
    )
    assert error_for_answer(404, method="POST", what="POST /v1/x").message == "POST /v1/x: not found."


def test_429_message_names_the_wait_only_when_segmind_named_one() -> None:
    named = error_for_answer(429, method="POST", what="POST /v1/x", headers={"Retry-After": "30"})
    assert named.message == "POST /v1/x: rate limited. Segmind asked to wait 30 s."
    unnamed = error_for_answer(429, method="POST", what="POST /v1/x", headers={})
    assert unnamed.message == "POST /v1/x: rate limited."


# -- how long a 429 asks to wait -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1900000030", 30.0),  # Unix seconds
        ("1900000030000", 30.0),  # Unix milliseconds
        ("2030-03-17T17:47:10Z", 30.0),
        ("2030-03-17T17:47:10+00:00", 30.0),
        ("2030-03-17 17:47:10+00:00", 30.0),  # a space instead of the T
        ("2030-03-17T17:47:10", 30.0),  # no zone: UTC
        ("2030-03-17T19:47:10+02:00", 30.0),  # another zone
        ("Sun, 17 Mar 2030 17:47:10 GMT", 30.0),
        ("1899999990", 0.0),  # already past: no wait, not a negative one
    ],
)
def test_reset_moment_in_every_format(header: str, seconds: float) -> None:
    assert datetime.fromtimestamp(NOW, timezone.utc).isoformat() == "2030-03-17T17:46:40+00:00"
    assert parse_reset_at(header, now=NOW) == pytest.approx(seconds)
    assert rate_limit_wait({RESET: header}, now=NOW) == pytest.approx(seconds)


@pytest.fixture
def local_zone_far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The worker's clock in India (UTC+5:30): a zone-less reset moment must still mean UTC."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone_far_from_utc")
def test_reset_moment_without_a_zone_is_utc_whatever_the_local_zone() -> None:
    assert parse_reset_at("2030-03-17T17:47:10", now=NOW) == pytest.approx(30.0)


@pytest.mark.parametrize("header", ["inf", "-inf", "nan", "Infinity", "soon", ""])
def test_nonsense_reset_header_names_no_wait(header: str) -> None:
    """An infinite wait would end every retry (and a trigger's polls) at once; none is read."""
    assert parse_reset_at(header, now=NOW) is None


@pytest.mark.parametrize("header", ["inf", "-inf", "nan"])
def test_nonsense_retry_after_names_no_wait(header: str) -> None:
    assert parse_retry_after(header, now=NOW) is None


def test_retry_after_date_is_measured_from_now() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 45, timezone.utc), usegmt=True)
    assert parse_retry_after(when, now=NOW) == 45.0
    assert rate_limit_wait({"Retry-After": when}, now=NOW) == 45.0
    assert rate_limit_wait({"Retry-After": when, RESET: "1900000030"}, now=NOW) == 45.0


# -- retry loops end by their deadline -----------------------------------------------------------


def test_sync_retry_loop_does_not_sleep_past_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 0.2 s left and a 1 s back-off, the GET is tried once and its error raised: no sleep."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    policy = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=1.0)
    attempts: list[int] = []

    def poll() -> None:
        attempts.append(1)
        raise error_for_answer(503, method="GET", what="GET /x")

    with pytest.raises(exc.SegmindServerError):
        policy.retrying("GET", deadline=Deadline.after(0.2))(poll)
    assert (len(attempts), slept) == (1, [])


# -- the policy's own settings -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["max_wait", "initial_backoff", "max_backoff"])
def test_each_negative_setting_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        RetryPolicy(**{field: -1.0})


def test_zero_waits_are_valid_settings() -> None:
    """rate_limit_max_wait=0 (fail on the first 429) builds RetryPolicy(max_wait=0)."""
    policy = RetryPolicy(max_wait=0, initial_backoff=0, max_backoff=0)
    assert policy.max_wait == 0


def test_named_wait_is_spread_by_up_to_a_tenth() -> None:
    """Tasks rejected together come back spread over 10% of the named wait, not in one second."""
    limited = exc.SegmindRateLimitError("429", retry_after=100)
    waits = [RetryPolicy().wait_for(limited, 1) for _ in range(50)]
    assert all(100 <= w <= 110 for w in waits)
    assert max(waits) - min(waits) > 2


def test_rate_limit_back_off_without_a_named_wait_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 that names no wait is retried after 1, 2, 4, 8, 16 s (each jittered to half..all),
    not every second for the whole budget."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    answers = [exc.SegmindRateLimitError("429", retry_after=None)] * 5
    tries: list[int] = []

    def submit() -> str:
        tries.append(1)
        if answers:
            raise answers.pop()
        return "accepted"

    policy = RetryPolicy(max_attempts=2, max_wait=1000, initial_backoff=1.0, max_backoff=30.0)
    assert policy.retrying("POST")(submit) == "accepted"
    assert len(tries) == 6  # 429s do not count against max_attempts
    assert 0.5 <= slept[0] <= 1.0
    assert 8.0 <= slept[-1] <= 16.0


async def test_async_retry_loop_does_not_sleep_past_its_deadline() -> None:
    """The triggerer's side: with 0.2 s left and a 1 s back-off, one try, then the error."""
    policy = RetryPolicy(max_attempts=2, initial_backoff=1.0, max_backoff=1.0)
    attempts: list[int] = []

    async def poll() -> None:
        attempts.append(1)
        raise error_for_answer(503, method="GET", what="GET /x")

    started = time.monotonic()
    with pytest.raises(exc.SegmindServerError):
        await policy.async_retrying("GET", deadline=Deadline.after(0.2))(poll)
    assert len(attempts) == 1
    assert time.monotonic() - started < 0.4
