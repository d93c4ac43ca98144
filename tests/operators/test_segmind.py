"""SegmindGenerateImageOperator against the local server, with a hand-made task context.

The end-to-end runs through Airflow are in tests/test_example_dags.py; here each behaviour is
isolated: templating surface, validation before HTTP, outputs and XCom, typed failures, the
deferral and its kwargs, the rate-limit timer, retry resume, restarted triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowFailException, TaskDeferred
from airflow.triggers.base import BaseTaskEndEvent

from airflow_provider_segmind import exceptions as exc
from airflow_provider_segmind.hooks.segmind import SegmindHook
from airflow_provider_segmind.operators.segmind import (
    METADATA_XCOM_KEY,
    REQUEST_RECORD_KEY,
    SegmindGenerateImageOperator,
)
from airflow_provider_segmind.testing import Fault
from airflow_provider_segmind.testing.context import FakeTaskStateStore, run_trigger, task_context
from airflow_provider_segmind.testing.context import resume as resume_deferred
from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

if TYPE_CHECKING:
    from airflow_provider_segmind.testing import SegmindTestServer

PROMPT = "a red bicycle on a beach"


def make_context(
    store: FakeTaskStateStore | None = None, map_index: int = -1, try_number: int = 1
) -> dict[str, Any]:
    return task_context(map_index=map_index, store=store, with_store=store is not None, try_number=try_number)


def make_op(**kwargs: Any) -> SegmindGenerateImageOperator:
    with DAG("op_tests", schedule=None, start_date=datetime(2026, 1, 1)):
        kwargs.setdefault("task_id", "poster")
        kwargs.setdefault("prompt", PROMPT)
        kwargs.setdefault("poll_interval", 0.2)
        return SegmindGenerateImageOperator(**kwargs)


@pytest.fixture
def server(segmind_connection: SegmindTestServer) -> SegmindTestServer:
    segmind_connection.generation_seconds = 0.2
    return segmind_connection


def resume(op: SegmindGenerateImageOperator, deferred: TaskDeferred, context: dict[str, Any]) -> Any:
    """What Airflow does when a trigger fires: end the task as the event says, or call the
    method with the event and the kwargs (a trigger other than the polling one: no event)."""
    if isinstance(deferred.trigger, SegmindRequestTrigger):
        return resume_deferred(op, deferred, context)
    return getattr(op, deferred.method_name)(context, event=None, **(deferred.kwargs or {}))


# -- surface -----------------------------------------------------------------------------------


def test_templating_surface() -> None:
    op = make_op()
    assert tuple(op.template_fields) == ("prompt", "model", "parameters", "output_dir", "segmind_conn_id")
    for name in op.template_fields:
        assert hasattr(op, name)
    assert op.template_fields_renderers["parameters"] == "json"
    assert set(op.template_ext) == {".txt", ".j2"}


@pytest.mark.parametrize(("setting", "expected"), [("true", True), ("false", False), (None, False)])
def test_deferrable_default_follows_airflow_config(setting: str | None, expected: bool) -> None:
    """Read in a fresh interpreter, as a DAG file parse would: the default comes from the config."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"}
    if setting is not None:
        env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = setting
    code = (
        "from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator as O\n"
        "from airflow_provider_segmind.sensors.segmind import SegmindRequestSensor as S\n"
        "print(O(task_id='t', prompt='p').deferrable, S(task_id='s', request_id='r').deferrable)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == [str(expected), str(expected)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"parameters": {"size": "512x512"}}, "size"),
        ({"parameters": {"quality": "ultra"}}, "quality"),
        ({"parameters": {"background": "transparent", "output_format": "jpeg"}}, "background"),
        ({"parameters": {"n": 2}}, "n"),
        ({"prompt": ""}, "prompt"),
        ({"model": "bad/slug"}, "model"),
    ],
)
def test_literal_mistakes_fail_at_parse_time(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(exc.SegmindValidationError) as info:
        make_op(**kwargs)
    assert field in str(info.value)


def test_allowed_values_are_listed_at_parse_time() -> None:
    with pytest.raises(exc.SegmindValidationError) as info:
        make_op(parameters={"size": "512x512"})
    for allowed in ("1024x1024", "1536x1024", "1024x1536", "auto"):
        assert allowed in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"parameters": {"size": "{{ params.size }}"}},
        {"model": "{{ var.value.model }}", "parameters": {"anything": 1}},
        {"prompt": "prompts/poster.j2", "parameters": {"size": "1024x1024"}},
        {"prompt": "{{ params.prompt }}"},
    ],
)
def test_templated_values_wait_for_rendering(kwargs: dict[str, Any]) -> None:
    make_op(**kwargs)


@pytest.mark.parametrize("model", ["gpt-image-1.5", "flux-1.1-pro", "{{ params.model }}"])
@pytest.mark.parametrize("size", ["1024x1024", "{{ params.size }}"])
def test_parameters_that_contain_themselves_fail_at_parse_time(model: str, size: str) -> None:
    # Templated or not: Airflow itself walks template fields after __init__ and would recurse
    # without end, so the operator must refuse the value before that.
    parameters: dict[str, Any] = {"size": size}
    parameters["self"] = parameters
    with pytest.raises(exc.SegmindValidationError) as info:
        make_op(model=model, parameters=parameters)
    assert info.value.field == "parameters"
    assert "contains itself" in str(info.value)
    assert "parameters['self']" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        # Each is wrong as a literal (size not allowed, prompt too long, slug not a path
        # segment), so these pass only when the marker is recognised as Jinja.
        {"parameters": {"size": "{% if params.big %}1536x1024{% else %}1024x1024{% endif %}"}},
        {"parameters": {"size": "{# the house default #}1024x1024"}},
        {"prompt": "{% if false %}" + "x" * 40000 + "{% endif %}a red bicycle"},
        {"prompt": "{# " + "x" * 40000 + " #}a red bicycle"},
        {"model": "{% if params.mini %}gpt-image-1-mini{% else %}gpt-image-1.5{% endif %}"},
    ],
    ids=["parameters-block", "parameters-comment", "prompt-block", "prompt-comment", "model-block"],
)
def test_block_and_comment_markers_are_templates(kwargs: dict[str, Any]) -> None:
    make_op(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"timeout": 7200}, "timeout"),
        ({"rate_limit_max_wait": -1}, "rate"),
    ],
)
def test_numbers_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_op(**kwargs)


