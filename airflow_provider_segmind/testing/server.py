"""A local, Segmind-compatible HTTP server for tests, demos and users' own DAG tests.

The live API costs money and cannot be reached from CI, while a mock object would not exercise
what actually breaks in production: connection pooling, keep-alive, timeouts, headers, status
codes, a CDN on a second origin. So this is a real HTTP/1.1 server on loopback, two of them in
fact (the API and a stand-in for ``images.segmind.com``), each serving from threads. Everything a
client can observe is recorded so tests can assert on it, and misbehaviour is scripted with
:class:`~airflow_provider_segmind.testing.faults.Fault`.

Pillow is only needed once an image is rendered; importing this module does not import it.
"""

from __future__ import annotations

import base64
import contextlib
import html
import importlib
import json
import math
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_segmind.testing.faults import Fault, FaultQueue, classify_endpoint

if TYPE_CHECKING:
    from collections.abc import Collection
    from types import TracebackType

DEFAULT_API_KEY = "SG_local_test_key"
V1_RESPONSE_MODES = frozenset({"bytes", "json_base64", "json_url"})
RATE_LIMIT_SCOPES = frozenset({"generate", "all"})
GENERATE_ENDPOINTS = frozenset({"v1", "v2_submit"})
MAX_PROMPT_CHARS = 32000
MAX_SIDE = 4096

# What gpt-image-* slugs accept, per Segmind's product page.
GPT_IMAGE_ENUMS: dict[str, frozenset[str]] = {
    "size": frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"}),
    "quality": frozenset({"low", "medium", "high", "auto"}),
    "background": frozenset({"transparent", "opaque"}),
    "moderation": frozenset({"low", "auto"}),
    "output_format": frozenset({"png", "jpeg", "webp"}),
}
GPT_IMAGE_DEFAULT_SIZE = "1536x1024"
OTHER_MODEL_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}

QUEUED, PROCESSING, COMPLETED, FAILED = "QUEUED", "PROCESSING", "COMPLETED", "FAILED"

# Joining a handler thread that ignores the stop signal must not hang the test suite.
_JOIN_TIMEOUT = 5.0
# How often the accept loops look for a stop request; it bounds how long stop() takes.
_POLL_INTERVAL = 0.05
# Idle keep-alive connections are closed after this long, so forgotten clients do not pile up.
_IDLE_TIMEOUT = 60.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, so tests can assert on exactly what a client sent.

    ``status`` is what the server answered, or None while the answer is pending and for
    connections the server dropped on purpose.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    origin: str
    status: int | None
    timestamp: float


@dataclass(frozen=True)
class GenerationParams:
    """What is needed to draw a request's images, decided once when the request is accepted."""

    prompt: str
    width: int
    height: int
    fmt: str
    transparent: bool
    quality: int


@dataclass
class _Answer:
    """An answer before it is written; ``mode`` covers the deliberately broken ways of writing it."""

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "normal"  # "normal" | "truncate" | "drop"


@dataclass
class _Job:
    """A generation whose images the CDN can serve: every v2 request, and v1 ``json_url`` answers."""

    request_id: str
    api: str
    params: GenerationParams
    count: int
    submitted: float
    duration: float
    error: str | None
    images: dict[int, bytes] = field(default_factory=dict)

    def state(self, now: float) -> str:
        elapsed = now - self.submitted
        if elapsed < self.duration / 3:
            return QUEUED
        if elapsed < self.duration:
            return PROCESSING
        return FAILED if self.error is not None else COMPLETED

    def metrics(self) -> dict[str, float]:
        return {"inference_time": round(self.duration, 3)}


class _BadRequest(Exception):
    """A request body Segmind would answer 400 to; the message becomes the ``error``."""


class _FixedWindow:
    """Segmind-style fixed-window rate limiting; callers hold the server lock."""

    def __init__(self, limit: tuple[int, float] | None) -> None:
        self.limit = limit
        self._window_end = 0.0
        self._count = 0

    def admit(self, now: float) -> float | None:
        """Count one request; None if it may pass, else the seconds until the window frees."""
        if self.limit is None:
            return None
        max_requests, window = self.limit
        if now >= self._window_end:
            self._window_end = now + window
            self._count = 0
        if self._count >= max_requests:
            return self._window_end - now
        self._count += 1
        return None


