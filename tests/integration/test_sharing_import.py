"""Importing a Splitwise CSV export (API and CLI) reproduces Splitwise's balances.

The fixture ``tests/data/splitwise/trip.csv`` is shaped like Splitwise's "Export as
spreadsheet" (see tests/data/splitwise/README.md for what the research found): five members,
36 rows in EUR, USD and GBP with payments and odd cents, three rows marked deleted, and the
final ``Total balance`` row per currency. The expected balances are computed here from the
CSV alone (its Total balance rows, and each row's cells), with this file's own arithmetic.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from potluck.api.app import create_app
from potluck.sharing.importer import CsvRowError, parse_splitwise, reconstruct
from potluck.sharing.models import Expense, SharingGroup
from tests.integration.test_sharing_api import (  # noqa: F401 (cheap_hashing: autouse)
    cheap_hashing,
    person,
    problem,
)

TRIP = Path(__file__).parent.parent / "data" / "splitwise" / "trip.csv"
NAMES = ["Ada Lovelace", "Bob Marley", "Chloé Dubois", "Dev Patel", "Eve"]
EMAILS = ["ada@example.com", "bob@example.com", "chloe@example.com", "dev@example.com"]
EMAILS.append("eve@example.com")
RATES = {"USD": "0.9213", "GBP": "1.1687"}  # 1 USD = 0.9213 EUR, 1 GBP = 1.1687 EUR


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def cents(text: str) -> int:
    """'−12.34' → −1234, from the text (no float)."""
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int(frac.ljust(2, "0")))


def read_csv(text: str) -> tuple[list[list[str]], dict[str, list[int]]]:
    """(expense and payment rows, not deleted; Total balance per currency)."""
    rows, totals = [], {}
    for r in list(csv.reader(text.splitlines()))[1:]:
        if not any(r):
            continue
        if r[1] == "Total balance":
            totals[r[4]] = [cents(v) for v in r[5:]]
        elif not r[1].startswith("(deleted)"):
            rows.append(r)
    return rows, totals


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    s = sum(weights)
    parts = [total * w // s for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % s), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def expected_eur(rows: list[list[str]], rates: dict[str, str]) -> list[int]:
    """Each member's EUR balance, row by row, by the documented rules: a foreign cost is
    converted once (half to even), what each payer paid and what each person owes are spread
    over it by largest remainder; payers = positive nets, owing their net-weighted part of
    cost − Σ positive nets; a payment is converted once."""
    out = [0] * len(NAMES)
    for r in rows:
        cost, cur, nets = cents(r[3]), r[4], [cents(v) for v in r[5:]]
        if cur == "EUR":
            out = [a + n for a, n in zip(out, nets, strict=True)]
            continue
        conv = int((Decimal(cost) * Decimal(rates[cur])).quantize(Decimal(1), ROUND_HALF_EVEN))
        if r[2] == "Payment":
            out = [a + (conv if n > 0 else -conv if n < 0 else 0) for a, n in zip(out, nets)]
            continue
        payers = [i for i, n in enumerate(nets) if n > 0]
        own = largest_remainder(cost - sum(nets[i] for i in payers), [nets[i] for i in payers])
        paid, owed = [0] * len(nets), [max(-n, 0) for n in nets]
        for i, o in zip(payers, own, strict=True):
            paid[i], owed[i] = nets[i] + o, o
        paid_idx = [i for i in range(len(nets)) if paid[i]]
        owed_idx = [i for i in range(len(nets)) if owed[i]]
        for i, v in zip(paid_idx, largest_remainder(conv, [paid[i] for i in paid_idx])):
            out[i] += v
        for i, v in zip(owed_idx, largest_remainder(conv, [owed[i] for i in owed_idx])):
            out[i] -= v
    return out


def import_body(text: str, **extra) -> dict:
    body = {
        "name": "Lisbon trip",
        "csv": text,
        "me": "Ada Lovelace",
        "members": dict(zip(NAMES[1:], EMAILS[1:], strict=True)),
        "currency": "EUR",
        "rates": RATES,
    }
    return body | extra


def balances_by_email(client, headers, group_id: str) -> dict[str, int]:
    group = client.get(f"/v1/groups/{group_id}", headers=headers).json()
    out = {m["email"]: m["balance"] for m in group["members"]}
    assert sum(out.values()) == 0
    return out


def test_import_reproduces_splitwise_balances_and_round_trips(potluck, client):
    _, ada = person(potluck, "ada")
    text = TRIP.read_text(encoding="utf-8")
    rows, totals = read_csv(text)
    assert len(rows) >= 30
    assert set(totals) == {"EUR", "GBP", "USD"}
    r = client.post("/v1/groups/import", json=import_body(text), headers=ada)
    assert r.status_code == 201, r.text
    body = r.json()
    payments = sum(1 for row in rows if row[2] == "Payment")
    assert body["imported"] == {
        "expenses": len(rows) - payments,
        "payments": payments,
        "skipped": 3,
    }
    assert body["group"]["currency"] == "EUR"
    # the file's Total balance rows agree with its rows (else a warning would say so)
    assert body["warnings"] == ["3 deleted row(s) skipped"]
    assert [m["email"] for m in body["group"]["members"]] == EMAILS
    gid = body["group"]["id"]
    got = balances_by_email(client, ada, gid)

    # 1. the rule, computed here from the CSV's cells: exact to the cent
    assert [got[e] for e in EMAILS] == expected_eur(rows, RATES)
    # 2. the CSV's own Total balance rows at the rates: equal up to per-row rounding
    for i, email in enumerate(EMAILS):
        exact = sum(Decimal(totals[c][i]) * Decimal(RATES.get(c, "1")) for c in totals)
        touching = sum(1 for row in rows if row[4] != "EUR" and cents(row[5 + i]) != 0)
        assert abs(got[email] - exact) <= 2 * touching, (email, got[email], exact)
    # 3. the EUR rows alone are exact against the EUR Total balance (no conversion)
    eur_only = [row for row in rows if row[4] == "EUR"]
    assert expected_eur(eur_only, RATES) == totals["EUR"]

    # round trip: export the imported group, re-import it → the same balances
    exported = client.get(f"/v1/groups/{gid}/export?format=csv", headers=ada)
    assert exported.status_code == 200
    again = client.post(
        "/v1/groups/import",
        json=import_body(exported.text, name="again", rates={}, me="ada"),
        headers=ada,
    )
    assert again.status_code == 201, again.text
    assert again.json()["imported"]["skipped"] == 0
    assert balances_by_email(client, ada, again.json()["group"]["id"]) == got


def test_bad_row_is_refused_with_its_line_and_nothing_is_created(potluck, client):
    _, ada = person(potluck, "ada")
    lines = TRIP.read_text(encoding="utf-8").splitlines()
    bad = lines.copy()
    bad[11] = bad[11].replace("-127.20,0.00", "-127.21,0.00")  # the row no longer sums to 0
    assert bad[11] != lines[11]
    r = client.post("/v1/groups/import", json=import_body("\n".join(bad)), headers=ada)
    body = problem(r, 422, "invalid_csv_row", "csv")
    assert body["line"] == 12
    assert "sum" in body["detail"]
    bad = lines.copy()
    bad[20] = "2026-02-30" + bad[20][10:]
    body = problem(
        client.post("/v1/groups/import", json=import_body("\n".join(bad)), headers=ada),
        422,
        "invalid_csv_row",
    )
    assert body["line"] == 21
    # a foreign currency without a rate (none given, none in the table)
    problem(
        client.post("/v1/groups/import", json=import_body("\n".join(lines), rates={}), headers=ada),
        422,
        "fx_rate_missing",
        "rates",
    )
    # a member column without an email: listed
    members = dict(zip(NAMES[1:3], EMAILS[1:3], strict=True))
    body = problem(
        client.post(
            "/v1/groups/import", json=import_body("\n".join(lines), members=members), headers=ada
        ),
        422,
        "unmapped_members",
        "members",
    )
    assert "Dev Patel" in body["detail"]
    assert "Eve" in body["detail"]
    problem(
        client.post("/v1/groups/import", json=import_body("\n".join(lines), me="Zed"), headers=ada),
        422,
        "unknown_member_column",
        "me",
    )
    with potluck.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SharingGroup)) == 0
        assert s.scalar(select(func.count()).select_from(Expense)) == 0


SMALL = """Date,Description,Catégorie,Cost,Devise,Ada,Bob
2026-05-01,Pizza,Dining out,21.01,EUR,10.50,-10.50

