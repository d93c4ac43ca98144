"""SegmindHook: authentication and every HTTP call to Segmind, in the worker (``requests``).

The hook owns one ``requests.Session`` (connection pooling), reads its settings once from the
Airflow connection, and leaves every decision about errors and retries to
``airflow_provider_segmind.policy`` so that the triggerer's async path behaves identically.
"""

from __future__ import annotations

import io
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

import requests
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from airflow_provider_segmind.connection import (
    API_KEY_HEADER,
    DEFAULT_CONN_ID,
    ConnectionSettings,
    origin_of,
    settings_from_connection,
)
from airflow_provider_segmind.exceptions import (
    SegmindBadResponseError,
    SegmindConnectionError,
    SegmindError,
    SegmindRequestFailedError,
    SegmindTimeoutError,
    redact_key,
)
from airflow_provider_segmind.get_provider_info import UI_FIELD_BEHAVIOUR
from airflow_provider_segmind.models.answers import (
    CreditsResponse,
    RequestStatus,
    V2ResultResponse,
    V2StatusResponse,
    V2SubmitResponse,
)
from airflow_provider_segmind.models.parameters import (
    build_request_body,
    expected_output_format,
    validate_model_slug,
)
from airflow_provider_segmind.policy import RetryPolicy, error_for_answer, is_failed_answer
from airflow_provider_segmind.responses import (
    DownloadedImage,
    GeneratedImage,
    GenerationResult,
    check_image,
    detect_image_format,
    parse_v1_answer,
    remaining_credits,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pydantic import BaseModel

DOWNLOAD_CHUNK = 1 << 20


class _ApiSession(requests.Session):
    """A session that never carries the API key off the API's origin.

    ``requests`` strips ``Authorization`` on a cross-host redirect but keeps custom headers such
    as ``x-api-key``; a redirect from the API to the CDN would otherwise hand the key to the CDN.
    """

    def __init__(self, api_base_url: str) -> None:
        super().__init__()
        self._api_origin = origin_of(api_base_url)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        if origin_of(prepared_request.url or "") != self._api_origin:
            prepared_request.headers.pop(API_KEY_HEADER, None)


class SegmindHook(BaseHook):
    """Talk to Segmind's API with the key from an Airflow connection.

    :param segmind_conn_id: the Airflow connection (type ``segmind``). Its password is the API
        key; its host, when set, replaces ``https://api.segmind.com`` (use it for a proxy or for the
        local test server). When the default connection does not exist, or has no password,
        ``SEGMIND_API_KEY`` is used.
    :param connect_timeout: seconds to wait for a connection; overrides the connection's extra.
    :param read_timeout: seconds to wait for an answer; overrides the connection's extra. Keep it
        above the model's generation time for v1 calls (about 40-60 s for GPT Image 1.5).
    :param retry_policy: how often and how long a failed call is retried (see ``RetryPolicy``).
    """

    conn_name_attr = "segmind_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "segmind"
    hook_name = "Segmind"

    def __init__(
        self,
        segmind_conn_id: str = DEFAULT_CONN_ID,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segmind_conn_id = segmind_conn_id
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry_policy = retry_policy or RetryPolicy()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form layout for Airflow versions that read it from the hook."""
        return {key: (list(v) if isinstance(v, list) else dict(v)) for key, v in UI_FIELD_BEHAVIOUR.items()}

    # -- settings and session -------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection's settings, read once; the key is registered with the secret masker."""
        try:
            conn = self.get_connection(self.segmind_conn_id)
        except AirflowNotFoundException:
            conn = None
        settings = settings_from_connection(
            conn,
            conn_id=self.segmind_conn_id,
            extra=conn.extra_dejson if conn is not None else None,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )
        mask_secret(settings.api_key)
        return settings

    @cached_property
    def session(self) -> requests.Session:
        """One pooled session for the hook's lifetime."""
        session = _ApiSession(self.settings.base_url)
        session.headers["User-Agent"] = "airflow-provider-segmind"
        return session

    def close(self) -> None:
        """Release pooled connections (safe to call when no session was opened)."""
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        model: str,
        parameters: Mapping[str, Any] | BaseModel | None = None,
        *,
        prompt: str | None = None,
    ) -> GenerationResult:
        """Generate with the synchronous v1 endpoint and return the image(s) in memory.

        Parameters are validated before any request is sent. Images that come back as URLs are
        downloaded (without the key). Every image is checked to be one, of the asked format.
        """
        slug, body = self._request_body(model, parameters, prompt)
        expected = expected_output_format(body)
        what = f"POST /v1/{slug}"
        started = time.monotonic()
        response = self._call("POST", self.settings.url(f"/v1/{slug}"), what=what, json_body=body)
        payload = parse_v1_answer(response.headers.get("Content-Type"), response.content, source=what)
        images = [GeneratedImage(data, check_image(data, expected, source=what)) for data in payload.images]
        for url in payload.urls:
            images.append(self.download_image(url, expected_format=expected))
        elapsed = time.monotonic() - started
        headers = dict(response.headers)
        credits_left = remaining_credits(headers)
        self._log_call(what, response.status_code, elapsed, credits_left, f"{len(images)} image(s)")
        return GenerationResult(
            model=slug,
            images=images,
            elapsed_seconds=elapsed,
            remaining_credits=credits_left,
            response_headers=headers,
        )

    def submit(
        self,
        model: str,
        parameters: Mapping[str, Any] | BaseModel | None = None,
        *,
        prompt: str | None = None,
    ) -> V2SubmitResponse:
        """Queue a generation with v2 and return its handle; this POST is the one that is paid for."""
        slug, body = self._request_body(model, parameters, prompt)
        what = f"POST /v2/{slug}"
        started = time.monotonic()
        response = self._call("POST", self.settings.url(f"/v2/{slug}"), what=what, json_body=body)
        handle = self._parse(V2SubmitResponse, response, what)
        self._log_call(
            what,
            response.status_code,
            time.monotonic() - started,
            remaining_credits(dict(response.headers)),
            f"request {handle.request_id} {handle.status}",
        )
        return handle

    def get_status(self, request: V2SubmitResponse | str) -> V2StatusResponse:
        """The status of a queued request. A FAILED request is returned, not raised."""
        url, request_id = self._request_url(request, "status")
        what = f"GET status of request {request_id}"
        response = self._call("GET", url, what=what, accept_failed=True, request_id=request_id)
        return self._parse(V2StatusResponse, response, what)

    def get_result(self, request: V2SubmitResponse | str) -> V2ResultResponse:
        """The result of a queued request (its output URLs once COMPLETED). FAILED is returned."""
        url, request_id = self._request_url(request, "response")
        what = f"GET result of request {request_id}"
        response = self._call("GET", url, what=what, accept_failed=True, request_id=request_id)
        return self._parse(V2ResultResponse, response, what)

    def wait_for_result(
        self,
        request: V2SubmitResponse | str,
        *,
        poll_interval: float = 2.0,
        timeout: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> V2ResultResponse:
        """Poll a queued request in this process until it ends; return the COMPLETED result.

        Raises ``SegmindRequestFailedError`` with Segmind's text when it FAILED, and
        ``SegmindTimeoutError`` at the deadline. Only GETs are sent: nothing is paid twice.
        """
        deadline = time.monotonic() + timeout
        request_id = request.request_id if isinstance(request, V2SubmitResponse) else request
        while True:
            answer = self.poll_once(request)
            if isinstance(answer, V2ResultResponse):
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SegmindTimeoutError(
                    f"Request {request_id} was still {answer.status} after {timeout:.0f} s.",
                    request_id=request_id,
                    hint="Raise the timeout; the result stays available for one hour after submission.",
                )
            sleep(min(poll_interval, remaining))

    def poll_once(self, request: V2SubmitResponse | str) -> V2StatusResponse | V2ResultResponse:
        """One look at a queued request: its status while it runs, its COMPLETED result when done.

        A FAILED request raises ``SegmindRequestFailedError`` with Segmind's text. The result is
        fetched only once the status says COMPLETED, so a poll costs one GET while waiting.
        """
        request_id = request.request_id if isinstance(request, V2SubmitResponse) else request
        status = self.get_status(request)
        if status.status == RequestStatus.FAILED:
            raise SegmindRequestFailedError(
                "The queued request failed.", error_text=status.error, request_id=request_id
            )
        if status.status != RequestStatus.COMPLETED:
            return status
        return raise_for_failed(self.get_result(request), request_id)

    # -- downloads ---------------------------------------------------------------------------

    def download(
        self,
        url: str,
        fileobj: BinaryIO,
        *,
        expected_format: str | None = None,
        chunk_size: int = DOWNLOAD_CHUNK,
    ) -> DownloadedImage:
        """Stream an output image into ``fileobj``, checking it is an image before writing a byte.

        The key is sent only when ``url`` is on the API's origin; CDN hosts never see it. A
        truncated body raises. A retried attempt rewinds ``fileobj`` when it can be rewound; an
        unseekable target is not retried.
        """
        what = f"GET {_display_url(url)}"
        seekable = _seekable(fileobj)
        start = fileobj.tell() if seekable else 0

        def attempt() -> DownloadedImage:
            if seekable:
                fileobj.seek(start)
                fileobj.truncate()
            with self._send_once("GET", url, what=what, stream=True) as response:
                return self._stream_into(response, fileobj, expected_format, what, url, chunk_size)

        started = time.monotonic()
        downloaded = self._retry("GET", attempt) if seekable else attempt()
        self._log_call(
            what, 200, time.monotonic() - started, None, f"{downloaded.size_bytes} bytes {downloaded.format}"
        )
        return downloaded

    def download_image(self, url: str, *, expected_format: str | None = None) -> GeneratedImage:
        """Download an output image into memory (small images; the operator streams to storage)."""
        buffer = io.BytesIO()
        downloaded = self.download(url, buffer, expected_format=expected_format)
        return GeneratedImage(buffer.getvalue(), downloaded.format, source_url=url)

    def _stream_into(
        self,
        response: requests.Response,
        fileobj: BinaryIO,
        expected_format: str | None,
        what: str,
        url: str,
        chunk_size: int,
    ) -> DownloadedImage:
        chunks = response.iter_content(chunk_size=chunk_size)
        head = b""
        written = 0
        image_format: str | None = None
        try:
            for chunk in chunks:
                if image_format is None:
                    head += chunk
                    if len(head) < 16 and detect_image_format(head) is None:
                        continue
                    image_format = check_image(head, expected_format, source=what)
                    chunk, head = head, b""
                fileobj.write(chunk)
                written += len(chunk)
        except requests.exceptions.RequestException as err:
            raise SegmindBadResponseError(
                f"{what}: the download broke off after {written} bytes ({type(err).__name__})."
            ) from None
        if image_format is None:
            image_format = check_image(head, expected_format, source=what)
            fileobj.write(head)
            written += len(head)
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) != written:
            raise SegmindBadResponseError(
                f"{what}: the download was truncated ({written} of {declared} bytes)."
            )
        return DownloadedImage(url=url, format=image_format, size_bytes=written)

    # -- account -----------------------------------------------------------------------------

    def get_credits(self) -> CreditsResponse:
        """The account's credits; cheap, so it doubles as the connection test."""
        what = "GET /v1/get-user-credits"
        started = time.monotonic()
        response = self._call("GET", self.settings.url("/v1/get-user-credits"), what=what)
        credits = self._parse(CreditsResponse, response, what)
        self._log_call(what, response.status_code, time.monotonic() - started, credits.credits, "")
        return credits

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the base URL with the free credits call (the UI's Test button)."""
        try:
            credits = self.get_credits()
        except SegmindError as err:
            return False, str(err)
        except Exception as err:  # the Test button must answer, whatever went wrong
            return False, redact_key(f"{type(err).__name__}: {err}", self._known_key())
        return True, (
            f"Connected to {self.settings.base_url}: {credits.credits} credits, "
            f"{credits.free_credits} free credits."
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _request_body(
        self, model: str, parameters: Mapping[str, Any] | BaseModel | None, prompt: str | None
    ) -> tuple[str, dict[str, Any]]:
        slug = validate_model_slug(model)
        return slug, build_request_body(slug, parameters, prompt=prompt)

    def _request_url(self, request: V2SubmitResponse | str, kind: str) -> tuple[str, str]:
        if isinstance(request, V2SubmitResponse):
            given = request.status_url if kind == "status" else request.response_url
            return self.settings.request_url(request.request_id, kind, given), request.request_id
        return self.settings.request_url(request, kind), request

    def _call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json_body: Any = None,
        accept_failed: bool = False,
        request_id: str | None = None,
    ) -> requests.Response:
        """One API call with the retry policy for its method; the body is read before returning."""
        return self._retry(
            method,
            lambda: self._send_once(
                method,
                url,
                what=what,
                json_body=json_body,
                accept_failed=accept_failed,
                request_id=request_id,
            ),
        )

    def _retry(self, method: str, func: Callable[[], Any]) -> Any:
        for attempt in self.retry_policy.retrying(method):
            with attempt:
                return func()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json_body: Any = None,
        stream: bool = False,
        accept_failed: bool = False,
        request_id: str | None = None,
    ) -> requests.Response:
        settings = self.settings
        try:
            response = self.session.request(
                method,
                url,
                json=json_body,
                headers=settings.headers_for(url),
                timeout=(settings.connect_timeout, settings.read_timeout),
                stream=stream,
            )
        except requests.exceptions.RequestException as err:
            raise transport_error(err, method=method, what=what, api_key=settings.api_key) from None
        if response.status_code >= 400 and not (
            accept_failed and is_failed_answer(response.status_code, response.content)
        ):
            body = response.content
            response.close()
            raise error_for_answer(
                response.status_code,
                method=method,
                what=what,
                body=body,
                content_type=response.headers.get("Content-Type"),
                headers=dict(response.headers),
                api_key=settings.api_key,
                request_id=request_id,
            )
        return response

    def _parse(self, model_cls: Any, response: requests.Response, what: str) -> Any:
        try:
            return model_cls.model_validate_json(response.content)
        except ValueError as err:
            snippet = redact_key(response.text[:200], self._known_key())
            raise SegmindBadResponseError(
                f"{what}: the answer could not be read as {model_cls.__name__} "
                f"({type(err).__name__}); body starts {snippet!r}.",
                status_code=response.status_code,
            ) from None

    def _known_key(self) -> str | None:
        settings = self.__dict__.get("settings")
        return settings.api_key if settings else None

    def _log_call(
        self, what: str, status: int, elapsed: float, credits_left: float | None, detail: str
    ) -> None:
        credits_text = f"{credits_left}" if credits_left is not None else "unknown"
        self.log.info(
            "Segmind %s: HTTP %s in %.2f s; %s; remaining credits %s",
            what,
            status,
            elapsed,
            detail or "ok",
            credits_text,
        )


def raise_for_failed(result: V2ResultResponse, request_id: str | None = None) -> V2ResultResponse:
    """Return a COMPLETED result; raise ``SegmindRequestFailedError`` for FAILED or no output."""
    rid = result.request_id or request_id
    if result.status == RequestStatus.FAILED:
        raise SegmindRequestFailedError("The queued request failed.", error_text=result.error, request_id=rid)
    if result.status != RequestStatus.COMPLETED:
        raise SegmindBadResponseError(f"The result of request {rid} is {result.status}, not COMPLETED.")
    if not result.output_urls:
        raise SegmindBadResponseError(
            f"Request {rid} COMPLETED without an output URL (output={result.output!r:.200})."
        )
    return result


def transport_error(err: Exception, *, method: str, what: str, api_key: str | None) -> SegmindError:
    """Map a ``requests`` exception to a typed error, noting whether a POST may have been charged."""
    detail = redact_key(f"{type(err).__name__}: {err}", api_key)
    is_post = method.upper() == "POST"
    if isinstance(err, requests.exceptions.ConnectTimeout) or _never_sent(err):
        return SegmindConnectionError(f"{what}: could not connect ({detail}).", sent=False)
    if isinstance(err, requests.exceptions.ReadTimeout):
        return SegmindTimeoutError(
            f"{what}: no answer within the read timeout ({detail}).", may_have_been_charged=is_post
        )
    return SegmindConnectionError(
        f"{what}: the connection failed ({detail}).", sent=True, may_have_been_charged=is_post
    )


def _never_sent(err: Exception) -> bool:
    """True when the chain of causes shows the connection was never established."""
    from urllib3.exceptions import NewConnectionError

    seen: set[int] = set()
    stack: list[Any] = [err]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError):
            return True
        if isinstance(item, BaseException):
            stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False


def _seekable(fileobj: BinaryIO) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def _display_url(url: str) -> str:
    """The URL without its query string (signed CDN URLs carry tokens there)."""
    return url.split("?", 1)[0]
