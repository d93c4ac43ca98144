"""Test-wide set-up: a project-local AIRFLOW_HOME before Airflow is imported, and shared fixtures."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.storage_servers import S3Server

ROOT = Path(__file__).resolve().parent.parent
# scripts/test.sh sets these; setdefault keeps `pytest` alone working the same way.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow" / "tests"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "example_dags"))
# A second DAG bundle for test-only DAGs: dag.test() runs only DAGs that live in a bundle.
os.environ.setdefault(
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
    json.dumps(
        [
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {},
            },
            {
                "name": "test-dags",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(ROOT / "tests" / "dags")},
            },
        ]
    ),
)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3-compatible HTTP server (moto) on loopback, one per session, with ``s3://`` attached to it."""
    from tests.storage_servers import start_s3_server

    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, request: pytest.FixtureRequest) -> str:
    """A fresh, empty ``s3://<bucket>/<prefix>`` on the session's S3 server, for this test alone.

    Use it as ``output_dir`` or with ``storage.to_storage_path(uri)`` (no ``conn_id``); inspect
    the server with ``s3_server.fs``.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", request.node.name)[:60]
    return s3_server.uri(f"{name}-{uuid.uuid4().hex[:8]}")


# pytester runs small pytest sessions, to test the pytest plugin across tests.
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _turns_without_a_dwell(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn trigger waits ``min_wait`` (5 s) before any turn, against an Airflow race that tests
    have no scheduler for; tests skip it, except those marked ``turn_dwell``."""
    if request.node.get_closest_marker("turn_dwell") is None:
        from airflow_provider_segmind.triggers.segmind import SegmindTurnTrigger

        monkeypatch.setattr(SegmindTurnTrigger, "min_wait", 0.0)
