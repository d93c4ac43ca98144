"""What a DAG file pays to import our operator, beside what it pays for Airflow's own.

The dag-processor re-parses every DAG file every 30 s, so each module our operator drags in is
paid again and again. Each run imports one target in a fresh interpreter, after ``airflow.sdk``
(the baseline every DAG file imports anyway), and records the wall time of that import and how
many modules it added. Targets are interleaved run by run so that noise on a shared machine hits
them alike; medians (and minima) are reported, never asserted on.

    .venv/bin/python benchmarks/import_cost.py --runs 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "airflow.sdk"
REFERENCE = "airflow.providers.standard.operators.python"
OURS = "airflow_provider_segmind.operators.segmind"
TARGETS: list[tuple[str, str, bool]] = [
    # (module, what it stands for, optional: may be absent from the environment)
    (OURS, "SegmindGenerateImageOperator", False),
    ("airflow_provider_segmind.sensors.segmind", "SegmindRequestSensor", False),
    (REFERENCE, "PythonOperator (reference)", False),
    ("airflow.providers.http.operators.http", "HttpOperator", True),
]
#: Modules a DAG parse must not pay for because of us (DESIGN.md: "Cheap imports").
HEAVY = [
    "httpx",
    "PIL",
    "requests",
    "tenacity",
    "fsspec",
    "airflow_provider_segmind.triggers",
    "airflow_provider_segmind.hooks",
]
MARKER = "@@import_cost@@"

# Runs in the child. Timing and counting happen there, so interpreter start-up is not measured.
CHILD = f"""
import importlib, json, sys, time

def loaded(names, modules):
    return [h for h in names if any(m == h or m.startswith(h + ".") for m in modules)]

target, heavy = sys.argv[1], json.loads(sys.argv[2])
n0 = len(sys.modules)
t0 = time.perf_counter()
import {BASELINE}
t1 = time.perf_counter()
before = set(sys.modules)
result = {{"baseline_s": t1 - t0, "baseline_modules": len(before) - n0,
          "baseline_heavy": loaded(heavy, before)}}
t2 = time.perf_counter()
try:
    importlib.import_module(target)
except ModuleNotFoundError as exc:
    if not (exc.name and (target == exc.name or target.startswith(exc.name + "."))):
        raise
    result["missing"] = exc.name
t3 = time.perf_counter()
new = set(sys.modules) - before
result.update(seconds=t3 - t2, modules=len(sys.modules) - len(before), heavy=loaded(heavy, new))
print({MARKER!r} + json.dumps(result))
"""


@dataclass
class Samples:
    """Everything measured for one target, one entry per run."""

    label: str
    seconds: list[float] = field(default_factory=list)
    modules: list[int] = field(default_factory=list)
    heavy: set[str] = field(default_factory=set)
    missing: str | None = None


def child_env() -> dict[str, str]:
    """A private AIRFLOW_HOME, so the benchmark neither reads nor writes a user's Airflow."""
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow" / "bench"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    return env


def measure(target: str, env: dict[str, str]) -> dict[str, Any]:
    """Import ``target`` in a fresh interpreter after the baseline; return the child's figures."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, target, json.dumps(HEAVY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            figures: dict[str, Any] = json.loads(line[len(MARKER) :])
            return figures
    raise RuntimeError(f"importing {target} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.1f} ({min(seconds) * 1000:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="fresh interpreters per target (default 4)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    env = child_env()

    samples = {target: Samples(label) for target, label, _ in TARGETS}
    baseline = Samples(f"`{BASELINE}` itself (baseline, from a bare interpreter)")
    baseline_heavy: set[str] = set()
    active = [target for target, _, _ in TARGETS]
    # One discarded round first: byte-code compilation and a cold page cache are not parse costs.
    for run in range(args.runs + 1):
        for target in list(active):
            figures = measure(target, env)
            if figures.get("missing"):
                samples[target].missing = str(figures["missing"])
                active.remove(target)
                continue
            if run == 0:
                continue
            sample = samples[target]
            sample.seconds.append(float(figures["seconds"]))
            sample.modules.append(int(figures["modules"]))
            sample.heavy.update(figures["heavy"])
            baseline.seconds.append(float(figures["baseline_s"]))
            baseline.modules.append(int(figures["baseline_modules"]))
            baseline_heavy.update(figures["baseline_heavy"])

    reference = statistics.median(samples[REFERENCE].seconds)
    print(
        "| target | extra modules (median) | import time ms (median, min) "
        "| time vs PythonOperator | heavy modules pulled in |"
    )
    print("| --- | ---: | ---: | ---: | --- |")
    for target, _, _ in TARGETS:
        sample = samples[target]
        name = f"`{target}` ({sample.label})"
        if sample.missing is not None:
            print(f"| {name} | not installed | not installed | - | - |")
            continue
        ratio = statistics.median(sample.seconds) / reference
        heavy = ", ".join(h for h in HEAVY if h in sample.heavy) or "none"
        print(
            f"| {name} | {statistics.median(sample.modules):.0f} | {ms(sample.seconds)} "
            f"| {ratio:.2f}x | {heavy} |"
        )
    print(
        f"| {baseline.label} | {statistics.median(baseline.modules):.0f} | {ms(baseline.seconds)} "
        f"| {statistics.median(baseline.seconds) / reference:.0f}x | "
        f"{', '.join(h for h in HEAVY if h in baseline_heavy) or 'none'} (already loaded) |"
    )
    print()
    print(
        f"Measured: {args.runs} fresh `{Path(sys.executable).name}` interpreters per target, interleaved "
        f"(after one discarded warm-up round); each imports `{BASELINE}` first, then times the target's "
        "import with time.perf_counter and counts len(sys.modules) before/after; 'heavy modules pulled in' "
        f"lists those first imported by the target, not by `{BASELINE}`; the baseline row is timed in the "
        "same children."
    )


if __name__ == "__main__":
    main()
