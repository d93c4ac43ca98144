#!/usr/bin/env bash
# Mutation testing of the modules where a bug costs money or data (not run in CI: ~1 h on 2 cores).
#
#   bash scripts/mutation.sh            # every module below, from scratch, then the hand mutants
#   bash scripts/mutation.sh policy     # one or more modules: policy storage transport trigger resume
#   bash scripts/mutation.sh --summary  # only print the summary of the last run
#   bash scripts/mutation.sh --hand     # only the hand mutants (about a minute)
#
# mutmut (configured in pyproject.toml, [tool.mutmut]) copies the package into mutants/, changes
# one thing at a time in a function body, and runs the tests of the fast selection that call that
# function; a mutant that no test notices "survived". Survivors are listed at the end; look at one
# with `.venv/bin/mutmut show NAME`. Extra arguments go to `mutmut run` after the module names.
# mutmut never touches module constants nor deletes a statement: scripts/mutation_constants.py
# holds hand mutants for those (the result window, the Jinja markers, the POST-safe statuses, the
# sleep cap at the trigger's deadline); the script fails when one of them survives.
source "$(dirname "$0")/_env.sh"
ensure_venv
ensure_airflow_home tests
MUTMUT_VERSION="3.8.1"
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mutmut') != '$MUTMUT_VERSION')" 2>/dev/null; then
    echo "==> installing mutmut $MUTMUT_VERSION into .venv"
    "$VENV/bin/python" -m pip install --quiet "mutmut==$MUTMUT_VERSION"
fi

# Module name -> mutmut mutant-name patterns. Only the retry-resume part of the operator.
declare -A PATTERNS=(
    [policy]="airflow_provider_segmind.policy.*"
    [storage]="airflow_provider_segmind.storage.*"
    [transport]="airflow_provider_segmind.transport.*"
    [trigger]="airflow_provider_segmind.triggers.segmind.*"
    [resume]="airflow_provider_segmind.operators.segmind.x*_resumable_request__mutmut_* airflow_provider_segmind.operators.segmind.x*_save_request__mutmut_* airflow_provider_segmind.operators.segmind.x*_forget_request__mutmut_* airflow_provider_segmind.operators.segmind.x__fingerprint__mutmut_*"
)
ORDER=(policy storage transport trigger resume)

if [ "${1:-}" = "--summary" ]; then
    exec "$VENV/bin/python" scripts/mutation_summary.py
fi
if [ "${1:-}" = "--hand" ]; then
    echo "==> hand mutants (scripts/mutation_constants.py)"
    exec "$VENV/bin/python" scripts/mutation_constants.py
fi
modules=()
while [ $# -gt 0 ] && [ -n "${PATTERNS[$1]:-}" ]; do
    modules+=("$1")
    shift
done
[ ${#modules[@]} -gt 0 ] || modules=("${ORDER[@]}")
set -f  # the patterns are for mutmut, not for the shell
patterns=()
for module in "${modules[@]}"; do
    # shellcheck disable=SC2206 # the patterns are split on spaces on purpose
    patterns+=(${PATTERNS[$module]})
done

set +f
# A fresh copy each run: mutmut keeps old verdicts otherwise, and tests may have changed.
rm -rf mutants
echo "==> mutmut run ${modules[*]} (log: mutants.log)"
set +e
# Progress is one long line of carriage returns: keep it out of the terminal.
"$VENV/bin/mutmut" run "${patterns[@]}" "$@" >mutants.log 2>&1
status=$?
set -e
if [ $status -ne 0 ]; then
    tail -c 3000 mutants.log | tr '\r' '\n' | tail -30
    echo "mutmut run failed (exit $status); full output in mutants.log" >&2
    exit $status
fi
"$VENV/bin/python" scripts/mutation_summary.py "${modules[@]}"
echo "==> hand mutants (scripts/mutation_constants.py)"
"$VENV/bin/python" scripts/mutation_constants.py
