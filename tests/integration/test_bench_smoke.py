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

    rows = sharing.run_pure(runs=1)
    assert [r["scenario"].split(",")[0] for r in rows] == ["simplify"] * 3 + ["parse"]
    assert all(r["p50_ms"] >= 0 for r in rows)


def test_sharing_benchmark_loaders_and_balances_on_sqlite(monkeypatch):
    """Tiny counts, no IHateMoney: the seeded plan, both Potluck loaders (service and bulk)
    give the plan's balances, and settle-up answers (no speed asserted)."""
    from argon2 import PasswordHasher

    from potluck.benchmarks import sharing
    from potluck.identity import passwords

    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    from potluck.ledger import service as ledger

    plan = sharing.make_expense_plan(members=6, expenses=12, seed=3)
    assert plan == sharing.make_expense_plan(members=6, expenses=12, seed=3)
    assert all(a % len(o) == 0 and 2 <= len(o) <= 6 for _, a, o in plan.expenses)
    assert sum(plan.balances()) == 0
    with bench.fresh_sqlite() as url:
        served = sharing.potluck_group(url, plan, batch=5)
        empty = sharing.ExpensePlan(plan.members, [])
        bulk = sharing.potluck_group(url, empty)
        bulk.load_seconds = sharing.potluck_bulk_load(url, bulk, plan, batch=5)
        for group in (served, bulk):
            bal, settle, balances, payments = sharing.potluck_compute_times(url, group, runs=1)
            assert [balances[m] for m in group.member_ids] == plan.balances()
            assert len(bal) == len(settle) == 1
            assert 0 < payments < plan.members
        db = bench.Database(bench.make_engine(url, pool_size=1))
        try:
            with db.read() as s:
                assert ledger.audit(s).ok
        finally:
            db.dispose()
