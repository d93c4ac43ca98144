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
import html
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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

log = logging.getLogger(__name__)

#: Statuses after which a POST cannot have started a generation, so re-sending it is free.
POST_SAFE_RETRY_STATUSES = frozenset({429, 502, 503})
#: Longest error text quoted from a server in a message.
MAX_ERROR_TEXT = 300


def extract_error_text(body: bytes | str | None, content_type: str | None = None) -> str | None:
    """Pull a human message out of an error body, whatever its shape.

    Segmind answers ``{"error": "..."}``; gateways in front of it answer HTML or nothing.
    """
    if not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return None
    ctype = (content_type or "").lower()
    if "json" in ctype or text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("error", "message", "detail", "msg"):
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return _shorten(value.strip())
                if isinstance(value, (dict, list)) and value:
                    return _shorten(json.dumps(value))
            return _shorten(text)
        if data is not None:
            return _shorten(text)
    if "html" in ctype or text.lstrip().startswith("<"):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        if title and title.group(1).strip():
            return _shorten(html.unescape(title.group(1).strip()))
        stripped = re.sub(r"<[^>]+>", " ", text)
        stripped = " ".join(html.unescape(stripped).split())
        return _shorten(stripped) if stripped else None
    return _shorten(" ".join(text.split()))


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


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


def body_status(body: bytes | str | None) -> tuple[str | None, str | None]:
    """The ``status`` and ``error`` fields of a JSON body, when it has them."""
    if not body:
        return None, None
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    status = data.get("status")
    error = data.get("error")
    return (
        status.upper() if isinstance(status, str) else None,
        error if isinstance(error, str) else None,
    )


def is_failed_answer(status_code: int, body: bytes | str | None) -> bool:
    """True for Segmind's way of reporting a finished-but-failed v2 request (422 + FAILED).

    Such an answer is a result to hand back, not a transport error to raise or retry.
    """
    return status_code == 422 and body_status(body)[0] == "FAILED"


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
        retry_after = parse_retry_after(_header(headers, "retry-after"))
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


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
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

    :param max_attempts: tries in all, the first included.
    :param max_wait: seconds of waiting in all across the retries of one call. A ``Retry-After``
        that would overrun it ends the retries: the rate-limit error is raised instead.
    :param initial_backoff: first exponential backoff step, in seconds.
    :param max_backoff: longest single backoff when the server gave no ``Retry-After``.
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

        ``Retry-After`` is honoured as given (plus up to 10% jitter so that many tasks released
        at once do not hit the next window together); otherwise exponential backoff with full
        jitter.
        """
        if isinstance(exc, SegmindRateLimitError) and exc.retry_after is not None:
            return exc.retry_after + random.uniform(0, 0.1 * exc.retry_after)
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def should_retry(self, exc: BaseException, method: str) -> bool:
        """``is_retryable`` narrowed by this policy's own choices."""
        if isinstance(exc, SegmindRateLimitError) and not self.retry_rate_limits:
            return False
        return is_retryable(exc, method)

    def tenacity_kwargs(
        self, method: str, *, on_retry: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for ``tenacity.Retrying`` / ``tenacity.AsyncRetrying``.

        Both transports build their retry loop from this, so they cannot disagree.
        """

        def _wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_for(exc, state.attempt_number)

        def _stop(state: tenacity.RetryCallState) -> bool:
            # tenacity computes the wait before asking whether to stop, so the budget check can
            # include the sleep about to happen: stop rather than sleep past ``max_wait``.
            if state.attempt_number >= self.max_attempts:
                return True
            return state.idle_for + state.upcoming_sleep > self.max_wait

        def _before_sleep(state: tenacity.RetryCallState) -> None:
            sleep = state.next_action.sleep if state.next_action else 0.0
            exc = state.outcome.exception() if state.outcome else None
            note = (
                f"{method} attempt {state.attempt_number} of {self.max_attempts} failed "
                f"({type(exc).__name__}: HTTP {getattr(exc, 'status_code', None)}); "
                f"retrying in {sleep:.1f} s"
            )
            log.warning(note)
            if on_retry is not None:
                on_retry(note)

        return {
            "retry": tenacity.retry_if_exception(lambda exc: self.should_retry(exc, method)),
            "wait": _wait,
            "stop": _stop,
            "before_sleep": _before_sleep,
            "reraise": True,
        }

    def retrying(self, method: str) -> tenacity.Retrying:
        """A synchronous retry loop for one call."""
        return tenacity.Retrying(**self.tenacity_kwargs(method))

    def async_retrying(self, method: str) -> tenacity.AsyncRetrying:
        """An asynchronous retry loop for one call (the triggerer's side)."""
        return tenacity.AsyncRetrying(**self.tenacity_kwargs(method))


__all__ = [
    "POST_SAFE_RETRY_STATUSES",
    "RetryPolicy",
    "SegmindConnectionError",
    "body_status",
    "error_for_answer",
    "extract_error_text",
    "is_failed_answer",
    "is_retryable",
    "parse_retry_after",
]
