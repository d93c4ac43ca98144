"""The local Segmind-compatible server, exercised over real HTTP with requests and httpx."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
from PIL import Image

from airflow_provider_segmind.testing import Fault, RecordedRequest, SegmindTestServer
from airflow_provider_segmind.testing.clock import ManualClock

if TYPE_CHECKING:
    from collections.abc import Callable

    Factory = Callable[..., SegmindTestServer]

API_KEY = "SG_test_key"
GPT = "gpt-image-1.5"
PROMPT = "A lighthouse made of glass at dusk"


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def session_for(server: SegmindTestServer) -> requests.Session:
    session = requests.Session()
    session.headers["x-api-key"] = server.api_key
    return session


def wait_for_status(
    session: requests.Session, url: str, wanted: str, limit: float = 5.0
) -> requests.Response:
    deadline = time.monotonic() + limit
    while True:
        answer = session.get(url)
        if answer.json().get("status") == wanted or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


@pytest.fixture
def server(segmind_server: SegmindTestServer) -> SegmindTestServer:
    """The session's server (reset around each test) with this module's key."""
    segmind_server.api_key = API_KEY
    return segmind_server


@pytest.fixture
def api(server: SegmindTestServer) -> requests.Session:
    with session_for(server) as session:
        return session


# --------------------------------------------------------------------------- basics


def test_package_import_stays_light() -> None:
    code = (
        "import sys; import airflow_provider_segmind.testing, airflow_provider_segmind.testing.pytest_plugin;"
        "bad = [m for m in ('PIL', 'airflow', 'requests', 'httpx') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_addresses_need_a_running_server() -> None:
    server = SegmindTestServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    server.stop()  # stopping a server that never started is harmless


def test_addresses_and_airflow_connection(server: SegmindTestServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.cdn_url.startswith("http://127.0.0.1:")
    assert server.base_url != server.cdn_url
    assert server.api_key == API_KEY
    conn = json.loads(server.airflow_connection_json())
    assert conn == {"conn_type": "segmind", "host": server.base_url, "password": API_KEY}
    assert server.airflow_env() == {"AIRFLOW_CONN_SEGMIND_DEFAULT": server.airflow_connection_json()}
    assert list(server.airflow_env("segmind_other")) == ["AIRFLOW_CONN_SEGMIND_OTHER"]


def test_default_api_key() -> None:
    assert SegmindTestServer().api_key == "SG_local_test_key"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/get-user-credits"),
        ("POST", f"/v1/{GPT}"),
        ("POST", f"/v2/{GPT}"),
        ("GET", "/v2/requests/abc/status"),
        ("GET", "/v2/requests/abc"),
        ("GET", "/nowhere"),
    ],
)
@pytest.mark.parametrize("key", [None, "SG_wrong"])
def test_missing_or_wrong_key_is_401(
    server: SegmindTestServer, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"x-api-key": key}
    answer = requests.request(method, server.base_url + path, headers=headers, json={"prompt": PROMPT})
    assert answer.status_code == 401
    assert answer.json() == {"error": "Invalid API key"}


def test_user_credits(server: SegmindTestServer, api: requests.Session) -> None:
    answer = api.get(f"{server.base_url}/v1/get-user-credits")
    assert answer.status_code == 200
    assert answer.json() == {"credits": 100.0, "free-credits": 0.0}
    server.credits = 1.5
    assert api.get(f"{server.base_url}/v1/get-user-credits").json()["credits"] == 1.5


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", f"/v1/{GPT}"), ("POST", "/v3/anything"), ("DELETE", "/v2/requests/x")],
)
def test_unknown_routes_are_404(
    server: SegmindTestServer, api: requests.Session, method: str, path: str
) -> None:
    answer = api.request(method, server.base_url + path)
    assert answer.status_code == 404
    assert answer.json() == {"error": "Not found"}


def test_keep_alive_serves_many_requests_on_one_connection(server: SegmindTestServer) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/v1/get-user-credits", headers={"x-api-key": API_KEY})
            answer = connection.getresponse()
            assert answer.status == 200
            assert int(answer.headers["Content-Length"]) == len(answer.read())
            assert not answer.will_close
    finally:
        connection.close()


def test_httpx_client(server: SegmindTestServer) -> None:
    with httpx.Client(base_url=server.base_url, headers={"x-api-key": API_KEY}) as client:
        first = client.post(f"/v1/{GPT}", json={"prompt": PROMPT, "size": "1024x1024"})
        second = client.get("/v1/get-user-credits")
    assert first.status_code == 200
    assert decode(first.content).size == (1024, 1024)
    assert second.json()["credits"] == pytest.approx(100 - 0.154)


# --------------------------------------------------------------------------- v1


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
@pytest.mark.parametrize(("size", "expected"), [("1024x1536", (1024, 1536)), ("auto", (1024, 1024))])
def test_v1_bytes_formats_and_sizes(
    server: SegmindTestServer, api: requests.Session, fmt: str, size: str, expected: tuple[int, int]
) -> None:
    answer = api.post(
        f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": size, "output_format": fmt}
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == f"image/{fmt}"
    image = decode(answer.content)
    assert image.format == fmt.upper()
    assert image.size == expected


def test_v1_gpt_image_default_size_and_format(server: SegmindTestServer, api: requests.Session) -> None:
    answer = api.post(f"{server.base_url}/v1/gpt-image-1-mini", json={"prompt": PROMPT})
    image = decode(answer.content)
    assert (image.format, image.size, image.mode) == ("PNG", (1536, 1024), "RGB")


def test_v1_other_models_use_width_and_height(server: SegmindTestServer, api: requests.Session) -> None:
    sized = api.post(
        f"{server.base_url}/v1/flux-schnell", json={"prompt": PROMPT, "width": 320, "height": 200}
    )
    default = api.post(f"{server.base_url}/v1/flux-schnell", json={"prompt": PROMPT})
    assert decode(sized.content).size == (320, 200)
    assert decode(default.content).size == (1024, 1024)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_v1_transparent_background_has_alpha(
    server: SegmindTestServer, api: requests.Session, fmt: str
) -> None:
    body = {"prompt": PROMPT, "size": "1024x1024", "background": "transparent", "output_format": fmt}
    image = decode(api.post(f"{server.base_url}/v1/{GPT}", json=body).content)
    assert image.mode == "RGBA"
    alpha = image.getchannel("A")
    assert alpha.getpixel((0, 0)) == 0
    assert alpha.getpixel((512, 512)) == 255


def test_v1_json_base64(server: SegmindTestServer, api: requests.Session) -> None:
    server.v1_response = "json_base64"
    answer = api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "output_format": "webp"})
    assert answer.headers["Content-Type"] == "application/json"
    image = decode(base64.b64decode(answer.json()["image"]))
    assert (image.format, image.size) == ("WEBP", (1536, 1024))


def test_v1_json_base64_several_images(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(v1_response="json_base64", images_per_request=2)
    answer = session_for(server).post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": "auto"})
    images = answer.json()["image"]
    assert isinstance(images, list)
    assert len(images) == 2
    assert images[0] != images[1]
    assert all(decode(base64.b64decode(item)).size == (1024, 1024) for item in images)
    assert float(answer.headers["X-remaining-credits"]) == pytest.approx(100 - 2 * 0.154)


def test_v1_json_url_is_served_by_the_cdn_without_key(
    server: SegmindTestServer, api: requests.Session
) -> None:
    server.v1_response = "json_url"
    answer = api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "output_format": "jpeg"})
    url = answer.json()["output"]
    assert url.startswith(f"{server.cdn_url}/outputs/")
    assert url.endswith("/0.jpeg")
    download = requests.get(url)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "image/jpeg"
    assert decode(download.content).size == (1536, 1024)
    cdn = server.find(origin="cdn")
    assert [record.status for record in cdn] == [200]
    assert "x-api-key" not in cdn[0].headers


def test_v1_json_url_several_images(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(v1_response="json_url", images_per_request=3)
    urls = session_for(server).post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT}).json()["output"]
    assert [url.rsplit("/", 1)[1] for url in urls] == ["0.png", "1.png", "2.png"]
    assert len({requests.get(url).content for url in urls}) == 3


def test_v1_latency(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(latency=0.3)
    started = time.monotonic()
    answer = session_for(server).post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": "auto"})
    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([1, 2], "JSON object"),
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"prompt": "x" * 32001}, "prompt"),
        ({"prompt": PROMPT, "size": "512x512"}, "size"),
        ({"prompt": PROMPT, "quality": "ultra"}, "quality"),
        ({"prompt": PROMPT, "background": "auto"}, "background"),
        ({"prompt": PROMPT, "moderation": "off"}, "moderation"),
        ({"prompt": PROMPT, "output_format": "gif"}, "output_format"),
        ({"prompt": PROMPT, "output_compression": 101}, "output_compression"),
        ({"prompt": PROMPT, "output_compression": "90"}, "output_compression"),
        ({"prompt": PROMPT, "output_compression": True}, "output_compression"),
    ],
)
@pytest.mark.parametrize("api_version", ["v1", "v2"])
def test_invalid_gpt_image_bodies_are_400(
    server: SegmindTestServer, api: requests.Session, body: Any, needle: str, api_version: str
) -> None:
    answer = api.post(f"{server.base_url}/{api_version}/{GPT}", json=body)
    assert answer.status_code == 400
    assert needle in answer.json()["error"]
    assert server.credits == 100.0


def test_png_with_compression_100_is_accepted(server: SegmindTestServer, api: requests.Session) -> None:
    body = {"prompt": PROMPT, "output_format": "png", "output_compression": 100, "size": "auto"}
    assert api.post(f"{server.base_url}/v1/{GPT}", json=body).status_code == 200


def test_body_that_is_not_json_is_400(server: SegmindTestServer, api: requests.Session) -> None:
    answer = api.post(f"{server.base_url}/v1/{GPT}", data=b"prompt=hello")
    assert answer.status_code == 400


def test_other_models_validate_their_own_fields(server: SegmindTestServer, api: requests.Session) -> None:
    answer = api.post(f"{server.base_url}/v1/sdxl1.0-txt2img", json={"prompt": PROMPT, "width": "wide"})
    assert answer.status_code == 400
    assert "width" in answer.json()["error"]


def test_known_and_retired_models(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(known_models={GPT}, retired_models=["sd1.5-old"])
    api = session_for(server)
    unknown = api.post(f"{server.base_url}/v1/no-such-model", json={"prompt": PROMPT})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Model not found"})
    assert api.post(f"{server.base_url}/v2/no-such-model", json={"prompt": PROMPT}).status_code == 404
    assert api.post(f"{server.base_url}/v1/sd1.5-old", json={"prompt": PROMPT}).status_code == 410
    assert api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": "auto"}).status_code == 200


# --------------------------------------------------------------------------- credits


def test_credits_are_charged_and_reported(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(credits=0.5, price=0.2)
    api = session_for(server)
    body = {"prompt": PROMPT, "size": "auto", "output_format": "jpeg"}
    first = api.post(f"{server.base_url}/v1/{GPT}", json=body)
    second = api.post(f"{server.base_url}/v1/{GPT}", json=body)
    third = api.post(f"{server.base_url}/v1/{GPT}", json=body)
    assert float(first.headers["X-remaining-credits"]) == pytest.approx(0.3)
    assert float(second.headers["X-remaining-credits"]) == pytest.approx(0.1)
    assert (third.status_code, third.json()) == (406, {"error": "Insufficient credits"})
    assert server.credits == pytest.approx(0.1)
    assert api.post(f"{server.base_url}/v2/{GPT}", json=body).status_code == 406
    server.credits = 10.0
    assert api.post(f"{server.base_url}/v2/{GPT}", json=body).status_code == 200
    assert server.credits == pytest.approx(9.8)


def test_exact_credits_buy_exactly_that_many_images(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(credits=0.154 * 3, price=0.154)
    api = session_for(server)
    statuses = [
        api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": "auto"}).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 406]


def test_concurrent_generations_never_overspend(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(credits=1.0, price=0.2, latency=0.1)
    body = {"prompt": PROMPT, "width": 64, "height": 64}
    statuses: list[int] = []

    def generate() -> None:
        answer = requests.post(f"{server.base_url}/v1/flux", json=body, headers={"x-api-key": server.api_key})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=generate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(statuses) == [200] * 5 + [406] * 3
    assert server.credits == pytest.approx(0.0)


# --------------------------------------------------------------------------- rate limit


def test_rate_limit_window_and_retry_after(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(rate_limit=(2, 1.0))
    api = session_for(server)
    body = {"prompt": PROMPT, "width": 32, "height": 32}
    answers = [api.post(f"{server.base_url}/v1/flux", json=body) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].json() == {"error": "Rate limit exceeded"}
    assert answers[2].headers["Retry-After"] == "1"
    # The 429 did not count, and other endpoints do not count with the default scope.
    assert api.get(f"{server.base_url}/v1/get-user-credits").status_code == 200
    assert api.post(f"{server.base_url}/v2/flux", json=body).status_code == 429
    time.sleep(int(answers[2].headers["Retry-After"]) + 0.05)
    assert api.post(f"{server.base_url}/v2/flux", json=body).status_code == 200
    assert server.credits == pytest.approx(100 - 3 * 0.154)


def test_rate_limit_scope_all_and_no_retry_after(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(rate_limit=(1, 30.0), rate_limit_scope="all", send_retry_after=False)
    api = session_for(server)
    assert api.get(f"{server.base_url}/v1/get-user-credits").status_code == 200
    refused = api.get(f"{server.base_url}/v1/get-user-credits")
    assert refused.status_code == 429
    assert "Retry-After" not in refused.headers
    # Unauthorised requests are refused before the limiter sees them; the CDN is never limited.
    assert requests.get(f"{server.base_url}/v1/get-user-credits").status_code == 401
    assert requests.get(f"{server.cdn_url}/outputs/x/0.png").status_code == 404


def test_rate_limit_can_change_at_run_time(server: SegmindTestServer, api: requests.Session) -> None:
    server.rate_limit = (1, 60.0)
    body = {"prompt": PROMPT, "width": 32, "height": 32}
    statuses = [api.post(f"{server.base_url}/v1/flux", json=body).status_code for _ in range(2)]
    assert statuses == [200, 429]
    assert int(api.post(f"{server.base_url}/v1/flux", json=body).headers["Retry-After"]) > 1
    server.rate_limit = None
    assert api.post(f"{server.base_url}/v1/flux", json=body).status_code == 200
    with pytest.raises(ValueError, match="rate_limit"):
        server.rate_limit = (0, 1.0)


def test_rate_limit_segmind_shape(segmind_server_factory: Factory) -> None:
    """Segmind's documented 429: its own body, the reset moment in UTC, no Retry-After."""
    clock = ManualClock(start=datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc).timestamp())
    server = segmind_server_factory(rate_limit=(1, 60.0), rate_limit_headers="segmind", clock=clock)
    api = session_for(server)
    body = {"prompt": PROMPT, "width": 32, "height": 32}
    assert api.post(f"{server.base_url}/v1/flux", json=body).status_code == 200
    clock.advance(15.25)
    refused = api.post(f"{server.base_url}/v1/flux", json=body)
    assert refused.status_code == 429
    assert refused.json() == {"error": "rate_limit_exceeded"}
    assert "Retry-After" not in refused.headers
    assert refused.headers["x-rate-limit-reset-at-utc"] == "2026-11-25T12:01:00.000Z"
    clock.advance(44.75)  # the moment the header named
    assert api.post(f"{server.base_url}/v1/flux", json=body).status_code == 200


