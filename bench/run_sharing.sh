#!/usr/bin/env bash
# Reproduce the sharing figures of docs/benchmarks.md (settle-up and parsing; pure functions).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
exec .venv/bin/python -m potluck.benchmarks.cli sharing --json bench/results/sharing.json "$@"
