"""The package as Airflow sees it: entry point, provider metadata, CLI listings, cheap imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from airflow_provider_segmind import __version__
from airflow_provider_segmind.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def test_entry_point_points_at_get_provider_info() -> None:
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_segmind")
    ]
    assert ep.load() is get_provider_info


def test_provider_info_describes_the_connection_type() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-segmind"
    assert info["versions"] == [__version__]
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "segmind"
    assert conn["hook-class-name"] == "airflow_provider_segmind.hooks.segmind.SegmindHook"
    behaviour = conn["ui-field-behaviour"]
    assert set(behaviour["hidden-fields"]) == {"schema", "port", "login"}
    assert behaviour["relabeling"]["password"] == "API Key"
    assert behaviour["placeholders"]["host"] == "https://api.segmind.com"
    assert set(conn["conn-fields"]) == {"connect_timeout", "read_timeout", "rate_limit"}


@pytest.mark.parametrize("section", ["hooks", "operators", "sensors", "triggers"])
def test_every_listed_module_imports(section: str) -> None:
    import importlib

    for entry in get_provider_info()[section]:
        for module in entry.get("python-modules", []):
            importlib.import_module(module)


def test_provider_info_matches_airflows_schema() -> None:
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def _airflow(*args: str) -> str:
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
    done = subprocess.run([AIRFLOW, *args], capture_output=True, text=True, env=env, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_airflow_providers_list_shows_the_package() -> None:
    rows = json.loads(_airflow("providers", "list", "--output", "json"))
    ours = [row for row in rows if row["package_name"] == "airflow-provider-segmind"]
    assert ours, rows
    assert ours[0]["version"] == __version__


def test_airflow_providers_hooks_shows_the_connection_type() -> None:
    rows = json.loads(_airflow("providers", "hooks", "--output", "json"))
    ours = [row for row in rows if row.get("connection_type") == "segmind"]
    assert ours, [row.get("connection_type") for row in rows]
    assert ours[0]["class"] == "airflow_provider_segmind.hooks.segmind.SegmindHook"


def test_importing_the_operator_is_cheap() -> None:
    """DAG files import the operator on every parse: no httpx, Pillow, requests or trigger module."""
    code = (
        "import sys, airflow.sdk; before = set(sys.modules);"
        "import airflow_provider_segmind.operators.segmind, airflow_provider_segmind.sensors.segmind;"
        "new = set(sys.modules) - before;"
        "heavy = sorted(m for m in new"
        " if m.split('.')[0] in {'httpx', 'PIL', 'requests', 'tenacity', 'fsspec'}"
        " or m.startswith(('airflow_provider_segmind.triggers', 'airflow_provider_segmind.hooks')));"
        "print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_importing_the_operator_leaves_the_answer_models_out() -> None:
    """The operator needs the parameter models at parse time; Segmind's answers only at run time."""
    code = (
        "import sys, airflow.sdk;"
        "import airflow_provider_segmind.operators.segmind;"
        "print(sorted(m for m in sys.modules if m.startswith('airflow_provider_segmind.models')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == str(
        [
            "airflow_provider_segmind.models",
            "airflow_provider_segmind.models.messages",
            "airflow_provider_segmind.models.parameters",
        ]
    )
