#!/usr/bin/env bash
# Reproduce the checkout figures of docs/benchmarks.md: group orders of 4 members completed
# end to end per second (sandbox provider, in-process bus) on SQLite and PostgreSQL; JSON to
# bench/results/checkout.json. Extra arguments go to `potluck bench checkout` (e.g. --quick,
# --backend postgresql, --orders 500, --clients 8).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
exec .venv/bin/python -m potluck.benchmarks.cli checkout --json bench/results/checkout.json "$@"
