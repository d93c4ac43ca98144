# Shared set-up for the demo and the test command: a project-local virtual environment and a
# project-local AIRFLOW_HOME, so nothing outside the checkout is touched. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"

ensure_venv() {
    # (Re)install when the venv is missing or pyproject.toml changed since the last install.
    local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating virtual environment in .venv"
        "$PYTHON" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ]; then
        echo "==> installing airflow-provider-segmind and its test dependencies (first run: about a minute)"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
        if ! "$VENV/bin/python" -m pip install --quiet -e ".[test]" >"$VENV/install.log" 2>&1; then
            grep -v "^WARNING: Location" "$VENV/install.log" | tail -30
            echo "pip install failed; full log in .venv/install.log" >&2
            exit 1
        fi
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}

ensure_airflow_home() {
    # $1: name of the home under .airflow/ (demo and tests keep separate databases).
    export AIRFLOW_HOME="$ROOT/.airflow/$1"
    export AIRFLOW__CORE__LOAD_EXAMPLES=False
    export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/example_dags"
    export AIRFLOW__CORE__UNIT_TEST_MODE=False
    mkdir -p "$AIRFLOW_HOME"
    if [ ! -f "$AIRFLOW_HOME/.migrated" ]; then
        echo "==> creating Airflow's database in .airflow/$1"
        if ! "$VENV/bin/airflow" db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1; then
            tail -30 "$AIRFLOW_HOME/migrate.log"
            exit 1
        fi
        touch "$AIRFLOW_HOME/.migrated"
    fi
}
