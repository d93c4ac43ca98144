"""Every example DAG imports cleanly and runs end to end (``dag.test()``) against the local server.

These are the checks a user would make: the run succeeded, the files exist in the asked format,
size and number, XCom holds their URIs, and the server saw exactly the paid calls it should.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from airflow_provider_segmind.storage import to_storage_path

if TYPE_CHECKING:
    from airflow_provider_segmind.testing import SegmindTestServer

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"
DAG_IDS = {
    "segmind_quickstart",
    "segmind_batch",
    "segmind_scheduled_refresh",
    "segmind_deferrable",
    "segmind_sensor",
    "segmind_model_comparison",
}


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(EXAMPLES))


@pytest.fixture
def server(segmind_server: SegmindTestServer, monkeypatch: pytest.MonkeyPatch) -> SegmindTestServer:
    for key, value in segmind_server.airflow_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    segmind_server.generation_seconds = 0.3
    return segmind_server


def xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str, int], Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id).all()
        return {(row.task_id, row.key, row.map_index): row.value for row in rows}


def open_image(uri: str) -> Image.Image:
    image = Image.open(io.BytesIO(to_storage_path(uri).read_bytes()))
    image.load()
    return image


def run(dagbag: Any, dag_id: str, **kwargs: Any) -> tuple[Any, dict[tuple[str, str, int], Any]]:
    dag = dagbag.get_dag(dag_id)
    dag_run = dag.test(**kwargs)
    assert dag_run.state == "success", f"{dag_id} ended {dag_run.state}"
    return dag_run, xcoms(dag_id, dag_run.run_id)


def test_examples_import_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= DAG_IDS


def test_quickstart(dagbag: Any, server: SegmindTestServer) -> None:
    _, values = run(dagbag, "segmind_quickstart")
    (uri,) = values[("poster", "return_value", -1)]
    assert uri.startswith("file://") and uri.endswith("poster_0.png")
    image = open_image(uri)
    assert (image.format, image.size) == ("PNG", (1024, 1024))
    described = values[("describe", "return_value", -1)]
    assert described == [{"path": uri, "format": "PNG", "width": 1024, "height": 1024}]
    meta = values[("poster", "segmind_metadata", -1)]
    assert meta["model"] == "gpt-image-1.5"
    assert "Apache Airflow" in meta["prompt"]
    assert meta["parameters"]["quality"] == "low"
    assert meta["images"] == [{"uri": uri, "format": "png", "bytes": len(to_storage_path(uri).read_bytes())}]
    assert meta["remaining_credits"] == pytest.approx(server.credits)
    assert [(r.method, r.path) for r in server.find(method="POST")] == [("POST", "/v1/gpt-image-1.5")]


def test_batch_maps_over_prompts(dagbag: Any, server: SegmindTestServer) -> None:
    prompts = dagbag.get_dag("segmind_batch").get_task("render").expand_input.value["prompt"]
    _, values = run(dagbag, "segmind_batch")
    per_prompt = [values[("render", "return_value", index)] for index in range(len(prompts))]
    assert all(len(paths) == 1 for paths in per_prompt)
    flat = values[("summary", "return_value", -1)]
    assert flat == [paths[0] for paths in per_prompt]
    assert len(set(flat)) == len(prompts) == 4
    for index, uri in enumerate(flat):
        assert uri.endswith(f"render_{index}_0.webp")
        image = open_image(uri)
        assert (image.format, image.size) == ("WEBP", (1024, 1024))
    sent_prompts = sorted(r.json["prompt"] for r in server.find(method="POST"))
    assert sent_prompts == sorted(prompts)


def test_scheduled_refresh_archives_and_replaces_latest(
    dagbag: Any, server: SegmindTestServer, tmp_path: Path
) -> None:
    root = str(tmp_path / "site")
    for day in (20, 21):
        _, values = run(
            dagbag,
            "segmind_scheduled_refresh",
            logical_date=datetime(2026, 11, day, tzinfo=timezone.utc),
            run_conf={"output_root": root},
        )
        (archived,) = values[("hero", "return_value", -1)]
        assert f"/archive/2026-11-{day}/hero_0.png" in archived
        latest = values[("publish_latest", "return_value", -1)]
        assert latest == f"file://{root}/latest/hero.png"
        assert to_storage_path(latest).read_bytes() == to_storage_path(archived).read_bytes()
        assert open_image(latest).size == (1536, 1024)
    assert sorted(p.name for p in (tmp_path / "site" / "archive").iterdir()) == ["2026-11-20", "2026-11-21"]
    assert [p.name for p in (tmp_path / "site" / "latest").iterdir()] == ["hero.png"]  # no temp files left


def test_deferrable_batch(dagbag: Any, server: SegmindTestServer) -> None:
    _, values = run(dagbag, "segmind_deferrable")
    uris = [values[("render", "return_value", index)][0] for index in range(6)]
    assert values[("count", "return_value", -1)] == 6
    for uri in uris:
        image = open_image(uri)
        assert (image.format, image.size) == ("JPEG", (1024, 1024))
    posts = server.find(method="POST")
    assert len(posts) == 6
    assert all(r.path == "/v2/gpt-image-1.5" for r in posts)
    meta = values[("render", "segmind_metadata", 0)]
    assert meta["api"] == "v2"
    assert meta["request_id"]
    assert meta["parameters"]["output_compression"] == 85
    cdn = server.find(origin="cdn")
    # Each image is stored by its trigger, which ends the task; dag.test() then resumes the task
    # anyway (it runs triggers inline and resumes with every event), which stores it again.
    assert len(cdn) == 2 * 6
    assert all("x-api-key" not in r.headers for r in cdn)


def test_deferrable_batch_under_a_rate_limit(dagbag: Any, server: SegmindTestServer) -> None:
    """More mapped tasks than the window allows: all succeed, one paid POST per image."""
    # dag.test() runs mapped instances one after another, about 2 s each: 2 per 10 s must hit the limit.
    server.rate_limit = (2, 10.0)
    _, values = run(dagbag, "segmind_deferrable")
    assert values[("count", "return_value", -1)] == 6
    posts = server.find(method="POST")
    accepted = [r for r in posts if r.status == 200]
    limited = [r for r in posts if r.status == 429]
    assert len(accepted) == 6
    assert limited, "the limit was never hit: the test proves nothing"
    assert len({r.json["prompt"] for r in accepted}) == 6


def test_sensor_example(dagbag: Any, server: SegmindTestServer) -> None:
    _, values = run(dagbag, "segmind_sensor")
    request_id = values[("submit", "return_value", -1)]
    urls = values[("wait_for_image", "return_value", -1)]
    assert len(urls) == 1 and request_id in urls[0]
    (path,) = values[("download", "return_value", -1)]
    image = open_image(path)
    assert (image.format, image.size) == ("PNG", (1024, 1024))
    assert len(server.find(method="POST")) == 1


def test_model_comparison_expand_kwargs(dagbag: Any, server: SegmindTestServer) -> None:
    """expand_kwargs maps over models; a parameter is rendered from params at run time."""
    _, values = run(dagbag, "segmind_model_comparison", run_conf={"size": "1536x1024"})
    table = values[("compare", "return_value", -1)]
    assert sorted(table) == ["gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"]
    for index in range(3):
        (uri,) = values[("render", "return_value", index)]
        assert uri.endswith(f"render_{index}_0.png")
        assert open_image(uri).size == (1536, 1024)
    posts = server.find(method="POST")
    assert sorted(r.path for r in posts) == ["/v1/gpt-image-1", "/v1/gpt-image-1-mini", "/v1/gpt-image-1.5"]
    assert all(r.json["size"] == "1536x1024" for r in posts)


def test_retry_resumes_the_request_through_task_state_store(server: SegmindTestServer) -> None:
    """First try times out while the request runs; the retry resumes it: one POST, one image."""
    from airflow.dag_processing.dagbag import DagBag

    server.generation_seconds = 1.6
    dag = DagBag(dag_folder=str(Path(__file__).parent / "dags")).get_dag("segmind_retry_resume")
    dag_run = dag.test()
    assert dag_run.state == "success"
    (ti,) = dag_run.get_task_instances()
    assert ti.try_number == 2  # the first try really failed
    posts = server.find(method="POST")
    assert [(r.path, r.status) for r in posts] == [("/v2/gpt-image-1.5", 200)]
    (uri,) = xcoms("segmind_retry_resume", dag_run.run_id)[("slow", "return_value", -1)]
    assert open_image(uri).size == (1024, 1024)


def test_a_typo_is_an_import_error_naming_field_and_allowed_values(tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "typo_dag.py").write_text(
        "from datetime import datetime\n"
        "from airflow.providers.common.compat.sdk import DAG\n"
        "from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator\n"
        "with DAG('typo', schedule=None, start_date=datetime(2026, 1, 1)):\n"
        "    SegmindGenerateImageOperator(task_id='t', prompt='x', parameters={'size': '1024x1025'})\n"
    )
    errors = DagBag(dag_folder=str(tmp_path)).import_errors
    (message,) = errors.values()
    assert "SegmindValidationError" in message
    assert "'size'" in message and "1024x1025" in message
    for allowed in ("1024x1024", "1536x1024", "1024x1536", "auto"):
        assert allowed in message
