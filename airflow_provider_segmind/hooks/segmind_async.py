"""The triggerer's side of SegmindHook: status and result polls with ``httpx.AsyncClient``.

It reads the connection with common-compat's async helpers (Airflow 3 forbids synchronous
connection access in the triggerer), builds the same ``ConnectionSettings`` as the sync hook, and
maps answers and transport failures through the same ``policy`` module, so a status code means
the same thing and is retried the same way on both paths. It only ever sends GETs: a POST from the
triggerer would be re-sent by a restarted triggerer, and paid twice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_provider_segmind.connection import DEFAULT_CONN_ID, ConnectionSettings, settings_from_connection
from airflow_provider_segmind.exceptions import (
    SegmindBadResponseError,
    SegmindConnectionError,
    SegmindError,
    SegmindTimeoutError,
    redact_key,
)
from airflow_provider_segmind.models.answers import V2ResultResponse, V2StatusResponse
from airflow_provider_segmind.policy import RetryPolicy, error_for_answer, is_failed_answer

if TYPE_CHECKING:
    from pydantic import BaseModel


class SegmindAsyncHook(BaseHook):
    """Poll queued Segmind requests from async code (triggers).

    :param segmind_conn_id: the Segmind connection, as for ``SegmindHook``.
    :param retry_policy: retries of one call; the trigger passes ``max_attempts=1`` and runs its
        own bounded loop around the calls instead.
    :param transport: an ``httpx`` transport to use instead of the network (tests pass
        ``httpx.MockTransport``).
    """

    conn_name_attr = "segmind_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "segmind"
    hook_name = "Segmind (async)"

    def __init__(
        self,
        segmind_conn_id: str = DEFAULT_CONN_ID,
        *,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segmind_conn_id = segmind_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self._transport = transport
        self._settings: ConnectionSettings | None = None
        self._client: httpx.AsyncClient | None = None

    async def get_settings(self) -> ConnectionSettings:
        """Read the connection once, asynchronously; the same rules as the sync hook."""
        if self._settings is None:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )

            try:
                conn = await get_async_connection(self.segmind_conn_id)
            except AirflowNotFoundException:
                conn = None
            extra = await get_async_extra_dejson(conn) if conn is not None else None
            self._settings = settings_from_connection(conn, conn_id=self.segmind_conn_id, extra=extra)
        return self._settings

    async def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            settings = await self.get_settings()
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
                transport=self._transport,
                follow_redirects=False,
                headers={"User-Agent": "airflow-provider-segmind"},
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get_status(self, request_id: str, status_url: str | None = None) -> V2StatusResponse:
        """The status of a queued request; a FAILED request is returned, not raised."""
        settings = await self.get_settings()
        url = settings.request_url(request_id, "status", status_url)
        return await self._get_model(V2StatusResponse, url, f"GET status of request {request_id}", request_id)

    async def get_result(self, request_id: str, response_url: str | None = None) -> V2ResultResponse:
        """The result of a queued request; a FAILED request is returned, not raised."""
        settings = await self.get_settings()
        url = settings.request_url(request_id, "response", response_url)
        return await self._get_model(V2ResultResponse, url, f"GET result of request {request_id}", request_id)

    async def _get_model(self, model_cls: type[BaseModel], url: str, what: str, request_id: str) -> Any:
        async for attempt in self.retry_policy.async_retrying("GET"):
            with attempt:
                response = await self._send_once(url, what, request_id)
                started = time.monotonic()
                try:
                    parsed = model_cls.model_validate_json(response.content)
                except ValueError as err:
                    settings = await self.get_settings()
                    snippet = redact_key(response.text[:200], settings.api_key)
                    raise SegmindBadResponseError(
                        f"{what}: the answer could not be read as {model_cls.__name__} "
                        f"({type(err).__name__}); body starts {snippet!r}.",
                        status_code=response.status_code,
                    ) from None
                self.log.debug(
                    "Segmind %s: HTTP %s (parsed in %.3f s)",
                    what,
                    response.status_code,
                    time.monotonic() - started,
                )
                return parsed
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _send_once(self, url: str, what: str, request_id: str) -> httpx.Response:
        settings = await self.get_settings()
        client = await self._get_client()
        try:
            response = await client.get(url, headers=settings.headers_for(url))
        except httpx.HTTPError as err:
            raise transport_error(err, what=what, api_key=settings.api_key) from None
        if response.status_code >= 400 and not is_failed_answer(response.status_code, response.content):
            raise error_for_answer(
                response.status_code,
                method="GET",
                what=what,
                body=response.content,
                content_type=response.headers.get("Content-Type"),
                headers=dict(response.headers),
                api_key=settings.api_key,
                request_id=request_id,
            )
        return response


def transport_error(err: Exception, *, what: str, api_key: str | None) -> SegmindError:
    """Map an ``httpx`` exception to the same typed errors the ``requests`` path raises."""
    detail = redact_key(f"{type(err).__name__}: {err}", api_key)
    if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
        return SegmindConnectionError(f"{what}: could not connect ({detail}).", sent=False)
    if isinstance(err, httpx.TimeoutException):
        return SegmindTimeoutError(f"{what}: no answer within the read timeout ({detail}).")
    return SegmindConnectionError(f"{what}: the connection failed ({detail}).", sent=True)
