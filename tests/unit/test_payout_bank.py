"""The simulated bank's decisions (pure: a function of seed, payout id and attempt) and the
worker's backoff."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from potluck.clock import FakeClock
from potluck.config import Settings
from potluck.payouts.bank import BankOutcome, SimulatedBank, make_bank_adapter
from potluck.payouts.worker import backoff_seconds


def bank(**rates):
    return SimulatedBank(None, FakeClock(), **rates)  # decide() touches no database


def test_decisions_are_a_function_of_seed_payout_and_attempt():
    a, b = (
        bank(seed=7, transient_failure_rate=0.3, decline_rate=0.1),
        bank(seed=7, transient_failure_rate=0.3, decline_rate=0.1),
    )
    ids = [f"po_{i}" for i in range(300)]
    first = [a.decide(i, 1) for i in ids]
    assert first == [b.decide(i, 1) for i in reversed(ids)][::-1]  # order does not matter
    assert first == [a.decide(i, 1) for i in ids]  # nor asking again
    other_seed = bank(seed=8, transient_failure_rate=0.3, decline_rate=0.1)
    assert first != [other_seed.decide(i, 1) for i in ids]
    assert first != [a.decide(i, 2) for i in ids]  # each attempt rolls anew


def test_rates_are_honoured():
    sim = bank(seed=1, transient_failure_rate=0.2, decline_rate=0.1)
    results = [sim.decide(f"po_{i}", 1) for i in range(5000)]
    declined = sum(r.outcome is BankOutcome.FAILED and not r.retryable for r in results)
    transient = sum(r.retryable for r in results)
    paid = sum(r.outcome is BankOutcome.COMPLETED for r in results)
    assert declined + transient + paid == 5000
    assert 400 <= declined <= 600
    assert 850 <= transient <= 1150


def test_extreme_rates():
    assert all(bank().decide(f"po_{i}", 1).outcome is BankOutcome.COMPLETED for i in range(50))
    assert all(bank(decline_rate=1.0).decide(f"po_{i}", 1).code == "declined" for i in range(50))
    assert all(bank(transient_failure_rate=1.0).decide(f"po_{i}", 1).retryable for i in range(50))


def test_backoff_doubles():
    s = Settings(payout_retry_base_seconds=30)
    assert [backoff_seconds(s, n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_the_adapter_is_chosen_and_configured_from_the_environment(monkeypatch):
    monkeypatch.setenv("POTLUCK_BANK_ADAPTER", "simulated")
    monkeypatch.setenv("POTLUCK_BANK_SIM_LATENCY_MS", "25")
    monkeypatch.setenv("POTLUCK_BANK_SIM_TRANSIENT_FAILURE_RATE", "0.25")
    monkeypatch.setenv("POTLUCK_BANK_SIM_DECLINE_RATE", "0.05")
    monkeypatch.setenv("POTLUCK_BANK_SIM_SEED", "42")
    sim = make_bank_adapter(Settings(), None, FakeClock())
    assert isinstance(sim, SimulatedBank)
    assert (sim.latency_ms, sim.transient_failure_rate, sim.decline_rate, sim.seed) == (
        25,
        0.25,
        0.05,
        42,
    )


def test_rates_outside_zero_to_one_are_refused(monkeypatch):
    monkeypatch.setenv("POTLUCK_BANK_SIM_DECLINE_RATE", "1.5")
    with pytest.raises(ValidationError):
        Settings()
