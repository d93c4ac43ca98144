#!/usr/bin/env bash
# The test command. From a fresh clone it creates .venv, installs the package with its test
# extra, creates Airflow's database, then runs ruff, mypy and pytest. Extra arguments go to pytest.
source "$(dirname "$0")/_env.sh"
ensure_venv
ensure_airflow_home tests

echo "==> ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "==> mypy"
"$VENV/bin/mypy"
echo "==> pytest"
"$VENV/bin/python" -m pytest "$@"
