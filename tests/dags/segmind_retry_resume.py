"""Test-only DAG: a deferrable task whose first try times out while its request is still running.

Its retry must resume the same request through Airflow's real task_state_store, not pay again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator

with DAG("segmind_retry_resume", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    SegmindGenerateImageOperator(
        task_id="slow",
        prompt="a slow generation",
        parameters={"size": "1024x1024"},
        deferrable=True,
        poll_interval=0.2,
        timeout=1.0,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
