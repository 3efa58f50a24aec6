"""Write the figures and targets of bench/results/ledger.json into docs/benchmarks.md.

Usage: .venv/bin/python bench/render_figures.py  (after bench/run_ledger.sh)
Replaces what stands between the <!-- figures --> and <!-- /figures --> markers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ledger.json"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- figures -->", "<!-- /figures -->"


def render(data: dict) -> str:
    machine = data["machine"]
    lines = [
        f"Run of {machine.get('started_at', '?')} on {machine.get('cores')} cores; load average "
        f"{tuple(round(x, 1) for x in machine.get('load_average_at_start', ()))} at the start, "
        f"{tuple(round(x, 1) for x in machine.get('load_average_at_end', ()))} at the end.",
        "",
        "| system | backend | scenario | clients | operations | per second | p50 ms | p99 ms |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for f in data["figures"]:
        lines.append(
            f"| {f['system']} | {f['backend']} | {f['scenario']} | {f['clients']} | "
            f"{f['operations']:,} | {f['per_second']:,.0f} | {f['p50_ms']} | {f['p99_ms']} |"
        )
    lines += ["", "| target | wanted | measured | result |", "|---|---|---|---|"]
    for t in data.get("targets", []):
        result = {True: "**pass**", False: "**miss**", None: "not measured"}[t.get("ok")]
        if t.get("reported"):
            result = "for reference"
        lines.append(f"| {t['name']} | {t['wanted']} | {t['measured']} | {result} |")
    for skipped in data.get("skipped", []):
        lines.append(f"\nSkipped: {skipped}")
    return "\n".join(lines)


def main() -> int:
    data = json.loads(RESULTS.read_text())
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        print(f"{DOC} has no {START} … {END} markers", file=sys.stderr)
        return 1
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{render(data)}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
