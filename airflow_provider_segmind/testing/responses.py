"""What the local Segmind server answers: a recorded request in, an :class:`Answer` out.

Like moto's ``responses.py``, this holds one handler per request class and the order Segmind
applies its checks in: scripted faults first (a gateway fails before Segmind looks at the key),
then the key, then the rate limit, then the handler. Answers are plain values; how each is put on
the wire, including the deliberately broken ways (cut short, dropped, trickled), is the HTTP
layer's job, so everything here can be exercised without a socket.

Pillow is imported only when an image is drawn, in a worker thread so the event loop keeps
answering polls meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from airflow_provider_segmind.testing.backend import COMPLETED, FAILED, QUEUED, Job, SegmindBackend
from airflow_provider_segmind.testing.validation import (
    IMAGE_FORMATS,
    BadRequest,
    GenerationParams,
    parse_generation,
)

if TYPE_CHECKING:
    from airflow_provider_segmind.testing.faults import Fault
    from airflow_provider_segmind.testing.recording import RecordedRequest
    from airflow_provider_segmind.testing.routes import Route
    from airflow_provider_segmind.testing.settings import ServerSettings

#: How an answer is put on the wire: ``normal``; ``truncate`` (half the body under the full
#: Content-Length, then close); ``drop`` (close without answering); ``trickle`` (one body byte
#: every ``interval`` seconds).
DELIVERIES = frozenset({"normal", "truncate", "drop", "trickle"})


@dataclass(frozen=True)
class Answer:
    """An answer before it is written. ``content_type`` None sends no Content-Type at all."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delivery: str = "normal"
    interval: float = 0.0


@dataclass(frozen=True)
class Addresses:
    """Where the server is reached, for the URLs it hands out (v2 poll URLs, CDN outputs)."""

    base_url: str
    cdn_url: str


@dataclass(frozen=True)
class Call:
    """Everything a handler needs to answer one request."""

    backend: SegmindBackend
    record: RecordedRequest
    route: Route
    addresses: Addresses


Handler = Callable[[Call], Awaitable[Answer]]


# --------------------------------------------------------------------------- building answers


def json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def error_answer(status: int, message: str) -> Answer:
    """Segmind's error shape: ``{"error": "<message>"}``."""
    return json_answer(status, {"error": message})


def dropped() -> Answer:
    return Answer(0, content_type=None, delivery="drop")


def format_credits(value: float) -> str:
    return repr(round(value, 9))


def format_utc(timestamp: float) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2026-11-25T12:34:56.789Z``."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def image_type(fmt: str) -> str:
    return f"image/{fmt}"


async def render(params: GenerationParams, variant: int) -> bytes:
    """Draw an image in a worker thread; Pillow is imported only here, on first use."""
    from airflow_provider_segmind.testing.images import render_image

    return await asyncio.to_thread(
        render_image,
        params.prompt,
        params.width,
        params.height,
        params.fmt,
        transparent=params.transparent,
        quality=params.quality,
        variant=variant,
    )


# --------------------------------------------------------------------------- the pipeline


async def respond(call: Call) -> Answer:
    """Answer one request: faults, then (API only) key and rate limit, then the route's handler."""
    backend, route = call.backend, call.route
    fault = backend.faults.take(route.endpoint)
    if fault is not None and fault.kind not in ("delay", "trickle"):
        return await fault_answer(fault, call.record, route.endpoint)
    if fault is not None and fault.delay > 0:
        await asyncio.sleep(fault.delay)
    answer = await (_cdn_answer(call) if route.endpoint == "cdn" else _api_answer(call))
    if fault is None:
        return answer
    answer = replace(answer, headers={**answer.headers, **fault.headers})
    if fault.kind == "trickle":
        answer = replace(answer, delivery="trickle", interval=fault.interval)
    return answer


async def _cdn_answer(call: Call) -> Answer:
    """The CDN needs no key and is never rate limited, like ``images.segmind.com``."""
    if call.route.handler is None:
        return error_answer(404, "Not found")
    return await call.route.handler(call)


async def _api_answer(call: Call) -> Answer:
    backend = call.backend
    settings = backend.settings
    if call.record.headers.get("x-api-key") != settings.api_key:
        return error_answer(401, "Invalid API key")
    wait = backend.admit(call.route.endpoint)
    if wait is not None:
        return rate_limited(wait, settings, backend.clock.time())
    if call.route.handler is None:
        return error_answer(404, "Not found")
    return await call.route.handler(call)


