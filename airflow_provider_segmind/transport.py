"""The transport core: what a call to Segmind means, written once for both HTTP clients.

The worker's hook speaks ``requests`` and the triggerer's speaks ``httpx``; everything that is
not the client library lives here, so the two cannot drift (the http provider's twins raise
different types for the same 404). This module decides:

* which answers are errors, and which typed error (through ``policy.error_for_answer``);
* what a failed transport means: never sent, timed out, broken after sending, or stopped at the
  deadline; and whether a POST may have been charged;
* how an answer body is read into a model, without quoting the key back;
* how long each attempt may wait: the caller's deadline, else connect + read timeout in all.

Each hook keeps only the adapter for its library: how to send, how to read a body, and which of
its exceptions is which :class:`Failure`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_segmind.deadline import Deadline
from airflow_provider_segmind.exceptions import (
    SegmindBadResponseError,
    SegmindConnectionError,
    SegmindError,
    SegmindTimeoutError,
    redact_key,
)
from airflow_provider_segmind.policy import error_for_answer, header_value
from airflow_provider_segmind.responses import is_failed_answer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import BaseModel

    from airflow_provider_segmind.connection import ConnectionSettings

M = TypeVar("M", bound="BaseModel")
#: Longest part of an unreadable body quoted in an error (after the key is scrubbed).
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class Call:
    """One logical call: what is sent, and how its answer is judged.

    :param method: ``GET`` or ``POST``; a POST is a paid generation and is retried only where
        Segmind cannot have started it.
    :param url: the absolute URL.
    :param what: the call in words (``"POST /v2/gpt-image-1.5"``); it starts every message.
    :param json_body: the JSON body of a POST.
    :param accept_failed: a 422 whose body says FAILED is an answer (a v2 status or result), not
        an error.
    :param request_id: the queued request this call is about, for messages.
    :param deadline: when the call, retries included, must be over.
    """

    method: str
    url: str
    what: str
    json_body: Any = None
    accept_failed: bool = False
    request_id: str | None = None
    deadline: Deadline | None = None


class Failure(enum.Enum):
    """What went wrong below HTTP; each client adapter maps its own exceptions to one of these."""

    #: The request never left this machine (refused, DNS, connect timeout): free to re-send.
    NOT_SENT = "not sent"
    #: No answer within a read timeout: the request may have been received.
    TIMED_OUT = "timed out"
    #: The connection failed after the request was sent, or the answer broke off.
    BROKEN = "broken"
    #: The answer's body broke off after its headers arrived: the server did answer.
    CUT_OFF = "cut off"
    #: The call's deadline passed while waiting; the request may have been received.
    DEADLINE = "deadline"


def transport_error(
    call: Call,
    failure: Failure,
    detail: str,
    *,
    api_key: str | None,
    deadline: Deadline | None = None,
    sent: bool = True,
) -> SegmindError:
    """The typed error for a failed transport, whichever library failed.

    :param detail: the library's own description (its exception); scrubbed of the key.
    :param deadline: the deadline that passed, for ``Failure.DEADLINE``.
    :param sent: False when the deadline had passed before anything was sent.
    """
    detail = redact_key(detail, api_key)
    charged = sent and call.method.upper() == "POST"
    if failure is Failure.NOT_SENT:
        return SegmindConnectionError(f"{call.what}: could not connect ({detail}).", sent=False)
    if failure is Failure.TIMED_OUT:
        return SegmindTimeoutError(
            f"{call.what}: no answer within the read timeout ({detail}).",
            may_have_been_charged=charged,
            request_id=call.request_id,
        )
    if failure is Failure.DEADLINE:
        bound = deadline.what if deadline is not None else "the deadline"
        return SegmindTimeoutError(
            f"{call.what}: stopped waiting at {bound} ({detail}).",
            may_have_been_charged=charged,
            request_id=call.request_id,
        )
    if failure is Failure.CUT_OFF:
        return SegmindBadResponseError(
            f"{call.what}: the answer broke off ({detail}).",
            may_have_been_charged=charged,
            request_id=call.request_id,
        )
    return SegmindConnectionError(
        f"{call.what}: the connection failed ({detail}).",
        sent=True,
        may_have_been_charged=charged,
        request_id=call.request_id,
    )


def check_answer(
    call: Call,
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    api_key: str | None,
) -> None:
    """Raise the typed error for an answer that is one; return for an answer to use."""
    if status_code < 400 or (call.accept_failed and is_failed_answer(status_code, body)):
        return
    raise error_for_answer(
        status_code,
        method=call.method,
        what=call.what,
        body=body,
        content_type=header_value(headers, "content-type"),
        headers=headers,
        api_key=api_key,
        request_id=call.request_id,
    )


def parse_model(model_cls: type[M], call: Call, status_code: int, body: bytes, *, api_key: str | None) -> M:
    """Read an answer body into ``model_cls``; an unreadable one raises with a scrubbed snippet."""
    try:
        return model_cls.model_validate_json(body)
    except ValueError as err:
        text = body.decode("utf-8", "replace")
        # Scrub before cutting, so a key is never split across the cut and half-quoted.
        snippet = redact_key(text, api_key)[:SNIPPET_CHARS]
        raise SegmindBadResponseError(
            f"{call.what}: the answer could not be read as {model_cls.__name__} "
            f"({type(err).__name__}); body starts {snippet!r}.",
            status_code=status_code,
            request_id=call.request_id,
        ) from None


def attempt_deadline(settings: ConnectionSettings, call_deadline: Deadline | None) -> Deadline:
    """The moment one attempt must be over: the call's deadline, or else connect + read timeout.

    Per-read timeouts alone would let a server that trickles a byte at a time hold a call
    forever; this bounds the whole attempt, headers and body included.
    """
    if call_deadline is not None:
        return call_deadline
    total = settings.connect_timeout + settings.read_timeout
    return Deadline.after(total, f"the connect + read timeout ({total:g} s in all)")


def socket_timeouts(settings: ConnectionSettings, deadline: Deadline) -> tuple[float, float]:
    """(connect, read) timeouts for one attempt: the connection's, cut to the time left."""
    floor = 0.001  # a timeout of 0 means "non-blocking" to sockets, not "already late"
    return (
        max(floor, deadline.clamp(settings.connect_timeout)),
        max(floor, deadline.clamp(settings.read_timeout)),
    )


__all__ = [
    "Call",
    "Deadline",
    "Failure",
    "attempt_deadline",
    "check_answer",
    "parse_model",
    "socket_timeouts",
    "transport_error",
]
