#!/usr/bin/env bash
# Reproduce the risk scoring figures of docs/benchmarks.md (precision/recall of the fraud rules
# on the seeded synthetic data set, and the scoring latency). Extra options go to the command,
# e.g. --seed 1 (the set the rules were tuned on) or --backend postgresql.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
exec .venv/bin/python -m potluck.benchmarks.cli risk --json bench/results/risk.json "$@"
