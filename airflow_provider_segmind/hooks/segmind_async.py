"""The triggerer's side of SegmindHook: status and result polls with ``httpx.AsyncClient``.

It reads the connection with common-compat's async helpers (Airflow 3 forbids synchronous
connection access in the triggerer), builds the same ``ConnectionSettings`` as the sync hook, and
keeps only what ``httpx`` needs: how to send, and which ``httpx`` exception is which transport
failure. What an answer means, what is retried and how long a call may wait come from
``transport`` and ``policy``, exactly as for the sync hook. It only ever sends GETs: a POST from
the triggerer would be re-sent by a restarted triggerer, and paid twice.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

from airflow_provider_segmind.connection import DEFAULT_CONN_ID, ConnectionSettings, settings_from_connection
from airflow_provider_segmind.hooks import async_clients
from airflow_provider_segmind.models.answers import V2ResultResponse, V2StatusResponse
from airflow_provider_segmind.policy import RetryPolicy
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
    from collections.abc import Awaitable

    from pydantic import BaseModel

    from airflow_provider_segmind.deadline import Deadline
    from airflow_provider_segmind.exceptions import SegmindError


T = TypeVar("T")


class SegmindAsyncHook(BaseHook):
    """Poll queued Segmind requests from async code (triggers).

    :param segmind_conn_id: the Segmind connection, as for ``SegmindHook``.
    :param retry_policy: retries of one call; the trigger passes ``max_attempts=1`` and
        ``retry_rate_limits=False`` and runs its own bounded loop around the calls instead.
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

    async def get_conn(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` this hook sends with: shared with every other hook of the same
        client settings in this event loop (see ``async_clients``), until ``aclose``."""
        if self._client is None:
            settings = await self.get_settings()
            self._client = async_clients.acquire(settings, self._transport)
        return self._client

    async def aclose(self) -> None:
        """Release the shared client (the last hook to release it closes it)."""
        if self._client is not None and self._settings is not None:
            client, self._client = self._client, None
            await async_clients.release(client, self._settings, self._transport)

    async def get_status(
        self, request_id: str, status_url: str | None = None, *, deadline: Deadline | None = None
    ) -> V2StatusResponse:
        """The status of a queued request; a FAILED request is returned, not raised."""
        return await self._get_request_model(V2StatusResponse, request_id, "status", status_url, deadline)

    async def get_result(
        self, request_id: str, response_url: str | None = None, *, deadline: Deadline | None = None
    ) -> V2ResultResponse:
        """The result of a queued request; a FAILED request is returned, not raised."""
        return await self._get_request_model(V2ResultResponse, request_id, "response", response_url, deadline)

    async def _get_request_model(
        self,
        model_cls: type[BaseModel],
        request_id: str,
        kind: str,
        given_url: str | None,
        deadline: Deadline | None,
    ) -> Any:
        settings = await self.get_settings()
        word = "status" if kind == "status" else "result"
        call = Call(
            "GET",
            settings.request_url(request_id, kind, given_url),
            f"GET {word} of request {request_id}",
            accept_failed=True,
            request_id=request_id,
            deadline=deadline,
        )
        if self.retry_policy.retries_nothing:
            # The trigger's case: its own loop retries, so this runs once per poll of hundreds of
            # triggers; no retry machinery to build for a single try.
            response = await self._send_once(call, settings)
            return parse_model(
                model_cls, call, response.status_code, response.content, api_key=settings.api_key
            )
        async for attempt in self.retry_policy.async_retrying(call.method, deadline=deadline):
            with attempt:
                response = await self._send_once(call, settings)
                return parse_model(
                    model_cls, call, response.status_code, response.content, api_key=settings.api_key
                )
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _send_once(self, call: Call, settings: ConnectionSettings) -> httpx.Response:
        """One attempt, over by its deadline (the call's, else connect + read timeout) in all."""
        bound = attempt_deadline(settings, call.deadline)
        if bound.expired:
            raise transport_error(
                call, Failure.DEADLINE, "not sent", api_key=None, deadline=bound, sent=False
            )
        client = await self.get_conn()
        connect, read = socket_timeouts(settings, bound)
        request = client.build_request(
            call.method,
            call.url,
            json=call.json_body,
            headers=settings.headers_for(call.url),
            timeout=httpx.Timeout(read, connect=connect),
        )
        try:
            response = await _within(client.send(request), bound.remaining())
        except asyncio.TimeoutError:
            raise transport_error(
                call, Failure.DEADLINE, "the answer did not arrive in time", api_key=None, deadline=bound
            ) from None
        except httpx.HTTPError as err:
            raise _transport_error(call, err, settings.api_key) from None
        check_answer(call, response.status_code, response.headers, response.content, api_key=settings.api_key)
        return response


def _transport_error(call: Call, err: httpx.HTTPError, api_key: str | None) -> SegmindError:
    if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
        failure = Failure.NOT_SENT
    elif isinstance(err, httpx.TimeoutException):
        failure = Failure.TIMED_OUT
    else:
        failure = Failure.BROKEN
    return transport_error(call, failure, f"{type(err).__name__}: {err}", api_key=api_key)


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable``, cancelled with ``asyncio.TimeoutError`` after ``seconds``.

    ``asyncio.timeout`` (3.11+) cancels in place; ``wait_for`` wraps the call in a task of its
    own, a cost paid on every poll.
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, timeout=seconds)
