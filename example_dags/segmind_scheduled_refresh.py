"""Daily refresh: a dated archive copy of today's hero image, and a stable ``latest`` image.

Pages and apps link to ``latest/hero.png``; it is replaced atomically, so a reader never sees a
half-written file, and every day's image stays in ``archive/<date>/``. Set
``SEGMIND_EXAMPLE_OUTPUT_ROOT`` (or the ``output_root`` param) to an ``s3://`` or ``gs://`` URI
to keep both in object storage.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator

DEFAULT_ROOT = os.environ.get(
    "SEGMIND_EXAMPLE_OUTPUT_ROOT",
    os.path.join(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "segmind_refresh"),
)

with DAG(
    dag_id="segmind_scheduled_refresh",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"output_root": DEFAULT_ROOT, "theme": "autumn market"},
    tags=["segmind", "example"],
) as dag:
    hero = SegmindGenerateImageOperator(
        task_id="hero",
        prompt="Website hero banner, {{ params.theme }}, for {{ ds }}, soft light, no text",
        parameters={"size": "1536x1024", "quality": "medium", "output_format": "png"},
        output_dir="{{ params.output_root }}/archive/{{ ds }}",
    )

    @task
    def publish_latest(paths: list[str], params: dict[str, str] | None = None) -> str:
        """Copy the archived image over ``latest/hero.<ext>`` in one atomic step."""
        from airflow_provider_segmind.storage import to_storage_path, uri_of, write_atomically

        source = to_storage_path(paths[0])
        root = (params or {}).get("output_root", DEFAULT_ROOT)
        latest = to_storage_path(f"{root}/latest") / f"hero{source.suffix}"

        def copy(fileobj):  # type: ignore[no-untyped-def]
            with source.open("rb") as src:
                while chunk := src.read(1 << 20):
                    fileobj.write(chunk)

        write_atomically(latest, copy)
        print(f"latest -> {uri_of(latest)} (from {uri_of(source)})")
        return uri_of(latest)

    publish_latest(hero.output)
