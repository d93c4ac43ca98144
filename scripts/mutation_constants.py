"""Hand-written mutants for what mutmut does not touch: module-level constants and whole statements.

mutmut mutates function bodies one operator or literal at a time; it never changes a module
constant (the 55-minute result window, the Jinja markers, the POST-safe statuses) nor deletes a
statement (the cap of a sleep at the deadline). Each mutant below is one such change that would
cost money or data; the named tests must fail (or hang past the time limit) when it is applied.

Each mutant is applied to a copy of the package and tests in a temporary folder, never to the
checkout. Run by scripts/mutation.sh; alone: ``.venv/bin/python scripts/mutation_constants.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT = 120.0  # seconds; a mutant whose tests run longer made a wait hang: detected


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


OPERATOR = "airflow_provider_segmind/operators/segmind.py"
POLICY = "airflow_provider_segmind/policy.py"
TRIGGER = "airflow_provider_segmind/triggers/segmind.py"
STORAGE = "airflow_provider_segmind/storage.py"
RESUME_TESTS = ("tests/operators/test_segmind.py", "tests/operators/test_resume_mutants.py", "-k", "retry")
POLICY_TESTS = ("tests/test_policy.py", "tests/test_policy_mutants.py", "tests/hooks/test_segmind.py")

MUTANTS = (
    Mutant(
        "result window 55 -> 65 minutes",
        OPERATOR,
        "RESULT_WINDOW = timedelta(minutes=55)",
        "RESULT_WINDOW = timedelta(minutes=65)",
        RESUME_TESTS,
    ),
    Mutant(
        "result window check deleted",
        OPERATOR,
        '        if time.time() - float(record.get("submitted_at", 0)) > RESULT_WINDOW.total_seconds():\n'
        "            return None\n",
        "",
        RESUME_TESTS,
    ),
    Mutant(
        "body fingerprint check deleted",
        OPERATOR,
        'record.get("body_sha256") != _fingerprint(self.model, body)',
        "False",
        RESUME_TESTS,
    ),
    Mutant(
        "'{%' read as a literal",
        OPERATOR,
        '_TEMPLATE_MARKERS = ("{{", "{%", "{#")',
        '_TEMPLATE_MARKERS = ("{{", "{#")',
        ("tests/operators/test_segmind.py", "-k", "markers"),
    ),
    Mutant(
        "'{#' read as a literal",
        OPERATOR,
        '_TEMPLATE_MARKERS = ("{{", "{%", "{#")',
        '_TEMPLATE_MARKERS = ("{{", "{%")',
        ("tests/operators/test_segmind.py", "-k", "markers"),
    ),
    *(
        Mutant(
            f"POST re-sent after HTTP {status}",
            POLICY,
            "POST_SAFE_RETRY_STATUSES = frozenset({429, 502, 503})",
            f"POST_SAFE_RETRY_STATUSES = frozenset({{429, 502, 503, {status}}})",
            POLICY_TESTS,
        )
        for status in (500, 504)
    ),
    *(
        Mutant(
            f"POST not re-sent after HTTP {status}",
            POLICY,
            "POST_SAFE_RETRY_STATUSES = frozenset({429, 502, 503})",
            "POST_SAFE_RETRY_STATUSES = frozenset({"
            + ", ".join(str(s) for s in (429, 502, 503) if s != status)
            + "})",
            POLICY_TESTS,
        )
        for status in (502, 503)
    ),
    Mutant(
        "Segmind's reset header not read",
        POLICY,
        'RATE_LIMIT_RESET_HEADER = "x-rate-limit-reset-at-utc"',
        'RATE_LIMIT_RESET_HEADER = "x-ratelimit-reset"',
        (*POLICY_TESTS, "-k", "reset"),
    ),
    Mutant(
        "trigger sleep not capped at the deadline",
        TRIGGER,
        "await asyncio.sleep(deadline.clamp(wait))",
        "await asyncio.sleep(wait)",
        ("tests/test_hostile_servers.py::test_the_trigger_sleep_never_passes_the_deadline",),
    ),
    Mutant(
        "trigger waits no poll interval after a 429",
        TRIGGER,
        "wait = max(self.poll_interval, self.backoff.wait_for(err, attempt=rate_limits))",
        "wait = self.backoff.wait_for(err, attempt=rate_limits) * 0",
        ("tests/triggers/", "tests/test_hostile_servers.py", "-k", "busy or 429"),
    ),
    Mutant(
        "local disk written like an object store",
        STORAGE,
        'LOCAL_PROTOCOLS = frozenset({"", "file", "local"})',
        'LOCAL_PROTOCOLS = frozenset({""})',
        ("tests/test_storage.py", "tests/test_storage_mutants.py"),
    ),
)


def copy_project(into: Path) -> None:
    shutil.copytree(ROOT / "airflow_provider_segmind", into / "airflow_provider_segmind")
    shutil.copytree(ROOT / "tests", into / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", into / "pyproject.toml")


def run(mutant: Mutant, workdir: Path) -> str:
    target = workdir / mutant.path
    original = target.read_text()
    if original.count(mutant.old) != 1:
        return "stale (its text is no longer in the source once: update this script)"
    target.write_text(original.replace(mutant.old, mutant.new))
    # The copy comes first on sys.path, ahead of the editable install (pytest's plugin included).
    env = {**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests]
    try:
        result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        return "timeout"
    finally:
        target.write_text(original)
    if result.returncode == 1:
        return "killed"
    if result.returncode == 0:
        return "survived"
    return f"error (pytest exit {result.returncode}): {result.stdout.decode()[-500:]}"


def main() -> int:
    verdicts: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="segmind-mutants-") as tmp:
        workdir = Path(tmp)
        copy_project(workdir)
        for mutant in MUTANTS:
            verdicts.append((mutant.name, run(mutant, workdir)))
            print(f"  {verdicts[-1][1]:<9} {mutant.name}", flush=True)
    killed = sum(v in ("killed", "timeout") for _, v in verdicts)
    print(f"hand mutants: {len(verdicts)}, killed {killed}, not killed {len(verdicts) - killed}")
    return 0 if killed == len(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
