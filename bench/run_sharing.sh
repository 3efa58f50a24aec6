#!/usr/bin/env bash
# Reproduce the sharing figures of docs/benchmarks.md: expense creation over HTTP and balances +
# settle-up against IHateMoney (installed into bench/.venv-ihatemoney on first use, served by
# gunicorn on 127.0.0.1), 200 x 100,000 balances, simplify and parse. Then writes the figures
# into docs/benchmarks.md (between the sharing-figures markers).
# Extra arguments go to `potluck bench sharing` (e.g. --backend all, --no-ihatemoney, --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make install
.venv/bin/python -m potluck.benchmarks.cli sharing --json bench/results/sharing.json "$@"
.venv/bin/python -m potluck.benchmarks.sharing
