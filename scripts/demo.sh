#!/usr/bin/env bash
# The demo command. From a fresh clone: creates .venv, installs the package, creates a
# project-local Airflow home with its database, starts the local Segmind-compatible server
# (or, when SEGMIND_API_KEY is set, uses the real API), runs the segmind_quickstart DAG with
# `airflow dags test`, and prints the paths of the images it made. Safe to run again.
source "$(dirname "$0")/_env.sh"
ensure_venv
ensure_airflow_home demo
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}"

server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

if [ -n "${SEGMIND_API_KEY:-}" ]; then
    echo "==> SEGMIND_API_KEY is set: calling the real Segmind API (this costs credits)"
    unset AIRFLOW_CONN_SEGMIND_DEFAULT
else
    echo "==> starting the local Segmind-compatible server"
    ready="$AIRFLOW_HOME/server.json"
    rm -f "$ready"
    "$VENV/bin/python" -m airflow_provider_segmind.testing --port 0 --cdn-port 0 \
        --generation-seconds 1 --ready-file "$ready" >"$AIRFLOW_HOME/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        [ -f "$ready" ] && break
        if ! kill -0 "$server_pid" 2>/dev/null; then cat "$AIRFLOW_HOME/server.log"; exit 1; fi
        sleep 0.1
    done
    [ -f "$ready" ] || { echo "the local server did not start"; cat "$AIRFLOW_HOME/server.log"; exit 1; }
    AIRFLOW_CONN_SEGMIND_DEFAULT="$("$VENV/bin/python" -c '
import json, sys
info = json.load(open(sys.argv[1]))
print(json.dumps({"conn_type": "segmind", "host": info["base_url"], "password": info["api_key"]}))
' "$ready")"
    export AIRFLOW_CONN_SEGMIND_DEFAULT
    echo "    $(head -1 "$AIRFLOW_HOME/server.log")"
fi

echo "==> airflow dags test segmind_quickstart"
marker="$AIRFLOW_HOME/.demo-started"
touch "$marker"
if ! "$VENV/bin/airflow" dags test segmind_quickstart >"$AIRFLOW_HOME/demo-run.log" 2>&1; then
    tail -40 "$AIRFLOW_HOME/demo-run.log"
    echo "The DAG run failed; full log in $AIRFLOW_HOME/demo-run.log" >&2
    exit 1
fi
grep -E "^(2[0-9-]+T.*)?.*(: PNG|: JPEG|: WEBP) [0-9]+x[0-9]+" "$AIRFLOW_HOME/demo-run.log" | sed 's/^.*\(file:\/\/\)/    \1/' || true
if grep -q "DagRunState.FAILED\|state=failed" "$AIRFLOW_HOME/demo-run.log"; then
    tail -40 "$AIRFLOW_HOME/demo-run.log"
    echo "The DAG run failed; full log in $AIRFLOW_HOME/demo-run.log" >&2
    exit 1
fi
echo "==> images made by this run:"
made=$(find "$AIRFLOW_HOME/segmind_output/segmind_quickstart" -type f -newer "$marker" \( -name '*.png' -o -name '*.jpg' -o -name '*.webp' \) 2>/dev/null | sort)
if [ -z "$made" ]; then
    echo "no image was written; see $AIRFLOW_HOME/demo-run.log" >&2
    exit 1
fi
echo "$made" | sed 's/^/    /'
