"""Routing and answering without sockets: a recorded request in, an Answer out."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from airflow_provider_segmind.testing import responses
from airflow_provider_segmind.testing.backend import SegmindBackend
from airflow_provider_segmind.testing.clock import ManualClock
from airflow_provider_segmind.testing.faults import Fault
from airflow_provider_segmind.testing.recording import RecordedRequest
from airflow_provider_segmind.testing.responses import Addresses, Answer, Call, format_utc, rate_limited
from airflow_provider_segmind.testing.routes import classify_endpoint, match_route
from airflow_provider_segmind.testing.settings import ServerSettings

ADDRESSES = Addresses("http://api.local", "http://cdn.local")
KEY = {"x-api-key": "SG_local_test_key"}


@pytest.mark.parametrize(
    ("method", "path", "origin", "endpoint", "slug", "request_id", "file"),
    [
        ("POST", "/v1/gpt-image-1.5", "api", "v1", "gpt-image-1.5", "", ""),
        ("POST", "/v2/flux", "api", "v2_submit", "flux", "", ""),
        ("GET", "/v2/requests/abc/status", "api", "v2_status", "", "abc", ""),
        ("GET", "/v2/requests/abc", "api", "v2_result", "", "abc", ""),
        ("GET", "/v1/requests/abc", "api", "v2_result", "", "abc", ""),
        ("GET", "/v1/get-user-credits", "api", "credits", "", "", ""),
        ("POST", "/v1/get-user-credits", "api", "other", "", "", ""),
        ("GET", "/v1/gpt-image-1.5", "api", "other", "", "", ""),
        ("GET", "/outputs/abc/0.png", "cdn", "cdn", "", "abc", "0.png"),
        ("HEAD", "/outputs/abc/1.webp", "cdn", "cdn", "", "abc", "1.webp"),
    ],
)
def test_match_route(
    method: str, path: str, origin: str, endpoint: str, slug: str, request_id: str, file: str
) -> None:
    route = match_route(method, path, origin)
    assert (route.endpoint, route.slug, route.request_id, route.file) == (endpoint, slug, request_id, file)
    assert classify_endpoint(method, path, origin) == endpoint
    assert (route.handler is None) == (endpoint == "other")


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/outputs/a/0.png"), ("GET", "/outputs/a"), ("GET", "/")]
)
def test_other_cdn_paths_have_no_handler(method: str, path: str) -> None:
    route = match_route(method, path, "cdn")
    assert (route.endpoint, route.handler) == ("cdn", None)


def answer(backend: SegmindBackend, method: str, path: str, body: object = None) -> Answer:
    raw = json.dumps(body).encode() if body is not None else b""
    record = RecordedRequest(method, path, {}, dict(KEY), raw, body, "api", None, 0.0)
    call = Call(backend, record, match_route(method, path, "api"), ADDRESSES)
    return asyncio.run(responses.respond(call))


def test_pipeline_order_fault_then_key_then_limit() -> None:
    backend = SegmindBackend(ServerSettings(rate_limit=(1, 60.0), rate_limit_scope="all"), 1.0, ManualClock())
    backend.faults.add(Fault(status=502))
    assert answer(backend, "GET", "/v1/get-user-credits").status == 502  # before the limit counts
    assert answer(backend, "GET", "/v1/get-user-credits").status == 200
    assert answer(backend, "GET", "/v1/get-user-credits").status == 429
    backend.update(api_key="SG_other")
    assert answer(backend, "GET", "/v1/get-user-credits").status == 401  # key before limit


def test_submit_hands_out_urls_on_the_addresses() -> None:
    backend = SegmindBackend(ServerSettings(), 1.0, ManualClock())
    submitted = answer(backend, "POST", "/v2/flux", {"prompt": "p"})
    payload = json.loads(submitted.body)
    assert payload["status_url"] == f"http://api.local/v2/requests/{payload['request_id']}/status"
    assert submitted.headers == {"X-remaining-credits": "0.846"}
    result = json.loads(answer(backend, "GET", f"/v2/requests/{payload['request_id']}").body)
    assert result["output"] == f"http://cdn.local/outputs/{payload['request_id']}/0.png"


def test_trickle_marks_the_normal_answer() -> None:
    backend = SegmindBackend(ServerSettings(), 1.0, ManualClock())
    backend.faults.add(Fault("trickle", interval=0.5, headers={"X-Slow": "1"}))
    trickled = answer(backend, "GET", "/v1/get-user-credits")
    assert (trickled.status, trickled.delivery, trickled.interval) == (200, "trickle", 0.5)
    assert json.loads(trickled.body)["credits"] == 1.0
    assert trickled.headers["X-Slow"] == "1"


@pytest.mark.parametrize(
    ("kind", "delivery"), [("drop", "drop"), ("truncated", "truncate"), ("status", "normal")]
)
def test_broken_deliveries(kind: str, delivery: str) -> None:
    backend = SegmindBackend(ServerSettings(), 1.0, ManualClock())
    backend.faults.add(Fault(kind, endpoint="credits"))
    assert answer(backend, "GET", "/v1/get-user-credits").delivery == delivery


@pytest.mark.parametrize(
    ("shape", "send_retry_after", "body", "headers"),
    [
        ("retry_after", True, "Rate limit exceeded", {"Retry-After": "13"}),
        ("retry_after", False, "Rate limit exceeded", {}),
        ("segmind", True, "rate_limit_exceeded", {"x-rate-limit-reset-at-utc": "2026-01-01T00:00:12.250Z"}),
        (
            "both",
            True,
            "rate_limit_exceeded",
            {"Retry-After": "13", "x-rate-limit-reset-at-utc": "2026-01-01T00:00:12.250Z"},
        ),
        ("both", False, "rate_limit_exceeded", {"x-rate-limit-reset-at-utc": "2026-01-01T00:00:12.250Z"}),
    ],
)
def test_429_shapes(shape: str, send_retry_after: bool, body: str, headers: dict[str, str]) -> None:
    settings = ServerSettings(rate_limit_headers=shape, send_retry_after=send_retry_after)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    refused = rate_limited(12.25, settings, now)
    assert (refused.status, json.loads(refused.body), refused.headers) == (429, {"error": body}, headers)


def test_reset_header_parses_as_utc() -> None:
    text = format_utc(1_795_611_296.789)
    assert text == "2026-11-25T12:54:56.789Z"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed.timestamp() == pytest.approx(1_795_611_296.789)
