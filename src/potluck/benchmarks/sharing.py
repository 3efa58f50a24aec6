"""Sharing: the pure parts that issue 4 gives speed goals for (no database).

- simplify: ``simplify_debts`` on 15 non-zero balances (the exact search's limit; random large
  amounts, and small amounts with many zero-sum subsets) and on 10,000 balances (greedy);
- parse: ``parse_expense`` latency (p50, p99) over a fixed set of phrases.

``potluck bench sharing`` (``bench/run_sharing.sh``) prints them; figures in docs/benchmarks.md.
The database-backed figures of issue 4 (balances and settle-up for 200 × 100,000 expenses, the
IHateMoney comparison) are not measured yet.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

from potluck.nlp.parser import MemberRef, parse_expense
from potluck.sharing.simplify import simplify_debts

MEMBERS = [
    MemberRef("mbr_alex", "Alex Kim", "alex@x.com"),
    MemberRef("mbr_bob", "Bob Smith", "bob@x.com"),
    MemberRef("mbr_ann", "Ann Lee", "ann@x.com"),
    MemberRef("mbr_carl", "Carl Diaz", "carl@x.com"),
]
PHRASES = [
    "I paid 90 for dinner with Bob and Ann, Bob had wine for 20",
    "Bob paid 45.50 for the taxi, split evenly",
    "groceries 62,40 € split between me and Ann",
    "Ann paid $120 for the hotel, Carl pays double",
    "I paid 300 for rent, everyone",
    "lunch 48 with all but Carl",
    "Carl paid 75 for concert tickets, Bob owes 30%",
    "I paid 1.234,56 EUR for the flights, split evenly",
    "Bob paid 60 for pizza yesterday with Ann and me",
    "taxi 23 paid by Ann for me and Bob",
    "I paid 40 for drinks, Bob had the steak for 25 and the rest evenly",
    "Ann paid 90 for groceries on 3 May, split 2:1:1 between Ann, Bob and me",
]


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)


def _balances(rng: random.Random, n: int, low: int, high: int) -> dict[str, int]:
    values = [rng.choice((-1, 1)) * rng.randint(low, high) for _ in range(n - 1)]
    values.append(-sum(values))
    return {f"p{i:05d}": v for i, v in enumerate(values)}


def run(*, seed: int = 15, runs: int = 20) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    cases = [
        ("simplify, 15 non-zero balances, amounts up to 10^6", _balances(rng, 15, 1, 10**6)),
        ("simplify, 15 non-zero balances, amounts 1..7", _balances(rng, 15, 1, 7)),
        ("simplify, 10,000 balances", _balances(rng, 10_000, 1, 10**7)),
    ]
    for name, balances in cases:
        times = _timed(partial(simplify_debts, balances), runs)
        payments = len(simplify_debts(balances))
        rows.append(
            {
                "scenario": name,
                "p50_ms": round(statistics.median(times) * 1000, 2),
                "max_ms": round(times[-1] * 1000, 2),
                "note": f"{payments} payments",
            }
        )
    today = date(2026, 11, 21)
    latencies: list[float] = []
    for _ in range(runs):
        for text in PHRASES:
            start = time.perf_counter()
            parse_expense(text, members=MEMBERS, me="mbr_alex", today=today, currency="EUR")
            latencies.append(time.perf_counter() - start)
    latencies.sort()
    rows.append(
        {
            "scenario": f"parse, {len(PHRASES)} phrases × {runs}",
            "p50_ms": round(statistics.median(latencies) * 1000, 3),
            "max_ms": round(latencies[-1] * 1000, 3),
            "note": f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.3f} ms",
        }
    )
    return rows
