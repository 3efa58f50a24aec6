"""The marketplace under real concurrency on PostgreSQL: threads released together by a
barrier, each in its own transaction."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from potluck.errors import DomainError
from potluck.marketplace import service
from potluck.splits import SplitRule, SplitRules
from tests.integration.test_marketplace_events import (
    even_split,
    record,
    setup_platform,
    totals,
)

pytestmark = pytest.mark.postgres_only


def race(n, fn):
    barrier = threading.Barrier(n)

    def call(i):
        barrier.wait()
        try:
            return fn(i)
        except DomainError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def test_concurrent_rule_changes_get_distinct_versions(potluck):
    platform_id, parties = setup_platform(potluck)

    def put(i):
        with potluck.db.transaction() as s:
            return service.put_split_rules(
                s,
                platform_id=platform_id,
                currency="EUR",
                split=SplitRules((SplitRule(parties[1], "percent", 100 + i),), parties[0]),
                now=potluck.clock.now(),
            ).version

    versions = race(8, put)
    assert sorted(versions) == list(range(1, 9))
    with potluck.db.read() as s:
        current = service.current_split_rules(s, platform_id=platform_id, currency="EUR")
    assert current.version == 8
    assert current.split.rules[0].value == 100 + versions.index(8)


def test_concurrent_identical_rule_changes_add_one_version(potluck):
    platform_id, parties = setup_platform(potluck)
    split = SplitRules((SplitRule(parties[1], "percent", 1000),), parties[0])

    def put(i):
        with potluck.db.transaction() as s:
            v = service.put_split_rules(
                s, platform_id=platform_id, currency="EUR", split=split, now=potluck.clock.now()
            )
            return v.id, v.version

    results = race(8, put)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert set(results) == {results[0]}
    assert results[0][1] == 1
    with potluck.db.read() as s:
        current = service.current_split_rules(s, platform_id=platform_id, currency="EUR")
    assert (current.id, current.version) == results[0]


def test_concurrent_refunds_never_exceed_the_order(potluck):
    platform_id, parties = setup_platform(potluck)
    order = record(potluck, platform_id, "refund-race", 10_000, even_split(parties))
    potluck.bus.drain()

    def refund(_):
        with potluck.db.transaction() as s:
            return service.refund_order(
                s, platform_id=platform_id, order_pk=order, amount=6_000, now=potluck.clock.now()
            ).amount

    results = race(2, refund)
    assert sorted(map(str, results)) == ["6000", "at most 4000 of this order is left to refund"]
    assert sum(totals(potluck, parties).values()) == 4_000
    with potluck.db.read() as s:
        shown = service.get_order(s, order, platform_id=platform_id)
    assert shown.refunded_amount == 6_000
    assert [r.amount for r in shown.refunds] == [6_000]
