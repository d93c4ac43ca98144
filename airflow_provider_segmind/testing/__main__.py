"""Command line: run the local Segmind-compatible server until SIGINT or SIGTERM.

Demos and manual DAG runs need the server in its own process, and scripts that start it need to
know when it is ready and on which ports: hence ``--ready-file``, written atomically only once
both origins accept connections, and removed again when the server stops. Scripts that measure a
client from outside (``benchmarks/batch_rate_limit.py``) need what the server saw: hence
``--record-file``, which appends one JSON line per answered request (see :class:`RecordFile`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_segmind.testing.server import SegmindTestServer
from airflow_provider_segmind.testing.settings import (
    DEFAULT_API_KEY,
    RATE_LIMIT_HEADERS,
    RATE_LIMIT_SCOPES,
    V1_RESPONSE_MODES,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

    from airflow_provider_segmind.testing.recording import RecordedRequest


def _rate_limit(text: str) -> tuple[int, float]:
    """Parse ``N/SECONDS`` (e.g. ``5/60``, Segmind's free plan)."""
    count, sep, window = text.partition("/")
    try:
        parsed = int(count), float(window)
    except ValueError:
        parsed = (0, 0.0)
    if not sep or parsed[0] < 1 or parsed[1] <= 0:
        raise argparse.ArgumentTypeError(f"expected MAX/SECONDS such as 5/60, got {text!r}")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_segmind.testing",
        description="Run a local Segmind-compatible API server (and its CDN) for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="API port (0: pick a free one)")
    parser.add_argument("--cdn-port", type=int, default=0, help="CDN port (0: pick a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds a v1 generation takes")
    parser.add_argument(
        "--generation-seconds", type=float, default=0.0, help="seconds a v2 request takes to complete"
    )
    parser.add_argument("--rate-limit", type=_rate_limit, default=None, metavar="MAX/SECONDS")
    parser.add_argument("--rate-limit-scope", choices=sorted(RATE_LIMIT_SCOPES), default="generate")
    parser.add_argument(
        "--rate-limit-headers",
        choices=sorted(RATE_LIMIT_HEADERS),
        default="retry_after",
        help="how a 429 says when to retry: Retry-After (retry_after), Segmind's "
        "x-rate-limit-reset-at-utc (segmind), or both",
    )
    parser.add_argument("--no-retry-after", action="store_true", help="omit Retry-After on 429")
    parser.add_argument("--credits", type=float, default=100.0)
    parser.add_argument("--price", type=float, default=0.154)
    parser.add_argument("--v1-response", choices=sorted(V1_RESPONSE_MODES), default="bytes")
    parser.add_argument("--images-per-request", type=int, default=1)
    parser.add_argument("--result-ttl", type=float, default=3600.0)
    parser.add_argument("--ready-file", type=Path, default=None, help="write the addresses here as JSON")
    parser.add_argument(
        "--record-file",
        type=Path,
        default=None,
        help="append one JSON line per answered request here: method, path, status, origin, "
        "time (arrival) and answered (Unix seconds); never headers or bodies",
    )
    return parser


def _server_from(args: argparse.Namespace) -> SegmindTestServer:
    return SegmindTestServer(
        api_key=args.api_key,
        latency=args.latency,
        generation_seconds=args.generation_seconds,
        rate_limit=args.rate_limit,
        rate_limit_scope=args.rate_limit_scope,
        send_retry_after=not args.no_retry_after,
        rate_limit_headers=args.rate_limit_headers,
        credits=args.credits,
        price=args.price,
        v1_response=args.v1_response,
        images_per_request=args.images_per_request,
        result_ttl=args.result_ttl,
        host=args.host,
        port=args.port,
        cdn_port=args.cdn_port,
    )


def write_ready_file(path: Path, server: SegmindTestServer) -> None:
    """Write atomically, so a script polling for the file never reads half of it."""
    info = {
        "base_url": server.base_url,
        "cdn_url": server.cdn_url,
        "api_key": server.api_key,
        "pid": os.getpid(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(info, handle)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class RecordFile:
    """Appends one JSON line per answered request, for scripts that watch the server from outside.

    ``{"method": "POST", "path": "/v2/gpt-image-1.5", "status": 429, "origin": "api",
    "time": <arrival>, "answered": <when the answer was decided>}`` (Unix seconds; ``status`` is
    null for a connection dropped on purpose). No headers and no bodies: the API key stays out.
    Each line is one ``write`` on a file opened for appending, so a reader never sees half of a
    line from another; the file is kept (and appended to by a later server) when the server stops.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def __call__(self, record: RecordedRequest) -> None:
        line = {
            "method": record.method,
            "path": record.path,
            "status": record.status,
            "origin": record.origin,
            "time": record.timestamp,
            "answered": time.time(),
        }
        os.write(self._fd, (json.dumps(line) + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    record_file = RecordFile(args.record_file) if args.record_file is not None else None
    try:
        server = _server_from(args)
        if record_file is not None:
            server.subscribe(record_file)
        with server:
            print(
                f"Segmind test server: API {server.base_url}, CDN {server.cdn_url}, key {server.api_key}",
                flush=True,
            )
            print(f"AIRFLOW_CONN_SEGMIND_DEFAULT='{server.airflow_connection_json()}'", flush=True)
            if args.ready_file is not None:
                write_ready_file(args.ready_file, server)
            try:
                while not stop.wait(0.5):
                    pass
            finally:
                # The file means "a server is up there"; a stale one would send scripts to a dead port.
                if args.ready_file is not None:
                    args.ready_file.unlink(missing_ok=True)
    finally:
        if record_file is not None:
            record_file.close()  # after stop(): no answer is decided any more
    return 0


if __name__ == "__main__":
    sys.exit(main())