def rate_limited(wait: float, settings: ServerSettings, now: float) -> Answer:
    """A 429 in the shape ``settings.rate_limit_headers`` asks for; ``now`` is the wall time.

    ``retry_after`` is this server's original shape; ``segmind`` the one Segmind documents (its
    reset header's exact format is unverified); ``both`` Segmind's with ``Retry-After`` added.
    """
    shape = settings.rate_limit_headers
    headers: dict[str, str] = {}
    if shape in ("retry_after", "both") and settings.send_retry_after:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if shape in ("segmind", "both"):
        headers["x-rate-limit-reset-at-utc"] = format_utc(now + wait)
    message = "Rate limit exceeded" if shape == "retry_after" else "rate_limit_exceeded"
    return json_answer(429, {"error": message}, headers)


# --------------------------------------------------------------------------- handlers


async def generate_v1(call: Call) -> Answer:
    """``POST /v1/<slug>``: the image after ``latency``, as bytes or JSON (``v1_response``)."""
    accepted = _accept_generation(call)
    if isinstance(accepted, Answer):
        return accepted
    params, remaining, settings = accepted
    if settings.latency > 0:
        await asyncio.sleep(settings.latency)
    headers = {"X-remaining-credits": format_credits(remaining)}
    mode, count = settings.v1_response, settings.images_per_request
    if mode == "bytes":
        return Answer(200, await render(params, 0), image_type(params.fmt), headers)
    images = [await render(params, variant) for variant in range(count)]
    if mode == "json_base64":
        encoded = [base64.b64encode(image).decode("ascii") for image in images]
        return json_answer(200, {"image": encoded if count > 1 else encoded[0]}, headers)
    job = call.backend.new_job("v1", params, count=count, queued=False)
    for index, image in enumerate(images):
        call.backend.keep_image(job, index, image)
    urls = _output_urls(job, call.addresses)
    return json_answer(200, {"output": urls if count > 1 else urls[0]}, headers)


async def submit_v2(call: Call) -> Answer:
    """``POST /v2/<slug>``: queue the generation and hand out its poll URLs."""
    accepted = _accept_generation(call)
    if isinstance(accepted, Answer):
        return accepted
    params, remaining, settings = accepted
    job = call.backend.new_job("v2", params, count=settings.images_per_request, queued=True)
    request_id, base = job.request_id, call.addresses.base_url
    payload = {
        "request_id": request_id,
        "status": QUEUED,
        "poll_url": f"{base}/v1/requests/{request_id}",
        "status_url": f"{base}/v2/requests/{request_id}/status",
        "response_url": f"{base}/v2/requests/{request_id}",
    }
    return json_answer(200, payload, {"X-remaining-credits": format_credits(remaining)})


def _v2_job(call: Call) -> tuple[Job, str] | Answer:
    """The queued job a status or result poll names, with its state; or the 404 / FAILED answer
    both polls give."""
    job = call.backend.find_job(call.route.request_id, api="v2")
    if job is None:
        return error_answer(404, "Request not found")
    state = call.backend.job_state(job)
    if state == FAILED:
        return _failed(job)
    return job, state


async def v2_status(call: Call) -> Answer:
    """``GET /v2/requests/<id>/status``: QUEUED, PROCESSING, COMPLETED, or FAILED as a 422."""
    found = _v2_job(call)
    if isinstance(found, Answer):
        return found
    job, state = found
    metrics = job.metrics() if state == COMPLETED else {}
    return json_answer(200, {"status": state, "request_id": job.request_id, "metrics": metrics})


async def v2_result(call: Call) -> Answer:
    """``GET /v2/requests/<id>`` (or ``/v1/requests/<id>``): the output URLs once COMPLETED."""
    found = _v2_job(call)
    if isinstance(found, Answer):
        return found
    job, state = found
    if state != COMPLETED:
        return json_answer(200, {"status": state, "request_id": job.request_id})
    urls = _output_urls(job, call.addresses)
    payload: dict[str, Any] = {
        "status": COMPLETED,
        "request_id": job.request_id,
        "metrics": job.metrics(),
        "output": urls if job.count > 1 else urls[0],
    }
    return json_answer(200, payload)


async def user_credits(call: Call) -> Answer:
    """``GET /v1/get-user-credits``."""
    return json_answer(200, {"credits": call.backend.credits, "free-credits": 0.0})


