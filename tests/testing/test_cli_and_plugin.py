"""The command line server (as a real subprocess) and the pytest fixtures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_segmind.testing.__main__ import _server_from, build_parser

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_provider_segmind.testing import SegmindTestServer


def wait_for_file(path: Path, process: subprocess.Popen[str], limit: float = 20.0) -> dict[str, object]:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the server never wrote its ready file"
        time.sleep(0.05)
    return dict(json.loads(path.read_text()))


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "state" / "ready.json"
    command = [
        sys.executable,
        "-m",
        "airflow_provider_segmind.testing",
        "--port",
        "0",
        "--cdn-port",
        "0",
        "--api-key",
        "SG_cli_key",
        "--generation-seconds",
        "2",
        "--rate-limit",
        "5/60",
        "--ready-file",
        str(ready),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = wait_for_file(ready, process)
        assert info["api_key"] == "SG_cli_key"
        assert info["pid"] == process.pid
        base_url, cdn_url = str(info["base_url"]), str(info["cdn_url"])
        headers = {"x-api-key": "SG_cli_key"}
        assert (
            requests.get(f"{base_url}/v1/get-user-credits", headers=headers, timeout=5).json()["credits"]
            == 100
        )
        job = requests.post(
            f"{base_url}/v2/gpt-image-1.5", json={"prompt": "cli"}, headers=headers, timeout=5
        )
        assert requests.get(job.json()["status_url"], headers=headers, timeout=5).json()["status"] == "QUEUED"
        assert requests.get(f"{base_url}/v1/get-user-credits", timeout=5).status_code == 401
        assert cdn_url != base_url
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == f"Segmind test server: API {base_url}, CDN {cdn_url}, key SG_cli_key"
    assert "AIRFLOW_CONN_SEGMIND_DEFAULT" in lines[1]
    assert base_url in lines[1]
    assert stderr == ""
    assert list(ready.parent.iterdir()) == []  # ready file removed on exit, no temp files left behind


def test_cli_record_file(tmp_path: Path) -> None:
    """--record-file: one JSON line per answered request, readable while the server runs."""
    ready, record = tmp_path / "ready.json", tmp_path / "log" / "requests.jsonl"
    command = [sys.executable, "-m", "airflow_provider_segmind.testing", "--api-key", "SG_cli_key"]
    command += ["--rate-limit", "1/60", "--ready-file", str(ready), "--record-file", str(record)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = str(wait_for_file(ready, process)["base_url"])
        before = time.time()
        headers = {"x-api-key": "SG_cli_key"}
        first = requests.post(f"{base_url}/v2/gpt-image-1.5", json={"prompt": "a"}, headers=headers)
        second = requests.post(f"{base_url}/v2/gpt-image-1.5", json={"prompt": "b"}, headers=headers)
        assert (first.status_code, second.status_code) == (200, 429)
        requests.get(first.json()["status_url"], headers=headers, timeout=5)
        lines = record.read_text().splitlines()  # written as answered, not at exit
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    rows = [json.loads(line) for line in lines]
    assert [(r["method"], r["path"], r["status"], r["origin"]) for r in rows] == [
        ("POST", "/v2/gpt-image-1.5", 200, "api"),
        ("POST", "/v2/gpt-image-1.5", 429, "api"),
        ("GET", f"/v2/requests/{first.json()['request_id']}/status", 200, "api"),
    ]
    assert all(before <= r["time"] <= r["answered"] <= time.time() for r in rows)
    assert set(rows[0]) == {"method", "path", "status", "origin", "time", "answered"}
    assert "SG_cli_key" not in record.read_text()
    assert record.read_text().splitlines() == lines  # kept when the server stops


def test_cli_parser() -> None:
    args = build_parser().parse_args(["--rate-limit", "50/60", "--v1-response", "json_url"])
    assert args.rate_limit == (50, 60.0)
    assert args.v1_response == "json_url"
    assert args.api_key == "SG_local_test_key"
    assert args.rate_limit_headers == "retry_after"


@pytest.mark.parametrize("shape", ["retry_after", "segmind", "both"])
def test_cli_rate_limit_headers(shape: str) -> None:
    args = build_parser().parse_args(["--rate-limit", "5/60", "--rate-limit-headers", shape])
    assert _server_from(args).rate_limit_headers == shape


def test_cli_rejects_unknown_rate_limit_headers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--rate-limit-headers", "x-ratelimit"])
    assert "--rate-limit-headers" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["5", "0/60", "5/0", "a/b"])
def test_cli_rejects_bad_rate_limits(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--rate-limit", value])
    assert exit_info.value.code == 2
    assert "MAX/SECONDS" in capsys.readouterr().err


def test_segmind_server_fixture(segmind_server: SegmindTestServer) -> None:
    assert segmind_server.api_key == "SG_local_test_key"
    answer = requests.get(
        f"{segmind_server.base_url}/v1/get-user-credits",
        headers={"x-api-key": segmind_server.api_key},
        timeout=5,
    )
    assert answer.json()["credits"] == 100.0


@pytest.fixture
def developer_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real key left in the developer's shell, which segmind_connection must hide."""
    monkeypatch.setenv("SEGMIND_API_KEY", "SG_real_key_do_not_use")


