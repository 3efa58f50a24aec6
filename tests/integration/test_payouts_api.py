"""Bank accounts and payouts over HTTP, on SQLite and PostgreSQL: validation, masking,
holds, Idempotency-Key replays, listing."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.payouts.models import BankAccount
from tests.integration.server_thread import ServerThread
from tests.integration.test_payouts_helpers import (
    DECLINED,
    IBAN,
    ScriptedBank,
    count,
    count_holds,
    count_payouts,
    fund,
    make_party,
    make_platform,
    wallet,
)


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


@pytest.fixture
def bank(potluck):
    b = ScriptedBank()
    potluck.bank = b
    return b


@pytest.fixture
def acme(potluck):
    return make_platform(potluck, "Acme")


@pytest.fixture
def shop(potluck, acme):
    """A funded party of Acme with a bank account: (headers, party, bank_account_id)."""
    pid, headers = acme
    party = make_party(potluck, pid)
    fund(potluck, pid, party, 100_000)
    return headers, party


def add_iban(client, headers, party_id, number=IBAN):
    body = {"holder_name": "Jane", "account_number": number, "routing": {"type": "iban"}}
    return client.post(f"/v1/parties/{party_id}/bank-accounts", json=body, headers=headers)


@pytest.fixture
def funded(client, shop):
    headers, party = shop
    r = add_iban(client, headers, party.id)
    assert r.status_code == 201, r.text
    return headers, party, r.json()["id"]


def keyed(headers, key=None):
    return {**headers, "Idempotency-Key": key or str(uuid.uuid4())}


def payout_body(party, bank_account, amount=40_000, currency="EUR"):
    return {"party": party.id, "bank_account": bank_account, "amount": amount, "currency": currency}


# --- bank accounts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "routing", "masked", "country"),
    [
        ("DE89 3704 0044 0532 0130 00", {"type": "iban"}, "••••3000", "DE"),
        ("gb29nwbk60161331926819", {"type": "iban", "value": "NWBKGB2L"}, "••••6819", "GB"),
        ("123456789012", {"type": "ifsc", "value": "HDFC0001234"}, "••••9012", "IN"),
        ("31926819", {"type": "sort_code", "value": "60-16-13"}, "••••6819", "GB"),
    ],
)
def test_bank_accounts_are_validated_and_only_shown_masked(
    client, shop, number, routing, masked, country
):
    headers, party = shop
    body = {"holder_name": "Jane Shop", "account_number": number, "routing": routing}
    r = client.post(f"/v1/parties/{party.id}/bank-accounts", json=body, headers=headers)
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["id"].startswith("ba_")
    assert account["party"] == party.id
    assert account["account_number"] == masked
    assert account["country"] == country
    listed = client.get(f"/v1/parties/{party.id}/bank-accounts", headers=headers)
    assert listed.status_code == 200
    assert listed.json() == {"data": [account], "has_more": False}
    digits = number.replace(" ", "").upper()
    for text in (r.text, listed.text):
        assert digits not in text
        assert digits[-8:] not in text  # nothing beyond the last four


@pytest.mark.parametrize(
    ("number", "routing", "field"),
    [
        ("DE88 3704 0044 0532 0130 00", {"type": "iban"}, "account_number"),  # checksum
        ("DE89 3704 0044 0532 0130 0", {"type": "iban"}, "account_number"),  # length
        ("ZZ89 3704 0044 0532 0130 00", {"type": "iban"}, "account_number"),  # no such country
        ("DE89370400440532013000", {"type": "iban", "value": "BAD"}, "routing.value"),
        ("123456789012", {"type": "ifsc", "value": "HDFC1001234"}, "routing.value"),
        ("12345678", {"type": "ifsc", "value": "HDFC0001234"}, "account_number"),  # 8 digits
        ("1234567890123456789", {"type": "ifsc", "value": "HDFC0001234"}, "account_number"),
        ("12345678", {"type": "ifsc"}, "routing.value"),
        ("3192681", {"type": "sort_code", "value": "601613"}, "account_number"),
        ("31926819", {"type": "sort_code", "value": "60161"}, "routing.value"),
        ("31926819", {"type": "swift", "value": "601613"}, "routing.type"),
    ],
)
def test_invalid_bank_accounts_are_422_naming_the_field_and_store_nothing(
    client, potluck, shop, number, routing, field
):
    headers, party = shop
    body = {"holder_name": "Jane", "account_number": number, "routing": routing}
    r = client.post(f"/v1/parties/{party.id}/bank-accounts", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert any(e["field"].endswith(field) for e in problem["errors"]), problem
    assert count(potluck, BankAccount) == 0


def test_another_platforms_party_is_404(client, potluck, shop):
    _, party = shop
    _, other = make_platform(potluck, "Other")
    assert add_iban(client, other, party.id).status_code == 404
    r = client.get(f"/v1/parties/{party.id}/bank-accounts", headers=other)
    assert r.status_code == 404
    assert count(potluck, BankAccount) == 0


# --- payouts ----------------------------------------------------------------------------


def test_a_payout_is_created_pending_with_a_hold(client, potluck, funded):
    headers, party, ba = funded
    r = client.post("/v1/payouts", json=payout_body(party, ba), headers=keyed(headers))
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["id"].startswith("po_")
    assert (p["status"], p["amount"], p["currency"], p["attempts"]) == ("pending", 40_000, "EUR", 0)
    assert [h["status"] for h in p["history"]] == ["pending"]
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)
    assert client.get(f"/v1/payouts/{p['id']}", headers=headers).json() == p


def test_the_payout_lifecycle_shows_in_its_history(client, potluck, funded, bank):
    headers, party, ba = funded
    ok = client.post("/v1/payouts", json=payout_body(party, ba), headers=keyed(headers)).json()
    potluck.bus.drain()
    done = client.get(f"/v1/payouts/{ok['id']}", headers=headers).json()
    assert done["status"] == "completed"
    assert [h["status"] for h in done["history"]] == ["pending", "processing", "completed"]
    assert done["attempts"] == 1
    assert wallet(potluck, party) == (60_000, 0, 60_000)

    second = client.post(
        "/v1/payouts", json=payout_body(party, ba, 10_000), headers=keyed(headers)
    ).json()
    bank.script(second["id"], DECLINED)
    potluck.bus.drain()
    failed = client.get(f"/v1/payouts/{second['id']}", headers=headers).json()
    assert failed["status"] == "failed"
    assert failed["history"][-1]["reason"].startswith("declined")
    assert wallet(potluck, party) == (60_000, 0, 60_000)


def test_insufficient_funds_is_402_and_leaves_nothing_behind(client, potluck, funded):
    headers, party, ba = funded
    r = client.post("/v1/payouts", json=payout_body(party, ba, 100_001), headers=keyed(headers))
    assert r.status_code == 402, r.text
    assert r.json()["code"] == "insufficient_funds"
    assert count_payouts(potluck) == 0
    assert count_holds(potluck) == 0
    assert wallet(potluck, party) == (100_000, 0, 100_000)
    # Exactly the balance is fine.
    r = client.post("/v1/payouts", json=payout_body(party, ba, 100_000), headers=keyed(headers))
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"currency": "USD"}, 422, "currency_mismatch"),
        ({"amount": 0}, 422, "validation_error"),
        ({"amount": -5}, 422, "validation_error"),
        ({"amount": 12.5}, 422, "validation_error"),
        ({"amount": "100"}, 422, "validation_error"),
        ({"currency": "EURO"}, 422, "validation_error"),
        ({"party": "pty_missing"}, 404, "party_not_found"),
        ({"bank_account": "ba_missing"}, 404, "bank_account_not_found"),
    ],
)
def test_bad_payout_requests_change_nothing(client, potluck, funded, change, status, code):
    headers, party, ba = funded
    body = {**payout_body(party, ba), **change}
    r = client.post("/v1/payouts", json=body, headers=keyed(headers))
    assert r.status_code == status, r.text
    if status == 422 and code == "validation_error":
        assert r.json()["errors"]
    else:
        assert r.json()["code"] == code
    assert count_payouts(potluck) == 0
    assert count_holds(potluck) == 0


def test_another_partys_bank_account_is_refused(client, potluck, acme, funded):
    headers, party, _ = funded
    other = make_party(potluck, acme[0], name="Courier")
    theirs = add_iban(client, headers, other.id).json()["id"]
    r = client.post("/v1/payouts", json=payout_body(party, theirs), headers=keyed(headers))
    assert r.status_code == 404
    assert r.json()["code"] == "bank_account_not_found"
    assert count_payouts(potluck) == 0


# --- idempotency ------------------------------------------------------------------------


def test_a_replay_returns_the_same_payout(client, potluck, funded):
    headers, party, ba = funded
    send = keyed(headers, "payout-1")
    first = client.post("/v1/payouts", json=payout_body(party, ba), headers=send)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    for _ in range(5):
        again = client.post("/v1/payouts", json=payout_body(party, ba), headers=send)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
    assert count_payouts(potluck) == 1
    assert count_holds(potluck) == 1
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)


def test_the_same_key_with_another_amount_is_409(client, potluck, funded):
    headers, party, ba = funded
    send = keyed(headers, "payout-1")
    assert client.post("/v1/payouts", json=payout_body(party, ba), headers=send).status_code == 201
    r = client.post("/v1/payouts", json=payout_body(party, ba, 40_001), headers=send)
    assert r.status_code == 409
    assert r.json()["code"] == "idempotency_key_reused"
    assert count_payouts(potluck) == 1
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)


def test_the_same_key_for_two_platforms_makes_two_payouts(client, potluck, funded):
    headers, party, ba = funded
    pid2, headers2 = make_platform(potluck, "Beta")
    party2 = make_party(potluck, pid2)
    fund(potluck, pid2, party2, 100_000)
    ba2 = add_iban(client, headers2, party2.id).json()["id"]
    a = client.post("/v1/payouts", json=payout_body(party, ba), headers=keyed(headers, "same"))
    b = client.post("/v1/payouts", json=payout_body(party2, ba2), headers=keyed(headers2, "same"))
    assert (a.status_code, b.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert count_payouts(potluck) == 2
    assert wallet(potluck, party) == wallet(potluck, party2) == (100_000, 40_000, 60_000)
    # Neither platform sees the other's payout.
    assert client.get(f"/v1/payouts/{b.json()['id']}", headers=headers).status_code == 404


def test_two_threads_with_one_key_make_one_payout(potluck, funded):
    headers, party, ba = funded
    app = create_app(potluck)
    send = keyed(headers)
    start = threading.Barrier(2)

    def call(_):
        with httpx.Client(base_url=server.url, timeout=60) as http:
            start.wait()
            return http.post("/v1/payouts", json=payout_body(party, ba), headers=send)

    with ServerThread(app) as server, ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(call, range(2)))
    ok = [r for r in replies if r.status_code == 201]
    busy = [r for r in replies if r.status_code == 409]
    assert len(ok) + len(busy) == 2, [r.text for r in replies]
    assert all(r.json()["code"] == "idempotency_key_in_use" for r in busy)
    assert len({r.json()["id"] for r in ok}) == 1
    assert count_payouts(potluck) == 1
    assert count_holds(potluck) == 1
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)


# --- listing and cancelling -------------------------------------------------------------


def test_payouts_are_listed_by_party_and_status_with_pagination(client, potluck, acme, funded):
    headers, party, ba = funded
    other = make_party(potluck, acme[0], name="Courier")
    fund(potluck, acme[0], other, 50_000)
    other_ba = add_iban(client, headers, other.id).json()["id"]
    mine = [
        client.post(
            "/v1/payouts", json=payout_body(party, ba, 1_000), headers=keyed(headers)
        ).json()["id"]
        for _ in range(3)
    ]
    theirs = client.post(
        "/v1/payouts", json=payout_body(other, other_ba, 1_000), headers=keyed(headers)
    ).json()["id"]
    client.post(f"/v1/payouts/{mine[0]}/cancel", headers=headers)

    def ids(query):
        r = client.get(f"/v1/payouts?{query}", headers=headers)
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["data"]], r.json()["has_more"]

    assert ids("") == ([*mine, theirs], False)
    assert ids(f"party={party.id}") == (mine, False)
    assert ids(f"party={other.id}") == ([theirs], False)
    assert ids("status=failed") == ([mine[0]], False)
    assert ids(f"status=pending&party={party.id}") == (mine[1:], False)
    assert ids("limit=2") == (mine[:2], True)
    assert ids(f"limit=2&starting_after={mine[1]}") == ([mine[2], theirs], False)
    assert client.get("/v1/payouts?status=lost", headers=headers).status_code == 422
    _, stranger = make_platform(potluck, "Stranger")
    assert client.get("/v1/payouts", headers=stranger).json() == {"data": [], "has_more": False}


def test_cancel_releases_the_hold_and_only_a_pending_payout_can_be_cancelled(
    client, potluck, funded, bank
):
    headers, party, ba = funded
    p = client.post("/v1/payouts", json=payout_body(party, ba), headers=keyed(headers)).json()
    r = client.post(f"/v1/payouts/{p['id']}/cancel", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "failed"
    assert wallet(potluck, party) == (100_000, 0, 100_000)
    again = client.post(f"/v1/payouts/{p['id']}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_payout_transition"
    potluck.bus.drain()
    assert bank.sends[p["id"]] == 0


def test_the_platform_cannot_post_or_void_a_payout_hold_through_the_ledger_api(
    client, potluck, funded
):
    """The hold is the payouts service's to resolve: a void behind its back would let the
    money be paid out and spent again."""
    headers, party, ba = funded
    p = client.post("/v1/payouts", json=payout_body(party, ba), headers=keyed(headers)).json()
    assert p["hold_transfer"] == p["id"]
    for action in ("void", "post"):
        r = client.post(f"/v1/transfers/{p['hold_transfer']}/{action}", headers=keyed(headers))
        assert r.status_code == 404, r.text
    assert wallet(potluck, party) == (100_000, 40_000, 60_000)
    # The wallet's own entries still show the hold.
    entries = client.get(f"/v1/accounts/{party.wallet_account_id}/entries", headers=headers)
    assert entries.status_code == 200
    assert any(e["pending_delta"] == 40_000 for e in entries.json()["data"])


def test_payout_hold_transfers_show_in_the_party_ledger_but_not_in_transfers(
    client, potluck, bank, funded
):
    """As docs/api.md says: the hold (``po_…``) and its post (``po_…-post``) live in the
    system scope: the party's ledger lists them, /v1/transfers does not know them."""
    headers, party, ba = funded
    p = client.post("/v1/payouts", json=payout_body(party, ba), headers=keyed(headers)).json()
    potluck.bus.drain()
    assert client.get(f"/v1/payouts/{p['id']}", headers=headers).json()["status"] == "completed"
    ledger = client.get(f"/v1/parties/{party.id}/ledger", headers=headers).json()["data"]
    hold_ids = [p["id"], f"{p['id']}-post"]
    assert [e["transfer"] for e in ledger if e["transfer"].startswith(p["id"])] == hold_ids
    for transfer_id in hold_ids:
        r = client.get(f"/v1/transfers/{transfer_id}", headers=headers)
        assert r.status_code == 404, r.text
    listed = client.get(
        "/v1/transfers", params={"account": party.wallet_account_id}, headers=headers
    ).json()["data"]
    assert not [t for t in listed if t["id"] in hold_ids]


