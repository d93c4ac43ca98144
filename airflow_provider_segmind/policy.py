"""The one place that turns an HTTP answer into a typed error and decides what may be retried.

Both transports use it: ``requests`` in the worker (``SegmindHook``) and ``httpx`` in the
triggerer. The http provider lets those two paths drift (the sync hook retries nothing, the async
one retries 5xx but never 429, and they raise different types); here a status code means the same
thing on both paths, and so does a retry decision.

Money shapes the retry rules. A GET costs nothing, so it is retried on 429, 5xx, connection
errors and read timeouts. A POST starts a paid generation, so it is re-sent only where Segmind
cannot have started the work: 429 (rejected before queueing), 502 and 503 (the gateway did not
reach a backend), and connection failures before a byte was sent. A 500, a 504 or a read timeout
on a POST is raised with ``may_have_been_charged=True`` and is never re-sent automatically.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import tenacity

from airflow_provider_segmind.exceptions import (
    SegmindAuthenticationError,
    SegmindBadResponseError,
    SegmindConnectionError,
    SegmindError,
    SegmindInsufficientCreditsError,
    SegmindNotFoundError,
    SegmindRateLimitError,
    SegmindRequestFailedError,
    SegmindServerError,
    SegmindTimeoutError,
    SegmindValidationError,
    redact_key,
)
from airflow_provider_segmind.responses import body_status, extract_error_text, is_failed_answer

if TYPE_CHECKING:
    from airflow_provider_segmind.deadline import Deadline

log = logging.getLogger(__name__)

#: Statuses after which a POST cannot have started a generation, so re-sending it is free.
POST_SAFE_RETRY_STATUSES = frozenset({429, 502, 503})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return None
    return max(0.0, seconds)


#: Segmind's 429 names the moment its window reopens, in UTC, instead of sending Retry-After.
RATE_LIMIT_RESET_HEADER = "x-rate-limit-reset-at-utc"


def parse_reset_at(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds until the moment in an ``x-rate-limit-reset-at-utc`` header, or None.

    The header's exact format is not documented, so every plausible one is read: ISO 8601 (with
    or without a zone; no zone means UTC), an HTTP date, or Unix time in seconds or milliseconds.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    current = time.time() if now is None else now
    moment: float | None = None
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if number != number or number in (float("inf"), float("-inf")):
            return None
        moment = number / 1000.0 if number > 1e11 else number
    else:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        moment = parsed.timestamp()
    return max(0.0, moment - current)


def rate_limit_wait(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds a 429 asks to wait: ``Retry-After`` when present, else Segmind's reset moment.

    None when the answer says neither; callers then back off on their own. This is the one place
    every path (sync hook, deferrable submit, trigger polls, sensor) reads a 429's wait from.
    """
    wait = parse_retry_after(header_value(headers, "retry-after"), now=now)
    if wait is None:
        wait = parse_reset_at(header_value(headers, RATE_LIMIT_RESET_HEADER), now=now)
    return wait


