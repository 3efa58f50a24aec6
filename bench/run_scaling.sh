#!/usr/bin/env bash
# Reproduce the "Scaling" figures of docs/benchmarks.md: orders fully split per second on
# PostgreSQL + RabbitMQ with 1 and 2 worker processes per service, and in embedded mode, with
# outbox-to-effect latency; JSON to bench/results/scaling.json. Needs PostgreSQL at
# 127.0.0.1:5432 (POTLUCK_TEST_POSTGRES_URL) and RabbitMQ at 127.0.0.1:5672
# (POTLUCK_BENCH_BROKER_URL); each configuration uses a fresh database and its own broker
# namespace, deleted afterwards. Extra arguments go to `potluck bench scaling`
# (e.g. --quick, --orders 5000, --config rabbitmq-2x).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
exec .venv/bin/python -m potluck.benchmarks.cli scaling --json bench/results/scaling.json "$@"
