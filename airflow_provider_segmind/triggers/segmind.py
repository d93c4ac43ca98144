"""SegmindRequestTrigger: wait for a queued request in the triggerer, holding no worker slot.

The trigger only polls (GET). It never submits: a triggerer that restarts re-creates the trigger
from its serialised kwargs and goes on polling the same request, so nothing is paid twice. Its
kwargs are small and secret-free (connection id, request id, URLs, interval, an absolute
deadline), and the deadline is absolute so a restart does not reset the clock.

Flaky polls are tolerated, boundedly: a 429 waits what Segmind named (``Retry-After``, or its
``x-rate-limit-reset-at-utc`` moment), or backs off, and never less than the poll interval; 5xx,
connection errors and timeouts back off and count as consecutive failures, reset by a clean
poll. Every wait is a real ``asyncio.sleep``, and every wait, a poll's own HTTP call included,
ends by the deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_segmind.connection import validate_request_id
from airflow_provider_segmind.deadline import Deadline
from airflow_provider_segmind.exceptions import (
    SegmindBadResponseError,
    SegmindError,
    SegmindRateLimitError,
    SegmindRequestFailedError,
)
from airflow_provider_segmind.models.answers import RequestStatus
from airflow_provider_segmind.policy import RetryPolicy

#: Event statuses; ``execute_complete`` of the operator and the sensor branch on these.
EVENT_SUCCESS = "success"
EVENT_FAILED = "failed"
EVENT_TIMEOUT = "timeout"
EVENT_ERROR = "error"
EVENT_STATUSES = frozenset({EVENT_SUCCESS, EVENT_FAILED, EVENT_TIMEOUT, EVENT_ERROR})


def output_urls_from_event(
    event: Any, *, on_timeout: Callable[[str, str], BaseException]
) -> tuple[str, list[str]]:
    """The request id and output URLs of a successful trigger event; raise for every other outcome.

    The event crossed a process boundary, so it is validated before it is trusted. A FAILED
    request raises with Segmind's own text, a polling error as a ``SegmindError``; a timeout
    raises ``on_timeout(request_id, message)``, because operators and sensors fail differently.
    """
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        raise SegmindBadResponseError(f"Unexpected event from the Segmind trigger: {event!r:.300}")
    request_id = event.get("request_id")
    if not isinstance(request_id, str):
        raise SegmindBadResponseError(f"The Segmind trigger's event has no request_id: {event!r:.300}")
    message = event.get("message") or ""
    if event["status"] == EVENT_FAILED:
        raise SegmindRequestFailedError(
            "The queued request failed.", error_text=message, request_id=request_id
        )
    if event["status"] == EVENT_TIMEOUT:
        raise on_timeout(request_id, message)
    if event["status"] == EVENT_ERROR:
        raise SegmindError(message or "Polling the request failed.", request_id=request_id)
    urls = event.get("output_urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise SegmindBadResponseError(f"The Segmind trigger's event has no output URLs: {event!r:.300}")
    return request_id, urls


class SegmindRequestTrigger(BaseTrigger):
    """Poll one queued request until it completes, fails, or the deadline passes.

    Yields exactly one event: ``{"status": "success"|"failed"|"timeout"|"error", "request_id",
    "message", "output_urls"}``.

    :param segmind_conn_id: the Segmind connection (read asynchronously in the triggerer).
    :param request_id: the id Segmind returned on submit.
    :param status_url: the submit answer's ``status_url`` (optional; derived from the id).
    :param response_url: the submit answer's ``response_url`` (optional; derived from the id).
    :param poll_interval: seconds between status polls.
    :param deadline: absolute time (Unix seconds) after which the trigger gives up.
    :param max_consecutive_errors: transient failures in a row (5xx, connection, timeout) before it
        gives up; a clean poll resets the count.
    :param submitted_at: when the request was sent (Unix seconds); reported to the connection's
        turn queue (``turns``), which counts the sends of a window with it.
    :param ticket: the turn the request was sent on, if it waited for one (``SegmindTurnTrigger``).
    :param finish: set by the operator's ``end_from_trigger``: ``{"targets": ImageTargets kwargs,
        "model": slug, "body": request body}``. The trigger then stores the images itself and
        ends the task with a ``TaskSuccessEvent`` carrying the XComs, so no worker runs again. If
        storing fails, it yields the ordinary success event instead and the task resumes in a
        worker, which stores them (and raises the typed error if it fails again).
    """

    #: The first poll waits a random part (up to this fraction) of ``poll_interval``.
    first_poll_spread: float = 1.0

    def __init__(
        self,
        *,
        segmind_conn_id: str,
        request_id: str,
        deadline: float,
        status_url: str | None = None,
        response_url: str | None = None,
        poll_interval: float = 5.0,
        max_consecutive_errors: int = 10,
        submitted_at: float | None = None,
        ticket: str | None = None,
        finish: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        validate_request_id(request_id)
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval!r}")
        if not isinstance(deadline, (int, float)) or isinstance(deadline, bool):
            raise TypeError(f"deadline must be Unix seconds (a number), got {deadline!r}")
        if max_consecutive_errors < 1:
            raise ValueError(f"max_consecutive_errors must be at least 1, got {max_consecutive_errors!r}")
        self.segmind_conn_id = segmind_conn_id
        self.request_id = request_id
        self.status_url = status_url
        self.response_url = response_url
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline)
        self.max_consecutive_errors = max_consecutive_errors
        self.submitted_at = float(submitted_at) if submitted_at is not None else None
        self.ticket = ticket
        self.finish = finish
        self.backoff = RetryPolicy(
            max_attempts=1, initial_backoff=min(2.0, self.poll_interval), max_backoff=60.0
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{self.__class__.__module__}.{self.__class__.__qualname__}",
            {
                "segmind_conn_id": self.segmind_conn_id,
                "request_id": self.request_id,
                "deadline": self.deadline,
                "status_url": self.status_url,
                "response_url": self.response_url,
                "poll_interval": self.poll_interval,
                "max_consecutive_errors": self.max_consecutive_errors,
                "submitted_at": self.submitted_at,
                "ticket": self.ticket,
                "finish": self.finish,
            },
        )

    def _hook(self) -> Any:
        from airflow_provider_segmind.hooks.segmind_async import SegmindAsyncHook

        # One try per call, 429s included: this loop is the retry loop, bounded by the deadline.
        return SegmindAsyncHook(
            self.segmind_conn_id, retry_policy=RetryPolicy(max_attempts=1, retry_rate_limits=False)
        )

    def _event(self, status: str, message: str, output_urls: list[str] | None = None) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "request_id": self.request_id,
                "message": message,
                "output_urls": output_urls or [],
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        if self.submitted_at is not None:
            await _report_send(hook, self.segmind_conn_id, self.submitted_at, self.ticket)
        try:
            async for event in self._poll(hook):
                if self.finish is not None and event.payload.get("status") == EVENT_SUCCESS:
                    event = await self._store(event, self.finish)
                yield event
                return
        finally:
            await hook.aclose()

    async def _store(self, event: TriggerEvent, finish: dict[str, Any]) -> TriggerEvent:
        """Store the images and end the task here; on any failure, leave both to a worker."""
        from airflow.triggers.base import TaskSuccessEvent

        urls = list(event.payload["output_urls"])
        try:
            images = await asyncio.get_running_loop().run_in_executor(
                _store_threads(), self._store_blocking, urls, finish
            )
        except Exception as err:
            self.log.warning(
                "Could not store the images of %s in the triggerer (%s); the task resumes in a worker, "
                "which stores them.",
                self.request_id,
                err,
            )
            return event
        from airflow_provider_segmind.outputs import request_metadata

        uris = [image["uri"] for image in images]
        metadata = request_metadata(
            model=finish["model"],
            body=finish["body"],
            images=images,
            request_id=self.request_id,
            elapsed=time.time() - self.submitted_at if self.submitted_at is not None else None,
            credits=None,
            api="v2",
        )
        self.log.info("Wrote %d image(s) from request %s: %s", len(uris), self.request_id, ", ".join(uris))
        return TaskSuccessEvent(xcoms={"return_value": uris, "segmind_metadata": metadata})

    def _store_blocking(self, urls: list[str], finish: dict[str, Any]) -> list[dict[str, Any]]:
        """The worker's own storing code (sync fsspec), on a thread so the event loop runs on."""
        from airflow_provider_segmind.hooks.segmind import SegmindHook
        from airflow_provider_segmind.outputs import ImageTargets, store_outputs

        targets = ImageTargets.from_kwargs(finish["targets"])
        hook = SegmindHook(self.segmind_conn_id)
        try:
            return store_outputs(hook, targets, urls, Deadline(self.deadline, "the trigger's deadline"))
        finally:
            hook.close()

    async def _poll(self, hook: Any) -> AsyncIterator[TriggerEvent]:
        deadline = Deadline(self.deadline, "the trigger's deadline")
        failures = 0
        rate_limits = 0
        last_problem = ""
        if self.first_poll_spread > 0:
            # A batch deferred together (or re-created together by a restarted triggerer) would
            # otherwise poll in one burst every interval, queueing on the shared client's pool.
            await asyncio.sleep(
                deadline.clamp(random.uniform(0, self.first_poll_spread * self.poll_interval))
            )
        while True:
            if deadline.expired:
                detail = f" Last problem: {last_problem}" if last_problem else ""
                yield self._event(
                    EVENT_TIMEOUT, f"Request {self.request_id} did not finish before the deadline.{detail}"
                )
                return
            try:
                status = await hook.get_status(self.request_id, self.status_url, deadline=deadline)
                if status.status == RequestStatus.COMPLETED:
                    result = await hook.get_result(self.request_id, self.response_url, deadline=deadline)
                    if result.status == RequestStatus.FAILED:
                        yield self._event(EVENT_FAILED, result.error or "Segmind reported FAILED.")
                        return
                    if result.status == RequestStatus.COMPLETED:
                        if result.output_urls:
                            yield self._event(EVENT_SUCCESS, "Request completed.", result.output_urls)
                        else:
                            yield self._event(
                                EVENT_ERROR,
                                f"Request COMPLETED without an output URL: {result.output!r:.200}",
                            )
                        return
                elif status.status == RequestStatus.FAILED:
                    yield self._event(EVENT_FAILED, status.error or "Segmind reported FAILED.")
                    return
                failures = rate_limits = 0
                wait = self.poll_interval
                self.log.debug("Request %s is %s", self.request_id, status.status)
            except SegmindRateLimitError as err:
                # The wait Segmind named, or a growing back-off; never less than the poll interval,
                # so a "Retry-After: 0" (or a reset moment in the past) cannot make a busy loop.
                rate_limits += 1
                wait = max(self.poll_interval, self.backoff.wait_for(err, attempt=rate_limits))
                last_problem = str(err)
                self.log.info("Rate limited while polling %s; waiting %.1f s", self.request_id, wait)
            except SegmindError as err:
                if not self.backoff.should_retry(err, "GET"):
                    yield self._event(EVENT_ERROR, str(err))
                    return
                failures += 1
                last_problem = str(err)
                if failures >= self.max_consecutive_errors:
                    yield self._event(EVENT_ERROR, f"{failures} polls in a row failed; the last one: {err}")
                    return
                wait = self.backoff.wait_for(err, attempt=failures)
                self.log.warning(
                    "Poll %d of %s failed (%s); retrying in %.1f s", failures, self.request_id, err, wait
                )
            await asyncio.sleep(deadline.clamp(wait))