async def cdn_file(call: Call) -> Answer:
    """``GET /outputs/<id>/<index>.<format>`` on the CDN: a finished job's image, drawn once."""
    backend, route = call.backend, call.route
    index, _, ext = route.file.partition(".")
    job = backend.find_job(route.request_id)
    if (
        job is None
        or not index.isdigit()
        or int(index) >= job.count
        or IMAGE_FORMATS.get(ext) != job.params.fmt
        or backend.job_state(job) != COMPLETED
    ):
        return error_answer(404, "Not found")
    cached = backend.cached_image(job, int(index))
    data = cached if cached is not None else await render(job.params, int(index))
    return Answer(200, backend.keep_image(job, int(index), data), image_type(job.params.fmt))


def _accept_generation(call: Call) -> tuple[GenerationParams, float, ServerSettings] | Answer:
    """Everything v1 and v2 share before generating: model, body, credits (charged here).

    Charging at acceptance, atomically with the check, means concurrent requests can never
    spend more than the account holds, and a client that gives up during ``latency`` has
    still paid, which is the behaviour the provider must be careful about. The settings are
    read once, so one request never mixes two versions of them.
    """
    settings = call.backend.settings
    slug = call.route.slug
    if slug in settings.retired_models:
        return error_answer(410, f"Model {slug} has been retired")
    if settings.known_models is not None and slug not in settings.known_models:
        return error_answer(404, "Model not found")
    try:
        params = parse_generation(slug, call.record.json)
    except BadRequest as exc:
        return error_answer(400, str(exc))
    remaining = call.backend.charge(settings.price * settings.images_per_request)
    if remaining is None:
        return error_answer(406, "Insufficient credits")
    return params, remaining, settings


def _output_urls(job: Job, addresses: Addresses) -> list[str]:
    ext = job.params.fmt
    return [f"{addresses.cdn_url}/outputs/{job.request_id}/{n}.{ext}" for n in range(job.count)]


def _failed(job: Job) -> Answer:
    payload: dict[str, Any] = {
        "status": FAILED,
        "error": job.error,
        "request_id": job.request_id,
        "metrics": {},
    }
    return json_answer(422, payload)


# --------------------------------------------------------------------------- faults


async def fault_answer(fault: Fault, record: RecordedRequest, endpoint: str) -> Answer:
    """The broken answer a fault stands for (``delay`` and ``trickle`` never get here)."""
    headers = dict(fault.headers)
    if fault.kind == "status":
        return json_answer(fault.status, {"error": fault.message}, headers)
    if fault.kind == "html":
        return Answer(
            fault.status, html_page(fault.status, fault.message), "text/html; charset=utf-8", headers
        )
    if fault.kind == "empty":
        return Answer(fault.status, b"", None, headers)
    if fault.kind == "truncated":
        return await _truncated(record, endpoint, headers)
    if fault.kind == "wrong_content_type":
        return Answer(200, b"upstream is busy, try later\n", "text/plain; charset=utf-8", headers)
    if fault.kind == "malformed_json":
        return Answer(200, b'{"status": "COMPLETED", "output": ["http://', "application/json", headers)
    if fault.kind == "not_an_image":
        return Answer(200, b"this is not an image, just some text\n" * 4, "image/png", headers)
    return dropped()


def html_page(status: int, message: str) -> bytes:
    """An nginx-style error page, as a gateway in front of Segmind would send."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    page = (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>"
        f"<body><center><h1>{title}</h1></center><hr><p>{html.escape(message)}</p></body></html>\n"
    )
    return page.encode()


async def _truncated(record: RecordedRequest, endpoint: str, headers: dict[str, str]) -> Answer:
    """A plausible body, to be cut short: image endpoints get an image, others JSON."""
    if endpoint in ("v1", "cdn"):
        fmt = _requested_format(record, endpoint)
        prompt = record.json.get("prompt") if isinstance(record.json, dict) else None
        params = GenerationParams(str(prompt or "truncated"), 256, 256, fmt, False, 90)
        return Answer(200, await render(params, 0), image_type(fmt), headers, delivery="truncate")
    body = json.dumps({"status": COMPLETED, "request_id": "truncated", "metrics": {}}).encode()
    return Answer(200, body, "application/json", headers, delivery="truncate")


def _requested_format(record: RecordedRequest, endpoint: str) -> str:
    if endpoint == "cdn":
        asked = record.path.rpartition(".")[2]
    else:
        asked = record.json.get("output_format", "png") if isinstance(record.json, dict) else "png"
    return IMAGE_FORMATS.get(str(asked), "png")