@pytest.mark.usefixtures("developer_key")
def test_segmind_connection_fixture(segmind_connection: SegmindTestServer) -> None:
    assert "SEGMIND_API_KEY" not in os.environ
    conn = json.loads(os.environ["AIRFLOW_CONN_SEGMIND_DEFAULT"])
    assert conn == {
        "conn_type": "segmind",
        "host": segmind_connection.base_url,
        "password": "SG_local_test_key",
    }


def test_segmind_server_factory(segmind_server_factory: Callable[..., SegmindTestServer]) -> None:
    first = segmind_server_factory(api_key="SG_a", credits=1.0)
    second = segmind_server_factory(api_key="SG_b")
    assert first.base_url != second.base_url
    assert first.credits == 1.0
    assert (
        requests.get(f"{second.base_url}/v1/get-user-credits", headers={"x-api-key": "SG_a"}).status_code
        == 401
    )


def test_plugin_imports_without_pillow(tmp_path: Path) -> None:
    """The plugin is loaded by every pytest run of every project installing the provider."""
    blocker = tmp_path / "PIL"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('Pillow is not installed')\n")
    code = (
        "import airflow_provider_segmind.testing.pytest_plugin as plugin;"
        "from airflow_provider_segmind.testing import SegmindTestServer\n"
        "try:\n    SegmindTestServer().start()\nexcept ImportError as exc:\n    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "needs Pillow" in result.stdout


def test_pillow_loads_only_when_an_image_is_drawn() -> None:
    code = (
        "import sys, requests\n"
        "from airflow_provider_segmind.testing import SegmindTestServer\n"
        "with SegmindTestServer() as server:\n"
        "    headers = {'x-api-key': server.api_key}\n"
        "    requests.get(server.base_url + '/v1/get-user-credits', headers=headers)\n"
        "    assert 'PIL.Image' not in sys.modules\n"
        "    requests.post(server.base_url + '/v1/flux', json={'prompt': 'p', 'width': 8}, headers=headers)\n"
        "    assert 'PIL.Image' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_session_server_is_shared_and_reset_between_tests(pytester: pytest.Pytester) -> None:
    """One server for the session; nothing one test changes reaches the next."""
    pytester.makepyfile(
        """
        import json, os, requests
        from airflow_provider_segmind.testing import Fault
        from airflow_provider_segmind.testing.settings import ServerSettings

        seen = []

        def test_changes_everything(segmind_server):
            seen.append(segmind_server.base_url)
            segmind_server.rate_limit = (2, 10)
            segmind_server.generation_seconds = 30
            segmind_server.rate_limit_headers = "segmind"
            segmind_server.api_key = "SG_changed"
            segmind_server.credits = 0.5
            segmind_server.inject(Fault(status=503), Fault("delay", delay=60, endpoint="v1"))
            segmind_server.fail_next_v2()
            headers = {"x-api-key": "SG_changed"}
            url = segmind_server.base_url + "/v1/get-user-credits"
            assert requests.get(url, headers=headers).status_code == 503

        def test_sees_defaults(segmind_connection):
            server = segmind_connection
            assert server.base_url == seen[0]  # the same server
            assert server.settings == ServerSettings()
            assert (server.credits, server.requests, server.faults) == (100.0, [], [])
            headers = {"x-api-key": server.api_key}
            submitted = [requests.post(server.base_url + "/v2/flux", json={"prompt": "p"}, headers=headers)
                         for _ in range(3)]
            assert [answer.status_code for answer in submitted] == [200, 200, 200]
            status = requests.get(submitted[0].json()["status_url"], headers=headers)
            assert status.json()["status"] == "COMPLETED"
            conn = json.loads(os.environ["AIRFLOW_CONN_SEGMIND_DEFAULT"])
            assert conn["host"] == server.base_url

        def test_a_stopped_server_is_started_again(segmind_server):
            segmind_server.stop()

        def test_after_the_stop(segmind_server):
            assert segmind_server.running
            headers = {"x-api-key": segmind_server.api_key}
            answer = requests.get(segmind_server.base_url + "/v1/get-user-credits", headers=headers)
            assert answer.status_code == 200
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio", "-q")
    result.assert_outcomes(passed=4)
