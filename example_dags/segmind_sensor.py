"""Submit, wait, download: the hook submits in one task, the sensor waits, the next task stores.

Useful when something other than the operator submits (a TaskFlow task choosing the model, a
request submitted by another system) and Airflow only has to wait for it. The sensor runs in
deferrable mode here: it waits in the triggerer.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_segmind.sensors.segmind import SegmindRequestSensor

with DAG(
    dag_id="segmind_sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"prompt": "A botanical illustration of a fern, ink on paper"},
    tags=["segmind", "example"],
) as dag:

    @task
    def submit(params: dict[str, str] | None = None) -> str:
        """Queue the generation (the one paid call) and hand its id to the sensor."""
        from airflow_provider_segmind.hooks.segmind import SegmindHook

        handle = SegmindHook().submit(
            "gpt-image-1.5",
            {"size": "1024x1024", "quality": "low"},
            prompt=(params or {})["prompt"],
        )
        return handle.request_id

    request_id = submit()

    wait = SegmindRequestSensor(
        task_id="wait_for_image",
        request_id=request_id,
        deferrable=True,
        poke_interval=2,
        timeout=900,
    )

    @task
    def download(urls: list[str], run_id: str | None = None) -> list[str]:
        """Stream each output into local storage, atomically, and return the paths."""
        from airflow_provider_segmind.hooks.segmind import SegmindHook
        from airflow_provider_segmind.storage import (
            default_output_dir,
            to_storage_path,
            uri_of,
            write_atomically,
        )

        hook = SegmindHook()
        folder = to_storage_path(default_output_dir("segmind_sensor", run_id or "manual"))
        paths = []
        for index, url in enumerate(urls):
            target = folder / f"image_{index}.png"
            write_atomically(
                target, lambda fileobj, url=url: hook.download(url, fileobj, expected_format="png")
            )
            paths.append(uri_of(target))
        print("\n".join(paths))
        return paths

    download(wait.output)