@pytest.mark.parametrize(("send_retry_after", "retry_after"), [(True, "46"), (False, None)])
def test_rate_limit_both_shapes(
    segmind_server_factory: Factory, send_retry_after: bool, retry_after: str | None
) -> None:
    clock = ManualClock(start=datetime(2026, 11, 25, 23, 59, 30, tzinfo=timezone.utc).timestamp())
    server = segmind_server_factory(
        rate_limit=(1, 60.0),
        rate_limit_headers="both",
        send_retry_after=send_retry_after,
        clock=clock,
    )
    api = session_for(server)
    api.get(f"{server.base_url}/v1/get-user-credits")  # the default scope does not count this
    assert api.post(f"{server.base_url}/v2/flux", json={"prompt": PROMPT}).status_code == 200
    clock.advance(14.5)
    refused = api.post(f"{server.base_url}/v2/flux", json={"prompt": PROMPT})
    assert (refused.status_code, refused.json()) == (429, {"error": "rate_limit_exceeded"})
    assert refused.headers.get("Retry-After") == retry_after  # 45.5 s, rounded up
    assert refused.headers["x-rate-limit-reset-at-utc"] == "2026-11-26T00:00:30.000Z"


def test_rate_limit_shape_can_change_at_run_time(server: SegmindTestServer, api: requests.Session) -> None:
    server.rate_limit = (1, 60.0)
    server.rate_limit_headers = "segmind"
    body = {"prompt": PROMPT, "width": 32, "height": 32}
    statuses = [api.post(f"{server.base_url}/v1/flux", json=body) for _ in range(2)]
    assert [answer.status_code for answer in statuses] == [200, 429]
    reset_at = datetime.fromisoformat(statuses[1].headers["x-rate-limit-reset-at-utc"].replace("Z", "+00:00"))
    assert 0 < (reset_at - datetime.now(timezone.utc)).total_seconds() <= 60
    with pytest.raises(ValueError, match="rate_limit_headers"):
        server.rate_limit_headers = "x-ratelimit"
    assert server.rate_limit_headers == "segmind"  # a refused change changes nothing


