#!/usr/bin/env bash
# Reproduce the marketplace and payouts figures of docs/benchmarks.md (SQLite and PostgreSQL,
# in-process bus); JSON to bench/results/marketplace.json. Extra arguments go to
# `potluck bench marketplace` (e.g. --quick, --backend postgresql, --orders 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
exec .venv/bin/python -m potluck.benchmarks.cli marketplace --json bench/results/marketplace.json "$@"
