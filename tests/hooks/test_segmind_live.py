"""SegmindHook over real HTTP against the local Segmind-compatible server.

requests-mock proves the rules; this proves them on a socket: real Content-Length and keep-alive,
a truncated body, a dropped connection, a refused port, two origins (API and CDN).
"""

from __future__ import annotations

import io
import json
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.policy import RetryPolicy
from airflow_provider_segmind.testing import Fault

if TYPE_CHECKING:
    from airflow_provider_segmind.testing import SegmindTestServer

PROMPT = "a lighthouse in fog"


@pytest.fixture
def server(segmind_connection: SegmindTestServer) -> SegmindTestServer:
    segmind_connection.generation_seconds = 0.3
    return segmind_connection


@pytest.fixture
def hook(server: SegmindTestServer) -> SegmindHook:
    return SegmindHook(retry_policy=RetryPolicy(initial_backoff=0.05, max_backoff=0.1))


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("fmt", "size", "pil_format"),
    [("png", "1024x1024", "PNG"), ("jpeg", "1536x1024", "JPEG"), ("webp", "1024x1536", "WEBP")],
)
@pytest.mark.parametrize("mode", ["bytes", "json_base64", "json_url"])
def test_generate_every_format_and_answer_shape(
    server: SegmindTestServer, hook: SegmindHook, fmt: str, size: str, pil_format: str, mode: str
) -> None:
    server.v1_response = mode
    result = hook.generate("gpt-image-1.5", {"size": size, "output_format": fmt}, prompt=PROMPT)
    (image,) = result.images
    picture = decoded(image.data)
    assert picture.format == pil_format
    assert f"{picture.width}x{picture.height}" == size
    assert result.remaining_credits == pytest.approx(server.credits)
    for cdn_request in server.find(origin="cdn"):
        assert "x-api-key" not in cdn_request.headers
    (post,) = server.find(method="POST")
    assert post.headers["x-api-key"] == server.api_key


def test_transparent_background_keeps_alpha(hook: SegmindHook) -> None:
    result = hook.generate("gpt-image-1.5", {"size": "1024x1024", "background": "transparent"}, prompt=PROMPT)
    assert decoded(result.images[0].data).mode == "RGBA"


def test_queued_lifecycle_and_streamed_download(server: SegmindTestServer, hook: SegmindHook) -> None:
    handle = hook.submit("gpt-image-1-mini", {"size": "1024x1024", "output_format": "webp"}, prompt=PROMPT)
    assert hook.get_status(handle).status in {"QUEUED", "PROCESSING"}
    result = hook.wait_for_result(handle, poll_interval=0.1, timeout=10)
    (url,) = result.output_urls
    assert url.startswith(server.cdn_url)
    buffer = io.BytesIO()
    downloaded = hook.download(url, buffer, expected_format="webp")
    assert downloaded.format == "webp"
    assert downloaded.size_bytes == len(buffer.getvalue())
    assert decoded(buffer.getvalue()).size == (1024, 1024)
    assert len(server.find(method="POST")) == 1
    assert all(r.method == "GET" for r in server.requests[1:])


def test_queued_failure(server: SegmindTestServer, hook: SegmindHook) -> None:
    server.fail_next_v2(error="Content moderation: prompt rejected")
    handle = hook.submit("gpt-image-1.5", prompt=PROMPT)
    with pytest.raises(exc.SegmindRequestFailedError, match="Content moderation"):
        hook.wait_for_result(handle, poll_interval=0.1, timeout=10)


def test_expired_request_is_not_found(server: SegmindTestServer, hook: SegmindHook) -> None:
    with pytest.raises(exc.SegmindNotFoundError):
        hook.get_result("0123456789abcdef")


