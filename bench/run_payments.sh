#!/usr/bin/env bash
# Reproduce the payments figures of docs/benchmarks.md (provider webhooks handled per second).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
exec .venv/bin/python -m potluck.benchmarks.cli payments --json bench/results/payments.json "$@"
