"""What N in-flight generations cost a triggerer: memory per request and CPU per status poll.

A triggerer holds every deferred generation of a deployment in one event loop. This runs N
``SegmindRequestTrigger``s concurrently in one loop, as a triggerer would, against the local
Segmind-compatible server (its own process, real HTTP on loopback), and beside it, in another
fresh process, a bare loop that makes the same polls on one shared ``httpx.AsyncClient`` and
nothing else, the floor any trigger implementation can reach (it spreads its first polls over the
interval as the trigger does, so both make the same polls at the same moments); and a third side,
the same bare loop with one client per 100 requests, as the triggers share theirs (one pool
for 1,000 requests in flight slows down with every request it queues). Per N it prints:

* RSS per in-flight request: the process's peak resident memory while all N wait, minus its
  resident memory just before they were created (modules already imported), divided by N;
* CPU per poll: the process's CPU time (user + system) from the start of the N waits to the last
  event, divided by the number of status and result GETs sent;
* events: how many of the N ended with their event (and how many of those were successes).

Each side submits its own N requests first (v2, untimed), all with the same generation time, so
the N waits overlap. Figures are measured side by side in one run; nothing is asserted.

    .venv/bin/python benchmarks/triggerer_capacity.py --n 100 500 1000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def child(mode: str, n: int, base_url: str, api_key: str, poll_interval: float) -> dict[str, float]:
    """Run in a fresh interpreter: submit N requests, then wait for all of them in one loop."""
    import asyncio

    import httpx

    from airflow_provider_segmind.hooks import segmind_async
    from airflow_provider_segmind.hooks.async_clients import USERS_PER_CLIENT
    from airflow_provider_segmind.triggers.segmind import SegmindRequestTrigger

    os.environ["AIRFLOW_CONN_SEGMIND_DEFAULT"] = json.dumps(
        {"conn_type": "segmind", "host": base_url, "password": api_key}
    )
    headers = {"x-api-key": api_key}
    with httpx.Client(timeout=30) as client:
        ids = [
            client.post(
                f"{base_url}/v2/gpt-image-1.5",
                json={"prompt": f"prompt {i}", "size": "1024x1024", "quality": "low"},
                headers=headers,
            ).json()["request_id"]
            for i in range(n)
        ]

    polls = 0
    if mode == "triggers":
        original = segmind_async.SegmindAsyncHook._send_once

        async def counted(self: segmind_async.SegmindAsyncHook, *args: object, **kwargs: object) -> object:
            nonlocal polls
            polls += 1
            return await original(self, *args, **kwargs)  # type: ignore[arg-type]

        segmind_async.SegmindAsyncHook._send_once = counted  # type: ignore[method-assign,assignment]

    async def run_triggers() -> list[str]:
        async def one(request_id: str) -> str:
            trigger = SegmindRequestTrigger(
                segmind_conn_id="segmind_default",
                request_id=request_id,
                deadline=time.time() + 600,
                poll_interval=poll_interval,
            )
            async for event in trigger.run():
                return str(event.payload["status"])
            return "none"

        return await asyncio.gather(*(one(i) for i in ids))

    async def run_bare() -> list[str]:
        nonlocal polls
        # httpx's defaults, but no limit on the wait for a pooled connection: at 1,000 polls in
        # flight one pool queues them, and the floor must not fail where it is only slow.
        # "bare-per-100": one such client per 100 requests, as the triggers share theirs.
        per_client = USERS_PER_CLIENT if mode == "bare-per-100" else n
        clients = [httpx.AsyncClient(timeout=httpx.Timeout(30, pool=None)) for _ in range(0, n, per_client)]

        async def one(index: int, request_id: str) -> str:
            client = clients[index // per_client]
            nonlocal polls
            # The same first-poll spread as the trigger: the same polls, at the same moments.
            await asyncio.sleep(random.uniform(0, SegmindRequestTrigger.first_poll_spread * poll_interval))
            while True:
                polls += 1
                answer = (
                    await client.get(f"{base_url}/v2/requests/{request_id}/status", headers=headers)
                ).json()
                if answer["status"] == "COMPLETED":
                    polls += 1
                    await client.get(f"{base_url}/v2/requests/{request_id}", headers=headers)
                    return "success"
                if answer["status"] == "FAILED":
                    return "failed"
                await asyncio.sleep(poll_interval)

        try:
            return await asyncio.gather(*(one(index, i) for index, i in enumerate(ids)))
        finally:
            for client in clients:
                await client.aclose()

    async def measured() -> dict[str, float]:
        peak = _rss_bytes()
        stop = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, _rss_bytes())
                await asyncio.sleep(0.1)

        before_rss, before_cpu, started = _rss_bytes(), _cpu(), time.monotonic()
        sampler = asyncio.create_task(sample())
        statuses = await (run_triggers() if mode == "triggers" else run_bare())
        stop.set()
        await sampler
        return {
            "rss_per_request_kb": (peak - before_rss) / n / 1024,
            "cpu_per_poll_ms": (_cpu() - before_cpu) / max(polls, 1) * 1000,
            "polls": polls,
            "events": len(statuses),
            "successes": statuses.count("success"),
            "wall_s": time.monotonic() - started,
        }

    return asyncio.run(measured())


def start_server(generation_seconds: float) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    ready = Path(tempfile.mkdtemp()) / "ready.json"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_segmind.testing",
            "--port",
            "0",
            "--cdn-port",
            "0",
            "--generation-seconds",
            str(generation_seconds),
            "--ready-file",
            str(ready),
            "--credits",
            "1000000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the local server did not start")
        time.sleep(0.05)
    time.sleep(0.1)
    return server, json.loads(ready.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[100, 500, 1000], help="in-flight requests")
    parser.add_argument("--generation-seconds", type=float, default=20.0)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, n, base_url, api_key, poll_interval = args.child
        print(json.dumps(child(mode, int(n), base_url, api_key, float(poll_interval))))
        return

    import httpx

    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"httpx {httpx.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"generation {args.generation_seconds:g} s, poll interval {args.poll_interval:g} s\n")
    print(
        "| N | side | RSS per in-flight request (KB) | CPU per poll (ms) | polls | events (success) "
        "| wall s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    server, info = start_server(args.generation_seconds)
    try:
        for n in args.n:
            results = {}
            for mode in ("triggers", "bare", "bare-per-100"):
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        mode,
                        str(n),
                        info["base_url"],
                        info["api_key"],
                        str(args.poll_interval),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                    cwd=ROOT,
                    env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"},
                )
                if out.returncode != 0:
                    raise SystemExit(f"the {mode} side failed at N={n}:\n{out.stderr[-3000:]}")
                results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            for mode, label in (
                ("triggers", "SegmindRequestTrigger"),
                ("bare", "bare loop, one shared client"),
                ("bare-per-100", "bare loop, a client per 100"),
            ):
                r = results[mode]
                print(
                    f"| {n} | {label} | {r['rss_per_request_kb']:.1f} | {r['cpu_per_poll_ms']:.3f} | "
                    f"{r['polls']:.0f} | {r['events']:.0f} ({r['successes']:.0f}) | {r['wall_s']:.1f} |"
                )
            for mode in ("bare", "bare-per-100"):
                ratio = results["triggers"]["cpu_per_poll_ms"] / results[mode]["cpu_per_poll_ms"]
                print(f"| {n} | CPU per poll, triggers ÷ {mode} | | {ratio:.2f}× | | | |")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