def _json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))


def _error(status: int, message: str) -> _Answer:
    return _json_answer(status, {"error": message})


def _image_type(fmt: str) -> str:
    return f"image/{fmt}"


def _render(params: GenerationParams, variant: int) -> bytes:
    # Imported here so that importing the server (and the pytest plugin) never needs Pillow.
    from airflow_provider_segmind.testing.images import render_image

    return render_image(
        params.prompt,
        params.width,
        params.height,
        params.fmt,
        transparent=params.transparent,
        quality=params.quality,
        variant=variant,
    )


def _require_pillow() -> None:
    """Fail at start() with the fix, rather than with a 500 on the first image request."""
    try:
        importlib.import_module("airflow_provider_segmind.testing.images")
    except ImportError as exc:
        raise ImportError(
            "the Segmind test server draws real images and needs Pillow: "
            "pip install 'airflow-provider-segmind[testing]'"
        ) from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_size(size: str) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    width, _, height = size.partition("x")
    return int(width), int(height)


def parse_generation(slug: str, body: Any) -> GenerationParams:
    """Validate a generation body the way Segmind does and decide what to draw.

    Raises _BadRequest with a message naming the offending field.
    """
    if not isinstance(body, dict):
        raise _BadRequest("Request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _BadRequest("prompt is required and must be a non-empty string")
    if slug.startswith("gpt-image"):
        return _parse_gpt_image(prompt, body)
    return _parse_other_model(prompt, body)


def _parse_gpt_image(prompt: str, body: dict[str, Any]) -> GenerationParams:
    if len(prompt) > MAX_PROMPT_CHARS:
        raise _BadRequest(f"prompt must be at most {MAX_PROMPT_CHARS} characters")
    for name, allowed in GPT_IMAGE_ENUMS.items():
        if name in body and body[name] not in allowed:
            raise _BadRequest(f"{name} must be one of {', '.join(sorted(allowed))}; got {body[name]!r}")
    compression = body.get("output_compression", 100)
    if not _is_int(compression) or not 0 <= compression <= 100:
        raise _BadRequest(f"output_compression must be an integer from 0 to 100; got {compression!r}")
    width, height = _parse_size(body.get("size", GPT_IMAGE_DEFAULT_SIZE))
    return GenerationParams(
        prompt=prompt,
        width=width,
        height=height,
        fmt=body.get("output_format", "png"),
        transparent=body.get("background") == "transparent",
        quality=compression,
    )


def _parse_other_model(prompt: str, body: dict[str, Any]) -> GenerationParams:
    sides = []
    for name in ("width", "height"):
        value = body.get(name, 1024)
        if not _is_int(value) or not 0 < value <= MAX_SIDE:
            raise _BadRequest(f"{name} must be an integer from 1 to {MAX_SIDE}; got {value!r}")
        sides.append(value)
    fmt = body.get("output_format", "png")
    if fmt not in OTHER_MODEL_FORMATS:
        raise _BadRequest(f"output_format must be one of png, jpeg, webp; got {fmt!r}")
    quality = body.get("output_compression", body.get("quality", 95))
    return GenerationParams(
        prompt=prompt,
        width=sides[0],
        height=sides[1],
        fmt=OTHER_MODEL_FORMATS[fmt],
        transparent=body.get("background") == "transparent",
        quality=quality if _is_int(quality) else 95,
    )


def _format_credits(value: float) -> str:
    return repr(round(value, 9))


class SegmindTestServer:
    """A local stand-in for ``api.segmind.com`` plus its image CDN, for tests and demos.

    Use it as a context manager; ``base_url`` and ``cdn_url`` exist once it is started.
    ``credits``, ``rate_limit``, ``latency``, ``generation_seconds`` and ``v1_response`` may be
    changed while it runs, so one server can walk a client through several situations.

    Every accepted generation (v1 or v2) costs ``price * images_per_request``, charged when it
    is accepted, before ``latency`` or the v2 queue time: like the real service, a client that
    times out and retries pays twice, which is exactly what tests need to be able to see.
    ``generation_seconds`` is read at submission, so changing it affects later v2 requests only.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        latency: float = 0.0,
        generation_seconds: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_scope: str = "generate",
        send_retry_after: bool = True,
        credits: float = 100.0,
        price: float = 0.154,
        v1_response: str = "bytes",
        images_per_request: int = 1,
        known_models: Collection[str] | None = None,
        retired_models: Collection[str] = (),
        result_ttl: float = 3600.0,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_port: int = 0,
    ) -> None:
        if rate_limit_scope not in RATE_LIMIT_SCOPES:
            raise ValueError(f"rate_limit_scope must be one of {sorted(RATE_LIMIT_SCOPES)}")
        if images_per_request < 1:
            raise ValueError("images_per_request must be at least 1")
        self.api_key = api_key
        self.latency = latency
        self.generation_seconds = generation_seconds
        self.rate_limit_scope = rate_limit_scope
        self.send_retry_after = send_retry_after
        self.price = price
        self.images_per_request = images_per_request
        self.known_models = frozenset(known_models) if known_models is not None else None
        self.retired_models = frozenset(retired_models)
        self.result_ttl = result_ttl
        self.host = host
        self.port = port
        self.cdn_port = cdn_port
        self._lock = threading.RLock()
        self._credits = float(credits)
        self._limiter = _FixedWindow(self._checked_limit(rate_limit))
        self._v1_response = self._checked_mode(v1_response)
        self._faults = FaultQueue()
        self._records: list[RecordedRequest] = []
        self._jobs: dict[str, _Job] = {}
        self._failures: list[str] = []
        self._servers: dict[str, _OriginServer] = {}
        self._threads: list[threading.Thread] = []
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()

    # ----------------------------------------------------------------- run-time settings

    @property
    def credits(self) -> float:
        with self._lock:
            return self._credits

    @credits.setter
    def credits(self, value: float) -> None:
        with self._lock:
            self._credits = float(value)

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        with self._lock:
            return self._limiter.limit

    @rate_limit.setter
    def rate_limit(self, value: tuple[int, float] | None) -> None:
        # A new limit starts a fresh window: the old count was against a different budget.
        with self._lock:
            self._limiter = _FixedWindow(self._checked_limit(value))

    @property
    def v1_response(self) -> str:
        return self._v1_response

    @v1_response.setter
    def v1_response(self, value: str) -> None:
        self._v1_response = self._checked_mode(value)

    @staticmethod
    def _checked_limit(value: tuple[int, float] | None) -> tuple[int, float] | None:
        if value is None:
            return None
        max_requests, window = value
        if max_requests < 1 or window <= 0:
            raise ValueError("rate_limit must be (max_requests >= 1, window_seconds > 0) or None")
        return int(max_requests), float(window)

    @staticmethod
    def _checked_mode(value: str) -> str:
        if value not in V1_RESPONSE_MODES:
            raise ValueError(f"v1_response must be one of {sorted(V1_RESPONSE_MODES)}")
        return value

    # ----------------------------------------------------------------- addresses

    @property
    def base_url(self) -> str:
        return self._origin_url("api")

    @property
    def cdn_url(self) -> str:
        return self._origin_url("cdn")

    def _origin_url(self, origin: str) -> str:
        server = self._servers.get(origin)
        if server is None:
            raise RuntimeError(
                "SegmindTestServer is not running; call start() or use it as a context manager"
            )
        host, port = server.server_address[:2]
        return f"http://{host!s}:{port}"

    def airflow_connection_json(self) -> str:
        """The value for ``AIRFLOW_CONN_<ID>`` that points the provider at this server."""
        return json.dumps({"conn_type": "segmind", "host": self.base_url, "password": self.api_key})

    def airflow_env(self, conn_id: str = "segmind_default") -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.airflow_connection_json()}

    # ----------------------------------------------------------------- life cycle

    def start(self) -> SegmindTestServer:
        """Bind both origins and serve them from background threads."""
        if self._servers:
            raise RuntimeError("SegmindTestServer is already running")
        _require_pillow()
        self._stopping.clear()
        servers: dict[str, _OriginServer] = {}
        try:
            servers["api"] = _OriginServer((self.host, self.port), self, "api")
            servers["cdn"] = _OriginServer((self.host, self.cdn_port), self, "cdn")
        except OSError:
            for server in servers.values():
                server.server_close()
            raise
        self._servers = servers
        self._threads = [
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"segmind-test-{origin}",
                daemon=True,
            )
            for origin, server in servers.items()
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and join every thread; safe to call twice."""
        with self._lock:
            servers, self._servers = self._servers, {}
            threads, self._threads = self._threads, []
        if not servers:
            return
        self._stopping.set()
        _shut_down(list(servers.values()))
        for server in servers.values():
            server.server_close()
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
        self._close_connections()

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        current = threading.current_thread()
        for _, thread in connections:
            if thread is not current:
                thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> SegmindTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections[connection] = threading.current_thread()

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def _sleep(self, seconds: float) -> None:
        # Wakes early on stop(), so a long latency cannot make stop() hang.
        if seconds > 0:
            self._stopping.wait(seconds)

    # ----------------------------------------------------------------- test controls

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def find(
        self,
        method: str | None = None,
        path_prefix: str | None = None,
        origin: str | None = None,
        status: int | None = None,
    ) -> list[RecordedRequest]:
        """The recorded requests matching every filter given, in arrival order."""
        return [
            record
            for record in self.requests
            if (method is None or record.method == method.upper())
            and (path_prefix is None or record.path.startswith(path_prefix))
            and (origin is None or record.origin == origin)
            and (status is None or record.status == status)
        ]

    def inject(self, *faults: Fault) -> None:
        self._faults.add(*faults)

    @property
    def faults(self) -> list[Fault]:
        """Faults not yet used up, in the order they will be applied."""
        return self._faults.pending()

    def clear_faults(self) -> None:
        self._faults.clear()

    def fail_next_v2(self, error: str = "Content moderation: prompt rejected", count: int = 1) -> None:
        """Make the next ``count`` accepted v2 submissions end FAILED with ``error``."""
        with self._lock:
            self._failures.extend([error] * count)

    def reset(self) -> None:
        """Forget requests, faults, v2 requests and the rate-limit window (credits stay)."""
        self._faults.clear()
        with self._lock:
            self._records.clear()
            self._jobs.clear()
            self._failures.clear()
            self._limiter = _FixedWindow(self._limiter.limit)

    # ----------------------------------------------------------------- recording

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self._records.append(record)

    def _set_status(self, record: RecordedRequest, status: int | None) -> None:
        with self._lock:
            for index in range(len(self._records) - 1, -1, -1):
                if self._records[index] is record:
                    self._records[index] = replace(record, status=status)
                    return

    # ----------------------------------------------------------------- answering

    def _answer(self, record: RecordedRequest) -> _Answer:
        """Faults first (a gateway fails before Segmind looks at the key), then the real answer."""
        endpoint = classify_endpoint(record.method, record.path, record.origin)
        fault = self._faults.take(endpoint)
        if fault is not None and fault.kind != "delay":
            return _fault_answer(fault, record, endpoint)
        if fault is not None:
            self._sleep(fault.delay)
        if record.origin == "cdn":
            answer = self._cdn_image(record)
        else:
            answer = self._authorised_answer(endpoint, record)
        if fault is not None:
            answer.headers.update(fault.headers)
        return answer

    def _authorised_answer(self, endpoint: str, record: RecordedRequest) -> _Answer:
        if record.headers.get("x-api-key") != self.api_key:
            return _error(401, "Invalid API key")
        refused = self._admit(endpoint)
        if refused is not None:
            return self._rate_limited(refused)
        routes = {
            "v1": self._generate_v1,
            "v2_submit": self._submit_v2,
            "v2_status": self._v2_status,
            "v2_result": self._v2_result,
            "credits": self._user_credits,
        }
        route = routes.get(endpoint)
        return route(record) if route is not None else _error(404, "Not found")

    def _admit(self, endpoint: str) -> float | None:
        if self.rate_limit_scope == "generate" and endpoint not in GENERATE_ENDPOINTS:
            return None
        with self._lock:
            return self._limiter.admit(time.monotonic())

    def _rate_limited(self, wait: float) -> _Answer:
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if self.send_retry_after else {}
        return _json_answer(429, {"error": "Rate limit exceeded"}, headers)

    def _accept_generation(self, record: RecordedRequest) -> tuple[GenerationParams, float] | _Answer:
        """Everything v1 and v2 share before generating: model, body, credits (charged here).

        Charging at acceptance, atomically with the check, means concurrent requests can never
        spend more than the account holds, and a client that gives up during ``latency`` has
        still paid, which is the behaviour the provider must be careful about.
        """
        slug = record.path.strip("/").split("/")[1]
        if slug in self.retired_models:
            return _error(410, f"Model {slug} has been retired")
        if self.known_models is not None and slug not in self.known_models:
            return _error(404, "Model not found")
        try:
            params = parse_generation(slug, record.json)
        except _BadRequest as exc:
            return _error(400, str(exc))
        remaining = self._charge(self.price * self.images_per_request)
        if remaining is None:
            return _error(406, "Insufficient credits")
        return params, remaining

    def _charge(self, cost: float) -> float | None:
        with self._lock:
            if self._credits + 1e-9 < cost:
                return None
            self._credits = round(self._credits - cost, 9)
            return self._credits

    def _generate_v1(self, record: RecordedRequest) -> _Answer:
        accepted = self._accept_generation(record)
        if isinstance(accepted, _Answer):
            return accepted
        params, remaining = accepted
        self._sleep(self.latency)
        headers = {"X-remaining-credits": _format_credits(remaining)}
        mode, count = self.v1_response, self.images_per_request
        if mode == "bytes":
            return _Answer(200, _render(params, 0), _image_type(params.fmt), headers)
        images = [_render(params, variant) for variant in range(count)]
        if mode == "json_base64":
            encoded = [base64.b64encode(image).decode("ascii") for image in images]
            return _json_answer(200, {"image": encoded if count > 1 else encoded[0]}, headers)
        job = self._new_job("v1", params, duration=0.0, error=None)
        with self._lock:
            job.images.update(enumerate(images))
        urls = self._output_urls(job)
        return _json_answer(200, {"output": urls if count > 1 else urls[0]}, headers)

    def _submit_v2(self, record: RecordedRequest) -> _Answer:
        accepted = self._accept_generation(record)
        if isinstance(accepted, _Answer):
            return accepted
        params, remaining = accepted
        with self._lock:
            error = self._failures.pop(0) if self._failures else None
        job = self._new_job("v2", params, duration=self.generation_seconds, error=error)
        request_id, base = job.request_id, self.base_url
        payload = {
            "request_id": request_id,
            "status": QUEUED,
            "poll_url": f"{base}/v1/requests/{request_id}",
            "status_url": f"{base}/v2/requests/{request_id}/status",
            "response_url": f"{base}/v2/requests/{request_id}",
        }
        return _json_answer(200, payload, {"X-remaining-credits": _format_credits(remaining)})

    def _new_job(self, api: str, params: GenerationParams, duration: float, error: str | None) -> _Job:
        job = _Job(
            request_id=uuid.uuid4().hex,
            api=api,
            params=params,
            count=self.images_per_request,
            submitted=time.monotonic(),
            duration=max(0.0, duration),
            error=error,
        )
        with self._lock:
            self._jobs[job.request_id] = job
        return job

    def _find_job(self, request_id: str, api: str | None = None) -> _Job | None:
        """The job if it exists and has not expired; expired jobs are forgotten on the way."""
        now = time.monotonic()
        with self._lock:
            for key in [key for key, job in self._jobs.items() if now - job.submitted > self.result_ttl]:
                del self._jobs[key]
            job = self._jobs.get(request_id)
        if job is None or (api is not None and job.api != api):
            return None
        return job

    def _output_urls(self, job: _Job) -> list[str]:
        ext = job.params.fmt
        return [f"{self.cdn_url}/outputs/{job.request_id}/{n}.{ext}" for n in range(job.count)]

    def _v2_status(self, record: RecordedRequest) -> _Answer:
        job = self._find_job(record.path.strip("/").split("/")[2], api="v2")
        if job is None:
            return _error(404, "Request not found")
        state = job.state(time.monotonic())
        if state == FAILED:
            return self._failed(job)
        metrics = job.metrics() if state == COMPLETED else {}
        return _json_answer(200, {"status": state, "request_id": job.request_id, "metrics": metrics})

    def _v2_result(self, record: RecordedRequest) -> _Answer:
        job = self._find_job(record.path.strip("/").split("/")[2], api="v2")
        if job is None:
            return _error(404, "Request not found")
        state = job.state(time.monotonic())
        if state == FAILED:
            return self._failed(job)
        if state != COMPLETED:
            return _json_answer(200, {"status": state, "request_id": job.request_id})
        urls = self._output_urls(job)
        payload: dict[str, Any] = {
            "status": COMPLETED,
            "request_id": job.request_id,
            "metrics": job.metrics(),
            "output": urls if job.count > 1 else urls[0],
        }
        return _json_answer(200, payload)

    @staticmethod
    def _failed(job: _Job) -> _Answer:
        payload: dict[str, Any] = {
            "status": FAILED,
            "error": job.error,
            "request_id": job.request_id,
            "metrics": {},
        }
        return _json_answer(422, payload)

    def _user_credits(self, record: RecordedRequest) -> _Answer:
        return _json_answer(200, {"credits": self.credits, "free-credits": 0.0})

    def _cdn_image(self, record: RecordedRequest) -> _Answer:
        parts = record.path.strip("/").split("/")
        if record.method not in ("GET", "HEAD") or len(parts) != 3 or parts[0] != "outputs":
            return _error(404, "Not found")
        index, _, ext = parts[2].partition(".")
        job = self._find_job(parts[1])
        if (
            job is None
            or not index.isdigit()
            or int(index) >= job.count
            or OTHER_MODEL_FORMATS.get(ext) != job.params.fmt
            or job.state(time.monotonic()) != COMPLETED
        ):
            return _error(404, "Not found")
        return _Answer(200, self._image(job, int(index)), _image_type(job.params.fmt))

    def _image(self, job: _Job, index: int) -> bytes:
        """Render on first download and keep it, so repeated downloads get identical bytes."""
        with self._lock:
            cached = job.images.get(index)
        if cached is not None:
            return cached
        data = _render(job.params, index)
        with self._lock:
            return job.images.setdefault(index, data)


def _shut_down(servers: list[_OriginServer]) -> None:
    """Stop the accept loops now rather than at their next poll.

    ``shutdown()`` only sets a flag the loop checks between polls; a throwaway connection wakes
    the loop's select() at once. Test suites start and stop a server per test, so this saves
    most of the poll interval every time.
    """
    stoppers = [threading.Thread(target=server.shutdown, daemon=True) for server in servers]
    for stopper in stoppers:
        stopper.start()
    deadline = time.monotonic() + _JOIN_TIMEOUT
    while any(stopper.is_alive() for stopper in stoppers) and time.monotonic() < deadline:
        for server, stopper in zip(servers, stoppers, strict=True):
            if stopper.is_alive():
                _poke(server)
        for stopper in stoppers:
            stopper.join(0.005)


def _poke(server: _OriginServer) -> None:
    host, port = server.server_address[:2]
    with contextlib.suppress(OSError), socket.create_connection((str(host), int(port)), timeout=0.5):
        pass


def _fault_answer(fault: Fault, record: RecordedRequest, endpoint: str) -> _Answer:
    """The broken answer a fault stands for (``delay`` never gets here)."""
    headers = dict(fault.headers)
    if fault.kind == "status":
        return _json_answer(fault.status, {"error": fault.message}, headers)
    if fault.kind == "html":
        return _Answer(
            fault.status, _html_page(fault.status, fault.message), "text/html; charset=utf-8", headers
        )
    if fault.kind == "empty":
        return _Answer(fault.status, b"", None, headers)
    if fault.kind == "truncated":
        return _truncated_answer(record, endpoint, headers)
    if fault.kind == "wrong_content_type":
        return _Answer(200, b"upstream is busy, try later\n", "text/plain; charset=utf-8", headers)
    if fault.kind == "malformed_json":
        return _Answer(200, b'{"status": "COMPLETED", "output": ["http://', "application/json", headers)
    if fault.kind == "not_an_image":
        return _Answer(200, b"this is not an image, just some text\n" * 4, "image/png", headers)
    return _Answer(0, mode="drop")


def _html_page(status: int, message: str) -> bytes:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    page = (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>"
        f"<body><center><h1>{title}</h1></center><hr><p>{html.escape(message)}</p></body></html>\n"
    )
    return page.encode()


def _truncated_answer(record: RecordedRequest, endpoint: str, headers: dict[str, str]) -> _Answer:
    """Half of a plausible body, announced at full length: image endpoints get an image."""
    if endpoint in ("v1", "cdn"):
        fmt = _requested_format(record, endpoint)
        prompt = record.json.get("prompt") if isinstance(record.json, dict) else None
        params = GenerationParams(str(prompt or "truncated"), 256, 256, fmt, False, 90)
        return _Answer(200, _render(params, 0), _image_type(fmt), headers, mode="truncate")
    body = json.dumps({"status": COMPLETED, "request_id": "truncated", "metrics": {}}).encode()
    return _Answer(200, body, "application/json", headers, mode="truncate")


def _requested_format(record: RecordedRequest, endpoint: str) -> str:
    if endpoint == "cdn":
        asked = record.path.rpartition(".")[2]
    else:
        asked = record.json.get("output_format", "png") if isinstance(record.json, dict) else "png"
    return OTHER_MODEL_FORMATS.get(str(asked), "png")


class _OriginServer(ThreadingHTTPServer):
    """One origin (API or CDN) of a SegmindTestServer."""

    daemon_threads = True
    # The default backlog of 5 drops connection attempts under a burst of concurrent clients,
    # and a dropped SYN costs the client a one-second retransmission.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: SegmindTestServer, origin: str) -> None:
        self.owner = owner
        self.origin = origin
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer are part of the tests; only real bugs deserve a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP/1.1 requests into RecordedRequests and writes back the owner's answers."""

    protocol_version = "HTTP/1.1"
    timeout = _IDLE_TIMEOUT

    @property
    def _origin_server(self) -> _OriginServer:
        return cast("_OriginServer", self.server)

    def setup(self) -> None:
        super().setup()
        self._origin_server.owner._track(self.connection)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self._origin_server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a test server printing a line per request drowns the output of the tests."""

    def _dispatch(self) -> None:
        origin_server = self._origin_server
        owner = origin_server.owner
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._write(_error(400, f"Unreadable request body: {exc}"))
            return
        record = self._make_record(body, origin_server.origin)
        owner._record(record)
        try:
            answer = owner._answer(record)
        except Exception as exc:  # a bug in the server must surface to the client, not kill the thread
            answer = _error(500, f"Segmind test server error: {exc!r}")
        owner._set_status(record, None if answer.mode == "drop" else answer.status)
        self._write(answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _make_record(self, body: bytes, origin: str) -> RecordedRequest:
        url = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else str(value)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return RecordedRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            json=parsed,
            origin=origin,
            status=None,
            timestamp=time.time(),
        )

    def _write(self, answer: _Answer) -> None:
        if answer.mode == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = answer.body
        sent = body[: len(body) // 2] if answer.mode == "truncate" else body
        try:
            self.send_response(answer.status)
            if answer.content_type is not None:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.mode == "truncate":
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(sent)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        if answer.mode == "truncate":
            self.close_connection = True
