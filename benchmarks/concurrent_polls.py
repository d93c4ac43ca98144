"""Can the local Segmind server hold many polling clients at once?

Deferrable tasks at batch scale mean many triggers polling ``/v2/requests/<id>/status`` at the
same moment, each on its own keep-alive connection. A test server that refuses connections under
that load makes tests of the provider fail for the server's sake. This starts the server from its
command line (so client and server do not share one interpreter), submits one v2 request, then
lets N clients poll its status concurrently for a number of rounds (the first round opens the
connections, later rounds reuse them). Each client is its own ``httpx.AsyncClient`` with one
connection, as N triggers in N processes would be (one TLS context shared, as the provider shares
it); ``--shared-pool`` sends all polls through one client with an N-connection pool instead. It
reports how many polls got an answer and how many failed, by error type, and the server
process's threads and resident memory with the N connections open; it asserts nothing.

    .venv/bin/python benchmarks/concurrent_polls.py --clients 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "SG_bench_key"


@dataclass
class Round:
    """What one round of N concurrent polls saw."""

    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    server_threads: str = "?"
    server_rss_mib: str = "?"


def server_footprint(pid: int) -> tuple[str, str]:
    """Threads and resident memory (MiB) of the server process, from /proc (Linux only)."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
    except OSError:
        return "?", "?"
    rss_kib = int(fields.get("VmRSS", "0 kB").split()[0])
    return fields.get("Threads", "?").strip(), f"{rss_kib / 1024:.0f}"


def start_server(ready: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_segmind.testing",
        "--api-key",
        API_KEY,
        "--generation-seconds",
        "3600",
        "--ready-file",
        str(ready),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the server did not start: {process.communicate()[1].decode()}")
        time.sleep(0.05)
    return process


async def poll(client: httpx.AsyncClient, url: str, result: Round) -> None:
    started = time.perf_counter()
    try:
        answer = await client.get(url)
        result.statuses[str(answer.status_code)] += 1
        result.latencies.append(time.perf_counter() - started)
    except httpx.HTTPError as exc:
        result.errors[type(exc).__name__] += 1


async def run(
    base_url: str, pid: int, clients: int, rounds: int, timeout: float, shared: bool
) -> list[Round]:
    headers = {"x-api-key": API_KEY}
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as submitter:
        submitted = await submitter.post(f"{base_url}/v2/gpt-image-1.5", json={"prompt": "bench"})
        status_url = submitted.json()["status_url"]
    if shared:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        pool = [httpx.AsyncClient(headers=headers, timeout=timeout, limits=limits)] * clients
    else:
        tls = ssl.create_default_context()
        pool = [httpx.AsyncClient(headers=headers, timeout=timeout, verify=tls) for _ in range(clients)]
    results: list[Round] = []
    try:
        for _ in range(rounds):
            result = Round()
            started = time.perf_counter()
            await asyncio.gather(*(poll(client, status_url, result) for client in pool))
            result.wall = time.perf_counter() - started
            result.server_threads, result.server_rss_mib = server_footprint(pid)
            results.append(result)
    finally:
        for client in set(pool):
            await client.aclose()
    return results


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="concurrent clients (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="polls per client (default 3)")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="httpx timeout per poll, s (default 5, httpx's own)"
    )
    parser.add_argument(
        "--shared-pool", action="store_true", help="one httpx.AsyncClient with an N-connection pool"
    )
    args = parser.parse_args()
    if args.clients < 1 or args.rounds < 1:
        parser.error("--clients and --rounds must be at least 1")

    os.environ.pop("SEGMIND_API_KEY", None)
    with tempfile.TemporaryDirectory(prefix="segmind-bench-") as tmp:
        ready = Path(tmp) / "ready.json"
        process = start_server(ready)
        try:
            base_url = json.loads(ready.read_text())["base_url"]
            results = asyncio.run(
                run(base_url, process.pid, args.clients, args.rounds, args.timeout, args.shared_pool)
            )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)

    print(
        "| round | clients | answered (status: count) | failed (error: count) | wall s | p50 ms | p99 ms "
        "| server threads | server RSS MiB |"
    )
    print("| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for number, result in enumerate(results, 1):
        answered = ", ".join(f"{status}: {count}" for status, count in sorted(result.statuses.items()))
        failed = ", ".join(f"{error}: {count}" for error, count in sorted(result.errors.items())) or "0"
        print(
            f"| {number} | {args.clients} | {answered or '0'} | {failed} | {result.wall:.2f} "
            f"| {1000 * percentile(result.latencies, 0.5):.0f} "
            f"| {1000 * percentile(result.latencies, 0.99):.0f} "
            f"| {result.server_threads} | {result.server_rss_mib} |"
        )
    total = sum(sum(result.statuses.values()) for result in results)
    failed_total = sum(sum(result.errors.values()) for result in results)
    print()
    clients = "one shared httpx.AsyncClient pool" if args.shared_pool else "one httpx.AsyncClient each"
    print(
        f"Measured: {args.clients} concurrent polls of one v2 status URL per round ({clients}), "
        f"{args.rounds} rounds on kept-alive connections (round 1 opens them), server started from its "
        f"command line in its own process, httpx timeout {args.timeout:g} s; server threads and RSS "
        "read from /proc after each round, connections still open; "
        f"{total} answered, {failed_total} failed; median wall of a round "
        f"{statistics.median(result.wall for result in results):.2f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
