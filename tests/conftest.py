"""Test-wide set-up: a project-local AIRFLOW_HOME before Airflow is imported, and shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# scripts/test.sh sets these; setdefault keeps `pytest` alone working the same way.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow" / "tests"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "example_dags"))
