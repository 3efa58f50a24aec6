"""The synthetic data set of the risk benchmark: seeded, labelled, every pattern present."""

from __future__ import annotations

from potluck.risk.synthetic import LEGIT, PATTERNS, generate


def test_the_same_seed_gives_the_same_data_set() -> None:
    a, b = generate(7, users=30, days=12), generate(7, users=30, days=12)
    assert a.payments == b.payments
    assert a.users == b.users
    assert generate(8, users=30, days=12).payments != a.payments


def test_every_pattern_is_labelled_and_payers_exist() -> None:
    data = generate(3, users=60, days=14, card_testing=2, account_takeover=2, mules=2)
    counts = data.counts()
    assert counts[LEGIT] > 100
    assert all(counts.get(p, 0) > 0 for p in PATTERNS)
    users = {u.id: u for u in data.users}
    assert all(p.payer_user_id in users for p in data.payments)
    assert all(users[p.payer_user_id].created_at <= p.at for p in data.payments)
    assert all(p.amount > 0 and isinstance(p.amount, int) for p in data.payments)
    assert [p.at for p in data.payments] == sorted(p.at for p in data.payments)