# --------------------------------------------------------------------------- v2


def test_v2_lifecycle(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(generation_seconds=0.3)
    api = session_for(server)
    submitted = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT, "output_format": "webp"})
    assert submitted.status_code == 200
    job = submitted.json()
    request_id = job["request_id"]
    assert len(request_id) == 32
    assert job == {
        "request_id": request_id,
        "status": "QUEUED",
        "poll_url": f"{server.base_url}/v1/requests/{request_id}",
        "status_url": f"{server.base_url}/v2/requests/{request_id}/status",
        "response_url": f"{server.base_url}/v2/requests/{request_id}",
    }
    assert server.credits == pytest.approx(100 - 0.154)

    first = api.get(job["status_url"]).json()
    assert first["status"] in ("QUEUED", "PROCESSING")
    assert first["request_id"] == request_id
    pending = api.get(job["response_url"])
    assert pending.status_code == 200
    assert pending.json()["status"] in ("QUEUED", "PROCESSING")
    assert "output" not in pending.json()

    done = wait_for_status(api, job["status_url"], "COMPLETED")
    assert done.json()["status"] == "COMPLETED"
    assert isinstance(done.json()["metrics"]["inference_time"], float)
    result = api.get(job["response_url"]).json()
    assert api.get(job["poll_url"]).json() == result
    assert result["status"] == "COMPLETED"
    assert result["output"] == f"{server.cdn_url}/outputs/{request_id}/0.webp"

    download = requests.get(result["output"])
    assert download.headers["Content-Type"] == "image/webp"
    assert decode(download.content).size == (1536, 1024)
    assert requests.get(result["output"]).content == download.content  # rendered once, cached
    assert "x-api-key" not in server.find(origin="cdn")[0].headers
    assert {record.status for record in server.requests} == {200}


