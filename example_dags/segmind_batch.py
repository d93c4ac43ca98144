"""Batch: prompts from a file next to this DAG, mapped over the operator, capped by a pool.

Each prompt becomes one mapped task instance writing its own files. The pool ``segmind_api``
caps how many calls run at once (create it with ``airflow pools set segmind_api 2 "Segmind"``;
size it to your plan's rate limit: Free 5/min, Pro 50/min). A summary task collects all paths.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator

PROMPTS_FILE = Path(__file__).with_name("prompts.txt")


def read_prompts(path: Path = PROMPTS_FILE) -> list[str]:
    """Prompts, one per line; cheap enough to run at parse time (a small local file)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


with DAG(
    dag_id="segmind_batch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["segmind", "example"],
) as dag:
    images = SegmindGenerateImageOperator.partial(
        task_id="render",
        model="gpt-image-1.5",
        parameters={"size": "1024x1024", "quality": "low", "output_format": "webp"},
        pool="segmind_api",
        retries=2,
    ).expand(prompt=read_prompts())

    @task
    def summary(paths_per_prompt: list[list[str]]) -> list[str]:
        """Flatten the mapped results into one list for whatever comes next."""
        paths = [path for paths in paths_per_prompt for path in paths]
        print(f"{len(paths)} images:")
        for path in paths:
            print(f"  {path}")
        return paths

    summary(images.output)
