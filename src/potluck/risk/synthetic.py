"""A seeded synthetic data set of wallet payments, each labelled legit or fraud, to measure
the risk rules (``potluck bench risk``; docs/benchmarks.md "Risk scoring").

Normal people pay friends and merchants they already know, at their own rhythm and around
their own typical amount, with the things real people do that look odd: a big payment now and
then (rent, a holiday), a new friend or shop, splitting a bill among several people within
minutes, a host collecting money from several friends and paying a shop the total (before or
after collecting), a new phone, a payment that fails for want of funds and is retried. Three fraud
patterns are injected on top:

- ``card_testing``: an account opened hours earlier fires many tiny payments to one to three
  accomplices a minute or less apart; most fail; a few larger cash-outs follow.
- ``account_takeover``: an old, quiet account suddenly sends large amounts to people it has
  never paid, from a device it has never used, within an hour or two.
- ``mule_fan_in`` / ``mule_fan_out``: a young account is paid by many people (scam victims
  paying someone they have never paid, often more than they usually pay) and within hours
  pays the money on to several new recipients, minutes apart.

The generator knows nothing about the rules; its parameters describe behaviour, not scores.
Everything is a function of the seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

START = datetime(2026, 1, 1, tzinfo=UTC)
CURRENCY = "EUR"

LEGIT = "legit"
PATTERNS = ("card_testing", "account_takeover", "mule_fan_in", "mule_fan_out")


@dataclass(frozen=True, slots=True)
class SyntheticUser:
    id: str
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SyntheticPayment:
    at: datetime
    payer_user_id: str
    recipient: str  # user:<id> | party:<id>
    amount: int  # minor units
    currency: str
    device_id: str | None
    succeeds: bool  # whether the money would move if the payment were allowed
    pattern: str  # "legit" or one of PATTERNS

    @property
    def fraud(self) -> bool:
        return self.pattern != LEGIT


@dataclass
class Dataset:
    seed: int
    start: datetime
    end: datetime
    users: list[SyntheticUser] = field(default_factory=list)
    payments: list[SyntheticPayment] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.payments:
            out[p.pattern] = out.get(p.pattern, 0) + 1
        return out


@dataclass
class _Person:
    user: SyntheticUser
    rate_per_day: float
    median: int
    contacts: list[str]
    device: str
    devices_used: int = 1


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _daytime(rng: random.Random, day: datetime) -> datetime:
    """A moment of ``day`` when people are awake (7:00 to midnight, evenings busier)."""
    hour = min(23.99, max(7.0, rng.triangular(7.0, 24.0, 19.0)))
    return day.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hour)


def generate(
    seed: int = 2,
    *,
    users: int = 400,
    days: int = 28,
    merchants: int = 40,
    card_testing: int = 12,
    account_takeover: int = 12,
    mules: int = 8,
) -> Dataset:
    """The data set for ``seed``: ``users`` normal people over ``days`` days, then the fraud."""
    rng = random.Random(seed)
    end = START + timedelta(days=days)
    data = Dataset(seed=seed, start=START, end=end)
    shops = [f"party:pty_shop{i:03d}" for i in range(merchants)]
    people: list[_Person] = []
    for i in range(users):
        if rng.random() < 0.12:  # joined during the window
            created = START + timedelta(days=rng.uniform(0, days - 2))
        else:
            created = START - timedelta(days=rng.uniform(20, 1200))
        uid = f"usr_syn{seed}u{i:05d}"
        user = SyntheticUser(uid, f"{uid}@example.com", created)
        data.users.append(user)
        people.append(
            _Person(
                user=user,
                rate_per_day=min(3.5, max(0.04, _lognormal(rng, 0.4, 0.9))),
                median=int(min(40_000, max(300, _lognormal(rng, 2_500, 0.7)))),
                contacts=[],
                device=f"dev-{uid}-0",
            )
        )
    for person in people:
        friends = rng.sample(people, k=rng.randint(2, 8))
        person.contacts = [f"user:{f.user.id}" for f in friends if f is not person]
        person.contacts += rng.sample(shops, k=rng.randint(1, 4))
    for person in people:
        data.payments.extend(_normal_payments(rng, person, people, shops, end))
    by_id = {p.user.id: p for p in people}
    for person in people:
        data.payments.extend(_collections(rng, person, by_id, shops, end))
    fresh = _FreshAccounts(seed, data)
    for k in range(card_testing):
        data.payments.extend(_card_testing(rng, k, fresh, end))
    quiet = sorted(
        (p for p in people if p.user.created_at < START - timedelta(days=60)),
        key=lambda p: p.rate_per_day,
    )[: max(account_takeover * 3, 1)]
    for k, victim in enumerate(rng.sample(quiet, k=min(account_takeover, len(quiet)))):
        data.payments.extend(_account_takeover(rng, k, victim, fresh, end))
    for k in range(mules):
        data.payments.extend(_mule(rng, k, people, fresh, end))
    data.payments.sort(key=lambda p: (p.at, p.payer_user_id))
    return data


def _normal_payments(
    rng: random.Random,
    person: _Person,
    people: list[_Person],
    shops: list[str],
    end: datetime,
) -> list[SyntheticPayment]:
    out: list[SyntheticPayment] = []
    begin = max(START, person.user.created_at + timedelta(hours=rng.uniform(0.2, 48)))
    day = begin.replace(hour=0, minute=0, second=0, microsecond=0)
    uid = person.user.id
    while day < end:
        n = _poisson(rng, person.rate_per_day)
        for _ in range(n):
            at = _daytime(rng, day)
            if at < begin or at >= end:
                continue
            if rng.random() < 0.01:  # a new phone
                person.device = f"dev-{uid}-{person.devices_used}"
                person.devices_used += 1
            if rng.random() < 0.05:  # splitting a bill: several people within minutes
                share = int(_lognormal(rng, person.median * 1.5, 0.3))
                for j in range(rng.randint(2, 5)):
                    to = _recipient(rng, person, people, shops, new_p=0.3)
                    out.append(
                        SyntheticPayment(
                            at + timedelta(seconds=rng.uniform(20, 120) * (j + 1)),
                            uid,
                            to,
                            max(100, share),
                            CURRENCY,
                            person.device,
                            rng.random() > 0.02,
                            LEGIT,
                        )
                    )
                continue
            amount = _lognormal(rng, person.median, 0.5)
            if rng.random() < 0.03:  # rent, a holiday, a second-hand car
                amount *= rng.uniform(4, 15)
            to = _recipient(rng, person, people, shops, new_p=0.12)
            succeeds = rng.random() > 0.03
            out.append(
                SyntheticPayment(
                    at, uid, to, max(100, int(amount)), CURRENCY, person.device, succeeds, LEGIT
                )
            )
            if not succeeds and rng.random() < 0.7:  # tops up and retries
                out.append(
                    SyntheticPayment(
                        at + timedelta(minutes=rng.uniform(1, 30)),
                        uid,
                        to,
                        max(100, int(amount)),
                        CURRENCY,
                        person.device,
                        rng.random() < 0.8,
                        LEGIT,
                    )
                )
        day += timedelta(days=1)
    return [p for p in out if p.at < end]


def _collections(
    rng: random.Random,
    host: _Person,
    by_id: dict[str, _Person],
    shops: list[str],
    end: datetime,
) -> list[SyntheticPayment]:
    """A host collects money from several friends (a group gift, a shared holiday, a dinner)
    and pays a shop the total: before the friends pay them back, or after collecting."""
    out: list[SyntheticPayment] = []
    friends = [by_id[c[5:]] for c in host.contacts if c.startswith("user:") and c[5:] in by_id]
    begin = max(START, host.user.created_at + timedelta(days=2))
    if len(friends) < 2 or begin >= end:
        return out
    day = begin.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        if rng.random() < host.rate_per_day * 0.02:
            at = _daytime(rng, day)
            payers = rng.sample(friends, k=min(len(friends), rng.randint(2, 6)))
            share = max(500, int(_lognormal(rng, 3_000, 0.6)))
            paid = 0
            for f in payers:
                if f.user.created_at >= at:
                    continue
                t = at + timedelta(minutes=rng.uniform(2, 180))
                out.append(
                    SyntheticPayment(
                        t, f.user.id, f"user:{host.user.id}", share, CURRENCY, f.device, True, LEGIT
                    )
                )
                paid += share
            shop = rng.choice(shops) if rng.random() < 0.5 else rng.choice(host.contacts)
            when = (
                at - timedelta(minutes=rng.uniform(5, 120))
                if rng.random() < 0.5
                else at + timedelta(hours=rng.uniform(3.1, 8))
            )
            if paid and when >= begin:
                out.append(
                    SyntheticPayment(
                        when, host.user.id, shop, paid + share, CURRENCY, host.device, True, LEGIT
                    )
                )
        day += timedelta(days=1)
    return [p for p in out if p.at < end]


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _recipient(
    rng: random.Random, person: _Person, people: list[_Person], shops: list[str], *, new_p: float
) -> str:
    if not person.contacts or rng.random() < new_p:
        new = rng.choice(shops) if rng.random() < 0.5 else f"user:{rng.choice(people).user.id}"
        if new != f"user:{person.user.id}":
            person.contacts.append(new)
            return new
    # people pay a few contacts most of the time (Zipf-like)
    weights = [1.0 / (i + 1) for i in range(len(person.contacts))]
    return rng.choices(person.contacts, weights=weights)[0]


class _FreshAccounts:
    """Accounts the fraudsters open (fraud payers and their accomplices)."""

    def __init__(self, seed: int, data: Dataset) -> None:
        self.seed, self.data, self.n = seed, data, 0

    def new(self, created_at: datetime, *, register: bool = True) -> str:
        self.n += 1
        uid = f"usr_syn{self.seed}f{self.n:05d}"
        if register:
            self.data.users.append(SyntheticUser(uid, f"{uid}@example.net", created_at))
        return uid


def _card_testing(
    rng: random.Random, k: int, fresh: _FreshAccounts, end: datetime
) -> list[SyntheticPayment]:
    at = START + timedelta(days=rng.uniform(7, (end - START).days - 1))
    payer = fresh.new(at - timedelta(hours=rng.uniform(0.2, 36)))
    accomplices = [f"user:{fresh.new(at, register=False)}" for _ in range(rng.randint(1, 3))]
    device = f"dev-ct-{fresh.seed}-{k}"
    out = []
    for _ in range(rng.randint(8, 30)):
        at += timedelta(seconds=rng.uniform(15, 90))
        out.append(
            SyntheticPayment(
                at,
                payer,
                rng.choice(accomplices),
                rng.randint(50, 500),
                CURRENCY,
                device,
                rng.random() < 0.35,
                "card_testing",
            )
        )
    for _ in range(rng.randint(1, 3)):  # cash out what the working cards loaded
        at += timedelta(minutes=rng.uniform(2, 30))
        out.append(
            SyntheticPayment(
                at,
                payer,
                accomplices[0],
                rng.randint(3_000, 25_000),
                CURRENCY,
                device,
                rng.random() < 0.8,
                "card_testing",
            )
        )
    return out


def _account_takeover(
    rng: random.Random, k: int, victim: _Person, fresh: _FreshAccounts, end: datetime
) -> list[SyntheticPayment]:
    at = START + timedelta(days=rng.uniform(10, (end - START).days - 1))
    device = f"dev-ato-{fresh.seed}-{k}"
    takers = [f"user:{fresh.new(at, register=False)}" for _ in range(rng.randint(1, 2))]
    out = []
    for _ in range(rng.randint(2, 5)):
        at += timedelta(minutes=rng.uniform(3, 40))
        amount = max(15_000, int(victim.median * rng.uniform(6, 30)))
        out.append(
            SyntheticPayment(
                at,
                victim.user.id,
                rng.choice(takers),
                min(amount, 250_000),
                CURRENCY,
                device,
                rng.random() < 0.9,
                "account_takeover",
            )
        )
    return out


def _mule(
    rng: random.Random, k: int, people: list[_Person], fresh: _FreshAccounts, end: datetime
) -> list[SyntheticPayment]:
    cash_out = START + timedelta(days=rng.uniform(8, (end - START).days - 1))
    mule = fresh.new(cash_out - timedelta(days=rng.uniform(2, 30)))
    device = f"dev-mule-{fresh.seed}-{k}"
    out = []
    total = 0
    adults = [p for p in people if p.user.created_at < cash_out - timedelta(days=2)]
    for victim in rng.sample(adults, k=rng.randint(5, 12)):
        amount = int(max(2_000, victim.median * rng.uniform(1.5, 8)))
        amount = min(amount, 60_000)
        total += amount
        out.append(
            SyntheticPayment(
                cash_out - timedelta(hours=rng.uniform(0.2, 8)),
                victim.user.id,
                f"user:{mule}",
                amount,
                CURRENCY,
                victim.device,
                True,
                "mule_fan_in",
            )
        )
    outs = rng.randint(3, 8)
    at = cash_out
    for _ in range(outs):
        at += timedelta(minutes=rng.uniform(0.5, 12))
        out.append(
            SyntheticPayment(
                at,
                mule,
                f"user:{fresh.new(at, register=False)}",
                int(total * 0.9 / outs),
                CURRENCY,
                device,
                True,
                "mule_fan_out",
            )
        )
    return out