def test_v2_status_sequence_passes_through_processing(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(generation_seconds=0.3)
    api = session_for(server)
    job = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT}).json()
    seen: list[str] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not seen or seen[-1] != "COMPLETED"):
        seen.append(api.get(job["status_url"]).json()["status"])
        time.sleep(0.03)
    order = list(dict.fromkeys(seen))
    assert order[0] == "QUEUED"
    assert order[-1] == "COMPLETED"
    assert set(order) <= {"QUEUED", "PROCESSING", "COMPLETED"}


def test_v2_cdn_refuses_unfinished_images(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(generation_seconds=30)
    job = session_for(server).post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT}).json()
    assert requests.get(f"{server.cdn_url}/outputs/{job['request_id']}/0.png").status_code == 404


def test_v2_several_images(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(images_per_request=2)
    api = session_for(server)
    job = api.post(f"{server.base_url}/v2/flux", json={"prompt": PROMPT, "width": 96, "height": 64}).json()
    output = api.get(job["response_url"]).json()["output"]
    assert len(output) == 2
    images = [requests.get(url).content for url in output]
    assert images[0] != images[1]
    assert all(decode(image).size == (96, 64) for image in images)
    assert requests.get(output[0].replace("/0.png", "/2.png")).status_code == 404
    assert requests.get(output[0].replace("/0.png", "/0.jpeg")).status_code == 404
    assert requests.head(output[1]).headers["Content-Length"] == str(len(images[1]))


def test_v2_fail_next(server: SegmindTestServer, api: requests.Session) -> None:
    server.fail_next_v2("Content moderation: prompt rejected")
    failing = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT}).json()
    passing = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT}).json()
    for url in (failing["status_url"], failing["response_url"], failing["poll_url"]):
        answer = api.get(url)
        assert answer.status_code == 422
        assert answer.json() == {
            "status": "FAILED",
            "error": "Content moderation: prompt rejected",
            "request_id": failing["request_id"],
            "metrics": {},
        }
    assert requests.get(f"{server.cdn_url}/outputs/{failing['request_id']}/0.png").status_code == 404
    assert api.get(passing["status_url"]).json()["status"] == "COMPLETED"
    assert server.credits == pytest.approx(100 - 2 * 0.154)


