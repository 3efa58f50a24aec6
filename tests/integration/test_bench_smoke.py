"""The ledger benchmark still runs (tiny counts, SQLite). Not a timed test: no speed asserted."""

from potluck.benchmarks import ledger as bench


def test_plan_is_seeded_and_well_formed():
    a = bench.make_plan(accounts=50, transfers=200, seed=7)
    assert a == bench.make_plan(accounts=50, transfers=200, seed=7)
    assert len(a.accounts) == 50
    assert a.accounts[0].code == "clearing"
    assert all(d != c and 1 <= d < 50 and 1 <= c < 50 for d, c, _ in a.transfers)
    assert any(s.flagged and s.funding for s in a.accounts)


def test_percentile_nearest_rank():
    values = [float(x) for x in range(1, 101)]
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile([], 50) is None


def test_measurement_functions_run_on_sqlite():
    opts = bench.Options.quick(
        backends=["sqlite"], transfers=40, clients=4, batches=2, batch_size=50, accounts=30
    )
    figures = bench.run_potluck_backend("sqlite", opts, bench.SilentProgress())
    assert [(f.scenario, f.clients) for f in figures] == [
        ("single", 1),
        ("single", 4),
        ("batch", 1),
    ]
    for f in figures:
        assert f.errors == 0
        assert f.per_second > 0
        assert f.p50_ms is not None
        assert f.p99_ms is not None
        assert f.p50_ms <= f.p99_ms
    report = bench.Report(figures=figures)
    targets = bench.evaluate(report, clients=4)
    by_name = {t.name: t for t in targets}
    assert by_name["batched transfers, postgresql"].ok is None  # not measured
    assert by_name["batched transfers, sqlite"].ok in (True, False)


def test_marketplace_benchmark_runs_and_checks_its_books_on_sqlite():
    """Tiny counts: orders split, payouts processed, credits == orders, audit (no speed)."""
    from potluck.benchmarks import marketplace

    report = marketplace.run(
        marketplace.Options(backends=["sqlite"], orders=20, payouts=10, clients=2)
    )
    assert [f.scenario for f in report.figures] == [
        "orders-split",
        "payouts-created",
        "payouts-processed",
    ]
    assert all(f.per_second > 0 and f.errors == 0 for f in report.figures)
    assert report.checks == [
        "sqlite: credits == orders, audit ok",
        "sqlite: every payout completed, audit ok",
    ]


def test_sharing_benchmark_runs():
    """Settle-up and parsing measured on tiny repetitions (no speed asserted)."""
    from potluck.benchmarks import sharing

    rows = sharing.run(runs=1)
    assert [r["scenario"].split(",")[0] for r in rows] == ["simplify"] * 3 + ["parse"]
    assert all(r["p50_ms"] >= 0 for r in rows)
