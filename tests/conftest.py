"""Test-wide set-up: a project-local AIRFLOW_HOME before Airflow is imported, and shared fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# scripts/test.sh sets these; setdefault keeps `pytest` alone working the same way.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow" / "tests"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "example_dags"))
# A second DAG bundle for test-only DAGs: dag.test() runs only DAGs that live in a bundle.
os.environ.setdefault(
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
    json.dumps(
        [
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {},
            },
            {
                "name": "test-dags",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(ROOT / "tests" / "dags")},
            },
        ]
    ),
)

# pytester runs small pytest sessions, to test the pytest plugin across tests.
pytest_plugins = ["pytester"]
