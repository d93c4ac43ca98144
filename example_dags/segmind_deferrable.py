"""Deferrable batch: mapped generations that wait in the triggerer, not in worker slots.

Each task instance submits its request with the queued (v2) API in under a second, then defers;
the triggerer polls until the image is ready, and the worker comes back only to download it.
A rate-limit answer (429) on submit is waited out on a timer, also without a worker slot.
Needs a running triggerer (``airflow triggerer``; ``airflow standalone`` starts one).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator

PROMPTS = [
    "An isometric tiny greenhouse full of plants",
    "A retro travel poster of the Moon",
    "A pixel-art lighthouse in a storm",
    "A minimalist logo of a paper plane",
    "A cozy reading nook, warm light",
    "A robot watering flowers, children's book style",
]

with DAG(
    dag_id="segmind_deferrable",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["segmind", "example"],
) as dag:
    images = SegmindGenerateImageOperator.partial(
        task_id="render",
        parameters={"size": "1024x1024", "quality": "low", "output_format": "jpeg", "output_compression": 85},
        deferrable=True,
        poll_interval=2.0,
    ).expand(prompt=PROMPTS)

    @task
    def count(paths_per_prompt: list[list[str]]) -> int:
        total = sum(len(paths) for paths in paths_per_prompt)
        print(f"{total} images generated")
        return total

    count(images.output)
