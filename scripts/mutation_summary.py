"""Per-module counts of the last mutation run (scripts/mutation.sh), read from mutants/*.meta.

Usage: python scripts/mutation_summary.py [policy storage transport trigger resume]
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

PACKAGE = "airflow_provider_segmind"
# The same selection as scripts/mutation.sh: only the retry-resume part of the operator.
MODULES = {
    "policy": [f"{PACKAGE}.policy.*"],
    "storage": [f"{PACKAGE}.storage.*"],
    "transport": [f"{PACKAGE}.transport.*"],
    "trigger": [f"{PACKAGE}.triggers.segmind.*"],
    "resume": [
        f"{PACKAGE}.operators.segmind.x*_resumable_request__mutmut_*",
        f"{PACKAGE}.operators.segmind.x*_save_request__mutmut_*",
        f"{PACKAGE}.operators.segmind.x*_forget_request__mutmut_*",
        f"{PACKAGE}.operators.segmind.x__fingerprint__mutmut_*",
    ],
}
#: mutmut's verdicts shown as columns; "other" counts the rest (no tests, not checked, suspicious).
COLUMNS = ("killed", "survived", "timeout")


def verdicts() -> dict[str, str]:
    found: dict[str, str] = {}
    for meta in Path("mutants").rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = status_by_exit_code[code]
    return found


def main(selected: list[str]) -> int:
    found = verdicts()
    if not found:
        print("No mutation results in mutants/: run scripts/mutation.sh first.", file=sys.stderr)
        return 1
    survivors: list[str] = []
    header = " ".join(f"{c:>9}" for c in ("module", "mutants", *COLUMNS, "other"))
    print(header)
    print("-" * len(header))
    for module in selected or list(MODULES):
        names = [n for n in found if any(fnmatch.fnmatchcase(n, p) for p in MODULES[module])]
        counts = Counter(found[n] for n in names)
        other = len(names) - sum(counts[c] for c in COLUMNS)
        row = (module, len(names), *(counts[c] for c in COLUMNS), other)
        print(" ".join(f"{v:>9}" for v in row))
        survivors += sorted(n for n in names if found[n] not in ("killed", "timeout"))
    if survivors:
        print("\nNot killed (see one with: .venv/bin/mutmut show NAME):")
        for name in survivors:
            print(f"  {found[name]:<11} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