def test_rendered_values_validated_before_any_http(server: SegmindTestServer, tmp_path: Path) -> None:
    op = make_op(parameters={"size": "{{ params.size }}"}, output_dir=str(tmp_path))
    op.parameters = {"size": "640x480"}  # what rendering produced
    with pytest.raises(exc.SegmindValidationError, match="size"):
        op.execute(make_context())
    assert server.requests == []
    assert list(tmp_path.iterdir()) == []


def test_template_file_prompt(server: SegmindTestServer, tmp_path: Path) -> None:
    (tmp_path / "poster.j2").write_text("A poster for {{ params.product }}")
    with DAG(
        "tpl",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        template_searchpath=[str(tmp_path)],
        params={"product": "Widgets"},
    ):
        op = SegmindGenerateImageOperator(task_id="t", prompt="poster.j2", output_dir=str(tmp_path / "out"))
    op.resolve_template_files()
    assert op.prompt == "A poster for {{ params.product }}"


# -- synchronous execution -----------------------------------------------------------------------


def test_sync_writes_images_and_pushes_metadata(server: SegmindTestServer, tmp_path: Path) -> None:
    op = make_op(parameters={"size": "1024x1536", "output_format": "webp"}, output_dir=str(tmp_path))
    context = make_context()
    uris = op.execute(context)
    assert uris == [f"file://{tmp_path}/poster_0.webp"]
    assert (tmp_path / "poster_0.webp").read_bytes()[8:12] == b"WEBP"
    meta = context["ti"].xcom[METADATA_XCOM_KEY]
    assert meta["model"] == "gpt-image-1.5"
    assert meta["prompt"] == PROMPT
    assert meta["parameters"]["size"] == "1024x1536"
    assert meta["api"] == "v1"
    assert meta["remaining_credits"] == pytest.approx(server.credits)
    assert meta["images"][0]["uri"] == uris[0]
    assert server.api_key not in repr(meta)


def test_rerun_replaces_and_mapped_instances_do_not_collide(
    server: SegmindTestServer, tmp_path: Path
) -> None:
    op = make_op(output_dir=str(tmp_path), parameters={"size": "1024x1024"})
    first = op.execute(make_context(map_index=0))
    again = op.execute(make_context(map_index=0))
    other = op.execute(make_context(map_index=1))
    assert first == again == [f"file://{tmp_path}/poster_0_0.png"]
    assert other == [f"file://{tmp_path}/poster_1_0.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poster_0_0.png", "poster_1_0.png"]


def test_memory_scheme_output(server: SegmindTestServer) -> None:
    op = make_op(output_dir="memory://segmind-tests/run1", parameters={"size": "1024x1024"})
    (uri,) = op.execute(make_context())
    assert uri == "memory://segmind-tests/run1/poster_0.png"
    import fsspec

    assert fsspec.filesystem("memory").cat_file("/segmind-tests/run1/poster_0.png")[:4] == b"\x89PNG"


