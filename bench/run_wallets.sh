#!/usr/bin/env bash
# Reproduce the wallets figures of docs/benchmarks.md (wallet payments per second over HTTP,
# risk scoring on, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
exec .venv/bin/python -m potluck.benchmarks.cli wallets --json bench/results/wallets.json "$@"
