"""What a mapped batch costs under a rate limit, in a real Airflow deployment (issue 9, item 6).

A user maps ``SegmindGenerateImageOperator`` over N prompts, and Segmind lets through at most
``limit`` generations per ``window`` seconds. This starts, in processes of their own and on
loopback only:

* the package's local Segmind-compatible server (``python -m airflow_provider_segmind.testing``)
  with that limit, Segmind's 429 shape (``x-rate-limit-reset-at-utc``, no ``Retry-After``),
  ``--generation-seconds`` as the v2 queue time and as the v1 latency (``deferrable=False``
  generates with one v1 call), and ``--record-file``: one JSON line per answered request;
* ``airflow standalone`` (api-server, scheduler, dag-processor, triggerer, LocalExecutor, SQLite)
  in a throw-away ``AIRFLOW_HOME`` under /tmp, on free ports, with ``[core] parallelism`` and
  ``max_active_tasks_per_dag`` above N so that the limit, not Airflow, is the bottleneck, a 60 s
  SQLite busy timeout (``[database] sql_alchemy_connect_args``; with sqlite3's 5 s, "database is
  locked" killed the scheduler and the triggerer at N=30 on 2 cores), and
  ``AIRFLOW_CONN_SEGMIND_DEFAULT`` pointing at the server;
* a generated DAG file with one DAG per mode, written the way a user writes it::

      SegmindGenerateImageOperator.partial(
          task_id="render", parameters={"size": "1024x1024", "quality": "low"},
          deferrable=<mode>, retries=<r>, poll_interval=1,
      ).expand(prompt=[... N prompts ...])

then triggers one run of that mode's DAG, waits for it with a deadline, and tears everything down
(process groups, and any task process that left its group), even on Ctrl-C or an error. Each mode
gets a deployment of its own, started afresh, one after the other: on one shared deployment a mode
ran slower the later it came (SQLite and the scheduler carry the earlier runs' rows; measured: a
deferrable+limit run took 108 s first and 164 s third). It prints one table with the modes side by
side and asserts nothing.

``--pool K`` puts every mode's tasks in an Airflow pool of K slots (``include_deferred`` false, so
deferred tasks hold none), created through the REST API, as a user caps how many task processes
a batch starts at once on a small machine.

Everything is measured from outside the operator, so it measures whatever the installed code
does:

* **DAG run state**: the REST API (``GET /api/v2/dags/{dag}/dagRuns/{run}``).
* **makespan**: from the earliest ``start_date`` to the latest ``end_date`` over every try of
  every mapped task instance (REST: ``.../taskInstances/render/{i}/tries``, which lists the
  task-instance-history rows and the current try). A deferred task keeps its ``start_date`` when
  it resumes, so this spans the whole batch.
* **bound**: ``ceil(N / limit) * window`` seconds: the server's window is fixed (it opens at the
  first generation after the previous one closed and admits ``limit`` generations), so N
  generations need ``ceil(N / limit)`` windows, counted whole. E.g. N=30 at 5 per 15 s: 90 s;
  N=60 at 10 per 10 s: 60 s. A perfect client ends its last window early (its generations are
  accepted at the window's start and take ``--generation-seconds``), so ``makespan / bound`` can
  be below 1; Airflow's own start-up per task adds to it.
* **rejected POSTs (429) and paid POSTs (accepted, HTTP 200) per image**: the server's record file,
  generation POSTs whose arrival falls in the mode's segment (from its trigger until its
  deployment is torn down); divided by
  N. **Status GETs per image** likewise (the v2 status polls).
* **deferrals per image**: the LocalExecutor's supervisor logs ``Workload finished ...
  duration=<s> final_state=<state> workload_id=<ti id>`` once per worker run of a task (in the
  scheduler's output, which ``airflow standalone`` prints with a ``scheduler |`` prefix); a run
  that ended ``final_state=deferred`` is one deferral. Counted over the mode's time segment.
* **worker-slot seconds per image**: the sum of those lines' ``duration`` over the segment: the
  time a LocalExecutor worker spent supervising the task (process start, DAG parse, execute, and
  whatever it lingered before exiting), over every run of every try, deferred time excluded
  because no worker runs then. A worker run that crashed (``Workload execution failed``) logs no
  duration; those are counted separately. For comparison, **TI start-to-end seconds per image** is
  the sum over tries of ``end_date - start_date`` from the REST API, which includes deferred time.
* **failed tries**: per mapped task instance (REST: ``.../taskInstances``), ``try_number - 1``
  (every try before the current one failed), plus one if it ended ``failed``; out of all tries
  (the sum of ``try_number``). Not the history rows: on Airflow 3.3.2 a try that the
  executor-event race below fails leaves no task-instance-history row, and the next try reuses the
  task instance's id and overwrites its ``start_date``; the table shows how many tries the tries
  endpoint still lists, and makespan and TI start-to-end miss such lost tries.
* **api-server 5xx answers**: its access-log lines with a 5xx status in the segment, mostly the
  execution API answering task processes "database is locked" (SQLite) while N tasks start.
* **Airflow races**: the scheduler's ``Executor ... reported that the task instance ... finished
  with state X, but the task instance's state attribute is Y`` lines in the segment (a stale
  executor event for a task that already resumed from a deferral; Airflow then fails that try).

Airflow is read only through its public REST API (simple auth manager with
``[core] simple_auth_manager_all_admins``; a token from ``GET /auth/token``) and its log output,
never its database.

    .venv/bin/python benchmarks/batch_rate_limit.py --n 30 --limit 5 --window 15 \\
        --generation-seconds 3 --modes sync,deferrable --retries 2

The issue's two configurations: ``--n 30 --limit 5 --window 15`` and ``--n 60 --limit 10
--window 10`` (3 s generations). A mode is ``sync`` (``deferrable=False``) or ``deferrable``,
optionally ``+limit`` (the DAG uses a connection whose extra ``rate_limit`` is set to the
server's limit, so the tasks take turns under it) and its own retries: ``deferrable+limit:r0``.
``airflow standalone`` needs a minute or two to start on a small machine; a failed try waits
Airflow's ``retry_delay`` (300 s unless ``--retry-delay``) before the next.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

DAG_FILE_NAME = "segmind_batch_bench.py"
POOL_NAME = "segmind_bench"
PARAMETERS = {"size": "1024x1024", "quality": "low"}
STARTUP_TIMEOUT = 600.0
#: Seconds a SQLite connection waits for the write lock (sqlite3's own default: 5).
SQLITE_BUSY_TIMEOUT = 60
#: A run whose scheduler or triggerer reports unhealthy this long is given up.
UNHEALTHY_LIMIT = 90.0
#: Seconds to wait after a run ends for its last worker to log "Workload finished".
SETTLE = 10.0

_ISO = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"
_WORKLOAD_FINISHED = re.compile(rf"^scheduler\s*\|\s*{_ISO}.*Workload finished")
_WORKLOAD_FAILED = re.compile(rf"^scheduler\s*\|\s*{_ISO}.*Workload execution failed")
_RACE = re.compile(
    rf"^scheduler\s*\|\s*{_ISO}.*finished with state (\w+), but the task instance's state attribute is (\w+)"
)
_API_5XX = re.compile(rf"^api-server\s*\|\s*{_ISO}.*request finished.*status_code=5\d\d")
_FIELD = re.compile(r"\b(duration|final_state|workload_id)=(\S+)")


# --------------------------------------------------------------------------- modes and DAGs


@dataclass(frozen=True)
class Mode:
    name: str  # as given on the command line
    deferrable: bool
    retries: int
    #: The DAG uses the connection with the plan's limit set (extra ``rate_limit``).
    limit_set: bool = False

    @property
    def dag_id(self) -> str:
        return "segmind_batch_" + re.sub(r"\W", "_", self.name)


def parse_modes(text: str, retries: int) -> list[Mode]:
    modes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, suffix = item.partition(":")
        kind, _, limit = kind.partition("+")
        if (
            kind not in ("sync", "deferrable")
            or limit not in ("", "limit")
            or (suffix and not re.fullmatch(r"r\d+", suffix))
        ):
            raise argparse.ArgumentTypeError(
                f"a mode is sync or deferrable, optionally +limit and :rN; got {item!r}"
            )
        modes.append(Mode(item, kind == "deferrable", int(suffix[1:]) if suffix else retries, bool(limit)))
    if not modes or len({mode.dag_id for mode in modes}) != len(modes):
        raise argparse.ArgumentTypeError(f"expected distinct modes such as sync,deferrable; got {text!r}")
    return modes


def dag_file(modes: list[Mode], n: int, retry_delay: float | None, pool: str | None = None) -> str:
    """The DAG file a user would write, one DAG per mode."""
    lines = [
        f'"""Generated by benchmarks/batch_rate_limit.py: {n} mapped renders per mode."""',
        "",
        "from __future__ import annotations",
        "",
        "from datetime import timedelta",
        "",
        "from airflow.sdk import dag",
        "",
        "from airflow_provider_segmind.operators.segmind import SegmindGenerateImageOperator",
        "",
        f'PROMPTS = [f"a lighthouse at dusk, benchmark image {{i}}" for i in range({n})]',
    ]
    delay = "" if retry_delay is None else f"\n        retry_delay=timedelta(seconds={retry_delay!r}),"
    for mode in modes:
        lines += [
            "",
            "",
            f'@dag(dag_id="{mode.dag_id}", schedule=None, catchup=False, tags=["segmind", "benchmark"])',
            f"def {mode.dag_id}():",
            "    SegmindGenerateImageOperator.partial(",
            '        task_id="render",',
            f"        parameters={PARAMETERS!r},",
            f"        deferrable={mode.deferrable},",
            f'        segmind_conn_id="{"segmind_limited" if mode.limit_set else "segmind_default"}",',
            f"        retries={mode.retries},{delay}",
            *([f'        pool="{pool}",'] if pool else []),
            "        poll_interval=1,",
            "    ).expand(prompt=PROMPTS)",
            "",
            "",
            f"{mode.dag_id}()",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session_members(session_id: int) -> list[int]:
    """Every process of a session (Airflow's task processes leave their group, not the session)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
            if int(stat.rsplit(")", 1)[1].split()[3]) == session_id:
                members.append(int(entry.name))
    return members


def stop_session(process: subprocess.Popen[bytes], name: str, grace: float = 30.0) -> None:
    """SIGTERM the process group started for ``process``, then SIGKILL what is left of its session."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop within {grace:.0f} s; killing it", file=sys.stderr)
    for pid in session_members(process.pid):  # only processes this script started (its session)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def wait_until(what: str, deadline: float, check: Any, interval: float = 1.0) -> Any:
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(interval)


@dataclass
class Deployment:
    """The server and Airflow, their files, and how to reach them."""

    home: Path
    api: str = ""
    server_log: Path = field(init=False)
    record_file: Path = field(init=False)
    airflow_log: Path = field(init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.server_log = self.home / "segmind-server.log"
        self.record_file = self.home / "segmind-requests.jsonl"
        self.airflow_log = self.home / "standalone.log"

    def spawn(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            self.processes[name] = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self, name: str) -> None:
        code = self.processes[name].poll()
        if code is not None:
            raise RuntimeError(f"{name} exited with {code}; see {self.home}")

    def start_server(self, args: argparse.Namespace) -> dict[str, Any]:
        ready = self.home / "segmind-server.json"
        seconds = f"{args.generation_seconds:g}"  # v2 queue time, and v1 latency for deferrable=False
        command = [sys.executable, "-m", "airflow_provider_segmind.testing", "--port", "0", "--cdn-port", "0"]
        command += ["--generation-seconds", seconds, "--latency", seconds, "--credits", "1000000"]
        command += ["--rate-limit", f"{args.limit}/{args.window:g}", "--rate-limit-headers", "segmind"]
        command += ["--ready-file", str(ready), "--record-file", str(self.record_file)]
        self.spawn("segmind server", command, dict(os.environ), self.server_log)

        def ready_info() -> dict[str, Any] | None:
            self.alive("segmind server")
            return json.loads(ready.read_text()) if ready.exists() else None

        info: dict[str, Any] = wait_until("the Segmind server", time.monotonic() + 60, ready_info, 0.1)
        return info

    def start_airflow(self, args: argparse.Namespace, modes: list[Mode], server: dict[str, Any]) -> None:
        dags = self.home / "dags"
        dags.mkdir()
        pool = POOL_NAME if args.pool else None
        (dags / DAG_FILE_NAME).write_text(dag_file(modes, args.n, args.retry_delay, pool))
        # SQLite lets one writer in at a time and makes the others wait up to the driver's busy
        # timeout, 5 s by default; with N task processes, the scheduler, the triggerer and the
        # dag-processor all writing on a small machine, a wait can pass 5 s, and "database is
        # locked" then kills the scheduler or the triggerer. A longer wait keeps them alive.
        (self.home / "segmind_bench_db.py").write_text(
            f"CONNECT_ARGS = {{'timeout': {SQLITE_BUSY_TIMEOUT}}}\n"
        )
        port = free_port()
        self.api = f"http://127.0.0.1:{port}"
        bin_dir = str(Path(sys.executable).parent)  # standalone runs "airflow <component>" from PATH
        connection = {"conn_type": "segmind", "host": server["base_url"], "password": server["api_key"]}
        slots = str(args.n + 4)  # printed in the header too
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW_", "AIRFLOW__")) and key != "SEGMIND_API_KEY"
        }
        env.update(
            {
                "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(self.home), os.environ.get("PYTHONPATH")])),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "segmind_bench_db.CONNECT_ARGS",
                "PYTHONUNBUFFERED": "1",  # standalone prints to a file: line by line, not in blocks
                "NO_COLOR": "1",
                "AIRFLOW_HOME": str(self.home / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": slots,  # LocalExecutor worker processes too
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": slots,
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": self.api,
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW_CONN_SEGMIND_DEFAULT": json.dumps(connection),
                # The same, with the plan's limit set: deferrable tasks take turns under it.
                "AIRFLOW_CONN_SEGMIND_LIMITED": json.dumps(
                    {**connection, "extra": {"rate_limit": f"{args.limit}/{args.window:g}"}}
                ),
            }
        )
        self.spawn(
            "airflow standalone", [str(Path(bin_dir) / "airflow"), "standalone"], env, self.airflow_log
        )

    def wait_for_airflow(self, modes: list[Mode], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        wait_until("Airflow's health endpoint", deadline, lambda: not self.unhealthy(), 2.0)
        token = self.http.get(f"{self.api}/auth/token", timeout=10)
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        for mode in modes:
            wait_until(
                f"the DAG {mode.dag_id} to be parsed",
                deadline,
                lambda mode=mode: self.exists(f"dags/{mode.dag_id}"),
                2.0,
            )
            self.http.patch(self.url(f"dags/{mode.dag_id}"), json={"is_paused": False}, timeout=60)

    def create_pool(self, slots: int) -> None:
        answer = self.http.post(
            self.url("pools"),
            json={"name": POOL_NAME, "slots": slots, "include_deferred": False, "description": "benchmark"},
            timeout=60,
        )
        answer.raise_for_status()

    def unhealthy(self) -> list[str]:
        """The components the health endpoint does not call healthy (all of them if it fails)."""
        self.alive("airflow standalone")
        parts = ["metadatabase", "scheduler", "triggerer", "dag_processor"]
        try:
            health = requests.get(f"{self.api}/api/v2/monitor/health", timeout=30).json()
        except (requests.RequestException, ValueError):
            return parts
        return [part for part in parts if (health.get(part) or {}).get("status") != "healthy"]

    def url(self, path: str) -> str:
        return f"{self.api}/api/v2/{path}"

    def exists(self, path: str) -> bool:
        try:
            return self.http.get(self.url(path), timeout=30).ok
        except requests.RequestException:
            return False

    def get(self, path: str, tries: int = 5, **params: Any) -> Any:
        """GET from the REST API; the api-server may be slow to answer while N tasks start up."""
        for attempt in range(1, tries + 1):
            try:
                answer = self.http.get(self.url(path), params=params, timeout=60)
                if answer.status_code < 500:
                    answer.raise_for_status()
                    return answer.json()
                problem = f"HTTP {answer.status_code}"
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = type(exc).__name__
            if attempt == tries:
                raise RuntimeError(f"GET {path}: {problem}, {tries} times")
            print(f"  GET {path}: {problem}; trying again", file=sys.stderr)
            time.sleep(2.0 * attempt)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        for name in ("airflow standalone", "segmind server"):
            process = self.processes.get(name)
            if process is not None:
                stop_session(process, name)


# --------------------------------------------------------------------------- one mode


@dataclass
class Result:
    mode: Mode
    state: str = "not run"
    wall: float = 0.0
    makespan: float | None = None
    ti_span: float = 0.0
    tries: int = 0
    failed_tries: int = 0
    history_rows: int = 0
    posts_429: int = 0
    posts_paid: int = 0
    status_gets: int = 0
    deferrals: int = 0
    worker_seconds: float = 0.0
    worker_runs: int = 0
    crashed_runs: int = 0
    api_errors: int = 0
    races: list[str] = field(default_factory=list)
    segment: tuple[float, float] = (0.0, 0.0)


def parse_time(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_mode(deployment: Deployment, mode: Mode, n: int, timeout: float) -> Result:
    result = Result(mode)
    started = time.time()
    answer = deployment.http.post(
        deployment.url(f"dags/{mode.dag_id}/dagRuns"), json={"logical_date": None}, timeout=60
    )
    answer.raise_for_status()
    run_id = answer.json()["dag_run_id"]
    run_path = f"dags/{mode.dag_id}/dagRuns/{quote(run_id, safe='')}"
    deadline = time.monotonic() + timeout
    state = "queued"
    unhealthy_since: float | None = None
    while state not in ("success", "failed"):
        if time.monotonic() > deadline:
            print(f"  {mode.name}: no result after {timeout:.0f} s; marking the run failed", file=sys.stderr)
            deployment.http.patch(deployment.url(run_path), json={"state": "failed"}, timeout=60)
            state = f"timed out ({timeout:.0f} s)"
            break
        time.sleep(2.0)
        sick = deployment.unhealthy()
        if not sick:
            unhealthy_since = None
        elif unhealthy_since is None:
            unhealthy_since = time.monotonic()
        elif time.monotonic() - unhealthy_since > UNHEALTHY_LIMIT:
            state = f"aborted: {', '.join(sick)} unhealthy"
            break
        with contextlib.suppress(RuntimeError):  # the api-server may answer 500 for a while
            state = deployment.get(run_path)["state"]
    result.state = state
    result.wall = time.time() - started
    print(f"  {mode.name}: {state} after {result.wall:.0f} s", file=sys.stderr)

    instances: list[dict[str, Any]] = []
    while True:  # pages of at most [api] maximum_page_limit (100)
        page = deployment.get(f"{run_path}/taskInstances", limit=100, offset=len(instances))
        instances += page["task_instances"]
        if not page["task_instances"] or len(instances) >= page["total_entries"]:
            break
    for instance in instances:
        # A retried task instance had failed tries before its current one, whatever the history
        # shows (a try failed by the executor-event race leaves no history row on 3.3).
        result.failed_tries += max(int(instance["try_number"]) - 1, 0)
        result.failed_tries += instance["state"] in ("failed", "upstream_failed")
        result.tries += max(int(instance["try_number"]), 1) if instance["start_date"] else 0
    starts, ends = [], []
    for map_index in range(n):
        with contextlib.suppress(requests.HTTPError):  # a task instance that never ran has no tries
            for attempt in deployment.get(f"{run_path}/taskInstances/render/{map_index}/tries")[
                "task_instances"
            ]:
                result.history_rows += 1
                start, end = parse_time(attempt["start_date"]), parse_time(attempt["end_date"])
                if start is not None:
                    starts.append(start)
                if end is not None:
                    ends.append(end)
                if start is not None and end is not None:
                    result.ti_span += end - start
    if starts and ends:
        result.makespan = max(ends) - min(starts)
    result.segment = (started, time.time())
    return result


def count_requests(result: Result, record_file: Path) -> None:
    """Generation POSTs and status GETs that arrived at the server within the mode's segment."""
    first, last = result.segment
    for line in record_file.read_text().splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(line)
            if row["origin"] != "api" or not first <= row["time"] < last:
                continue
            generation = row["method"] == "POST" and re.fullmatch(r"/v[12]/[^/]+", row["path"])
            if generation and row["status"] == 429:
                result.posts_429 += 1
            elif generation and row["status"] == 200:
                result.posts_paid += 1
            elif row["method"] == "GET" and row["path"].endswith("/status"):
                result.status_gets += 1


def read_airflow_log(result: Result, airflow_log: Path) -> None:
    """The supervisor's "Workload finished" lines, crashes and executor races in the segment."""
    first, last = result.segment
    with airflow_log.open(errors="replace") as lines:
        for line in lines:
            for pattern in (_WORKLOAD_FINISHED, _WORKLOAD_FAILED, _RACE, _API_5XX):
                match = pattern.match(line)
                if match is None:
                    continue
                moment = parse_time(match.group(1))
                if moment is None or not first <= moment < last:
                    break
                if pattern is _WORKLOAD_FINISHED:
                    fields = dict(_FIELD.findall(line))
                    result.worker_runs += 1
                    result.worker_seconds += float(fields.get("duration", "0"))
                    result.deferrals += fields.get("final_state") == "deferred"
                elif pattern is _WORKLOAD_FAILED:
                    result.crashed_runs += 1
                elif pattern is _API_5XX:
                    result.api_errors += 1
                else:
                    result.races.append(f"executor said {match.group(2)}, task instance was {match.group(3)}")
                break


# --------------------------------------------------------------------------- report


def versions() -> str:
    names = ["apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk", "airflow-provider-segmind"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    found.append(f"Python {platform.python_version()}")
    found.append(f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs")
    return "; ".join(found)


def table(results: list[Result], n: int, bound: float) -> str:
    def per_image(value: float) -> str:
        return f"{value / n:.2f}"

    def row(name: str, cells: Iterator[str]) -> str:
        return f"| {name} | " + " | ".join(cells) + " |"

    header = [f"{r.mode.name} (deferrable={r.mode.deferrable}, retries={r.mode.retries})" for r in results]
    lines = [row("metric", iter(header)), "| --- |" + " ---: |" * len(results)]
    rows: list[tuple[str, Any]] = [
        ("DAG run state", lambda r: r.state),
        ("makespan s", lambda r: "-" if r.makespan is None else f"{r.makespan:.1f}"),
        (
            f"makespan / bound ({bound:g} s)",
            lambda r: "-" if r.makespan is None else f"{r.makespan / bound:.2f}",
        ),
        ("rejected POSTs (429) per image", lambda r: per_image(r.posts_429)),
        ("paid POSTs (200) per image", lambda r: per_image(r.posts_paid)),
        ("status GETs per image", lambda r: per_image(r.status_gets)),
        ("deferrals per image", lambda r: per_image(r.deferrals)),
        ("worker-slot s per image", lambda r: per_image(r.worker_seconds)),
        ("worker runs per image", lambda r: per_image(r.worker_runs)),
        ("crashed worker runs (no duration)", lambda r: str(r.crashed_runs)),
        ("TI start-to-end s per image (incl. deferred)", lambda r: per_image(r.ti_span)),
        ("failed tries / all tries", lambda r: f"{r.failed_tries} / {r.tries}"),
        ("tries listed by the tries endpoint", lambda r: str(r.history_rows)),
        ("executor-event races", lambda r: str(len(r.races))),
        ("api-server 5xx answers", lambda r: str(r.api_errors)),
        ("wall time of the mode s", lambda r: f"{r.wall:.0f}"),
    ]
    lines += [row(name, (cell(r) for r in results)) for name, cell in rows]
    return "\n".join(lines)


def run_in_fresh_deployment(home: Path, mode: Mode, args: argparse.Namespace) -> Result:
    """Start the server and Airflow for this mode alone, run it, read the records, tear down."""
    home.mkdir()
    deployment = Deployment(home)
    started = time.monotonic()
    try:
        print(f"  {mode.name}: starting the Segmind server and airflow standalone in {home}", file=sys.stderr)
        server = deployment.start_server(args)
        deployment.start_airflow(args, [mode], server)
        deployment.wait_for_airflow([mode], args.startup_timeout)
        if args.pool:
            deployment.create_pool(args.pool)
        print(f"  {mode.name}: Airflow ready after {time.monotonic() - started:.0f} s", file=sys.stderr)
        result = run_mode(deployment, mode, args.n, args.run_timeout)
        time.sleep(SETTLE)  # time for the last worker to log "Workload finished"
        result.segment = (result.segment[0], time.time())
        count_requests(result, deployment.record_file)
        read_airflow_log(result, deployment.airflow_log)
        return result
    finally:
        deployment.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="mapped tasks (prompts) per run (default 30)")
    parser.add_argument("--limit", type=int, default=5, help="generations per window (default 5)")
    parser.add_argument("--window", type=float, default=15.0, help="rate-limit window, s (default 15)")
    parser.add_argument(
        "--generation-seconds", type=float, default=3.0, help="v2 queue time and v1 latency, s (default 3)"
    )
    parser.add_argument(
        "--modes", default="sync,deferrable", help="comma-separated (default sync,deferrable)"
    )
    parser.add_argument("--retries", type=int, default=2, help="task retries unless a mode says :rN")
    parser.add_argument(
        "--retry-delay", type=float, default=None, help="seconds; default: Airflow's own (300)"
    )
    parser.add_argument("--run-timeout", type=float, default=None, help="deadline per DAG run, s")
    parser.add_argument(
        "--pool", type=int, default=0, help="put the tasks in a pool of this many slots (default: none)"
    )
    parser.add_argument("--startup-timeout", type=float, default=STARTUP_TIMEOUT)
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME and logs")
    args = parser.parse_args()
    try:
        modes = parse_modes(args.modes, args.retries)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if args.n < 1 or args.limit < 1 or args.window <= 0:
        parser.error("--n and --limit must be at least 1, --window positive")
    bound = math.ceil(args.n / args.limit) * args.window
    if args.run_timeout is None:
        retry_wait = args.retry_delay if args.retry_delay is not None else 300.0
        args.run_timeout = 4 * bound + max(m.retries for m in modes) * (retry_wait + bound) + 300

    command = shlex.join([sys.executable, *sys.argv])
    print(f"$ {command}")
    print(f"versions: {versions()}")
    print(
        f"N={args.n} images, rate limit {args.limit} per {args.window:g} s (Segmind's 429 shape), "
        f"{args.generation_seconds:g} s generations; bound = ceil(N / limit) * window = {bound:g} s"
    )
    delay = "Airflow's default (300 s)" if args.retry_delay is None else f"{args.retry_delay:g} s"
    print(
        f"airflow standalone: LocalExecutor, SQLite (busy timeout {SQLITE_BUSY_TIMEOUT} s), parallelism "
        f"and max_active_tasks_per_dag {args.n + 4}; retry_delay {delay}; "
        + (f"pool of {args.pool} slots (include_deferred false)" if args.pool else "no pool")
        + "; a fresh deployment per mode"
    )
    sys.stdout.flush()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    parent = Path(tempfile.mkdtemp(prefix="segmind-batch-bench-", dir="/tmp"))
    results: list[Result] = []
    began = time.monotonic()
    try:
        for mode in modes:
            results.append(run_in_fresh_deployment(parent / mode.dag_id, mode, args))
    except KeyboardInterrupt:
        print("interrupted; tearing down", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"  kept {parent}", file=sys.stderr)
        else:
            shutil.rmtree(parent, ignore_errors=True)

    print()
    print(table(results, args.n, bound))
    print()
    for result in results:
        if result.races:
            print(
                f"{result.mode.name}: {len(result.races)} executor-event races: {sorted(set(result.races))}"
            )
    print(
        f"wall time: {time.monotonic() - began:.0f} s in all (Airflow start-up included). Deferrals, "
        "worker-slot seconds and races from the LocalExecutor supervisor's log lines; run state, "
        "makespan and tries from the REST API; POSTs from the server's record file."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
