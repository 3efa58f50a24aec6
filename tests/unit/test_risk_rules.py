"""The risk rules: pure functions over a payment and the payer's history (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from potluck.risk import rules
from potluck.risk.rules import PastPayment, PayerHistory, Payment, RiskParams

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)
PARAMS = RiskParams()


def pay(amount: int = 1_000, *, to: str = "user:usr_b", device: str | None = "d1") -> Payment:
    return Payment("usr_a", to, amount, "EUR", device, NOW)


def past(
    amount: int = 1_000,
    *,
    ago: timedelta = timedelta(days=3),
    to: str = "user:usr_b",
    outcome: str | None = "completed",
    device: str | None = "d1",
    currency: str = "EUR",
) -> PastPayment:
    return PastPayment(amount, currency, to, device, outcome, NOW - ago)


def history(*items: PastPayment, **kw: object) -> PayerHistory:
    ordered = sorted(items, key=lambda x: x.created_at, reverse=True)
    kw.setdefault("account_created_at", OLD)
    return PayerHistory(recent=ordered, **kw)  # type: ignore[arg-type]


def points(reasons: list[dict[str, object]]) -> int:
    return sum(int(r["points"]) for r in reasons)  # type: ignore[call-overload]


def test_percentile_is_nearest_rank() -> None:
    assert rules.percentile([1], 0.9) == 1
    assert rules.percentile(list(range(1, 11)), 0.9) == 9
    assert rules.percentile(list(range(1, 11)), 0.5) == 5


def test_amount_vs_history_compares_with_the_payers_p90() -> None:
    h = history(*(past(1_000 + i * 100, ago=timedelta(days=i + 1)) for i in range(10)))
    assert rules.amount_vs_history(pay(1_500), h, PARAMS) == []
    five = rules.amount_vs_history(pay(10_000), h, PARAMS)  # p90 1,800: > 5x
    assert [r["points"] for r in five] == [25]
    assert "p90 (1800)" in str(five[0]["detail"])
    assert [r["points"] for r in rules.amount_vs_history(pay(20_000), h, PARAMS)] == [40]


def test_amount_vs_history_ignores_failed_and_other_currencies() -> None:
    h = history(
        *(past(100_000, outcome="failed", ago=timedelta(days=i + 1)) for i in range(5)),
        *(past(100_000, currency="GBP", ago=timedelta(days=i + 1)) for i in range(5)),
        *(past(1_000, ago=timedelta(days=i + 1)) for i in range(5)),
    )
    assert rules.amount_vs_history(pay(10_000), h, PARAMS)[0]["points"] == 25


def test_a_first_large_payment_by_a_new_payer() -> None:
    assert rules.amount_vs_history(pay(PARAMS.large_amount - 1), history(), PARAMS) == []
    r = rules.amount_vs_history(pay(PARAMS.large_amount), history(), PARAMS)
    assert r[0]["rule"] == "amount_vs_history"
    assert r[0]["points"] == 25


def test_velocity_counts_this_payment_and_the_windows() -> None:
    four = history(*(past(ago=timedelta(minutes=i + 1)) for i in range(3)))
    assert rules.velocity(pay(), four, PARAMS) == []  # 4 in 10 minutes
    five = history(*(past(ago=timedelta(minutes=i + 1)) for i in range(4)))
    assert [(r["rule"], r["points"]) for r in rules.velocity(pay(), five, PARAMS)] == [
        ("velocity_10m", 20)
    ]
    ten = history(*(past(ago=timedelta(seconds=30 * (i + 1))) for i in range(9)))
    assert rules.velocity(pay(), ten, PARAMS)[0]["points"] == 35
    day = history(*(past(ago=timedelta(hours=i + 1)) for i in range(19)))
    assert [r["rule"] for r in rules.velocity(pay(), day, PARAMS)] == ["velocity_24h"]
    older = history(*(past(ago=timedelta(hours=25 + i)) for i in range(30)))
    assert rules.velocity(pay(), older, PARAMS) == []


def test_velocity_amount_in_a_day_leaves_out_failed_attempts() -> None:
    h = history(past(150_000, ago=timedelta(hours=2)))
    assert [r["rule"] for r in rules.velocity(pay(60_000), h, PARAMS)] == ["velocity_amount_24h"]
    failed = history(past(150_000, ago=timedelta(hours=2), outcome="failed"))
    assert rules.velocity(pay(60_000), failed, PARAMS) == []


def test_new_recipient_more_points_when_large() -> None:
    h = history(*(past(1_000, ago=timedelta(days=i + 1)) for i in range(5)))
    assert rules.new_recipient(pay(), history(paid_recipient_before=True), PARAMS) == []
    assert rules.new_recipient(pay(1_000), h, PARAMS)[0]["points"] == 5
    assert rules.new_recipient(pay(50_000), h, PARAMS)[0]["points"] == 25


def test_many_new_recipients_in_a_day() -> None:
    h = history(*(past(ago=timedelta(minutes=10 * (i + 1)), to=f"user:n{i}") for i in range(4)))
    r = rules.new_recipients_burst(pay(to="user:n9"), h, PARAMS)
    assert r[0]["rule"] == "new_recipients_24h"
    assert "5 new" in str(r[0]["detail"])
    # the same people paid before the day are not new
    known = history(
        *(past(ago=timedelta(minutes=10 * (i + 1)), to=f"user:n{i}") for i in range(4)),
        *(past(ago=timedelta(days=3), to=f"user:n{i}") for i in range(4)),
    )
    assert rules.new_recipients_burst(pay(to="user:n9"), known, PARAMS) == []


def test_account_age() -> None:
    young = history(account_created_at=NOW - timedelta(hours=3))
    week = history(account_created_at=NOW - timedelta(days=3))
    assert rules.account_age(pay(), young, PARAMS)[0]["points"] == 20
    assert rules.account_age(pay(), week, PARAMS)[0]["points"] == 10
    assert rules.account_age(pay(), history(), PARAMS) == []
    assert rules.account_age(pay(), PayerHistory(), PARAMS)[0]["points"] == 20  # unknown


def test_failed_attempts_in_the_window() -> None:
    def failures(n: int, outcome: str = "failed") -> PayerHistory:
        return history(*(past(outcome=outcome, ago=timedelta(minutes=i + 1)) for i in range(n)))

    assert rules.failed_attempts(pay(), failures(0), PARAMS) == []
    assert rules.failed_attempts(pay(), failures(1), PARAMS)[0]["points"] == 10
    assert rules.failed_attempts(pay(), failures(3, "blocked"), PARAMS)[0]["points"] == 30
    assert rules.failed_attempts(pay(), failures(6, "rejected"), PARAMS)[0]["points"] == 45
    stale = history(*(past(outcome="failed", ago=timedelta(hours=2)) for _ in range(5)))
    assert rules.failed_attempts(pay(), stale, PARAMS) == []
    in_review = history(*(past(outcome="in_review", ago=timedelta(minutes=1)) for _ in range(5)))
    assert rules.failed_attempts(pay(), in_review, PARAMS) == []


def test_new_device_only_once_the_payer_has_devices() -> None:
    h = history(*(past(device="d1", ago=timedelta(days=i + 1)) for i in range(5)))
    assert rules.new_device(pay(device="d1"), h, PARAMS) == []
    assert rules.new_device(pay(device=None), h, PARAMS) == []
    assert rules.new_device(pay(device="d2"), history(), PARAMS) == []
    assert rules.new_device(pay(device="d2"), h, PARAMS)[0]["points"] == 10
    assert rules.new_device(pay(50_000, device="d2"), h, PARAMS)[0]["points"] == 20


def test_dormant_account_paying_a_large_amount() -> None:
    quiet = history(past(1_000, ago=timedelta(days=45)))
    assert rules.dormant_account(pay(60_000), quiet, PARAMS)[0]["rule"] == "dormant_account"
    assert rules.dormant_account(pay(1_000), quiet, PARAMS) == []
    active = history(past(1_000, ago=timedelta(days=2)))
    assert rules.dormant_account(pay(60_000), active, PARAMS) == []


def test_pass_through_money_mule() -> None:
    h = history(inbound_senders_24h=PARAMS.fan_in_senders, inbound_amount_24h=100_000)
    assert rules.pass_through(pay(10_000), h, PARAMS)[0]["points"] == 35
    assert rules.pass_through(pay(), history(inbound_senders_24h=1), PARAMS) == []
    paid = history(inbound_senders_24h=9, paid_recipient_before=True)
    assert rules.pass_through(pay(), paid, PARAMS) == []
    assert rules.pass_through(pay(10_000, to="party:pty_shop"), h, PARAMS) == []  # a purchase
    # most of what came in leaves again within the day
    drained = history(
        past(30_000, ago=timedelta(minutes=20), to="user:x"),
        inbound_senders_24h=5,
        inbound_amount_24h=100_000,
    )
    r = rules.pass_through(pay(25_000), drained, PARAMS)
    assert r[0]["points"] == 50
    assert "55000 of the 100000" in str(r[0]["detail"])


def test_recipient_fan_in() -> None:
    many = history(recipient_senders_24h=PARAMS.fan_in_senders)
    assert rules.recipient_fan_in(pay(), many, PARAMS)[0]["points"] == 25
    few = history(recipient_senders_24h=PARAMS.fan_in_senders - 1)
    assert rules.recipient_fan_in(pay(), few, PARAMS) == []
    known = history(recipient_senders_24h=9, paid_recipient_before=True)
    assert rules.recipient_fan_in(pay(), known, PARAMS) == []


def test_blocklist_blocks_whatever_the_score() -> None:
    h = history(
        *(past(ago=timedelta(days=i + 1)) for i in range(5)),
        paid_recipient_before=True,
        blocklist_hits=[("device", "d1", "stolen phone")],
    )
    a = rules.assess(pay(), h, PARAMS)
    assert a.action == "block"
    assert a.score == 100
    assert a.reasons == [
        {"rule": "blocklist", "points": 100, "detail": "device d1 is blocklisted: stolen phone"}
    ]


def test_assess_sums_caps_and_decides() -> None:
    known = history(
        *(past(1_000, ago=timedelta(days=i + 1)) for i in range(10)), paid_recipient_before=True
    )
    assert rules.assess(pay(1_000), known, PARAMS) == rules.Assessment(0, "allow", [])
    # card testing: a new account, many attempts, most failed
    burst = history(
        *(past(100, outcome="failed", ago=timedelta(seconds=40 * (i + 1))) for i in range(12)),
        account_created_at=NOW - timedelta(hours=2),
    )
    a = rules.assess(pay(100), burst, PARAMS)
    assert a.action == "block"
    assert a.score == 100
    assert sum(int(r["points"]) for r in a.reasons) > 100  # capped
    assert {r["rule"] for r in a.reasons} >= {"velocity_10m", "failed_attempts", "account_age"}


def test_decide_thresholds() -> None:
    assert rules.decide(49, PARAMS) == "allow"
    assert rules.decide(50, PARAMS) == "review"
    assert rules.decide(80, PARAMS) == "block"
    assert rules.decide(0, PARAMS, blocked=True) == "block"


def test_params_from_settings() -> None:
    from potluck.config import Settings

    p = RiskParams.from_settings(Settings(risk_review_threshold=40, risk_block_threshold=70))
    assert (p.review_threshold, p.block_threshold) == (40, 70)
    assert p.large_amount == Settings().risk_large_amount
