"""Real storage for tests: an S3-compatible HTTP server (moto's server mode) on a loopback port.

``start_s3_server()`` starts moto's server (``python -m moto.server``) in a process of its own on a
free 127.0.0.1 port (about a second, nothing outside pip) and creates one bucket. A process of its
own, as a real S3 is: what it allocates never counts toward this process's memory, which the
streaming tests measure. It then points the process's AWS settings at that
server (``AWS_ENDPOINT_URL``, dummy keys, ``AWS_CONFIG_FILE``/``AWS_SHARED_CREDENTIALS_FILE`` at
``/dev/null`` so no profile of the machine applies) until ``stop()``, and attaches fsspec's
default ``s3`` filesystem as Airflow's ``s3://``. Everything that reaches S3 with no connection id
then talks to the local server: ``storage.to_storage_path("s3://...")`` (Airflow's ``fs``/``open``
and the path methods that universal-pathlib runs on fsspec's default instance, such as ``mkdir``,
``exists``, ``read_bytes``), ``s3fs`` and ``boto3``. Nothing can reach AWS.

The fixtures in ``tests/conftest.py`` wrap it: ``s3_server`` (one per session) and ``s3_bucket``
(a fresh ``s3://<bucket>/<prefix>`` per test).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from s3fs import S3FileSystem

BUCKET = "segmind-tests"
# S3's smallest multipart part. s3fs's own default block is 50 MiB, so a real image (a few MiB)
# goes up in one PUT; with 5 MiB blocks a test of a few MiB exercises the multipart path too.
BLOCK_SIZE = 5 * 2**20


@dataclass
class S3Server:
    """A running moto server, its bucket and the s3fs filesystem attached for ``s3://``."""

    endpoint_url: str
    bucket: str
    fs: S3FileSystem
    _server: subprocess.Popen[bytes] = field(repr=False)
    _saved: dict[str, str | None] = field(repr=False)
    _block_size: int = field(repr=False)

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    def stop(self) -> None:
        self._server.terminate()
        try:
            self._server.wait(10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait(10)
        self.fs.default_block_size = self._block_size
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_s3_server(bucket: str = BUCKET) -> S3Server:
    import fsspec

    try:
        from airflow.sdk.io import attach
    except ImportError:  # Airflow 2.x
        from airflow.io import attach  # type: ignore[no-redef]

    server, endpoint_url = _start_moto_process()
    env = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    saved = {name: os.environ.get(name) for name in env}
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    # The instance fsspec (and universal-pathlib) hand out for a bare "s3"; a session made before
    # the environment changed is replaced.
    fs = fsspec.filesystem("s3")
    block_size = fs.default_block_size
    s3 = S3Server(endpoint_url, bucket, fs, server, saved, block_size)
    try:
        fs.default_block_size = BLOCK_SIZE
        fs.connect(refresh=True)
        fs.mkdir(bucket)
        attached = attach(protocol="s3", fs=fs).fs
        if attached is not fs:
            raise RuntimeError(
                f"s3:// was attached to another filesystem ({attached!r}) before the s3_server "
                "fixture ran; request the fixture before anything opens an s3:// path."
            )
    except BaseException:
        s3.stop()
        raise
    return s3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_moto_process(limit: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in its own process; returns once it accepts connections."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited at start (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"moto's server did not listen on port {port} within {limit:.0f} s")
