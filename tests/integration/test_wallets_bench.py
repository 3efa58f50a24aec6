"""``potluck bench wallets`` still runs: tiny counts, SQLite, a real server (no speed asserted)."""

from __future__ import annotations

from potluck.benchmarks import wallets as wbench


def test_wallets_benchmark_runs_and_checks_its_books_on_sqlite():
    opts = wbench.Options.quick(backends=["sqlite"], people=4, payments=12, clients=2)
    report = wbench.run(opts)
    (figure,) = report.figures
    assert figure.operations == 12
    assert figure.errors == 0
    assert figure.per_second > 0
    assert sum(report.outcomes["sqlite"].values()) == 12
    assert report.checks == ["sqlite: money conserved, nobody below zero, audit ok"]
    assert "target" in report.to_json()
