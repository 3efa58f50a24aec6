"""The plain-language parser: its corpus (accuracy, latency) and the rules one by one."""

from __future__ import annotations

import json
import statistics
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.nlp.parser import MemberRef, ParseError, Proposal, owed, parse_expense

CORPUS = json.loads((Path(__file__).parent.parent / "data" / "nlp_corpus.json").read_text())
# The accuracy reached when the corpus was written; a change to the parser must not lower it.
MIN_ACCURACY = 1.0


def _context(name: str) -> dict:
    ctx = CORPUS["contexts"][name]
    return {
        "members": [MemberRef(m["id"], m["name"], m["email"]) for m in ctx["members"]],
        "me": ctx["me"],
        "today": date.fromisoformat(ctx["today"]),
        "currency": ctx["currency"],
    }


def _check(phrase: dict) -> str | None:
    """None when the parser's reading matches the expected one, else what differs."""
    ctx = _context(phrase["context"])
    expect = phrase["expect"]
    try:
        p = parse_expense(phrase["text"], **ctx)
    except ParseError as e:
        refused = (e.code, e.status, bool(e.message))
        if refused != ("cannot_parse", 422, True):
            return f"refused wrongly: {refused}"
        return None if "error" in expect else f"refused: {e.message}"
    if "error" in expect:
        return f"accepted, expected a refusal ({expect['why']})"
    ids = [m.id for m in ctx["members"]]
    shares = dict(owed(p, ids))
    got = {
        "amount": p.amount,
        "currency": p.currency,
        "paid_by": dict(p.paid_by),
        "owed": shares,
        "method": p.split.method,
        "category": p.category,
        "date": p.date.isoformat(),
    }
    diff = {k: (got[k], v) for k, v in expect.items() if got[k] != v}
    return None if not diff else f"got/expected {diff}"


def test_corpus_has_enough_phrases():
    assert len(CORPUS["phrases"]) >= 150
    refusals = [p for p in CORPUS["phrases"] if "error" in p["expect"]]
    assert len(refusals) >= 20


def test_corpus_accuracy_and_latency(capsys):
    failures = []
    timings = []
    for phrase in CORPUS["phrases"]:
        start = time.perf_counter()
        problem = _check(phrase)
        timings.append(time.perf_counter() - start)
        if problem:
            failures.append(f"{phrase['text']!r}: {problem}")
    total = len(CORPUS["phrases"])
    accuracy = (total - len(failures)) / total
    timings.sort()
    with capsys.disabled():
        print(
            f"\nnlp corpus: {total - len(failures)}/{total} = {accuracy:.1%}; parse latency "
            f"p50 {statistics.median(timings) * 1000:.2f} ms, "
            f"p99 {timings[int(len(timings) * 0.99)] * 1000:.2f} ms"
        )
        for f in failures:
            print("  miss:", f)
    assert accuracy >= MIN_ACCURACY, "\n".join(failures)


FLAT = _context("flat")
IDS = [m.id for m in FLAT["members"]]


def parse(text: str, **over) -> Proposal:
    return parse_expense(text, **{**FLAT, **over})


def test_the_issue_example():
    p = parse("I paid 90 for dinner with Bob and Ann, Bob had wine for 20")
    assert (p.amount, p.currency, p.category) == (9000, "EUR", "food")
    assert p.description == "Dinner"
    assert p.paid_by == [("mbr_alex", 9000)]
    assert p.split.method == "itemized"
    assert owed(p, IDS) == [("mbr_alex", 2334), ("mbr_bob", 4333), ("mbr_ann", 2333)]
    assert sum(a for _, a in owed(p, IDS)) == p.amount


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("$12.50 taxi", 1250, "USD"),
        ("12,50 € taxi", 1250, "EUR"),
        ("₹500 taxi", 50000, "INR"),
        ("INR 500 taxi", 50000, "INR"),
        ("1.234,56 EUR taxi", 123456, "EUR"),
        ("1,234.56 EUR taxi", 123456, "EUR"),
        ("90 taxi", 9000, "EUR"),
        ("¥3000 taxi", 3000, "JPY"),
        ("JPY 3,000 taxi", 3000, "JPY"),
        ("KWD 1.250 taxi", 1250, "KWD"),
        ("2.5k rent", 250000, "EUR"),
    ],
)
def test_amounts_with_symbols_and_codes(text, amount, currency):
    p = parse(text)
    assert (p.amount, p.currency) == (amount, currency)
    if currency != "EUR":
        assert any(currency in w for w in p.warnings)


def test_dollar_sign_is_the_groups_dollar():
    assert parse("$10 taxi", currency="CAD").currency == "CAD"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("taxi 30 with Zed", "Zed"),
        ("I paid for dinner with Bob", "no amount"),
        ("Bob owes 30% and Ann owes 80% of 100", "100 %"),
        ("Bob owes 60, Ann owes 60, dinner 100 for Bob and Ann", "over"),
        ("12.5055 EUR taxi", "decimal"),
    ],
)
def test_refusals_say_what_is_wrong(text, needle):
    with pytest.raises(ParseError) as e:
        parse(text)
    assert (e.value.code, e.value.status) == ("cannot_parse", 422)
    assert needle in e.value.message


def test_ambiguous_prefix_names_the_candidates():
    members = [MemberRef("m1", "Me"), MemberRef("m2", "Sam"), MemberRef("m3", "Sara")]
    with pytest.raises(ParseError) as e:
        parse("taxi 30 with Sa", members=members, me="m1")
    assert "Sam" in e.value.message
    assert "Sara" in e.value.message