def test_v2_results_expire(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(result_ttl=0.3)
    api = session_for(server)
    job = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT, "size": "auto"}).json()
    output = api.get(job["response_url"]).json()["output"]
    assert requests.get(output).status_code == 200
    time.sleep(0.4)
    for url in (job["status_url"], job["response_url"], job["poll_url"]):
        answer = api.get(url)
        assert (answer.status_code, answer.json()) == (404, {"error": "Request not found"})
    assert requests.get(output).status_code == 404


def test_v2_unknown_request_is_404(server: SegmindTestServer, api: requests.Session) -> None:
    assert api.get(f"{server.base_url}/v2/requests/{'0' * 32}/status").status_code == 404
    assert api.get(f"{server.base_url}/v1/requests/{'0' * 32}").status_code == 404


# --------------------------------------------------------------------------- faults


def test_fault_status_with_headers(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault(status=503, message="busy", headers={"Retry-After": "2"}))
    answer = api.get(f"{server.base_url}/v1/get-user-credits")
    assert (answer.status_code, answer.json()) == (503, {"error": "busy"})
    assert answer.headers["Retry-After"] == "2"
    assert api.get(f"{server.base_url}/v1/get-user-credits").status_code == 200


def test_fault_html(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault("html", status=502, message="upstream <down>"))
    answer = api.get(f"{server.base_url}/v1/get-user-credits")
    assert answer.status_code == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in answer.text
    assert "upstream &lt;down&gt;" in answer.text


def test_fault_empty(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault("empty", status=504))
    answer = api.get(f"{server.base_url}/v1/get-user-credits")
    assert (answer.status_code, answer.content, answer.headers["Content-Length"]) == (504, b"", "0")