# --- found walking issue 3 with curl ----------------------------------------------------


def test_insufficient_funds_names_the_amount_and_the_party_not_a_ledger_field(client, funded):
    headers, party, ba = funded
    r = client.post("/v1/payouts", json=payout_body(party, ba, 100_001), headers=keyed(headers))
    assert r.status_code == 402, r.text
    body = r.json()
    assert body["code"] == "insufficient_funds"
    assert [e["field"] for e in body["errors"]] == ["amount"]
    assert party.id in body["detail"]
    assert "100000" in body["detail"]


def test_unknown_cursors_and_parties_in_payout_lists_are_refused(client, potluck, acme, funded):
    headers, party, ba = funded
    paid = client.post("/v1/payouts", json=payout_body(party, ba, 1_000), headers=keyed(headers))
    assert paid.status_code == 201, paid.text
    for query in ("starting_after=po_missing", f"starting_after={ba}"):
        r = client.get(f"/v1/payouts?{query}", headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_cursor"
        assert r.json()["errors"][0]["field"] == "starting_after"
    r = client.get("/v1/payouts?party=pty_missing", headers=headers)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "party_not_found"
    # Another platform's payout is no cursor of yours either.
    _, stranger = make_platform(potluck, "Stranger")
    r = client.get(f"/v1/payouts?starting_after={paid.json()['id']}", headers=stranger)
    assert r.status_code == 422
    r = client.get(
        f"/v1/parties/{party.id}/bank-accounts?starting_after=ba_missing", headers=headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_cursor"
    listed = client.get(
        f"/v1/parties/{party.id}/bank-accounts?starting_after={ba}", headers=headers
    )
    assert listed.json() == {"data": [], "has_more": False}


def test_cancelling_a_payout_that_is_not_pending_says_why(client, potluck, funded, bank):
    headers, party, ba = funded
    p = client.post("/v1/payouts", json=payout_body(party, ba), headers=keyed(headers)).json()
    potluck.bus.drain()
    assert client.get(f"/v1/payouts/{p['id']}", headers=headers).json()["status"] == "completed"
    r = client.post(f"/v1/payouts/{p['id']}/cancel", headers=headers)
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "invalid_payout_transition"
    assert (
        body["detail"] == f"only a pending payout can be cancelled; payout {p['id']} is completed"
    )


def test_an_unknown_party_in_a_payout_names_the_field_like_the_bank_account(
    client, potluck, funded
):
    headers, party, ba = funded
    body = {**payout_body(party, ba), "party": "pty_missing"}
    r = client.post("/v1/payouts", json=body, headers=keyed(headers))
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "party_not_found"
    assert [e["field"] for e in r.json()["errors"]] == ["party"]
    body = {**payout_body(party, ba), "bank_account": "ba_missing"}
    r = client.post("/v1/payouts", json=body, headers=keyed(headers))
    assert [e["field"] for e in r.json()["errors"]] == ["bank_account"]
    assert count_payouts(potluck) == 0
