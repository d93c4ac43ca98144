"""SegmindHook: authentication and every HTTP call to Segmind, in the worker (``requests``).

The hook owns one ``requests.Session`` (connection pooling), reads its settings once from the
Airflow connection, and keeps only what ``requests`` needs: how to send, how to read a body, and
which ``requests`` exception is which transport failure. What an answer means, what may be
retried and how long a call may wait live in ``transport`` and ``policy``, shared with the
triggerer's async hook.
"""

from __future__ import annotations

import io
import time
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, BinaryIO

import requests
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from airflow_provider_segmind.connection import (
    DEFAULT_CONN_ID,
    ConnectionSettings,
    settings_from_connection,
)
from airflow_provider_segmind.deadline import Deadline
from airflow_provider_segmind.exceptions import (
    SegmindBadResponseError,
    SegmindError,
    SegmindRequestFailedError,
    SegmindTimeoutError,
    redact_key,
)
from airflow_provider_segmind.get_provider_info import UI_FIELD_BEHAVIOUR
from airflow_provider_segmind.hooks.requests_session import ApiSession, DeadlineScope
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
from airflow_provider_segmind.policy import RetryPolicy
from airflow_provider_segmind.responses import (
    DownloadedImage,
    GeneratedImage,
    GenerationResult,
    ImageSink,
    WrittenGeneration,
    check_image,
    detect_image_format,
    extension_for,
    parse_v1_answer,
    remaining_credits,
)
from airflow_provider_segmind.transport import (
    Call,
    Failure,
    attempt_deadline,
    check_answer,
    parse_model,
    socket_timeouts,
    transport_error,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import TracebackType

    from pydantic import BaseModel

DOWNLOAD_CHUNK = 1 << 20


class SegmindHook(BaseHook):
    """Talk to Segmind's API with the key from an Airflow connection.

    :param segmind_conn_id: the Airflow connection (type ``segmind``). Its password is the API
        key; its host, when set, replaces ``https://api.segmind.com`` (use it for a proxy or for the
        local test server). When the default connection does not exist, or has no password,
        ``SEGMIND_API_KEY`` is used.
    :param connect_timeout: seconds to wait for a connection; overrides the connection's extra.
    :param read_timeout: seconds to wait for an answer; overrides the connection's extra. A call
        given no deadline must be over within connect + read timeout in all, however the server
        sends its answer; keep it above the model's generation time for v1 calls (about 40-60 s
        for GPT Image 1.5).
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
        return ApiSession(self.settings.base_url)

    def get_conn(self) -> requests.Session:
        """The hook's client, as every Airflow hook offers: the pooled ``requests`` session."""
        return self.session

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
        timeout: float | None = None,
    ) -> GenerationResult:
        """Generate with the synchronous v1 endpoint and return the image(s) in memory.

        For big outputs, ``generate_into`` streams them to storage instead. Parameters are
        validated before any request is sent; every image is checked to be one, of the asked
        format. ``timeout`` as for ``generate_into``.
        """
        kept: list[bytes] = []

        def keep(index: int, extension: str, fill: Callable[[BinaryIO], DownloadedImage]) -> DownloadedImage:
            buffer = io.BytesIO()
            written = fill(buffer)
            kept.append(buffer.getvalue())
            return written

        result = self.generate_into(model, parameters, prompt=prompt, sink=keep, timeout=timeout)
        return GenerationResult(
            model=result.model,
            images=[
                GeneratedImage(data, image.format, source_url=image.url)
                for data, image in zip(kept, result.images, strict=True)
            ],
            elapsed_seconds=result.elapsed_seconds,
            remaining_credits=result.remaining_credits,
            response_headers=result.response_headers,
        )

    def generate_into(
        self,
        model: str,
        parameters: Mapping[str, Any] | BaseModel | None = None,
        *,
        prompt: str | None = None,
        sink: ImageSink,
        timeout: float | None = None,
    ) -> WrittenGeneration:
        """Generate with v1 and hand each image to ``sink`` as it arrives, never whole in memory.

        An ``image/*`` answer is streamed from the answer into the sink; images the answer names
        by URL are streamed from the CDN (without the key); base64 images in a JSON answer are
        necessarily read whole first.

        :param sink: ``sink(index, extension, fill)``: opens where image ``index`` goes, calls
            ``fill(fileobj)`` and returns its result. The operator's sink writes atomically.
        :param timeout: seconds each attempt of the generation may take, from sending the POST to
            the last image written; without it, connect + read timeout for the answer and again
            for each download. Waits between attempts (429, 502, 503) are bounded by the retry
            policy's ``max_wait``.
        """
        slug, body = self._request_body(model, parameters, prompt)
        expected = expected_output_format(body)
        call = Call("POST", self.settings.url(f"/v1/{slug}"), f"POST /v1/{slug}", json_body=body)
        started = time.monotonic()
        answer = self._retry(
            call,
            lambda: self._open(call, Deadline.after(timeout, f"timeout={timeout:g} s") if timeout else None),
        )
        images: list[DownloadedImage] = []
        with answer:
            headers = answer.headers
            content_type = headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower().startswith("image/"):
                extension = extension_for(expected, content_type=content_type)
                images.append(
                    sink(0, extension, lambda f: answer.stream_into(f, expected, chunk_size=DOWNLOAD_CHUNK))
                )
                urls: list[str] = []
            else:
                payload = parse_v1_answer(content_type, answer.read(), source=call.what)
                for data in payload.images:
                    found = check_image(data, expected, source=call.what)
                    images.append(sink(len(images), extension_for(found), _bytes_filler(data, found)))
                urls = payload.urls
        downloads_deadline = answer.deadline if timeout else None
        for url in urls:
            fill = partial(self.download, url, expected_format=expected, deadline=downloads_deadline)
            images.append(sink(len(images), extension_for(expected, url=url), fill))
        elapsed = time.monotonic() - started
        credits_left = remaining_credits(headers)
        self._log_call(call.what, answer.status_code, elapsed, credits_left, f"{len(images)} image(s)")
        return WrittenGeneration(
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
        deadline: Deadline | None = None,
    ) -> V2SubmitResponse:
        """Queue a generation with v2 and return its handle; this POST is the one that is paid for."""
        slug, body = self._request_body(model, parameters, prompt)
        call = Call(
            "POST", self.settings.url(f"/v2/{slug}"), f"POST /v2/{slug}", json_body=body, deadline=deadline
        )
        started = time.monotonic()
        status_code, headers, content = self._fetch(call)
        handle = parse_model(V2SubmitResponse, call, status_code, content, api_key=self.settings.api_key)
        self._log_call(
            call.what,
            status_code,
            time.monotonic() - started,
            remaining_credits(headers),
            f"request {handle.request_id} {handle.status}",
        )
        return handle

    def get_status(
        self, request: V2SubmitResponse | str, *, deadline: Deadline | None = None
    ) -> V2StatusResponse:
        """The status of a queued request. A FAILED request is returned, not raised."""
        return self._get_request_model(V2StatusResponse, request, "status", deadline)

    def get_result(
        self, request: V2SubmitResponse | str, *, deadline: Deadline | None = None
    ) -> V2ResultResponse:
        """The result of a queued request (its output URLs once COMPLETED). FAILED is returned."""
        return self._get_request_model(V2ResultResponse, request, "response", deadline)

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
        ``SegmindTimeoutError`` at the deadline, which also bounds each poll. Only GETs are sent:
        nothing is paid twice.
        """
        deadline = Deadline.after(timeout, f"timeout={timeout:g} s")
        request_id = request.request_id if isinstance(request, V2SubmitResponse) else request
        last_status = "not yet known"
        while True:
            try:
                answer = self.poll_once(request, deadline=deadline)
            except SegmindTimeoutError:
                if not deadline.expired:
                    raise
                answer = None
            if isinstance(answer, V2ResultResponse):
                return answer
            if answer is not None:
                last_status = str(answer.status)
            if deadline.expired:
                raise SegmindTimeoutError(
                    f"Request {request_id} was still {last_status} after {timeout:.0f} s.",
                    request_id=request_id,
                    hint="Raise the timeout; the result stays available for one hour after submission.",
                )
            sleep(deadline.clamp(poll_interval))

    def poll_once(
        self, request: V2SubmitResponse | str, *, deadline: Deadline | None = None
    ) -> V2StatusResponse | V2ResultResponse:
        """One look at a queued request: its status while it runs, its COMPLETED result when done.

        A FAILED request raises ``SegmindRequestFailedError`` with Segmind's text. The result is
        fetched only once the status says COMPLETED, so a poll costs one GET while waiting.
        """
        request_id = request.request_id if isinstance(request, V2SubmitResponse) else request
        status = self.get_status(request, deadline=deadline)
        if status.status == RequestStatus.FAILED:
            raise SegmindRequestFailedError(
                "The queued request failed.", error_text=status.error, request_id=request_id
            )
        if status.status != RequestStatus.COMPLETED:
            return status
        return raise_for_failed(self.get_result(request, deadline=deadline), request_id)

    # -- downloads ---------------------------------------------------------------------------

    def download(
        self,
        url: str,
        fileobj: BinaryIO,
        *,
        expected_format: str | None = None,
        chunk_size: int = DOWNLOAD_CHUNK,
        deadline: Deadline | None = None,
    ) -> DownloadedImage:
        """Stream an output image into ``fileobj``, checking it is an image before writing a byte.

        The key is sent only when ``url`` is on the API's origin; CDN hosts never see it. A
        truncated body raises. The download ends by ``deadline`` (else within connect + read
        timeout), however slowly the server sends. A retried attempt rewinds ``fileobj`` when it
        can be rewound; an unseekable target is not retried.
        """
        call = Call("GET", url, f"GET {_display_url(url)}", deadline=deadline)
        seekable = _seekable(fileobj)
        start = fileobj.tell() if seekable else 0

        def attempt() -> DownloadedImage:
            if seekable:
                fileobj.seek(start)
                fileobj.truncate()
            with self._open(call, deadline) as answer:
                return answer.stream_into(fileobj, expected_format, chunk_size=chunk_size, url=url)

        started = time.monotonic()
        downloaded = self._retry(call, attempt) if seekable else attempt()
        self._log_call(
            call.what,
            200,
            time.monotonic() - started,
            None,
            f"{downloaded.size_bytes} bytes {downloaded.format}",
        )
        return downloaded

    def download_image(
        self, url: str, *, expected_format: str | None = None, deadline: Deadline | None = None
    ) -> GeneratedImage:
        """Download an output image into memory (small images; the operator streams to storage)."""
        buffer = io.BytesIO()
        downloaded = self.download(url, buffer, expected_format=expected_format, deadline=deadline)
        return GeneratedImage(buffer.getvalue(), downloaded.format, source_url=url)

    # -- account -----------------------------------------------------------------------------

    def get_credits(self) -> CreditsResponse:
        """The account's credits; cheap, so it doubles as the connection test."""
        call = Call("GET", self.settings.url("/v1/get-user-credits"), "GET /v1/get-user-credits")
        started = time.monotonic()
        status_code, _, content = self._fetch(call)
        credits = parse_model(CreditsResponse, call, status_code, content, api_key=self.settings.api_key)
        self._log_call(call.what, status_code, time.monotonic() - started, credits.credits, "")
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

    def _get_request_model(
        self, model_cls: type[Any], request: V2SubmitResponse | str, kind: str, deadline: Deadline | None
    ) -> Any:
        if isinstance(request, V2SubmitResponse):
            given = request.status_url if kind == "status" else request.response_url
            request_id = request.request_id
            url = self.settings.request_url(request_id, kind, given)
        else:
            request_id = request
            url = self.settings.request_url(request_id, kind)
        word = "status" if kind == "status" else "result"
        call = Call(
            "GET",
            url,
            f"GET {word} of request {request_id}",
            accept_failed=True,
            request_id=request_id,
            deadline=deadline,
        )
        status_code, _, content = self._fetch(call)
        return parse_model(model_cls, call, status_code, content, api_key=self.settings.api_key)

    def _fetch(self, call: Call) -> tuple[int, dict[str, str], bytes]:
        """One call with the retry policy for its method; the whole body read within its deadline."""

        def attempt() -> tuple[int, dict[str, str], bytes]:
            with self._open(call, call.deadline) as answer:
                return answer.status_code, answer.headers, answer.read()

        return self._retry(call, attempt)

    def _retry(self, call: Call, func: Callable[[], Any]) -> Any:
        for attempt in self.retry_policy.retrying(call.method, deadline=call.deadline):
            with attempt:
                return func()
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _open(self, call: Call, deadline: Deadline | None) -> _OpenAnswer:
        """Send ``call`` once; return its answer, status checked, with the body still to read.

        The attempt must be over by ``deadline`` (else connect + read timeout from now); the body
        is read within the same bound, through the returned ``_OpenAnswer``.
        """
        settings = self.settings
        bound = attempt_deadline(settings, deadline)
        if bound.expired:
            raise transport_error(
                call, Failure.DEADLINE, "not sent", api_key=None, deadline=bound, sent=False
            )
        scope = DeadlineScope(bound).start()
        try:
            response = self.session.request(
                call.method,
                call.url,
                json=call.json_body,
                headers=settings.headers_for(call.url),
                timeout=socket_timeouts(settings, bound),
                stream=True,
            )
        except requests.exceptions.RequestException as err:
            scope.stop()
            raise self._transport_error(call, err, scope) from None
        except BaseException:
            scope.stop()
            raise
        answer = _OpenAnswer(self, call, response, scope)
        if response.status_code >= 400:
            try:
                check_answer(
                    call, response.status_code, answer.headers, answer.read(), api_key=settings.api_key
                )
            except BaseException:
                answer.close()
                raise
        return answer

    def _transport_error(
        self, call: Call, err: Exception, scope: DeadlineScope, *, body_bytes: int | None = None
    ) -> SegmindError:
        """Which failure a ``requests`` exception is; ``body_bytes`` is set while reading a body."""
        detail = f"{type(err).__name__}: {err}"
        if scope.expired:
            failure = Failure.DEADLINE
        elif body_bytes is not None:
            failure = Failure.CUT_OFF
            detail = f"after {body_bytes} bytes; {detail}"
        elif isinstance(err, requests.exceptions.ConnectTimeout) or _never_sent(err):
            failure = Failure.NOT_SENT
        elif isinstance(err, requests.exceptions.ReadTimeout):
            failure = Failure.TIMED_OUT
        else:
            failure = Failure.BROKEN
        return transport_error(call, failure, detail, api_key=self._known_key(), deadline=scope.deadline)

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