@pytest.mark.parametrize(
    ("endpoint", "content_type"), [("v1", "image/jpeg"), ("credits", "application/json")]
)
def test_fault_truncated(server: SegmindTestServer, endpoint: str, content_type: str) -> None:
    server.inject(Fault("truncated", endpoint=endpoint))
    with httpx.Client(headers={"x-api-key": API_KEY}) as client:
        if endpoint == "v1":
            request = client.build_request(
                "POST", f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "output_format": "jpeg"}
            )
        else:
            request = client.build_request("GET", f"{server.base_url}/v1/get-user-credits")
        answer = client.send(request, stream=True)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == content_type
        with pytest.raises(httpx.RemoteProtocolError):
            answer.read()
        answer.close()
        # The connection was closed; the client reconnects and the server is fine.
        assert client.get(f"{server.base_url}/v1/get-user-credits").status_code == 200
    assert server.credits == 100.0


def test_fault_truncated_on_cdn_with_requests(server: SegmindTestServer, api: requests.Session) -> None:
    output = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT, "size": "auto"}).json()
    url = api.get(output["response_url"]).json()["output"]
    server.inject(Fault("truncated", endpoint="cdn"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url)
    assert decode(requests.get(url).content).size == (1024, 1024)


def test_fault_wrong_content_type(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault("wrong_content_type", endpoint="v1"))
    answer = api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text


def test_fault_malformed_json(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault("malformed_json", endpoint="v2_result"))
    job = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT}).json()
    answer = api.get(job["response_url"])
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):  # noqa: PT011 - requests raises its own JSONDecodeError subclass
        answer.json()


def test_fault_not_an_image(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault("not_an_image", endpoint="v1"))
    answer = api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT})
    assert (answer.status_code, answer.headers["Content-Type"]) == (200, "image/png")
    with pytest.raises(OSError):  # noqa: PT011 - Pillow's UnidentifiedImageError
        decode(answer.content)


def test_fault_drop(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault("drop", endpoint="v1"))
    with pytest.raises(requests.exceptions.ConnectionError):
        api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT})
    dropped = server.find(path_prefix="/v1/")
    assert len(dropped) == 1
    assert dropped[0].status is None
    assert server.credits == 100.0
    assert api.get(f"{server.base_url}/v1/get-user-credits").status_code == 200


def test_fault_delay_causes_read_timeout_then_carries_on(server: SegmindTestServer) -> None:
    server.inject(
        Fault("delay", delay=1.0, endpoint="credits"), Fault("delay", delay=0.05, endpoint="credits")
    )
    with httpx.Client(headers={"x-api-key": API_KEY}) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"{server.base_url}/v1/get-user-credits", timeout=0.2)
        answer = client.get(f"{server.base_url}/v1/get-user-credits", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["credits"] == 100.0


def test_delay_fault_still_checks_auth_and_charges(server: SegmindTestServer, api: requests.Session) -> None:
    server.inject(Fault("delay", delay=0.01, endpoint="v1", times=2))
    assert requests.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT}).status_code == 401
    assert api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": "auto"}).status_code == 200
    assert server.credits == pytest.approx(100 - 0.154)


def test_faults_apply_in_order_and_are_used_up(server: SegmindTestServer, api: requests.Session) -> None:
    first = Fault(status=502, endpoint="v1", times=2)
    second = Fault(status=500, endpoint="*")
    server.inject(first, second)
    assert server.faults == [first, second]
    url = f"{server.base_url}/v1/{GPT}"
    assert api.get(f"{server.base_url}/v1/get-user-credits").status_code == 500  # only "*" matches
    assert server.faults == [first]
    statuses = [api.post(url, json={"prompt": PROMPT, "size": "auto"}).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    assert server.faults == []
    assert server.credits == pytest.approx(100 - 0.154)


def test_star_faults_never_hit_the_cdn(server: SegmindTestServer, api: requests.Session) -> None:
    server.v1_response = "json_url"
    url = api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": "auto"}).json()["output"]
    server.inject(Fault(status=500))
    assert requests.get(url).status_code == 200
    assert len(server.faults) == 1
    server.clear_faults()
    assert server.faults == []


def test_faulted_requests_do_not_count_for_the_rate_limit(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(rate_limit=(1, 60.0))
    api = session_for(server)
    server.inject(Fault(status=503, endpoint="v1", times=3))
    statuses = [
        api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT, "size": "auto"}).status_code
        for _ in range(5)
    ]
    assert statuses == [503, 503, 503, 200, 429]


def test_fault_trickle_delivers_the_normal_answer_slowly(
    server: SegmindTestServer, api: requests.Session
) -> None:
    server.inject(Fault("trickle", endpoint="credits", interval=0.01, headers={"X-Trickled": "yes"}))
    answer = api.get(f"{server.base_url}/v1/get-user-credits")
    assert answer.status_code == 200
    assert answer.json() == {"credits": 100.0, "free-credits": 0.0}
    assert answer.headers["X-Trickled"] == "yes"
    assert int(answer.headers["Content-Length"]) == len(answer.content)
    assert server.faults == []