,Total balance,,,EUR,10.50,-10.50
"""


def test_multipart_upload_and_idempotency_key(potluck, client):
    _, ada = person(potluck, "ada")
    h = {**ada, "Idempotency-Key": "imp-1"}
    form = {"name": "Pizza night", "me": "Ada", "member": "Bob=bob@example.com"}
    files = {"file": ("export.csv", SMALL.encode(), "text/csv")}
    r1 = client.post("/v1/groups/import", data=form, files=files, headers=h)
    assert r1.status_code == 201, r1.text
    group = r1.json()["group"]
    assert {m["email"]: m["balance"] for m in group["members"]} == {
        "ada@example.com": 1050,
        "bob@example.com": -1050,
    }
    assert r1.json()["imported"] == {"expenses": 1, "payments": 0, "skipped": 0}
    assert r1.json()["warnings"] == []
    # a hand-edited Total balance row: imported from the rows, with a warning
    edited = SMALL.replace(",Total balance,,,EUR,10.50,", ",Total balance,,,EUR,9.50,")
    body = {"name": "x", "csv": edited, "me": "Ada", "members": {"Bob": "bob@example.com"}}
    r = client.post("/v1/groups/import", json=body, headers=ada)
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == [
        "the file's Total balance in EUR differs from the sum of its rows for Ada"
    ]
    # JSON, same key → replay of the first (no second group)
    body = {"name": "Pizza night", "csv": SMALL, "me": "Ada", "members": {"Bob": "b@x.org"}}
    r2 = client.post("/v1/groups/import", json=body, headers={**ada, "Idempotency-Key": "imp-2"})
    r3 = client.post("/v1/groups/import", json=body, headers={**ada, "Idempotency-Key": "imp-2"})
    assert r2.status_code == r3.status_code == 201
    assert r3.headers.get("Idempotent-Replayed") == "true"
    assert r2.json() == r3.json()
    assert len(client.get("/v1/groups", headers=ada).json()["data"]) == 3
    problem(
        client.post(
            "/v1/groups/import",
            content=b"{not json",
            headers={**ada, "Content-Type": "application/json"},
        ),
        422,
        "malformed_json",
    )


def test_cli_import_with_progress(potluck, monkeypatch):
    from potluck import cli

    person(potluck, "ada")
    monkeypatch.setattr("potluck.bootstrap.bootstrap", lambda *a, **k: potluck)
    args = ["import", "splitwise", str(TRIP), "--owner", "ada@example.com", "--name", "Trip"]
    for name, email in zip(NAMES[1:], EMAILS[1:], strict=True):
        args += ["--member", f"{name}={email}"]
    # no --me: the owner is the one column without --member
    for cur, rate in RATES.items():
        args += ["--rate", f"{cur}={rate}"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "skipped 3" in result.output
    rows, _ = read_csv(TRIP.read_text(encoding="utf-8"))
    with potluck.db.read() as s:
        (group,) = s.execute(select(SharingGroup)).scalars().all()
        assert group.name == "Trip"
        n = s.scalar(select(func.count()).select_from(Expense))
    assert n == sum(1 for r in rows if r[2] != "Payment")
    bad = CliRunner().invoke(cli.app, args[:7])  # no --member: whose column is whose?
    assert bad.exit_code == 1
    assert "unmapped_members" in bad.output
    bad = CliRunner().invoke(cli.app, [*args[:7], "--me", "Ada Lovelace"])
    assert bad.exit_code == 1
    assert "Bob Marley" in bad.output
    with potluck.db.read() as s:
        assert s.scalar(select(func.count()).select_from(SharingGroup)) == 1


# --- the pure parts (no database) ---


@given(
    nets=st.lists(st.integers(-(10**9), 10**9), min_size=2, max_size=8).filter(
        lambda n: any(v > 0 for v in n)
    ),
    extra=st.integers(0, 10**9),
)
@settings(max_examples=200, deadline=None)
def test_reconstruct_gives_back_the_nets(nets, extra):
    nets[-1] -= sum(nets)  # the row sums to zero
    if not any(v > 0 for v in nets):
        return
    cost = sum(v for v in nets if v > 0) + extra
    paid, owed = reconstruct(cost, tuple(nets))
    assert [p - o for p, o in zip(paid, owed, strict=True)] == nets
    assert sum(paid) == sum(owed) == cost
    assert min(paid + owed) >= 0
    assert all(p == 0 for p, n in zip(paid, nets, strict=True) if n <= 0)


def test_parse_reads_splitwise_variants():
    text = (
        "\ufeffDate,Description,Catégorie,Cost,Devise,Ana,Bo,,\n"
        '2026-01-02,"Tea, cakes",,3.00,eur,-1.50,1.50,,\n'
        "2026-01-03,(deleted) Oops,General,9.99,EUR,9.99,-9.99\n"
        "\n"
        ",Total balance,,,EUR,-1.50,1.50\n"
    )
    parsed = parse_splitwise(text)
    assert parsed.columns == ["Ana", "Bo"]
    assert parsed.deleted == 1
    (row,) = parsed.rows
    assert (row.line, row.description, row.category, row.currency) == (
        2,
        "Tea, cakes",
        "General",
        "EUR",
    )
    assert (row.cost, row.nets, row.payment) == (300, (-150, 150), False)
    assert parsed.totals == {"EUR": (-150, 150)}
    for bad, line, words in [
        ("Date,Description\n", 1, "header"),
        ("Date,Description,Category,Cost,Currency,A,a\n", 1, "two member columns"),
        (text.replace("3.00", "3.001"), 2, "decimal places"),
        (text.replace("3.00", "1.00"), 2, "more than the Cost"),
        (text.replace(",,3.00", ",Payment,2.00"), 2, "Payment"),
        (text.replace("eur", "EURO"), 2, "Currency"),
        (text.replace("1.50,,", "1.50,7,"), 2, "columns"),
    ]:
        with pytest.raises(CsvRowError) as exc:
            parse_splitwise(bad)
        assert exc.value.line == line, bad
        assert words in exc.value.message, exc.value.message
