"""Batch: prompts from a file next to this DAG, mapped over the operator, under the plan's limit.

Each prompt becomes one mapped task instance writing its own files. With ``deferrable=True`` the
tasks wait in the triggerer, not in worker slots: for their turn under the rate limit, and for
their generation. Put your plan's limit on the Segmind connection (extra ``rate_limit``, e.g.
``{"rate_limit": "50/60"}`` for 50 a minute) and the tasks take turns under it, so none is
rejected; without it they learn the limit from Segmind's 429 answers. ``retries=2`` makes
Airflow's own deferral races cost a retry, which resumes the paid request, never a new image.
A summary task collects all paths.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task

from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator

PROMPTS_FILE = Path(__file__).with_name("prompts.txt")


def read_prompts(path: Path = PROMPTS_FILE) -> list[str]:
    """Prompts, one per line; cheap enough to run at parse time (a small local file)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


@dag(
    dag_id="segmind_batch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["segmind", "example"],
)
def segmind_batch() -> None:
    images = SegmindGenerateImageOperator.partial(
        task_id="render",
        model="gpt-image-1.5",
        parameters={"size": "1024x1024", "quality": "low", "output_format": "webp"},
        deferrable=True,
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


segmind_batch()