class _OpenAnswer:
    """An answer whose body is still on the wire, read within the attempt's deadline scope.

    Closing it (``with answer:``) releases the connection and ends the scope's watchdog.
    """

    def __init__(
        self, hook: SegmindHook, call: Call, response: requests.Response, scope: DeadlineScope
    ) -> None:
        self._hook = hook
        self.call = call
        self.response = response
        self.scope = scope
        self.status_code = response.status_code
        self.headers = dict(response.headers)
        self._body: bytes | None = None

    @property
    def deadline(self) -> Deadline:
        return self.scope.deadline

    def __enter__(self) -> _OpenAnswer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.response.close()
        self.scope.stop()

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        """The body in chunks; a body that breaks off raises the typed transport error."""
        received = 0
        try:
            for chunk in self.response.iter_content(chunk_size=chunk_size):
                received += len(chunk)
                yield chunk
        except requests.exceptions.RequestException as err:
            raise self._hook._transport_error(self.call, err, self.scope, body_bytes=received) from None

    def read(self) -> bytes:
        """The whole body (read once, then kept: an error answer is read before it is judged)."""
        if self._body is None:
            self._body = b"".join(self.chunks(DOWNLOAD_CHUNK))
        return self._body

    def stream_into(
        self, fileobj: BinaryIO, expected_format: str | None, *, chunk_size: int, url: str | None = None
    ) -> DownloadedImage:
        """Copy the body into ``fileobj``, checking it is an image before writing a byte."""
        what = self.call.what
        head = b""
        written = 0
        image_format: str | None = None
        for chunk in self.chunks(chunk_size):
            if image_format is None:
                head += chunk
                if len(head) < 16 and detect_image_format(head) is None:
                    continue
                image_format = check_image(head, expected_format, source=what)
                chunk, head = head, b""
            fileobj.write(chunk)
            written += len(chunk)
        if image_format is None:
            image_format = check_image(head, expected_format, source=what)
            fileobj.write(head)
            written += len(head)
        self._check_length(written)
        return DownloadedImage(url=url, format=image_format, size_bytes=written)

    def _check_length(self, decoded_bytes: int) -> None:
        """A body shorter than its Content-Length was cut off.

        Content-Length counts the bytes on the wire; with a Content-Encoding (gzip) those differ
        from the decoded bytes written, so the wire count is compared instead.
        """
        declared = self.headers.get("Content-Length")
        if declared is None or not declared.strip().isdigit():
            return
        received = decoded_bytes
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            tell = getattr(self.response.raw, "tell", None)
            if tell is None:
                return
            received = int(tell())
        if int(declared) != received:
            raise SegmindBadResponseError(
                f"{self.call.what}: the answer was truncated ({received} of {declared.strip()} bytes)."
            )


def _bytes_filler(data: bytes, image_format: str) -> Callable[[BinaryIO], DownloadedImage]:
    def fill(fileobj: BinaryIO) -> DownloadedImage:
        fileobj.write(data)
        return DownloadedImage(url=None, format=image_format, size_bytes=len(data))

    return fill


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