def test_fault_trickle_beats_a_read_timeout_but_not_a_deadline(
    server: SegmindTestServer, api: requests.Session
) -> None:
    """Bytes keep coming, so a per-read timeout never fires: only a deadline ends the wait."""
    output = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT, "size": "auto"}).json()
    url = api.get(output["response_url"]).json()["output"]
    size = len(requests.get(url).content)
    server.inject(Fault("trickle", endpoint="cdn", interval=0.05))
    received = b""
    with httpx.Client(timeout=httpx.Timeout(5.0)) as client, client.stream("GET", url) as answer:
        assert answer.status_code == 200
        assert answer.headers["Content-Length"] == str(size)  # the full body's length, up front
        deadline = time.monotonic() + 0.5
        for chunk in answer.iter_raw():
            received += chunk
            if time.monotonic() > deadline:
                break
    assert 0 < len(received) < size
    assert received == requests.get(url).content[: len(received)]  # the real image, byte by byte


def test_fault_trickle_interval_must_be_positive() -> None:
    assert Fault("trickle").interval == 2.0
    with pytest.raises(ValueError, match="interval"):
        Fault("trickle", interval=0)


def test_faults_run_before_auth(server: SegmindTestServer) -> None:
    server.inject(Fault(status=500))
    assert requests.get(f"{server.base_url}/v1/get-user-credits").status_code == 500


@pytest.mark.parametrize(
    "settings",
    [{"kind": "nope"}, {"endpoint": "v3"}, {"times": 0}, {"kind": "delay", "delay": -1.0}],
)
def test_fault_validation(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Fault(**settings)


# --------------------------------------------------------------------------- recording


def test_recording(server: SegmindTestServer, api: requests.Session) -> None:
    before = time.time()
    server.v1_response = "json_url"
    answer = api.post(
        f"{server.base_url}/v1/{GPT}?trace=1&empty=",
        json={"prompt": PROMPT, "size": "auto"},
        headers={"X-Custom-Header": "Yes"},
    )
    requests.get(answer.json()["output"], headers={"User-Agent": "cdn-check"})
    recorded = server.requests
    assert len(recorded) == 2
    generate, cdn = recorded
    assert isinstance(generate, RecordedRequest)
    assert (generate.method, generate.path, generate.origin, generate.status) == (
        "POST",
        f"/v1/{GPT}",
        "api",
        200,
    )
    assert generate.query == {"trace": "1", "empty": ""}
    assert generate.headers["x-api-key"] == API_KEY
    assert generate.headers["x-custom-header"] == "Yes"
    assert generate.headers["content-type"] == "application/json"
    assert generate.json == {"prompt": PROMPT, "size": "auto"}
    assert json.loads(generate.body) == generate.json
    assert before <= generate.timestamp <= cdn.timestamp <= time.time()
    assert (cdn.method, cdn.origin, cdn.status, cdn.json) == ("GET", "cdn", 200, None)
    assert cdn.headers["user-agent"] == "cdn-check"
    assert "x-api-key" not in cdn.headers
    with pytest.raises(AttributeError):
        generate.status = 500  # type: ignore[misc]


def test_subscribe_sees_each_answer_once(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(api_key=API_KEY, rate_limit=(1, 60.0))
    seen: list[RecordedRequest] = []
    server.subscribe(seen.append)
    api = session_for(server)
    api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT})
    api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT})
    server.inject(Fault("drop", endpoint="credits"))
    with pytest.raises(requests.ConnectionError):
        api.get(f"{server.base_url}/v1/get-user-credits")
    assert [(r.method, r.path, r.status) for r in seen] == [
        ("POST", f"/v2/{GPT}", 200),
        ("POST", f"/v2/{GPT}", 429),
        ("GET", "/v1/get-user-credits", None),
    ]
    assert seen == server.requests
    server.reset()  # listeners stay
    api.get(f"{server.base_url}/v1/get-user-credits")
    assert len(seen) == 4
    server.restore_defaults()  # listeners go, as between tests on the session's server
    requests.get(f"{server.base_url}/v1/get-user-credits")
    assert len(seen) == 4


def test_find_filters(server: SegmindTestServer, api: requests.Session) -> None:
    api.get(f"{server.base_url}/v1/get-user-credits")
    requests.get(f"{server.base_url}/v1/get-user-credits")
    api.post(f"{server.base_url}/v1/{GPT}", json={})
    assert len(server.find()) == 3
    assert len(server.find(method="get")) == 2
    assert len(server.find(method="GET", status=401)) == 1
    assert len(server.find(path_prefix="/v1/gpt")) == 1
    assert server.find(status=400)[0].json == {}
    assert server.find(origin="cdn") == []


def test_requests_is_a_snapshot(server: SegmindTestServer, api: requests.Session) -> None:
    snapshot = server.requests
    api.get(f"{server.base_url}/v1/get-user-credits")
    assert snapshot == []
    assert len(server.requests) == 1


