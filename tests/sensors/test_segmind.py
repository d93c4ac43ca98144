"""SegmindRequestSensor against the local server: poke mode, deferrable mode, failure, timeout."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.sensors.segmind import SegmindRequestSensor
from airflow_provider_segmind.testing import Fault
from airflow_provider_segmind.testing.context import run_trigger
from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

if TYPE_CHECKING:
    from airflow_provider_segmind.testing import SegmindTestServer


@pytest.fixture
def server(segmind_connection: SegmindTestServer) -> SegmindTestServer:
    segmind_connection.generation_seconds = 0.5
    return segmind_connection


def submit() -> str:
    return SegmindHook().submit("gpt-image-1.5", {"size": "1024x1024"}, prompt="a fern").request_id


def wait_until(request_id: str, status: str, limit: float = 20.0) -> None:
    """Wait for the server-side state instead of sleeping a fixed time (shared machines are slow)."""
    hook = SegmindHook()
    deadline = time.monotonic() + limit
    while hook.get_status(request_id).status != status:
        assert time.monotonic() < deadline, f"{request_id} never reached {status}"
        time.sleep(0.05)


def make_sensor(request_id: str, **kwargs: Any) -> SegmindRequestSensor:
    with DAG("sensor_tests", schedule=None, start_date=datetime(2026, 1, 1)):
        kwargs.setdefault("poke_interval", 0.1)
        return SegmindRequestSensor(task_id="wait", request_id=request_id, **kwargs)


def context() -> dict[str, Any]:
    return {"ti": None, "run_id": "manual__x"}


def test_template_fields() -> None:
    sensor = make_sensor("{{ ti.xcom_pull('submit') }}")
    assert tuple(sensor.template_fields) == ("request_id", "segmind_conn_id")


def test_poke_until_done(server: SegmindTestServer) -> None:
    server.generation_seconds = 3.0
    request_id = submit()
    sensor = make_sensor(request_id)
    assert sensor.poke(context()) is False
    wait_until(request_id, "COMPLETED")
    done = sensor.poke(context())
    assert isinstance(done, PokeReturnValue)
    assert done.is_done
    (url,) = done.xcom_value
    assert url.startswith(server.cdn_url) and request_id in url
    assert len(server.find(method="POST")) == 1


def test_poke_mode_execute_returns_urls(server: SegmindTestServer) -> None:
    request_id = submit()
    urls = make_sensor(request_id, mode="poke").execute(context())
    assert len(urls) == 1 and request_id in urls[0]


def test_failed_request_fails_the_sensor(server: SegmindTestServer) -> None:
    server.fail_next_v2(error="NSFW content detected")
    request_id = submit()
    wait_until(request_id, "FAILED")
    with pytest.raises(exc.SegmindRequestFailedError, match="NSFW content detected") as info:
        make_sensor(request_id).poke(context())
    # The request's result will not change: Airflow must not retry the sensor.
    assert isinstance(info.value, AirflowFailException)


def test_poke_mode_timeout(server: SegmindTestServer) -> None:
    server.generation_seconds = 30
    request_id = submit()
    with pytest.raises(AirflowSensorTimeout):
        make_sensor(request_id, mode="poke", timeout=0.3).execute(context())


def test_unknown_request_is_not_found(server: SegmindTestServer) -> None:
    with pytest.raises(exc.SegmindNotFoundError):
        make_sensor("doesnotexist").poke(context())


def test_deferrable_defers_then_returns_urls(server: SegmindTestServer) -> None:
    request_id = submit()
    sensor = make_sensor(request_id, deferrable=True, timeout=120)
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(context())
    trigger = info.value.trigger
    assert isinstance(trigger, SegmindRequestTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["request_id"] == request_id
    assert kwargs["poll_interval"] == 0.1
    assert before + 120 <= kwargs["deadline"] <= time.time() + 120
    urls = sensor.execute_complete(context(), event=run_trigger(trigger))
    assert len(urls) == 1 and request_id in urls[0]
    assert len(server.find(method="POST")) == 1


def test_deferrable_already_done_needs_no_deferral(server: SegmindTestServer) -> None:
    request_id = submit()
    wait_until(request_id, "COMPLETED")
    urls = make_sensor(request_id, deferrable=True).execute(context())
    assert len(urls) == 1


@pytest.mark.parametrize(
    ("soft_fail", "expected"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)]
)
def test_deferred_timeout_and_soft_fail(soft_fail: bool, expected: type[Exception]) -> None:
    sensor = make_sensor("r1", deferrable=True, soft_fail=soft_fail)
    event = {"status": "timeout", "request_id": "r1", "message": "late", "output_urls": []}
    with pytest.raises(expected):
        sensor.execute_complete(context(), event=event)


def test_deferred_failure_event() -> None:
    event = {"status": "failed", "request_id": "r1", "message": "moderation", "output_urls": []}
    with pytest.raises(exc.SegmindRequestFailedError, match="moderation") as info:
        make_sensor("r1").execute_complete(context(), event=event)
    assert isinstance(info.value, AirflowFailException)


def test_rate_limited_poke_is_not_done_and_holds_no_slot(
    server: SegmindTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 while poking is "not yet": no sleeping through the window inside the worker."""
    naps: list[float] = []
    monkeypatch.setattr(time, "sleep", naps.append)
    request_id = submit()
    server.inject(Fault(status=429, endpoint="v2_status", headers={"Retry-After": "300"}))
    assert make_sensor(request_id).poke(context()) is False
    assert naps == []


def test_deferrable_first_poke_rate_limited_defers_at_once(
    server: SegmindTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []
    monkeypatch.setattr(time, "sleep", naps.append)
    request_id = submit()
    server.inject(Fault(status=429, endpoint="v2_status", headers={"Retry-After": "300"}))
    with pytest.raises(TaskDeferred):
        make_sensor(request_id, deferrable=True).execute(context())
    assert naps == []  # before: up to 300 s of 429 retries in the worker slot


def test_bad_event_refused() -> None:
    with pytest.raises(exc.SegmindBadResponseError):
        make_sensor("r1").execute_complete(context(), event={"status": "success", "output_urls": []})
