"""Segmind's answers as pydantic models: submit handles, status and result answers, credits.

Answers are parsed tolerantly (unknown keys kept, status in any case) because Segmind adds
keys per model and the v2 API is not fully documented; being strict here would turn a harmless
change on Segmind's side into failed tasks.

Only the hooks, the trigger and the sensor's poke need these; the operator's module does not
import them, so a DAG parse does not pay for them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RequestStatus(str, Enum):
    """Lifecycle of a queued (v2) request.

    A ``str`` enum so that plain strings from the API compare equal to members: the answer
    models keep ``status`` a ``str`` (Segmind may add statuses), and code can still write
    ``status == RequestStatus.FAILED``.
    """

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        # Log lines and messages should read "FAILED", not "RequestStatus.FAILED".
        return self.value


#: Statuses after which polling stops: nothing changes any more.
TERMINAL_STATUSES: frozenset[RequestStatus] = frozenset({RequestStatus.COMPLETED, RequestStatus.FAILED})


def _upper_status(value: Any) -> Any:
    # Segmind's examples use upper case, but nothing promises it; comparisons with
    # RequestStatus must not depend on the server's spelling.
    return value.strip().upper() if isinstance(value, str) else value


def _no_null_metrics(value: Any) -> Any:
    return {} if value is None else value


class _Answer(BaseModel):
    """Base of the v2 answers: extra keys kept, status normalised."""

    model_config = ConfigDict(extra="allow")

    status: str

    @field_validator("status", mode="before")
    @classmethod
    def _normalise_status(cls, value: Any) -> Any:
        return _upper_status(value)


class V2SubmitResponse(_Answer):
    """Segmind's answer to a v2 submit: the handle needed to poll and fetch the result."""

    request_id: str
    status: str = RequestStatus.QUEUED.value
    poll_url: str | None = None
    status_url: str
    response_url: str


class V2StatusResponse(_Answer):
    """An answer of the status URL. FAILED arrives as HTTP 422 with ``error`` set."""

    request_id: str | None = None
    error: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        return _no_null_metrics(value)


class V2ResultResponse(V2StatusResponse):
    """An answer of the response URL; ``output`` differs per model, hence ``Any``."""

    output: Any = None

    @property
    def output_urls(self) -> list[str]:
        """The http(s) URLs in ``output``, in order and without repeats.

        Image models put a URL, a list of URLs, or dicts with ``url``/``urls``/``image``/
        ``images`` there; anything else (base64 text, numbers) is not a URL and is skipped.
        Repeats are dropped because one image listed under two keys must be downloaded once.
        """
        urls: list[str] = []
        _collect_urls(self.output, urls, depth=0)
        return list(dict.fromkeys(urls))


_OUTPUT_KEYS = ("url", "urls", "image", "images")


def _collect_urls(value: Any, urls: list[str], *, depth: int) -> None:
    # The depth cap keeps a hostile or odd answer from recursing without end.
    if depth > 4:
        return
    if isinstance(value, str):
        candidate = value.strip()
        if candidate.lower().startswith(("http://", "https://")):
            urls.append(candidate)
    elif isinstance(value, list):
        for item in value:
            _collect_urls(item, urls, depth=depth + 1)
    elif isinstance(value, dict):
        for key in _OUTPUT_KEYS:
            if key in value:
                _collect_urls(value[key], urls, depth=depth + 1)


class CreditsResponse(BaseModel):
    """The account's balance from ``/v1/get-user-credits`` (its key has a hyphen)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    credits: float
    free_credits: float = Field(0.0, alias="free-credits")


__all__ = [
    "TERMINAL_STATUSES",
    "CreditsResponse",
    "RequestStatus",
    "V2ResultResponse",
    "V2StatusResponse",
    "V2SubmitResponse",
]