def test_reset(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(rate_limit=(1, 60.0))
    api = session_for(server)
    job = api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT}).json()
    server.inject(Fault())
    server.fail_next_v2()
    server.reset()
    assert server.requests == []
    assert server.faults == []
    assert api.get(job["status_url"]).status_code == 404
    assert (
        api.post(f"{server.base_url}/v2/{GPT}", json={"prompt": PROMPT}).status_code == 200
    )  # window reopened
    assert server.credits == pytest.approx(100 - 2 * 0.154)  # credits survive a reset


def test_reset_cuts_off_answers_in_progress(server: SegmindTestServer, api: requests.Session) -> None:
    """A request a test left waiting must not charge, count or record into what follows."""
    server.inject(Fault("delay", delay=60, endpoint="v1"))
    outcome: list[object] = []

    def generate() -> None:
        try:
            outcome.append(api.post(f"{server.base_url}/v1/{GPT}", json={"prompt": PROMPT}, timeout=60))
        except requests.RequestException as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=generate)
    waiting.start()
    deadline = time.monotonic() + 10
    while not server.find(path_prefix="/v1/") and time.monotonic() < deadline:
        time.sleep(0.01)
    server.restore_defaults()
    waiting.join(10)
    assert not waiting.is_alive()
    assert isinstance(outcome[0], requests.ConnectionError)  # cut off, not answered
    assert server.requests == []
    assert server.credits == 100.0


def test_restore_defaults_puts_back_every_setting(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(api_key=API_KEY, credits=5.0, generation_seconds=0.5)
    defaults = server.settings
    server.api_key = "SG_other"
    server.latency = 3.0
    server.generation_seconds = 9.0
    server.rate_limit = (1, 60.0)
    server.rate_limit_headers = "both"
    server.v1_response = "json_url"
    server.images_per_request = 3
    server.known_models = frozenset({GPT})
    server.credits = 0.0
    assert server.settings != defaults
    server.restore_defaults()
    assert server.settings == defaults
    assert (server.api_key, server.generation_seconds, server.credits) == (API_KEY, 0.5, 5.0)


# --------------------------------------------------------------------------- robustness


def test_client_hanging_up_mid_request_does_not_hurt_the_server(segmind_server_factory: Factory) -> None:
    server = segmind_server_factory(latency=0.2)
    host, port = server.base_url.removeprefix("http://").split(":")
    body = json.dumps({"prompt": PROMPT, "size": "auto"}).encode()
    raw = (
        f"POST /v1/{GPT} HTTP/1.1\r\nHost: x\r\nx-api-key: {server.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(raw)
    time.sleep(0.4)
    answer = session_for(server).get(f"{server.base_url}/v1/get-user-credits")
    assert answer.status_code == 200
    assert answer.json()["credits"] == pytest.approx(100 - 3 * 0.154)  # charged although nobody listened


def test_chunked_request_body(server: SegmindTestServer) -> None:
    def chunks() -> Any:
        yield b'{"prompt": "chunked'
        yield b' body", "size": "auto"}'

    answer = requests.post(f"{server.base_url}/v1/{GPT}", data=chunks(), headers={"x-api-key": API_KEY})
    assert answer.status_code == 200
    assert server.requests[0].json == {"prompt": "chunked body", "size": "auto"}


def test_stop_is_quick_idempotent_and_joins_threads() -> None:
    server = SegmindTestServer(latency=30).start()
    host, port = server.base_url.removeprefix("http://").split(":")
    idle = http.client.HTTPConnection(host, int(port), timeout=5)
    idle.request("GET", "/v1/get-user-credits", headers={"x-api-key": server.api_key})
    idle.getresponse().read()  # an idle keep-alive connection stays open

    def generate_until_stopped() -> None:
        # Cut off by stop(): the answer may or may not make it out first.
        with contextlib.suppress(requests.RequestException):
            requests.post(
                f"{server.base_url}/v1/{GPT}",
                json={"prompt": PROMPT},
                headers={"x-api-key": server.api_key},
                timeout=10,
            )

    busy = threading.Thread(target=generate_until_stopped)
    busy.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    server.stop()
    assert time.monotonic() - started < 3
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("segmind-test")]
    assert not server._connections
    busy.join(5)
    idle.close()
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_server_can_be_restarted() -> None:
    server = SegmindTestServer()
    with server:
        first = server.base_url
    with server:
        assert requests.get(
            f"{server.base_url}/v1/get-user-credits", headers={"x-api-key": server.api_key}
        ).ok
    assert first.startswith("http://127.0.0.1:")


def test_start_twice_is_refused(server: SegmindTestServer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        server.start()


@pytest.mark.parametrize(
    "settings",
    [{"v1_response": "xml"}, {"rate_limit_scope": "some"}, {"images_per_request": 0}, {"rate_limit": (1, 0)}],
)
def test_invalid_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        SegmindTestServer(**settings)
