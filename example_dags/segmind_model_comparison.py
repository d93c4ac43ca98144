"""Compare models: one prompt, several Segmind models side by side, with ``expand_kwargs``.

Each mapped instance gets its own model and size; the size comes from the run's params, so a
manual run can change it in the trigger form. The summary lists which model made which file.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_segmind.operators.segmind import METADATA_XCOM_KEY, SegmindGenerateImageOperator

MODELS = ["gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini"]

with DAG(
    dag_id="segmind_model_comparison",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"prompt": "A product photo of a ceramic mug on a wooden table", "size": "1024x1536"},
    tags=["segmind", "example"],
) as dag:
    renders = SegmindGenerateImageOperator.partial(
        task_id="render",
        parameters={"size": "{{ params.size }}", "quality": "low"},
    ).expand_kwargs([{"model": model, "prompt": "{{ params.prompt }}"} for model in MODELS])

    @task
    def compare(ti=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
        """Model -> image URI, from each mapped instance's metadata."""
        metadata = ti.xcom_pull(
            task_ids="render", key=METADATA_XCOM_KEY, map_indexes=list(range(len(MODELS)))
        )
        table = {meta["model"]: meta["images"][0]["uri"] for meta in metadata}
        for model, uri in table.items():
            print(f"{model:18} {uri}")
        return table

    renders >> compare()
