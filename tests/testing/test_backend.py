"""The server's state without sockets, driven by a manual clock: no sleeping, no HTTP."""

from __future__ import annotations

import pytest

from airflow_provider_segmind.testing.backend import SegmindBackend
from airflow_provider_segmind.testing.clock import ManualClock, SystemClock
from airflow_provider_segmind.testing.faults import Fault
from airflow_provider_segmind.testing.recording import RecordedRequest
from airflow_provider_segmind.testing.settings import ServerSettings
from airflow_provider_segmind.testing.validation import GenerationParams

PARAMS = GenerationParams("a fox", 64, 64, "png", False, 90)


def make(clock: ManualClock, credits: float = 1.0, **settings: object) -> SegmindBackend:
    return SegmindBackend(ServerSettings(**settings), credits, clock)  # type: ignore[arg-type]


def record(path: str = "/v1/flux") -> RecordedRequest:
    return RecordedRequest("POST", path, {}, {}, b"", None, "api", None, 0.0)


def test_queued_job_walks_through_its_states() -> None:
    clock = ManualClock()
    backend = make(clock, generation_seconds=9.0)
    job = backend.new_job("v2", PARAMS, count=1, queued=True)
    assert backend.job_state(job) == "QUEUED"
    clock.advance(3.0)
    assert backend.job_state(job) == "PROCESSING"
    clock.advance(6.0)
    assert backend.job_state(job) == "COMPLETED"
    assert job.metrics() == {"inference_time": 9.0}


def test_failures_go_to_queued_jobs_only_in_order() -> None:
    backend = make(ManualClock())
    backend.fail_next_v2("first")
    backend.fail_next_v2("second")
    assert backend.new_job("v1", PARAMS, count=1, queued=False).error is None
    assert backend.new_job("v2", PARAMS, count=1, queued=True).error == "first"
    failed = backend.new_job("v2", PARAMS, count=1, queued=True)
    assert (failed.error, backend.job_state(failed)) == ("second", "FAILED")
    assert backend.new_job("v2", PARAMS, count=1, queued=True).error is None


def test_results_expire_after_the_ttl() -> None:
    clock = ManualClock()
    backend = make(clock, result_ttl=60.0)
    job = backend.new_job("v2", PARAMS, count=1, queued=True)
    clock.advance(60.0)
    assert backend.find_job(job.request_id, api="v2") is job
    assert backend.find_job(job.request_id, api="v1") is None
    clock.advance(0.5)
    assert backend.find_job(job.request_id) is None


def test_fixed_window_counts_and_reopens() -> None:
    clock = ManualClock()
    backend = make(clock, rate_limit=(2, 10.0))
    assert [backend.admit("v1"), backend.admit("v2_submit")] == [None, None]
    clock.advance(4.0)
    assert backend.admit("v1") == pytest.approx(6.0)
    assert backend.admit("credits") is None  # the default scope counts generations only
    clock.advance(6.0)
    assert backend.admit("v1") is None


def test_scope_all_counts_every_api_call() -> None:
    backend = make(ManualClock(), rate_limit=(1, 10.0), rate_limit_scope="all")
    assert backend.admit("credits") is None
    assert backend.admit("v2_status") == pytest.approx(10.0)


def test_a_new_limit_starts_a_fresh_window() -> None:
    backend = make(ManualClock(), rate_limit=(1, 60.0))
    assert backend.admit("v1") is None
    assert backend.admit("v1") is not None
    backend.update(rate_limit=(1, 60.0))
    assert backend.admit("v1") is None
    backend.update(latency=1.0)  # other settings leave the window alone
    assert backend.admit("v1") is not None


def test_a_refused_update_changes_nothing() -> None:
    backend = make(ManualClock(), latency=0.5)
    with pytest.raises(ValueError, match="v1_response"):
        backend.update(latency=2.0, v1_response="xml")
    assert backend.settings.latency == 0.5


def test_charges_never_overspend() -> None:
    backend = make(ManualClock(), credits=0.3)
    assert backend.charge(0.2) == pytest.approx(0.1)
    assert backend.charge(0.2) is None
    assert backend.charge(0.1) == pytest.approx(0.0)


def test_reset_keeps_credits_and_settings_restore_defaults_does_not() -> None:
    clock = ManualClock()
    backend = make(clock, credits=5.0, latency=1.0)
    job = backend.new_job("v2", PARAMS, count=1, queued=True)
    backend.faults.add(Fault())
    backend.log.add(record())
    backend.charge(1.0)
    backend.update(latency=3.0, api_key="SG_other")
    backend.reset()
    assert backend.find_job(job.request_id) is None
    assert (backend.faults.pending(), backend.log.snapshot()) == ([], [])
    assert (backend.credits, backend.settings.latency) == (4.0, 3.0)
    backend.restore_defaults()
    assert backend.credits == 5.0
    assert backend.settings == ServerSettings(latency=1.0)


def test_recorded_status_is_filled_in_unless_cleared_since() -> None:
    backend = make(ManualClock())
    first, second = record("/v1/a"), record("/v1/b")
    backend.log.add(first)
    backend.log.add(second)
    backend.log.set_status(first, 200)
    assert [r.status for r in backend.log.snapshot()] == [200, None]
    assert backend.log.find(status=200)[0].path == "/v1/a"
    backend.log.clear()
    backend.log.set_status(second, 500)
    assert backend.log.snapshot() == []


def test_clocks() -> None:
    clock = ManualClock(start=1000.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (2.5, 1002.5)
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)
    system = SystemClock()
    assert system.monotonic() <= system.monotonic()


@pytest.mark.parametrize(
    "settings",
    [
        {"rate_limit_headers": "retry-after"},
        {"rate_limit_scope": "some"},
        {"v1_response": "xml"},
        {"images_per_request": 0},
        {"rate_limit": (0, 1.0)},
        {"rate_limit": (1, 0.0)},
    ],
)
def test_invalid_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        ServerSettings(**settings)  # type: ignore[arg-type]


def test_settings_are_normalised() -> None:
    settings = ServerSettings(rate_limit=(5, 60), known_models=["a"], retired_models=["b"])  # type: ignore[arg-type]
    assert settings.rate_limit == (5, 60.0)
    assert isinstance(settings.rate_limit[1], float)
    assert (settings.known_models, settings.retired_models) == (frozenset({"a"}), frozenset({"b"}))