def error_for_answer(
    status_code: int,
    *,
    method: str,
    what: str,
    body: bytes | str | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    api_key: str | None = None,
    request_id: str | None = None,
) -> SegmindError:
    """Build the typed error for a non-success answer.

    :param what: the call in words, e.g. ``"POST /v1/gpt-image-1.5"``; it starts the message.
    :param api_key: scrubbed from any server text quoted in the message.
    """
    error_text = extract_error_text(body, content_type)
    if error_text is not None:
        error_text = redact_key(error_text, api_key)
    common: dict[str, Any] = {
        "status_code": status_code,
        "error_text": error_text,
        "request_id": request_id,
    }
    if status_code in (401, 403):
        hint = None
        if status_code == 403:
            hint = (
                "The key was accepted but may not use this model or endpoint; check the account's "
                "plan and the model slug."
            )
        return SegmindAuthenticationError(f"{what}: authentication failed.", hint=hint, **common)
    if status_code in (402, 406):
        return SegmindInsufficientCreditsError(f"{what}: not enough credits.", **common)
    if status_code in (404, 410):
        retired = " The model has been retired." if status_code == 410 else ""
        return SegmindNotFoundError(f"{what}: not found.{retired}", **common)
    if status_code == 429:
        retry_after = rate_limit_wait(headers)
        wait = f" Segmind asked to wait {retry_after:.0f} s." if retry_after is not None else ""
        return SegmindRateLimitError(f"{what}: rate limited.{wait}", retry_after=retry_after, **common)
    if status_code == 422 and body_status(body)[0] == "FAILED":
        return SegmindRequestFailedError(f"{what}: the request failed.", **common)
    if status_code in (400, 422) or (400 <= status_code < 500 and status_code != 408):
        return SegmindValidationError(f"{what}: bad request.", **common)
    if status_code == 408:
        return SegmindTimeoutError(f"{what}: the server timed out.", **common)
    if status_code >= 500:
        charged = method.upper() == "POST" and status_code not in POST_SAFE_RETRY_STATUSES
        return SegmindServerError(f"{what}: server error.", may_have_been_charged=charged, **common)
    return SegmindBadResponseError(f"{what}: unexpected HTTP status.", **common)


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header by its lower-case name, whatever case the answer used."""
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def is_retryable(exc: BaseException, method: str) -> bool:
    """Whether ``exc`` may be retried by re-sending the same ``method`` request.

    This is the money rule in code: see the module docstring.
    """
    if isinstance(exc, SegmindRateLimitError):
        return True
    if method.upper() == "POST":
        if isinstance(exc, SegmindServerError):
            return exc.status_code in POST_SAFE_RETRY_STATUSES
        if isinstance(exc, SegmindConnectionError):
            return not exc.sent
        return False
    return isinstance(
        exc, (SegmindServerError, SegmindConnectionError, SegmindTimeoutError, SegmindBadResponseError)
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a call is retried; shared by the sync and the async transport.

    :param max_attempts: tries in all, the first included, for failures other than 429. A 429 is
        not a failure of the call: its retries are bounded by ``max_wait`` (and the call's
        deadline) alone, so a long rate-limit window is waited out as far as the budget allows.
    :param max_wait: seconds of waiting in all across the retries of one call. A wait that would
        overrun it (or the call's deadline) ends the retries: the last error is raised instead.
    :param initial_backoff: first exponential backoff step, in seconds; also the shortest wait
        after a 429, however short a wait the server asked for (``Retry-After: 0`` included).
    :param max_backoff: longest single backoff when the server named no wait.
    :param retry_rate_limits: False to raise a 429 at once, for callers that wait it out elsewhere
        (the deferrable operator waits on a timer in the triggerer, not in the worker).
    """

    max_attempts: int = 5
    max_wait: float = 300.0
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    retry_rate_limits: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.max_wait < 0 or self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("max_wait, initial_backoff and max_backoff must not be negative")

    def wait_for(self, exc: BaseException | None, attempt: int) -> float:
        """Seconds to sleep before try ``attempt + 1`` after ``exc``.

        A 429's named wait (``Retry-After`` or Segmind's reset moment) is honoured, never shorter
        than ``initial_backoff`` (a wait of 0 would be a busy loop), plus up to 10% jitter so that
        many tasks released at once do not hit the next window together. Otherwise exponential
        backoff with jitter, between half and all of the step.
        """
        if isinstance(exc, SegmindRateLimitError) and exc.retry_after is not None:
            named = max(exc.retry_after, self.initial_backoff)
            return named + random.uniform(0, 0.1 * named)
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (max(attempt, 1) - 1)))
        return random.uniform(ceiling / 2, ceiling)

    @property
    def retries_nothing(self) -> bool:
        """True when no error can be retried: one try, and 429s raised at once."""
        return self.max_attempts == 1 and not self.retry_rate_limits

    def should_retry(self, exc: BaseException, method: str) -> bool:
        """``is_retryable`` narrowed by this policy's own choices."""
        if isinstance(exc, SegmindRateLimitError) and not self.retry_rate_limits:
            return False
        return is_retryable(exc, method)

    def tenacity_kwargs(self, method: str, *, deadline: Deadline | None = None) -> dict[str, Any]:
        """Keyword arguments for ``tenacity.Retrying`` / ``tenacity.AsyncRetrying``.

        Both transports build their retry loop from this, so they cannot disagree.

        :param deadline: no retry sleeps past it; the last error is raised instead.
        """
        failures = 0  # failures other than 429, for max_attempts and the backoff step
        rate_limits = 0

        def _wait(state: tenacity.RetryCallState) -> float:
            nonlocal failures, rate_limits
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, SegmindRateLimitError):
                rate_limits += 1
                return self.wait_for(exc, rate_limits)
            failures += 1
            return self.wait_for(exc, failures)

        def _stop(state: tenacity.RetryCallState) -> bool:
            # tenacity computes the wait before asking whether to stop, so the budget check can
            # include the sleep about to happen: stop rather than sleep past the budget.
            if failures >= self.max_attempts:
                return True
            if state.idle_for + state.upcoming_sleep > self.max_wait:
                return True
            return deadline is not None and state.upcoming_sleep >= deadline.remaining()

        def _before_sleep(state: tenacity.RetryCallState) -> None:
            sleep = state.next_action.sleep if state.next_action else 0.0
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s attempt %d failed (%s: HTTP %s); retrying in %.1f s",
                method,
                state.attempt_number,
                type(exc).__name__,
                getattr(exc, "status_code", None),
                sleep,
            )

        return {
            "retry": tenacity.retry_if_exception(lambda exc: self.should_retry(exc, method)),
            "wait": _wait,
            "stop": _stop,
            "before_sleep": _before_sleep,
            "reraise": True,
        }

    def retrying(self, method: str, *, deadline: Deadline | None = None) -> tenacity.Retrying:
        """A synchronous retry loop for one call."""
        return tenacity.Retrying(**self.tenacity_kwargs(method, deadline=deadline))

    def async_retrying(self, method: str, *, deadline: Deadline | None = None) -> tenacity.AsyncRetrying:
        """An asynchronous retry loop for one call (the triggerer's side)."""
        return tenacity.AsyncRetrying(**self.tenacity_kwargs(method, deadline=deadline))


__all__ = [
    "POST_SAFE_RETRY_STATUSES",
    "RetryPolicy",
    "SegmindConnectionError",
    "body_status",
    "error_for_answer",
    "extract_error_text",
    "is_failed_answer",
    "is_retryable",
    "parse_reset_at",
    "parse_retry_after",
    "rate_limit_wait",
]