@pytest.mark.parametrize(
    ("fault", "error_cls", "posts"),
    [
        (Fault(kind="html", status=502, endpoint="v1"), None, 2),  # retried: nothing was started
        (Fault(kind="status", status=503, endpoint="v1"), None, 2),
        (Fault(kind="status", status=429, endpoint="v1", headers={"Retry-After": "0"}), None, 2),
        (Fault(kind="html", status=500, endpoint="v1"), exc.SegmindServerError, 1),  # may be charged
        (Fault(kind="empty", status=504, endpoint="v1"), exc.SegmindServerError, 1),
        (Fault(kind="drop", endpoint="v1"), exc.SegmindConnectionError, 1),
        (Fault(kind="truncated", endpoint="v1"), exc.SegmindBadResponseError, 1),  # answered: charged
        (Fault(kind="wrong_content_type", endpoint="v1"), exc.SegmindBadResponseError, 1),
        (Fault(kind="malformed_json", endpoint="v1"), exc.SegmindBadResponseError, 1),
        (Fault(kind="not_an_image", endpoint="v1"), exc.SegmindBadResponseError, 1),
        (Fault(kind="status", status=401, endpoint="v1"), exc.SegmindAuthenticationError, 1),
        (Fault(kind="status", status=406, endpoint="v1"), exc.SegmindInsufficientCreditsError, 1),
    ],
)
def test_post_faults_over_http(
    server: SegmindTestServer, hook: SegmindHook, fault: Fault, error_cls: Any, posts: int
) -> None:
    server.inject(fault)
    if error_cls is None:
        assert hook.generate("gpt-image-1.5", prompt=PROMPT).images
    else:
        with pytest.raises(error_cls) as info:
            hook.generate("gpt-image-1.5", prompt=PROMPT)
        assert server.api_key not in str(info.value)
        if fault.kind in ("drop", "truncated") or (
            fault.kind in ("html", "empty") and fault.status in (500, 504)
        ):
            assert info.value.may_have_been_charged
    assert len(server.find(method="POST")) == posts


@pytest.mark.parametrize("kind", ["html", "drop", "truncated", "empty"])
def test_get_faults_are_retried(server: SegmindTestServer, hook: SegmindHook, kind: str) -> None:
    server.inject(Fault(kind=kind, status=502, endpoint="credits", times=2))
    assert hook.get_credits().credits == pytest.approx(server.credits)
    assert len(server.find(path_prefix="/v1/get-user-credits")) == 3


def test_truncated_download_is_retried_then_complete(server: SegmindTestServer, hook: SegmindHook) -> None:
    handle = hook.submit("gpt-image-1.5", {"size": "1024x1024"}, prompt=PROMPT)
    (url,) = hook.wait_for_result(handle, poll_interval=0.1, timeout=10).output_urls
    server.inject(Fault(kind="truncated", endpoint="cdn"))
    image = hook.download_image(url, expected_format="png")
    assert decoded(image.data).size == (1024, 1024)
    assert len(server.find(origin="cdn")) == 2


def test_refused_connection_is_retried_even_for_post(
    server: SegmindTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was sent, so re-sending the POST cannot pay twice."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMIND_DEFAULT",
        json.dumps(
            {"conn_type": "segmind", "host": f"http://127.0.0.1:{dead_port}", "password": server.api_key}
        ),
    )
    hook = SegmindHook(retry_policy=RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02))
    attempts: list[float] = []
    original = hook._open

    def counting(*args: Any, **kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        return original(*args, **kwargs)

    monkeypatch.setattr(hook, "_open", counting)
    with pytest.raises(exc.SegmindConnectionError) as info:
        hook.generate("gpt-image-1.5", prompt=PROMPT)
    assert info.value.sent is False
    assert not info.value.may_have_been_charged
    assert len(attempts) == 3


def test_read_timeout_on_post_is_not_resent(server: SegmindTestServer) -> None:
    server.latency = 2.0
    hook = SegmindHook(read_timeout=0.5, retry_policy=RetryPolicy(initial_backoff=0.01, max_backoff=0.02))
    with pytest.raises(exc.SegmindTimeoutError) as info:
        hook.generate("gpt-image-1.5", prompt=PROMPT)
    assert info.value.may_have_been_charged
    assert len(server.find(method="POST")) == 1


def test_rate_limit_over_http(server: SegmindTestServer, hook: SegmindHook) -> None:
    server.rate_limit = (1, 3.0)  # wide enough that the second call lands in the same window
    hook.generate("gpt-image-1.5", {"size": "1024x1024", "quality": "low"}, prompt=PROMPT)
    hook.generate("gpt-image-1.5", {"size": "1024x1024", "quality": "low"}, prompt=PROMPT)
    statuses = [r.status for r in server.find(method="POST")]
    assert statuses.count(200) == 2
    assert 429 in statuses


def test_credits_and_test_connection(server: SegmindTestServer, hook: SegmindHook) -> None:
    ok, message = hook.test_connection()
    assert ok
    assert server.base_url in message
    server.credits = 0.0
    with pytest.raises(exc.SegmindInsufficientCreditsError):
        hook.generate("gpt-image-1.5", prompt=PROMPT)


def test_wrong_key(server: SegmindTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SEGMIND_DEFAULT",
        json.dumps({"conn_type": "segmind", "host": server.base_url, "password": "SG_wrong_key_123456"}),
    )
    ok, message = SegmindHook().test_connection()
    assert not ok
    assert "401" in message
    assert "SG_wrong_key_123456" not in message
