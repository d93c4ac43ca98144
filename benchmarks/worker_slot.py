"""How long a generation holds a worker slot, blocking (sync) versus deferrable.

Worker slots are the scarce resource of an Airflow deployment: a task that blocks for a whole
generation keeps a slot from every other task. ``deferrable=True`` should hold one only for the
submit and for the download, and hand the wait to the triggerer. This runs the operator against
the local Segmind-compatible server (real HTTP on loopback) with a generation of G seconds, both
modes interleaved run by run, and reports measured figures; it asserts nothing.

    .venv/bin/python benchmarks/worker_slot.py --runs 5 --generation-seconds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator
    from airflow_provider_segmind.testing import SegmindTestServer
    from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

ROOT = Path(__file__).resolve().parent.parent
POLL_INTERVAL = 0.2
PARAMETERS = {"size": "1024x1024", "quality": "low"}


@dataclass
class ModeSamples:
    """Per-run figures of one mode."""

    worker: list[float] = field(default_factory=list)
    submit: list[float] = field(default_factory=list)
    download: list[float] = field(default_factory=list)
    triggerer: list[float] = field(default_factory=list)
    posts: int = 0
    status_polls: int = 0
    images: int = 0


def make_context() -> dict[str, Any]:
    from airflow_provider_segmind.testing.context import task_context

    return task_context(run_id="bench__worker_slot")


def make_op(output_dir: str, *, deferrable: bool) -> SegmindGenerateImageOperator:
    from airflow.sdk import DAG

    from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator

    with DAG("worker_slot_bench", schedule=None, start_date=datetime(2026, 1, 1)):
        return SegmindGenerateImageOperator(
            task_id="sync" if not deferrable else "deferred",
            prompt="a lighthouse at dusk, benchmark",
            parameters=PARAMETERS,
            output_dir=output_dir,
            deferrable=deferrable,
            poll_interval=POLL_INTERVAL,
        )


def first_event(trigger: SegmindRequestTrigger) -> dict[str, Any]:
    """Run the trigger as the triggerer would, until its first event."""
    from airflow_provider_segmind.testing.context import run_trigger

    return run_trigger(trigger)


def run_sync(output_dir: str) -> tuple[float, int]:
    """Worker-busy seconds of a blocking run: the whole execute(); and the images written."""
    op = make_op(output_dir, deferrable=False)
    context = make_context()
    started = time.perf_counter()
    uris = op.execute(context)
    return time.perf_counter() - started, len(uris)


def run_deferred(output_dir: str) -> tuple[float, float, float, int]:
    """Worker-busy seconds of the submit and of the download, triggerer seconds, images written."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    op = make_op(output_dir, deferrable=True)
    context = make_context()
    started = time.perf_counter()
    try:
        op.execute(context)
    except TaskDeferred as deferred:
        submitted = time.perf_counter()
        trigger, kwargs = deferred.trigger, dict(deferred.kwargs or {})
    else:
        raise RuntimeError("deferrable=True did not defer")
    event = first_event(trigger)
    fired = time.perf_counter()
    uris = op.execute_complete(context, event=event, **kwargs)
    done = time.perf_counter()
    return submitted - started, done - fired, fired - submitted, len(uris)


def count(server: SegmindTestServer) -> tuple[int, int]:
    """POSTs (paid generations) and status polls the server has seen so far."""
    polls = [r for r in server.find(method="GET", origin="api") if r.path.endswith("/status")]
    return len(server.find(method="POST")), len(polls)


def stat(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per mode (default 5)")
    parser.add_argument(
        "--generation-seconds",
        type=float,
        default=3.0,
        help="how long the server takes per generation, v1 latency and v2 queue time (default 3)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    seconds = args.generation_seconds

    # A private AIRFLOW_HOME before Airflow is imported; a real key in the shell is never used.
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow" / "bench"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.pop("SEGMIND_API_KEY", None)

    from airflow_provider_segmind.testing import SegmindTestServer

    modes = {"sync (deferrable=False)": ModeSamples(), "deferrable=True": ModeSamples()}
    sync_samples, deferred_samples = modes.values()
    # Task logs go to stdout; send them to stderr, so stdout holds just the table.
    with (
        contextlib.redirect_stdout(sys.stderr),
        SegmindTestServer(latency=seconds, generation_seconds=seconds, credits=1e6) as server,
        tempfile.TemporaryDirectory(prefix="segmind-bench-") as tmp,
    ):
        os.environ.update(server.airflow_env())
        # One unmeasured run per mode: first-use costs (imports, clients) are not the wait.
        run_sync(f"{tmp}/warmup")
        run_deferred(f"{tmp}/warmup")
        for run in range(args.runs):
            # Alternate which mode goes first, so drift on a shared machine hits both alike.
            order = ["sync", "deferred"] if run % 2 == 0 else ["deferred", "sync"]
            for mode in order:
                posts_before, polls_before = count(server)
                if mode == "sync":
                    busy, images = run_sync(f"{tmp}/sync/{run}")
                    samples = sync_samples
                else:
                    submit, download, waited, images = run_deferred(f"{tmp}/deferred/{run}")
                    busy = submit + download
                    deferred_samples.submit.append(submit)
                    deferred_samples.download.append(download)
                    deferred_samples.triggerer.append(waited)
                    samples = deferred_samples
                posts_after, polls_after = count(server)
                samples.worker.append(busy)
                samples.posts += posts_after - posts_before
                samples.status_polls += polls_after - polls_before
                samples.images += images

    reference = statistics.median(sync_samples.worker)
    print(
        "| mode | worker-busy s (median, min) | triggerer wait s (median) "
        "| worker-busy ratio vs sync | of which submit / download s (median) | POSTs / images "
        "| status polls |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, samples in modes.items():
        wait = f"{statistics.median(samples.triggerer):.3f}" if samples.triggerer else "-"
        split = (
            f"{statistics.median(samples.submit):.3f} / {statistics.median(samples.download):.3f}"
            if samples.submit
            else "-"
        )
        print(
            f"| {name} | {stat(samples.worker)} | {wait} "
            f"| {statistics.median(samples.worker) / reference:.3f} | {split} "
            f"| {samples.posts} / {samples.images} | {samples.status_polls} |"
        )
    print()
    print(
        f"Measured: {args.runs} runs per mode, interleaved, after one unmeasured warm-up each, against the "
        f"local SegmindTestServer with a {seconds:g} s generation (v1 latency, v2 queue time); worker-busy "
        "is time.perf_counter around execute() (sync) or execute() up to TaskDeferred plus "
        f"execute_complete() (deferrable); the trigger ran in between with asyncio, poll_interval "
        f"{POLL_INTERVAL} s; one process, so per-task process start-up is not included."
    )


if __name__ == "__main__":
    main()
