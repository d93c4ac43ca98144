"""SegmindRequestSensor: wait for a queued request that was submitted elsewhere.

Typical use: a TaskFlow task submits with ``SegmindHook.submit`` and returns the request id; the
sensor waits for it (poking, or deferred to the same trigger the operator uses) and returns the
output URL(s); a downstream task downloads them. Waiting only ever sends GETs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_segmind.connection import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_segmind.hooks.segmind import SegmindHook


class SegmindRequestSensor(BaseSensorOperator):
    """Wait until a queued Segmind request completes; return its output URL(s) through XCom.

    A request that ends FAILED fails the sensor with Segmind's message, without Airflow retries
    (``SegmindRequestFailedFinalError``: the request's result will not change). A 429 while
    checking counts as "not done yet": the next poke, or the trigger, checks again.

    ``timeout``, ``soft_fail``, ``mode`` and ``poke_interval`` behave as for any
    Airflow sensor; in deferrable mode ``poke_interval`` is the trigger's poll interval and
    ``timeout`` its absolute deadline.

    :param request_id: the id ``SegmindHook.submit`` returned (templated).
    :param segmind_conn_id: the Segmind connection (templated).
    :param deferrable: wait in the triggerer instead of a worker slot. Default: ``[operators]
        default_deferrable``.
    """

    template_fields: Sequence[str] = ("request_id", "segmind_conn_id")
    ui_color = "#e9d5ff"

    def __init__(
        self,
        *,
        request_id: str,
        segmind_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 5.0)
        kwargs.setdefault("timeout", 3600.0)
        super().__init__(**kwargs)
        self.request_id = request_id
        self.segmind_conn_id = segmind_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> SegmindHook:
        """A hook that does not wait out 429s: a rate-limited poke is simply not done yet."""
        from airflow_provider_segmind.hooks.segmind import SegmindHook
        from airflow_provider_segmind.policy import RetryPolicy

        return SegmindHook(self.segmind_conn_id, retry_policy=RetryPolicy(retry_rate_limits=False))

    def poke(self, context: Context) -> bool | PokeReturnValue:
        from airflow_provider_segmind.exceptions import (
            SegmindRateLimitError,
            SegmindRequestFailedError,
            SegmindRequestFailedFinalError,
        )
        from airflow_provider_segmind.models.answers import V2ResultResponse

        try:
            answer = self.hook.poll_once(self.request_id)
        except SegmindRateLimitError as err:
            # Waiting is what a sensor does anyway: try again at the next poke (or in the
            # trigger), rather than hold the worker slot through the rate-limit window.
            self.log.info("Rate limited while checking request %s (%s); not done yet.", self.request_id, err)
            return False
        except SegmindRequestFailedError as err:
            raise SegmindRequestFailedFinalError(
                err.message, error_text=err.error_text, request_id=err.request_id
            ) from None
        self.log.info("Request %s is %s", self.request_id, answer.status)
        if not isinstance(answer, V2ResultResponse):
            return False
        return PokeReturnValue(is_done=True, xcom_value=answer.output_urls)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # One cheap poke first: a request that is already done needs no deferral.
        done = self.poke(context)
        if isinstance(done, PokeReturnValue) and done.is_done:
            return done.xcom_value
        from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

        timeout = self.timeout.total_seconds() if isinstance(self.timeout, timedelta) else float(self.timeout)
        self.defer(
            trigger=SegmindRequestTrigger(
                segmind_conn_id=self.segmind_conn_id,
                request_id=self.request_id,
                poll_interval=float(self.poke_interval)
                if not isinstance(self.poke_interval, timedelta)
                else self.poke_interval.total_seconds(),
                deadline=time.time() + timeout,
            ),
            method_name="execute_complete",
        )
        return None  # pragma: no cover - defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str]:
        """Back from the trigger: the output URLs, or the failure as Airflow users expect it."""
        from airflow_provider_segmind.triggers.segmind import output_urls_from_event

        def timed_out(request_id: str, message: str) -> Exception:
            text = f"Sensor timed out waiting for request {request_id}. {message}"
            return AirflowSkipException(text) if self.soft_fail else AirflowSensorTimeout(text)

        from airflow_provider_segmind.exceptions import (
            SegmindRequestFailedError,
            SegmindRequestFailedFinalError,
        )

        try:
            _, output_urls = output_urls_from_event(event, on_timeout=timed_out)
        except SegmindRequestFailedError as err:
            raise SegmindRequestFailedFinalError(
                err.message, error_text=err.error_text, request_id=err.request_id
            ) from None
        return output_urls
