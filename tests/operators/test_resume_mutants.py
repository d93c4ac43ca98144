"""Retry resume behaviours that mutation testing (scripts/mutation.sh) found untested.

A retried task must resume an earlier try's paid request whenever the input is the same, however
its keys were ordered, and must submit anew, not crash, when the saved record is incomplete.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import DAG, TaskDeferred

from airflow_provider_segmind.operators.segmind import REQUEST_RECORD_KEY, SegmindGenerateImageOperator
from airflow_provider_segmind.testing.context import FakeTaskStateStore, task_context

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_segmind.testing import SegmindTestServer

#: A slug this provider has no parameters model for: its body keeps the order the DAG gave.
PASS_THROUGH_MODEL = "some-community-model"


def make_op(tmp_path: Path, **kwargs: Any) -> SegmindGenerateImageOperator:
    with DAG("resume_mutants", schedule=None, start_date=datetime(2026, 1, 1)):
        return SegmindGenerateImageOperator(
            task_id="poster",
            prompt="a red bicycle on a beach",
            deferrable=True,
            output_dir=str(tmp_path),
            poll_interval=0.2,
            **kwargs,
        )


def submit(op: SegmindGenerateImageOperator, store: FakeTaskStateStore) -> str:
    with pytest.raises(TaskDeferred) as info:
        op.execute(task_context(store=store))
    return str(info.value.trigger.request_id)


@pytest.fixture
def server(segmind_connection: SegmindTestServer) -> SegmindTestServer:
    segmind_connection.generation_seconds = 30  # still running when the retry looks at it
    return segmind_connection


def test_retry_with_the_same_parameters_in_another_order_resumes(
    server: SegmindTestServer, tmp_path: Path
) -> None:
    """A DAG edit or a rendered dict may order the same parameters differently: still one payment."""
    store = FakeTaskStateStore()
    first = submit(make_op(tmp_path, model=PASS_THROUGH_MODEL, parameters={"width": 512, "seed": 7}), store)
    second = submit(make_op(tmp_path, model=PASS_THROUGH_MODEL, parameters={"seed": 7, "width": 512}), store)
    assert second == first
    assert len(server.find(method="POST")) == 1


def test_retry_with_a_record_without_its_submit_time_submits_anew(
    server: SegmindTestServer, tmp_path: Path
) -> None:
    """A record whose age cannot be told is treated as outside the result window, not as an error."""
    store = FakeTaskStateStore()
    first = submit(make_op(tmp_path), store)
    del store.data[REQUEST_RECORD_KEY]["submitted_at"]
    second = submit(make_op(tmp_path), store)
    assert second != first
    assert len(server.find(method="POST")) == 2
