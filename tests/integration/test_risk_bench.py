"""Smoke test of `potluck bench risk` on a tiny data set (its own SQLite file)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from potluck.benchmarks.cli import bench_app


def test_bench_risk_quick_prints_and_writes_the_figures(tmp_path):
    out = tmp_path / "risk.json"
    result = CliRunner().invoke(bench_app, ["risk", "--quick", "--seed", "5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "precision" in result.output
    assert "p99" in result.output
    figures = json.loads(out.read_text())
    assert figures["fraud"] > 0
    assert figures["legit"] > 0
    assert {p["pattern"] for p in figures["patterns"]} == {
        "card_testing",
        "account_takeover",
        "mule_fan_in",
        "mule_fan_out",
    }
    assert 0 <= figures["precision"] <= 1
    assert 0 <= figures["recall"] <= 1
    assert figures["latency_calls"] == 200
    assert figures["evaluate_ms"]["p50"] > 0