def test_default_output_dir_under_airflow_home(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    (uri,) = make_op(parameters={"size": "1024x1024"}).execute(make_context())
    assert uri == f"file://{tmp_path}/segmind_output/op_tests/manual__2026-11-25T10_00_00_00_00/poster_0.png"


@pytest.mark.parametrize(
    ("status", "error_cls", "no_retry"),
    [
        (401, exc.SegmindAuthenticationError, True),
        (406, exc.SegmindInsufficientCreditsError, True),
        (400, exc.SegmindValidationError, True),
        (500, exc.SegmindServerError, False),
    ],
)
def test_typed_errors_and_retry_semantics(
    server: SegmindTestServer, tmp_path: Path, status: int, error_cls: type[Exception], no_retry: bool
) -> None:
    server.inject(Fault(status=status, endpoint="v1", message="injected"))
    with pytest.raises(error_cls) as info:
        make_op(output_dir=str(tmp_path)).execute(make_context())
    assert isinstance(info.value, AirflowFailException) is no_retry
    assert list(tmp_path.iterdir()) == []


def test_sync_rate_limit_waited_out_in_worker(server: SegmindTestServer, tmp_path: Path) -> None:
    server.inject(Fault(status=429, endpoint="v1", headers={"Retry-After": "1"}))
    uris = make_op(output_dir=str(tmp_path), parameters={"size": "1024x1024"}).execute(make_context())
    assert len(uris) == 1
    assert [r.status for r in server.find(method="POST")] == [429, 200]


def test_sync_rate_limit_bounded(server: SegmindTestServer, tmp_path: Path) -> None:
    server.inject(Fault(status=429, endpoint="v1", headers={"Retry-After": "30"}, times=5))
    with pytest.raises(exc.SegmindRateLimitError):
        make_op(output_dir=str(tmp_path), rate_limit_max_wait=5).execute(make_context())
    assert len(server.find(method="POST")) == 1


IMAGE_3MIB = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (3 * 4096)


@pytest.fixture(params=["local", "memory", "s3"])
def output_dir(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same operator runs on a local disk, fsspec's memory:// and a real S3 server (moto)."""
    import uuid

    if request.param == "local":
        return str(tmp_path)
    if request.param == "memory":
        return f"memory://op-tests/{uuid.uuid4().hex}"
    return str(request.getfixturevalue("s3_bucket"))


@pytest.mark.parametrize("path", ["sync", "deferrable"])
def test_cut_off_download_keeps_previous_image(
    output_dir: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3 MiB image that breaks off after 2 MiB, on the sync and the deferred path, on every
    storage: the previous image stays byte for byte, and nothing else appears beside it."""

    from airflow_provider_segmind.storage import to_storage_path
    from tests.hostile import HostileServer, Request, answer, head, hostile_server

    cut = {"on": False}

    def api(server: HostileServer, sock: Any, request: Request) -> None:
        if request.method == "POST":
            answer("200 OK", json.dumps({"output": f"{server.url}/out/0.png"}).encode())(
                server, sock, request
            )
            return
        body = IMAGE_3MIB[: 2 << 20] if cut["on"] else IMAGE_3MIB
        sock.sendall(head("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(IMAGE_3MIB))}))
        sock.sendall(body)
        if cut["on"]:
            sock.shutdown(2)

    monkeypatch.setattr(time, "sleep", lambda _s: None)  # the download's GET retries back off
    with hostile_server(api) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps({"conn_type": "segmind", "host": server.url, "password": "SG_k"}),
        )
        op = make_op(output_dir=output_dir)
        event = {
            "status": "success",
            "request_id": "r1",
            "message": "",
            "output_urls": [f"{server.url}/out/0.png"],
        }

        def run() -> Any:
            if path == "sync":
                return op.execute(make_context())
            return op.execute_complete(make_context(), event=event, submitted_at=time.time())

        (uri,) = run()
        assert to_storage_path(uri).read_bytes() == IMAGE_3MIB
        cut["on"] = True
        with pytest.raises(exc.SegmindBadResponseError, match="broke off"):
            run()
        gets = [r for r in server.requests if r.method == "GET"]
    folder = to_storage_path(output_dir)
    assert to_storage_path(uri).read_bytes() == IMAGE_3MIB
    assert sorted(p.name for p in folder.iterdir()) == ["poster_0.png"]
    assert len(gets) > 1  # the cut-off download really ran (and was retried where it could be)


# -- deferrable execution ------------------------------------------------------------------------


def test_defers_with_small_secret_free_kwargs(server: SegmindTestServer, tmp_path: Path) -> None:
    op = make_op(deferrable=True, output_dir=str(tmp_path), poll_interval=1.5, timeout=600)
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute(make_context(FakeTaskStateStore()))
    trigger = info.value.trigger
    assert isinstance(trigger, SegmindRequestTrigger)
    assert info.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_segmind.triggers.segmind.SegmindRequestTrigger"
    (post,) = server.find(method="POST")
    assert post.path == "/v2/gpt-image-1.5"
    assert kwargs["request_id"] == trigger.request_id
    assert f"/v2/requests/{trigger.request_id}/status" in kwargs["status_url"]
    assert kwargs["segmind_conn_id"] == "segmind_default"
    assert kwargs["poll_interval"] == 1.5
    assert before + 600 <= kwargs["deadline"] <= time.time() + 600
    assert set(kwargs) == {
        "segmind_conn_id",
        "request_id",
        "deadline",
        "status_url",
        "response_url",
        "poll_interval",
        "max_consecutive_errors",
        "submitted_at",
        "ticket",
        "finish",
    }
    assert before <= kwargs["submitted_at"] <= time.time()
    assert kwargs["ticket"] is None  # sent without waiting for a turn
    # What the triggerer needs to store the images and end the task: where, and the metadata.
    assert kwargs["finish"]["targets"] == {
        "directory": str(tmp_path),
        "conn_id": None,
        "task_id": "poster",
        "map_index": -1,
        "expected_format": "png",
    }
    assert kwargs["finish"]["body"]["prompt"] == PROMPT
    assert len(json.dumps(kwargs)) < 2000
    assert server.api_key not in repr(kwargs) + repr(info.value.kwargs)
    assert list(tmp_path.iterdir()) == []  # the worker wrote nothing yet


def test_deferred_path_honours_every_argument(server: SegmindTestServer, tmp_path: Path) -> None:
    """Model, parameters, prompt and output_dir matter on the deferred path as on the sync one."""
    params = {"size": "1024x1536", "quality": "low", "output_format": "jpeg", "output_compression": 70}
    sync_op = make_op(model="gpt-image-1-mini", parameters=params, output_dir=str(tmp_path / "sync"))
    def_op = make_op(
        model="gpt-image-1-mini", parameters=params, output_dir=str(tmp_path / "def"), deferrable=True
    )
    sync_uris = sync_op.execute(make_context())
    context = make_context(FakeTaskStateStore())
    with pytest.raises(TaskDeferred) as info:
        def_op.execute(context)
    def_uris = resume(def_op, info.value, context)
    v1, v2 = server.find(method="POST")
    assert (v1.path, v2.path) == ("/v1/gpt-image-1-mini", "/v2/gpt-image-1-mini")
    assert v1.json == v2.json
    assert [Path(u).name for u in sync_uris] == [Path(u).name for u in def_uris] == ["poster_0.jpg"]
    assert def_uris[0].startswith(f"file://{tmp_path}/def/")
    meta = context["ti"].xcom[METADATA_XCOM_KEY]
    assert meta["parameters"] == {k: v for k, v in v2.json.items() if k != "prompt"}
    assert meta["request_id"] and meta["api"] == "v2"
    assert meta["images"] == [
        {"uri": def_uris[0], "format": "jpeg", "bytes": Path(def_uris[0][7:]).stat().st_size}
    ]
    assert context["ti"].xcom["return_value"] == def_uris  # pushed by the trigger's success event


# -- ending in the triggerer (end_from_trigger) ---------------------------------------------


def test_the_triggerer_stores_the_images_and_ends_the_task(server: SegmindTestServer, tmp_path: Path) -> None:
    """One worker run per image: it sends; the triggerer stores and ends the task with XComs."""
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    context = make_context(FakeTaskStateStore())
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    event = run_trigger(info.value.trigger)
    assert event["task_instance_state"] == "success"
    (uri,) = event["xcoms"]["return_value"]
    assert uri == f"file://{tmp_path}/poster_0.png"
    assert (tmp_path / "poster_0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = event["xcoms"][METADATA_XCOM_KEY]
    assert meta["prompt"] == PROMPT and meta["api"] == "v2" and meta["images"][0]["uri"] == uri
    assert meta["elapsed_seconds"] is not None and meta["elapsed_seconds"] > 0
    assert server.api_key not in json.dumps(event)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["poster_0.png"]


def test_a_cleared_task_asks_for_new_images(server: SegmindTestServer, tmp_path: Path) -> None:
    """The triggerer cannot drop the request record (task_state_store is a worker's): a re-run
    of a task whose images are stored pays for new ones, as a cleared task should."""
    store = FakeTaskStateStore()
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    with pytest.raises(TaskDeferred) as first:
        op.execute(make_context(store))
    resume(op, first.value, make_context(store))
    assert store.data[REQUEST_RECORD_KEY]["ends_in_trigger"] is True
    rerun = make_op(deferrable=True, output_dir=str(tmp_path))
    with pytest.raises(TaskDeferred) as second:
        rerun.execute(make_context(store, try_number=2))
    assert second.value.trigger.request_id != first.value.trigger.request_id
    assert [r.status for r in server.find(method="POST")] == [200, 200]


def test_a_retry_before_the_images_are_stored_resumes(server: SegmindTestServer, tmp_path: Path) -> None:
    """Failed after the POST (Airflow's executor-event race, a lost worker): the retry pays nothing."""
    server.generation_seconds = 0.0
    store = FakeTaskStateStore()
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    with pytest.raises(TaskDeferred):
        op.execute(make_context(store))
    time.sleep(0.3)  # the request completes while nobody watches
    uris = make_op(deferrable=True, output_dir=str(tmp_path)).execute(make_context(store, try_number=2))
    assert uris == [f"file://{tmp_path}/poster_0.png"]  # resumed and stored without deferring
    assert len(server.find(method="POST")) == 1
    assert store.data == {}  # stored by a worker: the record is dropped


@pytest.mark.parametrize("why", ["end_from_trigger=False", "outlets", "ObjectStoragePath"])
def test_some_tasks_end_in_a_worker(server: SegmindTestServer, tmp_path: Path, why: str) -> None:
    """Asset events are recorded by a worker; an ObjectStoragePath's options do not fit in kwargs."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from airflow.sdk import Asset

    kwargs: dict[str, Any] = {"deferrable": True, "output_dir": str(tmp_path)}
    if why == "end_from_trigger=False":
        kwargs["end_from_trigger"] = False
    elif why == "outlets":
        kwargs["outlets"] = [Asset("file:///tmp/segmind-posters")]
    else:
        kwargs["output_dir"] = ObjectStoragePath(f"file://{tmp_path}")
    op = make_op(**kwargs)
    store = FakeTaskStateStore()
    context = make_context(store)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert info.value.trigger.finish is None
    event = run_trigger(info.value.trigger)
    assert event["status"] == "success"  # an ordinary event: a worker resumes the task
    uris = op.execute_complete(context, event=event, **info.value.kwargs)
    assert uris == [f"file://{tmp_path}/poster_0.png"]
    assert store.data == {}  # the worker drops the record once the images are stored


def test_a_triggerer_that_cannot_store_leaves_it_to_a_worker(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    context = make_context(FakeTaskStateStore())
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)

    def broken(*_: Any) -> Any:
        raise PermissionError("no credentials for the bucket in the triggerer")

    monkeypatch.setattr(SegmindRequestTrigger, "_store_blocking", broken)
    uris = resume(op, info.value, context)  # the success event resumes the task in a worker
    assert uris == [f"file://{tmp_path}/poster_0.png"]
    assert context["ti"].xcom[METADATA_XCOM_KEY]["images"][0]["uri"] == uris[0]
    assert len(server.find(method="POST")) == 1


def test_triggerer_store_ends_by_the_deadline_when_the_image_never_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download host accepts and never answers: the triggerer's store gives up at the task's
    deadline and leaves the task to a worker, whose own deadline then ends it too."""
    from airflow.triggers.base import TriggerEvent

    from tests.hostile import HostileServer, Request, elapsed, hostile_server

    def silent(server: HostileServer, sock: Any, request: Request) -> None:
        server.sleep(60)

    with hostile_server(silent) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps({"conn_type": "segmind", "host": server.url, "password": "SG_k"}),
        )
        op = make_op(output_dir=str(tmp_path), deferrable=True)
        finish = op._finish_in_trigger(make_context(), op._request_body())
        assert finish is not None
        trigger = SegmindRequestTrigger(
            segmind_conn_id="segmind_default", request_id="r1", deadline=time.time() + 1.5, finish=finish
        )
        event = TriggerEvent(
            {"status": "success", "request_id": "r1", "message": "", "output_urls": [f"{server.url}/o/0.png"]}
        )
        results: list[Any] = []
        took, error = elapsed(lambda: results.append(asyncio.run(trigger._store(event, finish))))
    assert error is None
    assert took < 1.5 + 5  # the deadline, and a few seconds for the watchdog and the thread
    assert results == [event]  # not stored: an ordinary event resumes the task in a worker
    assert list(tmp_path.iterdir()) == []


def test_triggerer_stores_atomically_on_every_storage(
    output_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The triggerer writes with the worker's code: a whole image, or the previous one kept."""
    from airflow.triggers.base import TriggerEvent

    from airflow_provider_segmind.storage import to_storage_path
    from tests.hostile import HostileServer, Request, head, hostile_server

    cut = {"on": False}

    def api(server: HostileServer, sock: Any, request: Request) -> None:
        body = IMAGE_3MIB[: 2 << 20] if cut["on"] else IMAGE_3MIB
        sock.sendall(head("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(IMAGE_3MIB))}))
        sock.sendall(body)
        if cut["on"]:
            sock.shutdown(2)

    monkeypatch.setattr(time, "sleep", lambda _s: None)
    with hostile_server(api) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps({"conn_type": "segmind", "host": server.url, "password": "SG_k"}),
        )
        op = make_op(output_dir=output_dir, deferrable=True)
        finish = op._finish_in_trigger(make_context(), op._request_body())
        assert finish is not None
        trigger = SegmindRequestTrigger(
            segmind_conn_id="segmind_default", request_id="r1", deadline=time.time() + 60, finish=finish
        )
        event = TriggerEvent(
            {"status": "success", "request_id": "r1", "message": "", "output_urls": [f"{server.url}/o/0.png"]}
        )
        ended = asyncio.run(trigger._store(event, finish))
        assert isinstance(ended, BaseTaskEndEvent)
        (uri,) = (ended.xcoms or {})["return_value"]
        cut["on"] = True
        fallback = asyncio.run(trigger._store(event, finish))
    assert fallback is event  # not stored: the worker will try, and raise the typed error
    assert to_storage_path(uri).read_bytes() == IMAGE_3MIB
    assert sorted(p.name for p in to_storage_path(output_dir).iterdir()) == ["poster_0.png"]


def test_failed_request_fails_task_with_segmind_text(server: SegmindTestServer, tmp_path: Path) -> None:
    server.fail_next_v2(error="Content moderation: prompt rejected")
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    context = make_context(FakeTaskStateStore())
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    with pytest.raises(exc.SegmindRequestFailedError, match="Content moderation: prompt rejected"):
        resume(op, info.value, context)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "event",
    [
        None,
        {"status": "weird"},
        {"status": "success", "request_id": "r"},
        {"status": "success", "output_urls": ["x"]},
    ],
)
def test_bad_events_are_refused(event: Any, tmp_path: Path) -> None:
    with pytest.raises(exc.SegmindBadResponseError):
        make_op(output_dir=str(tmp_path)).execute_complete(make_context(), event=event)


def test_timeout_event(tmp_path: Path) -> None:
    with pytest.raises(exc.SegmindTimeoutError, match="resumes the same request"):
        make_op(output_dir=str(tmp_path)).execute_complete(
            make_context(), event={"status": "timeout", "request_id": "r1", "message": "", "output_urls": []}
        )


def test_429_on_submit_queues_for_a_turn_then_submits(server: SegmindTestServer, tmp_path: Path) -> None:
    from airflow_provider_segmind.triggers.segmind import SegmindTurnTrigger

    server.inject(Fault(status=429, endpoint="v2_submit", headers={"Retry-After": "1"}))
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    context = make_context(FakeTaskStateStore())
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    turn = info.value.trigger
    assert isinstance(turn, SegmindTurnTrigger)
    assert info.value.method_name == "execute_after_turn"
    assert len(server.find(method="POST")) == 1  # no retry in the worker
    assert turn.rejections == 1
    assert turn.reset_at is not None and before + 1 <= turn.reset_at <= time.time() + 1
    _, kwargs = turn.serialize()
    assert set(kwargs) == {"segmind_conn_id", "ticket", "enqueued_at", "deadline", "reset_at", "rejections"}
    assert server.api_key not in json.dumps(kwargs)
    event = run_trigger(turn)
    assert event["status"] == "turn"
    assert event["granted_at"] >= turn.reset_at  # not before the window reopens
    with pytest.raises(TaskDeferred) as again:
        op.execute_after_turn(context, event=event, **info.value.kwargs)
    assert isinstance(again.value.trigger, SegmindRequestTrigger)
    uris = resume(op, again.value, context)
    assert len(uris) == 1
    assert [r.status for r in server.find(method="POST")] == [429, 200]


def test_rate_limit_wait_is_bounded(server: SegmindTestServer, tmp_path: Path) -> None:
    """No turn within rate_limit_max_wait: the task fails with a rate-limit error (retryable)."""
    server.inject(Fault(status=429, endpoint="v2_submit", headers={"Retry-After": "120"}))
    op = make_op(deferrable=True, output_dir=str(tmp_path), rate_limit_max_wait=1)
    context = make_context(FakeTaskStateStore())
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert info.value.trigger.deadline <= time.time() + 1
    event = run_trigger(info.value.trigger)
    assert event["status"] == "timeout"
    with pytest.raises(exc.SegmindRateLimitError, match="rate_limit_max_wait=1"):
        op.execute_after_turn(context, event=event, **info.value.kwargs)
    assert len(server.find(method="POST")) == 1


def test_a_configured_limit_is_shared_by_every_task_of_the_connection(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six tasks, a limit of 2 per 4 s set on the connection and enforced by the server: they
    take turns in the triggerer, send no more than the limit, and none is rejected."""
    from airflow_provider_segmind.triggers.segmind import SegmindTurnTrigger

    server.rate_limit = (2, 4.0)
    conn = json.loads(server.airflow_connection_json())
    conn["extra"] = {"rate_limit": "2/4"}
    monkeypatch.setenv("AIRFLOW_CONN_SEGMIND_DEFAULT", json.dumps(conn))
    tasks = []
    for index in range(6):
        op = make_op(deferrable=True, output_dir=str(tmp_path), task_id="render")
        context = make_context(FakeTaskStateStore(), map_index=index)
        with pytest.raises(TaskDeferred) as info:
            op.execute(context)
        assert isinstance(info.value.trigger, SegmindTurnTrigger)  # waits before sending anything
        tasks.append((op, context, info.value))
    assert server.find(method="POST") == []

    async def take_turns() -> list[tuple[float, Any]]:
        async def one(op: Any, context: Any, deferred: TaskDeferred) -> tuple[float, Any]:
            async for event in deferred.trigger.run():
                payload = dict(event.payload)
                try:  # the worker's side: send at once
                    await asyncio.to_thread(op.execute_after_turn, context, event=payload, **deferred.kwargs)
                except TaskDeferred as polling:
                    return payload["granted_at"], polling
            raise AssertionError("no event")

        return await asyncio.gather(*(one(*task) for task in tasks))

    results = asyncio.run(take_turns())
    granted = sorted(at for at, _ in results)
    assert all(granted[i + 2] - granted[i] >= 4.0 for i in range(len(granted) - 2))  # 2 in any 4 s
    posts = server.find(method="POST")
    assert [r.status for r in posts] == [200] * 6
    for _, polling in results:
        assert isinstance(polling.trigger, SegmindRequestTrigger)


def test_retry_resumes_instead_of_paying_twice(server: SegmindTestServer, tmp_path: Path) -> None:
    store = FakeTaskStateStore()
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    with pytest.raises(TaskDeferred) as first:
        op.execute(make_context(store))
    # The first try dies here (worker lost, trigger timed out...). XCom is cleared; the store is not.
    assert REQUEST_RECORD_KEY in store.data
    retry_op = make_op(deferrable=True, output_dir=str(tmp_path))
    retry_context = make_context(store)
    with pytest.raises(TaskDeferred) as second:
        retry_op.execute(retry_context)
    assert second.value.trigger.request_id == first.value.trigger.request_id
    uris = resume(retry_op, second.value, retry_context)
    assert len(uris) == 1
    assert len(server.find(method="POST")) == 1


@pytest.mark.parametrize(("age_minutes", "posts"), [(54, 1), (56, 2)])
def test_retry_resumes_only_inside_the_result_window(
    server: SegmindTestServer, tmp_path: Path, age_minutes: int, posts: int
) -> None:
    """Segmind keeps a result one hour; a record older than 55 minutes is not resumed."""
    store = FakeTaskStateStore()
    with pytest.raises(TaskDeferred):
        make_op(deferrable=True, output_dir=str(tmp_path)).execute(make_context(store))
    store.data[REQUEST_RECORD_KEY]["submitted_at"] -= age_minutes * 60
    with pytest.raises(TaskDeferred):
        make_op(deferrable=True, output_dir=str(tmp_path)).execute(make_context(store))
    assert len(server.find(method="POST")) == posts


def test_retry_with_other_parameters_submits_anew(server: SegmindTestServer, tmp_path: Path) -> None:
    store = FakeTaskStateStore()
    with pytest.raises(TaskDeferred):
        make_op(deferrable=True, output_dir=str(tmp_path)).execute(make_context(store))
    with pytest.raises(TaskDeferred):
        make_op(deferrable=True, output_dir=str(tmp_path), parameters={"quality": "low"}).execute(
            make_context(store)
        )
    assert len(server.find(method="POST")) == 2


def test_retry_after_failed_request_submits_anew(server: SegmindTestServer, tmp_path: Path) -> None:
    server.fail_next_v2()
    store = FakeTaskStateStore()
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    with pytest.raises(TaskDeferred):
        op.execute(make_context(store))
    hook = SegmindHook()
    request_id = store.data[REQUEST_RECORD_KEY]["handle"]["request_id"]
    deadline = time.monotonic() + 20
    while hook.get_status(request_id).status != "FAILED":  # wait for the server, not a fixed time
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(TaskDeferred):
        op.execute(make_context(store))
    assert len(server.find(method="POST")) == 2


def test_restarted_triggerer_never_pays_twice(server: SegmindTestServer, tmp_path: Path) -> None:
    """Serialise the trigger mid-request, rebuild it as a restarted triggerer would, run it."""
    server.generation_seconds = 1.0
    op = make_op(deferrable=True, output_dir=str(tmp_path), poll_interval=0.2)
    context = make_context(FakeTaskStateStore())
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    trigger = info.value.trigger
    classpath, kwargs = trigger.serialize()

    async def run_briefly() -> None:
        agen = trigger.run()
        task = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.5)  # some polls happen, the request is still running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_briefly())
    polls_before = len(server.find(method="GET", origin="api"))
    assert polls_before >= 1
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    event = run_trigger(rebuilt)
    assert event["task_instance_state"] == "success"  # the rebuilt trigger stored the image, ended the task
    (uri,) = event["xcoms"]["return_value"]
    assert Path(uri.removeprefix("file://")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(server.find(method="POST")) == 1
    assert len(server.find(method="GET", origin="api")) > polls_before


def test_no_task_state_store_warns(
    server: SegmindTestServer, tmp_path: Path, caplog: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TaskDeferred):
        make_op(deferrable=True, output_dir=str(tmp_path)).execute(make_context(store=None))
    assert len(server.find(method="POST")) == 1
    logged = caplog.text + capsys.readouterr().out
    assert "a retry of this task will submit, and pay for, a new request" in logged


# -- bounds the docs promise: timeout and rate_limit_max_wait in sync mode ----------------------


def test_sync_timeout_bounds_the_generation(server: SegmindTestServer, tmp_path: Path) -> None:
    """`timeout` bounds a synchronous generation too (it did nothing with deferrable=False)."""
    server.latency = 30
    op = make_op(output_dir=str(tmp_path), timeout=1)
    started = time.monotonic()
    with pytest.raises(exc.SegmindTimeoutError) as info:
        op.execute(make_context())
    assert time.monotonic() - started < 1 + 5  # generous slack for a shared machine; not 30 s
    assert info.value.may_have_been_charged
    assert len(server.find(method="POST")) == 1
    assert list(tmp_path.iterdir()) == []


def test_sync_rate_limit_waits_up_to_rate_limit_max_wait(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven 429s in a row are waited out (they were cut off by a 5-attempt cap)."""
    naps: list[float] = []
    monkeypatch.setattr(time, "sleep", naps.append)
    server.inject(Fault(status=429, endpoint="v1", times=7, headers={"Retry-After": "20"}))
    uris = make_op(output_dir=str(tmp_path), rate_limit_max_wait=600).execute(make_context())
    assert len(uris) == 1
    assert len(naps) == 7 and all(20 <= nap <= 22 for nap in naps)
    assert [r.status for r in server.find(method="POST")] == [429] * 7 + [200]


def test_sync_rate_limit_gives_up_at_rate_limit_max_wait(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []
    monkeypatch.setattr(time, "sleep", naps.append)
    server.inject(Fault(status=429, endpoint="v1", times=100, headers={"Retry-After": "20"}))
    with pytest.raises(exc.SegmindRateLimitError):
        make_op(output_dir=str(tmp_path), rate_limit_max_wait=100).execute(make_context())
    assert sum(naps) <= 100
    assert len(naps) == 4  # 4 waits of 20-22 s fit in 100 s, a fifth does not


# -- big images are streamed to storage on the synchronous path too ----------------------------


def _peak_traced(func: Any) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("storage", "size_mib", "peak_mib"),
    # Local disk: the image passes through in 1 MiB chunks. S3: s3fs holds up to a few blocks
    # (5 MiB each in these tests) while it uploads parts, whatever the image's size.
    [("local", 24, 4), ("s3", 48, 24)],
)
@pytest.mark.parametrize("answer_shape", ["image", "url"])
def test_sync_big_image_is_streamed_not_held(
    monkeypatch: pytest.MonkeyPatch,
    request: Any,
    tmp_path: Path,
    answer_shape: str,
    storage: str,
    size_mib: int,
    peak_mib: int,
) -> None:
    """A big image, as the v1 answer itself or named by URL, goes to storage chunk by chunk: the
    peak of this process's memory stays far below the image (it held it whole before).

    Not on memory://: a memory filesystem holds the image by definition.
    """

    from airflow_provider_segmind.storage import to_storage_path
    from tests.hostile import HostileServer, Request, answer, hostile_server

    image = b"\x89PNG\r\n\x1a\n" + b"\0" * (size_mib << 20)

    def api(server: HostileServer, sock: Any, request: Request) -> None:
        if request.method == "POST" and answer_shape == "url":
            answer("200 OK", json.dumps({"output": f"{server.url}/out/big.png"}).encode())(
                server, sock, request
            )
        else:
            answer("200 OK", image, "image/png")(server, sock, request)

    with hostile_server(api) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SEGMIND_DEFAULT",
            json.dumps({"conn_type": "segmind", "host": server.url, "password": "SG_k"}),
        )
        output_dir = str(tmp_path) if storage == "local" else request.getfixturevalue("s3_bucket")
        op = make_op(output_dir=output_dir)
        peak = _peak_traced(lambda: op.execute(make_context()))
    assert to_storage_path(f"{output_dir}/poster_0.png").read_bytes() == image
    assert peak < peak_mib << 20, f"peak {peak / 2**20:.1f} MiB for a {size_mib} MiB image"


def test_segmind_429_shape_on_deferrable_submit(
    segmind_server_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segmind's own 429 (no Retry-After, x-rate-limit-reset-at-utc): the turn waits for it."""
    limited = segmind_server_factory(rate_limit=(1, 3.0), rate_limit_headers="segmind")
    monkeypatch.setenv("AIRFLOW_CONN_SEGMIND_DEFAULT", limited.airflow_connection_json())
    with pytest.raises(TaskDeferred):
        make_op(deferrable=True, output_dir=str(tmp_path), task_id="a").execute(
            make_context(FakeTaskStateStore())
        )
    op = make_op(deferrable=True, output_dir=str(tmp_path), task_id="b")
    context = make_context(FakeTaskStateStore())
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    rejected = limited.find(method="POST")[-1]
    assert rejected.status == 429
    turn = info.value.trigger
    assert turn.reset_at is not None  # read from x-rate-limit-reset-at-utc
    event = run_trigger(turn)
    assert event["granted_at"] >= turn.reset_at
    with pytest.raises(TaskDeferred):
        op.execute_after_turn(context, event=event, **info.value.kwargs)
    assert [r.status for r in limited.find(method="POST")] == [200, 429, 200]


async def run_triggerer(
    tasks: dict[int, tuple[Any, Any, TaskDeferred]], written: dict[int, list[str]], until: Any = None
) -> None:
    """Run every pending trigger of ``tasks`` in this event loop, as a triggerer does, and each
    task's worker step in a thread, until all are done; or until ``until()`` holds, when this
    triggerer dies (every trigger cancelled) and ``tasks`` keeps what is still deferred."""

    async def one(index: int) -> None:
        while index in tasks:
            op, context, deferred = tasks[index]
            event = await anext(aiter(deferred.trigger.run()))
            if isinstance(event, BaseTaskEndEvent):  # the triggerer stored the images, ended the task
                written[index] = (event.xcoms or {})["return_value"]
                del tasks[index]
                continue
            payload = dict(event.payload)
            method = getattr(op, deferred.method_name)
            try:
                written[index] = await asyncio.to_thread(method, context, event=payload, **deferred.kwargs)
                del tasks[index]
            except TaskDeferred as again:
                tasks[index] = (op, context, again)

    runs = asyncio.gather(*(one(i) for i in list(tasks)))
    if until is None:
        await runs
        return
    while not until() and not runs.done():
        await asyncio.sleep(0.05)
    runs.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runs


def test_a_triggerer_restart_during_a_batch_pays_once_per_image(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six tasks under a 2-per-2 s limit; the triggerer dies mid-batch (every trigger cancelled)
    and a new one re-creates the triggers from their kwargs. Each image is paid exactly once."""
    server.rate_limit = (2, 2.0)
    server.generation_seconds = 1.0
    conn = json.loads(server.airflow_connection_json())
    conn["extra"] = {"rate_limit": "2/2"}
    monkeypatch.setenv("AIRFLOW_CONN_SEGMIND_DEFAULT", json.dumps(conn))
    tasks: dict[int, tuple[Any, Any, TaskDeferred]] = {}
    for index in range(6):
        op = make_op(deferrable=True, output_dir=str(tmp_path), task_id="render", poll_interval=0.2)
        context = make_context(FakeTaskStateStore(), map_index=index)
        with pytest.raises(TaskDeferred) as info:
            op.execute(context)
        tasks[index] = (op, context, info.value)
    written: dict[int, list[str]] = {}

    async def triggerer(until: Any) -> None:
        await run_triggerer(tasks, written, until)

    asyncio.run(triggerer(lambda: len(server.find(method="POST")) >= 2))  # some turns taken, some polled
    assert 2 <= len(server.find(method="POST")) < 6
    for index, (op, context, deferred) in list(tasks.items()):  # a new triggerer: from kwargs only
        classpath, kwargs = deferred.trigger.serialize()
        module, _, name = classpath.rpartition(".")
        rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
        tasks[index] = (
            op,
            context,
            TaskDeferred(trigger=rebuilt, method_name=deferred.method_name, kwargs=deferred.kwargs),
        )
    asyncio.run(triggerer(None))
    assert sorted(written) == list(range(6))
    statuses = [r.status for r in server.find(method="POST")]
    assert statuses.count(200) == 6  # one paid POST per image
    # A request whose polling ended just before the restart is not reported to the new queue:
    # at most one turn may then meet a 429, which is not paid, and is queued again.
    assert statuses.count(429) <= 1


def test_several_triggerers_overshoot_safely(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two triggerers each keep their own turn queue for the same connection: together they send
    more than the limit, Segmind rejects the excess (unpaid), and every task still ends with its
    image, paid once."""
    import threading

    server.rate_limit = (2, 2.0)
    server.rate_limit_headers = "segmind"
    server.generation_seconds = 0.5
    conn = json.loads(server.airflow_connection_json())
    conn["extra"] = {"rate_limit": "2/2"}
    monkeypatch.setenv("AIRFLOW_CONN_SEGMIND_DEFAULT", json.dumps(conn))
    groups: list[dict[int, tuple[Any, Any, TaskDeferred]]] = [{}, {}]
    for index in range(8):
        op = make_op(deferrable=True, output_dir=str(tmp_path), task_id="render", poll_interval=0.2)
        context = make_context(FakeTaskStateStore(), map_index=index)
        with pytest.raises(TaskDeferred) as info:
            op.execute(context)
        groups[index % 2][index] = (op, context, info.value)
    written: dict[int, list[str]] = {}
    threads = [threading.Thread(target=asyncio.run, args=(run_triggerer(g, written),)) for g in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(written) == list(range(8))
    assert all(Path(uris[0].removeprefix("file://")).exists() for uris in written.values())
    statuses = [r.status for r in server.find(method="POST")]
    assert statuses.count(200) == 8  # one paid POST per image
    assert statuses.count(429) >= 1, "the two queues never overshot: the test proves nothing"


class _FlakyStore(FakeTaskStateStore):
    """A task_state_store whose API calls fail, as the execution API did under load."""

    def __init__(self, fail: set[str]) -> None:
        super().__init__()
        self.fail = fail
        self.calls: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.calls.append("get")
        if "get" in self.fail:
            raise RuntimeError("API_SERVER_ERROR: 404 without a body")
        return super().get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.calls.append("set")
        if "set" in self.fail:
            raise RuntimeError("API_SERVER_ERROR: 500")
        super().set(key, value, retention=retention)


def test_unreadable_store_on_a_first_try_submits(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    store = _FlakyStore({"get"})
    with pytest.raises(TaskDeferred):
        make_op(deferrable=True, output_dir=str(tmp_path)).execute(task_context(store=store, try_number=1))
    assert store.calls.count("get") == 3  # tried three times
    assert len(server.find(method="POST")) == 1


def test_unreadable_store_on_a_retry_fails_rather_than_pay_twice(
    server: SegmindTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    store = _FlakyStore({"get"})
    with pytest.raises(exc.SegmindError, match="rather than risk paying twice"):
        make_op(deferrable=True, output_dir=str(tmp_path)).execute(task_context(store=store, try_number=2))
    assert server.find(method="POST") == []


def test_unwritable_store_still_waits_for_the_paid_request(server: SegmindTestServer, tmp_path: Path) -> None:
    store = _FlakyStore({"set"})
    op = make_op(deferrable=True, output_dir=str(tmp_path))
    context = task_context(store=store)
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    assert isinstance(info.value.trigger, SegmindRequestTrigger)  # paid: wait for it, do not fail
    assert len(resume(op, info.value, context)) == 1
