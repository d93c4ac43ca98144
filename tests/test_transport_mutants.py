"""Transport-core behaviours that mutation testing (scripts/mutation.sh) found untested.

Whatever the failure, the typed error keeps the request id (to look the request up at Segmind),
says whether a POST may have been charged, names the deadline that passed, and never quotes the
API key, whether it came back in a library's message or in an unreadable answer body.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.deadline import Deadline
from airflow_provider_segmind.policy import is_retryable
from airflow_provider_segmind.transport import Call, Failure, check_answer, parse_model, transport_error

KEY = "SG_transport_mutants_secret_0123456789"
POLL = Call(
    method="GET", url="https://api.segmind.test/v2/requests/r1/status", what="GET status", request_id="r1"
)
SUBMIT = Call(method="POST", url="https://api.segmind.test/v2/gpt-image-1.5", what="POST /v2/gpt-image-1.5")


@pytest.mark.parametrize(
    ("failure", "error_cls", "message"),
    [
        (Failure.NOT_SENT, exc.SegmindConnectionError, "could not connect"),
        (Failure.TIMED_OUT, exc.SegmindTimeoutError, "no answer within the read timeout"),
        (Failure.DEADLINE, exc.SegmindTimeoutError, "stopped waiting at the deadline"),
        (Failure.CUT_OFF, exc.SegmindBadResponseError, "the answer broke off"),
        (Failure.BROKEN, exc.SegmindConnectionError, "the connection failed"),
    ],
)
@pytest.mark.parametrize("call", [POLL, SUBMIT], ids=["GET", "POST"])
def test_each_failure_is_typed_keeps_the_request_and_hides_the_key(
    failure: Failure, error_cls: type[exc.SegmindError], message: str, call: Call
) -> None:
    detail = f"peer said: Authorization: Bearer {KEY}"
    err = transport_error(call, failure, detail, api_key=KEY)
    assert type(err) is error_cls
    assert err.message == f"{call.what}: {message} (peer said: Authorization: Bearer ***)."
    assert KEY not in str(err)
    sent = failure is not Failure.NOT_SENT
    assert err.may_have_been_charged is (sent and call.method == "POST")
    if sent:
        assert err.request_id == call.request_id
    # The money rule: only a POST that never left the machine is sent again.
    assert is_retryable(err, call.method) is (call.method == "GET" or not sent)


def test_deadline_failure_names_the_deadline_that_passed() -> None:
    bound = Deadline.after(60, "timeout=60 s")
    err = transport_error(
        POLL, Failure.DEADLINE, "the answer did not arrive in time", api_key=None, deadline=bound
    )
    assert err.message == "GET status: stopped waiting at timeout=60 s (the answer did not arrive in time)."


def test_deadline_passed_before_sending_a_post_is_not_charged() -> None:
    err = transport_error(SUBMIT, Failure.DEADLINE, "not sent", api_key=None, sent=False)
    assert err.may_have_been_charged is False


def test_error_answer_keeps_the_call_the_request_and_segmind_text() -> None:
    html = b"<html><head><title>503 Service Temporarily Unavailable</title></head></html>"
    with pytest.raises(exc.SegmindServerError) as info:
        check_answer(POLL, 503, {"Content-Type": "text/html"}, html, api_key=KEY)
    err = info.value
    assert err.message == "GET status: server error."
    assert (err.status_code, err.request_id) == (503, "r1")
    assert err.error_text == "503 Service Temporarily Unavailable"


class Answer(BaseModel):
    request_id: str


@pytest.mark.parametrize(
    "body",
    [
        b'{"echo": "' + KEY.encode() + b'", "oops": ',
        b"\xff\xfe not utf-8, not json " + KEY.encode(),
    ],
    ids=["cut-json-echoing-the-key", "not-utf-8"],
)
def test_unreadable_answer_is_a_typed_error_with_a_scrubbed_snippet(body: bytes) -> None:
    with pytest.raises(exc.SegmindBadResponseError) as info:
        parse_model(Answer, POLL, 200, body, api_key=KEY)
    err = info.value
    assert KEY not in str(err)
    assert (err.status_code, err.request_id) == (200, "r1")
    assert err.message.startswith(
        "GET status: the answer could not be read as Answer (ValidationError); body starts '"
    )
    assert "***" in err.message
