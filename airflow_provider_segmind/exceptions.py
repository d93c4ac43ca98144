"""Typed errors for everything that can go wrong between a DAG and Segmind.

Callers branch on the class (or on ``status_code``), never on ``str(exc)``: the message is for
people, the attributes are for code. Every message says what happened, Segmind's own words
when it sent any, and what to do next. No message ever contains the API key: the hook never
passes it to an exception, and ``redact_key`` scrubs any text that came back from a server
before it is put in one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class SegmindError(AirflowException):
    """Base of every error this provider raises.

    :param message: what happened, in a sentence.
    :param status_code: the HTTP status of Segmind's answer, when there was one.
    :param error_text: Segmind's own ``error`` text from the answer's body, when there was one.
    :param hint: what the user should do next. Defaults to the class's ``default_hint``.
    :param request_id: the v2 request id, when the error concerns a queued request.
    :param may_have_been_charged: True when the request may have reached Segmind and been
        billed even though no result came back (a POST that timed out or died mid-answer).
    """

    default_hint: ClassVar[str] = "See the task log for details."
    #: Whether retrying the same task later can help. Authentication, credits and validation
    #: errors cannot be fixed by waiting; the operator fails them without Airflow retries.
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_text: str | None = None,
        hint: str | None = None,
        request_id: str | None = None,
        may_have_been_charged: bool = False,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_text = error_text
        self.hint = hint if hint is not None else self.default_hint
        self.request_id = request_id
        self.may_have_been_charged = may_have_been_charged
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts = []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}:")
        parts.append(self.message)
        if self.error_text:
            parts.append(f"Segmind says: {self.error_text!r}.")
        if self.request_id:
            parts.append(f"Request id: {self.request_id}.")
        if self.may_have_been_charged:
            parts.append(
                "The request may have reached Segmind and been charged; it was not sent again "
                "automatically, so check your Segmind usage before retrying."
            )
        if self.hint:
            parts.append(self.hint)
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default pickling of exceptions; keep them so
        # errors cross process boundaries (triggerer, executors) intact.
        return (
            _rebuild_error,
            (
                type(self),
                self.message,
                {
                    "status_code": self.status_code,
                    "error_text": self.error_text,
                    "hint": self.hint,
                    "request_id": self.request_id,
                    "may_have_been_charged": self.may_have_been_charged,
                    **self._extra_state(),
                },
            ),
        )

    def _extra_state(self) -> dict[str, Any]:
        return {}


def _rebuild_error(cls: type[SegmindError], message: str, kwargs: dict[str, Any]) -> SegmindError:
    return cls(message, **kwargs)


class SegmindNoRetryError(SegmindError, AirflowFailException):
    """An error that waiting cannot fix: the task fails at once, without Airflow retries.

    Also an ``AirflowFailException``, so a task that lets it through is not retried (and not
    charged again) however many ``retries`` it has.
    """


class SegmindAuthenticationError(SegmindNoRetryError):
    """401 or 403: the key is missing, wrong, or not allowed to use this model."""

    default_hint = (
        "Check the API key: the password of the Segmind connection, or SEGMIND_API_KEY. "
        "Keys are issued at https://cloud.segmind.com/console/api-keys."
    )


class SegmindConfigurationError(SegmindNoRetryError):
    """The connection or the hook is set up wrong (no key, a malformed host), before any call."""

    default_hint = "Fix the Segmind connection settings."


class SegmindInsufficientCreditsError(SegmindNoRetryError):
    """406: the account has no credits left for this request."""

    default_hint = "Top up credits at https://cloud.segmind.com/console/billing, then re-run the task."


class SegmindValidationError(SegmindNoRetryError, ValueError):
    """400 from Segmind, or parameters rejected locally before anything was sent.

    Also a ``ValueError`` so that code which validates input generically still catches it.
    """

    default_hint = "Fix the request parameters; nothing was generated and nothing was charged."

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        self.field = field
        super().__init__(message, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"field": self.field}


class SegmindNotFoundError(SegmindNoRetryError):
    """404 or 410: the model slug, the endpoint or a queued request does not exist (any more)."""

    default_hint = (
        "Check the model slug (see https://www.segmind.com/models); a queued request's result is "
        "kept for one hour after submission."
    )


class SegmindRateLimitError(SegmindError):
    """429: too many requests in the current window.

    :param retry_after: seconds Segmind asked us to wait (``Retry-After``), or None when it did
        not say.
    """

    default_hint = "Wait for the rate-limit window to pass, or cap concurrency with an Airflow pool."
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class SegmindServerError(SegmindError):
    """5xx: Segmind or a gateway in front of it failed."""

    default_hint = "Segmind had a server-side problem; retry later."
    retryable = True


class SegmindBadResponseError(SegmindError):
    """The answer was not what the API promises: wrong content type, broken JSON, not an image."""

    default_hint = (
        "The answer could not be used. If this persists, report it with the request id and the model slug."
    )
    retryable = True


class SegmindRequestFailedError(SegmindError):
    """A queued (v2) request ended with status FAILED: Segmind ran it and it did not succeed."""

    default_hint = "Change the prompt or parameters (a moderation refusal is reported here too)."


class SegmindRequestFailedFinalError(SegmindRequestFailedError, AirflowFailException):
    """A FAILED request seen by a task that only watches it (the sensor): a retry would read the
    same FAILED again, so the task fails without Airflow retries."""


class SegmindTimeoutError(SegmindError):
    """A read timed out, or a wait passed its deadline."""

    default_hint = "Raise the timeout or the deadline, or retry later."
    retryable = True


class SegmindConnectionError(SegmindError):
    """The connection to Segmind failed.

    :param sent: False when the request certainly never left this machine (DNS failure, refused
        connection, connect timeout). Only such a POST may be re-sent without risking a charge.
    """

    default_hint = "Check the network path to the Segmind API and the connection's host."
    retryable = True

    def __init__(self, message: str, *, sent: bool = True, **kwargs: Any) -> None:
        self.sent = sent
        super().__init__(message, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"sent": self.sent}


def redact_key(text: str, api_key: str | None) -> str:
    """Return ``text`` with every occurrence of ``api_key`` replaced by ``***``.

    Servers sometimes echo request headers in error pages; this is the last line of defence
    before such text reaches an exception, a log line or XCom.
    """
    if api_key and api_key in text:
        return text.replace(api_key, "***")
    return text


__all__ = [
    "SegmindAuthenticationError",
    "SegmindBadResponseError",
    "SegmindConfigurationError",
    "SegmindConnectionError",
    "SegmindError",
    "SegmindInsufficientCreditsError",
    "SegmindNoRetryError",
    "SegmindNotFoundError",
    "SegmindRateLimitError",
    "SegmindRequestFailedError",
    "SegmindRequestFailedFinalError",
    "SegmindServerError",
    "SegmindTimeoutError",
    "SegmindValidationError",
    "redact_key",
]
