"""Quickstart: one templated prompt becomes an image file; the next task opens it.

Run it against the local Segmind-compatible server with the README's demo command, or against
the real API with a ``segmind_default`` connection (or ``SEGMIND_API_KEY``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator

with DAG(
    dag_id="segmind_quickstart",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"product": "Apache Airflow"},
    tags=["segmind", "example"],
) as dag:
    # Manual runs in Airflow 3 have no logical date, so the date comes from run_after.
    poster = SegmindGenerateImageOperator(
        task_id="poster",
        prompt=(
            "A clean launch poster for the {{ dag_run.run_after | ds }} release of {{ params.product }}, "
            "flat illustration, bold title"
        ),
        model="gpt-image-1.5",
        parameters={"size": "1024x1024", "quality": "low", "output_format": "png"},
    )

    @task
    def describe(paths: list[str]) -> list[dict[str, object]]:
        """Open each image the operator wrote and log what it is."""
        from io import BytesIO

        from airflow.providers.common.compat.sdk import ObjectStoragePath
        from PIL import Image

        found = []
        for path in paths:
            data = ObjectStoragePath(path).read_bytes()
            with Image.open(BytesIO(data)) as image:
                info = {"path": path, "format": image.format, "width": image.width, "height": image.height}
            print(f"{path}: {info['format']} {info['width']}x{info['height']}, {len(data)} bytes")
            found.append(info)
        return found

    describe(poster.output)
