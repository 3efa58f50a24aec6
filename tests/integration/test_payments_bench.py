"""The payments benchmark still runs and checks itself (tiny counts, SQLite). Not a timed test:
no speed asserted."""

from potluck.benchmarks import payments as bench


def test_the_webhook_benchmark_runs_and_checks_the_books():
    report = bench.run(bench.Options.quick(backends=["sqlite"], intents=12, clients=3))
    assert [f.scenario for f in report.figures] == ["webhook", "webhook-duplicate"]
    for f in report.figures:
        assert f.operations == 12
        assert f.errors == 0
    assert report.checks  # run() raises when a check fails; it recorded the passing one
    assert report.to_json()["target_per_second"] == bench.TARGET_PER_SECOND