def test_unique_prefix_and_full_name():
    members = [MemberRef("m1", "Me"), MemberRef("m2", "Samuel Jones"), MemberRef("m3", "Sara")]
    p = parse("taxi 30 with Samu", members=members, me="m1")
    assert owed(p, ["m1", "m2", "m3"]) == [("m1", 1500), ("m2", 1500)]
    p = parse("taxi 30 with samuel jones", members=members, me="m1")
    assert [m for m, _ in owed(p, ["m1", "m2", "m3"])] == ["m1", "m2"]


def test_lowercase_words_are_not_name_prefixes():
    members = [MemberRef("m1", "Me"), MemberRef("m2", "Carla"), MemberRef("m3", "Bob")]
    p = parse("Car rental 90 with Bob", members=members, me="m1")
    assert [m for m, _ in owed(p, ["m1", "m2", "m3"])] == ["m1", "m3"]


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("taxi 10 yesterday", date(2026, 11, 20)),
        ("taxi 10 on 3 May", date(2026, 5, 3)),
        ("taxi 10 on 30 December", date(2025, 12, 30)),  # the last one, not a future date
        ("taxi 10 last Friday", date(2026, 11, 20)),
        ("taxi 10 last Saturday", date(2026, 11, 14)),  # today is a Saturday
        ("taxi 10", date(2026, 11, 21)),
    ],
)
def test_dates(text, day):
    assert parse(text).date == day


@pytest.mark.parametrize(
    ("word", "category"),
    [("taxi", "transport"), ("dinner", "food"), ("rent", "housing"), ("hotel", "travel")],
)
def test_categories_from_words(word, category):
    assert parse(f"{word} 40").category == category


def test_everyone_and_all_but():
    assert [m for m, _ in owed(parse("rent 90, all but Carl"), IDS)] == IDS[:3]
    assert [m for m, _ in owed(parse("rent 80 for everyone"), IDS)] == IDS


def test_percent_rest_goes_evenly_to_the_others():
    p = parse("Bob owes 30% of 100")
    assert dict(owed(p, IDS)) == {
        "mbr_alex": 2334,
        "mbr_bob": 3000,
        "mbr_ann": 2333,
        "mbr_carl": 2333,
    }


def test_shares_always_sum_to_the_amount():
    for phrase in CORPUS["phrases"]:
        if "error" in phrase["expect"]:
            continue
        ctx = _context(phrase["context"])
        try:
            p = parse_expense(phrase["text"], **ctx)
        except ParseError:
            continue
        ids = [m.id for m in ctx["members"]]
        assert sum(a for _, a in owed(p, ids)) == p.amount
        assert sum(a for _, a in p.paid_by) == p.amount
        assert all(isinstance(a, int) for _, a in p.paid_by)


# --- properties --------------------------------------------------------------------------

_WORDS = [
    "I",
    "me",
    "my",
    "Bob",
    "Ann",
    "Carl",
    "Alex",
    "Zed",
    "May",
    "Will",
    "paid",
    "had",
    "for",
    "with",
    "and",
    ",",
    ";",
    ":",
    "the",
    "rest",
    "evenly",
    "split",
    "between",
    "everyone",
    "all",
    "but",
    "except",
    "90",
    "12.50",
    "1.234,56",
    "€",
    "$",
    "₹",
    "INR",
    "EUR",
    "JPY",
    "%",
    "30%",
    "2:1:1",
    "double",
    "yesterday",
    "on",
    "3",
    "May",
    "last",
    "Friday",
    "owes",
    "pays",
    "x2",
    "2",
    "shares",
    "dinner",
    "taxi",
    "rent",
    "0",
    "-5",
    "1e5",
    "each",
    "ways",
    "999999999999999999",
    "12,5",
    "doesn't",
    "M1",
    "A0",
    "U0",
    "R0",
    "P0",
    "W0",
    ".",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(["May", "Will", "Al", "I", "O'Neil", "Jean-Luc"]), st.text()),
        min_size=1,
        max_size=4,
    ),
    st.one_of(st.lists(st.sampled_from(_WORDS), max_size=20).map(" ".join), st.text()),
)
def test_any_text_is_a_balanced_proposal_or_cannot_parse(names, text):
    """Never a crash: a proposal whose payers and shares sum to its amount, or ParseError."""
    members = [MemberRef("me", "Alex Kim")] + [MemberRef(f"m{i}", n) for i, n in enumerate(names)]
    ids = [m.id for m in members]
    try:
        p = parse_expense(text, members=members, me="me", today=date(2026, 11, 21), currency="EUR")
    except ParseError:
        return
    assert p.amount > 0
    assert sum(a for _, a in p.paid_by) == p.amount
    assert sum(a for _, a in owed(p, ids)) == p.amount


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**9),
    st.lists(st.sampled_from(["Bob", "Ann", "Carl"]), min_size=1, max_size=3, unique=True),
)
def test_with_names_splits_equally_among_them_and_me(cents, names):
    whole, frac = divmod(cents, 100)
    text = f"I paid {whole}.{frac:02d} for dinner with {', '.join(names)}"
    p = parse(text)
    assert p.amount == cents
    shares = dict(owed(p, IDS))
    wanted = {"mbr_alex", *(f"mbr_{n.lower()}" for n in names)}
    assert set(shares) == wanted or (cents < len(wanted) and set(shares) <= wanted)
    assert max(shares.values()) - min(shares.values()) <= 1
    assert sum(shares.values()) == cents


def test_placeholder_shaped_words_in_the_text_are_words():
    p = parse("room A0 M1 taxi 30 with Bob")
    assert p.amount == 3000
    assert dict(owed(p, IDS)) == {"mbr_alex": 1500, "mbr_bob": 1500}
