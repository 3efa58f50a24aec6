#!/usr/bin/env bash
# Reproduce the figures of docs/benchmarks.md: the full ledger benchmark on SQLite and
# PostgreSQL with pgbench -N and django-hordak as references; JSON to bench/results/.
# Extra arguments go to `potluck bench ledger` (e.g. --quick, --backend sqlite, --skip-hordak).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
if ! command -v pgbench >/dev/null && ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then
  echo "pgbench is missing: apt-get update && apt-get install -y postgresql-contrib" >&2
  echo "(or run with --skip-pgbench)" >&2
fi
exec .venv/bin/python -m potluck.benchmarks.cli ledger --json bench/results/ledger.json "$@"