#: Threads that store images for triggers ending their tasks; fsspec is synchronous. A few are
#: enough: a batch's downloads come spread over the turns, and waiting ones hold no worker slot.
_STORE_THREADS = 8
_store_pool: ThreadPoolExecutor | None = None


def _store_threads() -> ThreadPoolExecutor:
    global _store_pool
    if _store_pool is None:
        _store_pool = ThreadPoolExecutor(max_workers=_STORE_THREADS, thread_name_prefix="segmind-store")
    return _store_pool


async def _report_send(hook: Any, conn_id: str, submitted_at: float, ticket: str | None = None) -> None:
    """Tell the connection's turn queue that a request was sent; never fails the poll."""
    from airflow_provider_segmind.exceptions import SegmindConfigurationError
    from airflow_provider_segmind.turns import turns_for

    try:
        settings = await hook.get_settings()
    except SegmindConfigurationError:
        return  # the poll itself reports the broken connection
    turns_for(conn_id, settings.rate_limit).note_sent(submitted_at, ticket)


#: ``SegmindTurnTrigger`` event statuses.
EVENT_TURN = "turn"


class SegmindTurnTrigger(BaseTrigger):
    """Wait in the triggerer for this task's turn to send a generation of its connection.

    The turns of a connection are shared by every task that waits for one in this triggerer
    (see ``airflow_provider_segmind.turns``): one at a time, first come first served, no more
    than the rate limit per window, none before the moment a 429 named. It sends nothing;
    the task sends its POST from a worker when the turn comes. Yields exactly one event:
    ``{"status": "turn"|"timeout", "ticket", "granted_at"}``.

    :param segmind_conn_id: the Segmind connection whose turns are taken.
    :param ticket: who waits (the task instance), for the log and to break ties.
    :param enqueued_at: when the task first asked for a turn (Unix seconds); a task sent back by
        a 429 keeps it, and with it its place in the queue.
    :param deadline: when to stop waiting (Unix seconds).
    :param reset_at: when Segmind said its window reopens, if this task just got a 429.
    :param rejections: how many 429s the task has had so far.
    """

    def __init__(
        self,
        *,
        segmind_conn_id: str,
        ticket: str,
        enqueued_at: float,
        deadline: float,
        reset_at: float | None = None,
        rejections: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("enqueued_at", enqueued_at), ("deadline", deadline)):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{name} must be Unix seconds (a number), got {value!r}")
        self.segmind_conn_id = segmind_conn_id
        self.ticket = ticket
        self.enqueued_at = float(enqueued_at)
        self.deadline = float(deadline)
        self.reset_at = float(reset_at) if reset_at is not None else None
        self.rejections = int(rejections)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{self.__class__.__module__}.{self.__class__.__qualname__}",
            {
                "segmind_conn_id": self.segmind_conn_id,
                "ticket": self.ticket,
                "enqueued_at": self.enqueued_at,
                "deadline": self.deadline,
                "reset_at": self.reset_at,
                "rejections": self.rejections,
            },
        )

    #: A turn comes no sooner than this many seconds after the trigger starts. A task resumed
    #: within moments of deferring can be failed by the stale executor event of the run that
    #: deferred (apache/airflow#66374, #67287, #71580, #72716: the scheduler drains it after the
    #: resumed run started). That costs a retry, not an image, as nothing is sent yet, but a batch
    #: should not pay retries for it. Other waiting tasks take the turns meanwhile.
    min_wait: float = 5.0

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_segmind.hooks.segmind_async import SegmindAsyncHook
        from airflow_provider_segmind.turns import turns_for

        settings = await SegmindAsyncHook(self.segmind_conn_id).get_settings()
        turns = turns_for(self.segmind_conn_id, settings.rate_limit)
        if self.rejections:
            turns.note_rejected(self.reset_at, rejections=self.rejections, ticket=self.ticket)
        not_before = time.time() + self.min_wait
        granted_at = await turns.wait_turn(self.ticket, self.enqueued_at, self.deadline, not_before)
        status = EVENT_TURN if granted_at is not None else EVENT_TIMEOUT
        if granted_at is not None:
            self.log.info("Turn for %s after %.1f s in the queue", self.ticket, granted_at - self.enqueued_at)
        yield TriggerEvent({"status": status, "ticket": self.ticket, "granted_at": granted_at})
