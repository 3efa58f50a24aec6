"""Sharing over HTTP: groups, members (invites claimed on registration), expenses of every
split method, edit/delete/restore with history, comments, activity, balances, settle-up,
settlements, friends, two-person expenses, idempotency, and 404 for non-members everywhere.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import copy

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from potluck.api.app import create_app
from potluck.bus.models import OutboxEvent
from potluck.identity import passwords, tokens
from potluck.identity.service import register_user, signing_key

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def person(potluck, name: str) -> tuple[str, dict[str, str]]:
    """Register ``name``@example.com; returns (user id, auth headers)."""
    user = register_user(potluck, email=f"{name}@example.com", password=PASSWORD, name=name)
    token = tokens.encode_access_token(
        key=signing_key(potluck), user_id=user.id, now=potluck.clock.now(), ttl_seconds=3600
    )
    return user.id, {"Authorization": f"Bearer {token}"}


def problem(r, status: int, code: str, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in [e.get("field") for e in body.get("errors", [])], body
    return body


def make_group(client, headers, *emails: str, currency: str = "EUR") -> dict:
    r = client.post(
        "/v1/groups",
        json={"name": "Flat", "currency": currency, "members": list(emails)},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def ids(group: dict) -> list[str]:
    return [m["id"] for m in group["members"]]


def balances(client, headers, group_id: str) -> dict[str, int]:
    r = client.get(f"/v1/groups/{group_id}/balances", headers=headers)
    assert r.status_code == 200, r.text
    data = {b["member_id"]: b["balance"] for b in r.json()["data"]}
    assert sum(data.values()) == 0
    return data


def expense(client, headers, group_id: str, **body) -> dict:
    body.setdefault("description", "dinner")
    r = client.post(f"/v1/groups/{group_id}/expenses", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def trio(potluck, client):
    """Ada (caller), Bob (registered), Cy (invited by email, not registered)."""
    _, ada = person(potluck, "ada")
    _, bob = person(potluck, "bob")
    group = make_group(client, ada, "bob@example.com", "cy@example.com")
    return group, ada, bob


def test_create_group_members_and_claim_on_registration(potluck, client, trio):
    group, ada, bob = trio
    members = group["members"]
    assert [m["email"] for m in members] == [
        "ada@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert all(m["id"].startswith("mbr_") and m["balance"] == 0 for m in members)
    assert members[1]["user_id"] is not None
    assert members[2]["user_id"] is None
    assert group["kind"] == "group"
    assert group["currency"] == "EUR"
    # Bob sees it in his list; Cy cannot yet
    r = client.get("/v1/groups", headers=bob)
    assert [g["id"] for g in r.json()["data"]] == [group["id"]]
    cy_id, cy = person(potluck, "cy")
    potluck.bus.drain()
    r = client.get(f"/v1/groups/{group['id']}", headers=cy)
    assert r.status_code == 200, r.text
    claimed = r.json()["members"][2]
    assert claimed["id"] == members[2]["id"]
    assert claimed["user_id"] == cy_id
    assert claimed["name"] == "cy"


def test_group_validation(potluck, client):
    _, ada = person(potluck, "ada")
    r = client.post(
        "/v1/groups", json={"name": "x", "currency": "EUR", "members": ["nope"]}, headers=ada
    )
    problem(r, 422, "validation_error", "members.0")
    r = client.post("/v1/groups", json={"name": "x", "currency": "EURO"}, headers=ada)
    assert r.status_code == 422
    assert client.get("/v1/groups", headers=ada).json()["data"] == []


def test_add_and_remove_member(potluck, client, trio):
    group, ada, bob = trio
    gid = group["id"]
    r = client.post(f"/v1/groups/{gid}/members", json={"email": "Dee@Example.com"}, headers=bob)
    assert r.status_code == 201, r.text
    dee = r.json()
    assert dee["email"] == "dee@example.com"
    assert dee["user_id"] is None
    problem(
        client.post(f"/v1/groups/{gid}/members", json={"email": "dee@example.com"}, headers=ada),
        409,
        "already_a_member",
    )
    a, b, *_ = ids(group)
    expense(
        client,
        ada,
        gid,
        amount=1000,
        split={
            "method": "exact",
            "shares": [{"user_id": a, "value": 400}, {"user_id": dee["id"], "value": 600}],
        },
    )
    problem(
        client.delete(f"/v1/groups/{gid}/members/{dee['id']}", headers=ada), 409, "balance_not_zero"
    )
    r = client.post(
        f"/v1/groups/{gid}/settlements",
        json={"from": dee["id"], "to": a, "amount": 600},
        headers=ada,
    )
    assert r.status_code == 201, r.text
    r = client.delete(f"/v1/groups/{gid}/members/{dee['id']}", headers=ada)
    assert r.status_code == 200, r.text
    members = client.get(f"/v1/groups/{gid}", headers=ada).json()["members"]
    assert dee["id"] not in [m["id"] for m in members]
    # Bob has a zero balance: he can be removed and then no longer sees the group
    assert client.delete(f"/v1/groups/{gid}/members/{b}", headers=ada).status_code == 200
    assert client.get(f"/v1/groups/{gid}", headers=bob).status_code == 404


def test_equal_default_rounding_and_balances(client, trio):
    group, ada, _ = trio
    a, b, c = ids(group)
    e = expense(client, ada, group["id"], amount=1000)
    assert e["owed"] == [
        {"user_id": a, "amount": 334},
        {"user_id": b, "amount": 333},
        {"user_id": c, "amount": 333},
    ]
    assert e["paid_by"] == [{"user_id": a, "amount": 1000}]
    assert e["currency"] == "EUR"
    assert e["category"] == "general"
    assert e["version"] == 1
    assert balances(client, ada, group["id"]) == {a: 666, b: -333, c: -333}


@pytest.mark.parametrize(
    ("split", "owed"),
    [
        ({"method": "equal", "shares": [{"user_id": 0}, {"user_id": 1}]}, [600, 600, 0]),
        (
            {
                "method": "exact",
                "shares": [{"user_id": 0, "value": 200}, {"user_id": 2, "value": 1000}],
            },
            [200, 0, 1000],
        ),
        (
            {
                "method": "percent",
                "shares": [
                    {"user_id": 0, "value": 5000},
                    {"user_id": 1, "value": 2500},
                    {"user_id": 2, "value": 2500},
                ],
            },
            [600, 300, 300],
        ),
        (
            {
                "method": "shares",
                "shares": [
                    {"user_id": 0, "value": 2},
                    {"user_id": 1, "value": 1},
                    {"user_id": 2, "value": 1},
                ],
            },
            [600, 300, 300],
        ),
        (
            {
                "method": "adjustment",
                "shares": [
                    {"user_id": 0, "value": 300},
                    {"user_id": 1, "value": 0},
                    {"user_id": 2, "value": 0},
                ],
            },
            [600, 300, 300],
        ),
        (
            {
                "method": "itemized",
                "items": [{"amount": 600, "user_ids": [0]}, {"amount": 400, "user_ids": [1, 2]}],
                "tax": 100,
                "tip": 100,
            },
            [720, 240, 240],
        ),
    ],
    ids=["equal", "exact", "percent", "shares", "adjustment", "itemized"],
)
def test_every_split_method(client, trio, split, owed):
    group, ada, _ = trio
    members = ids(group)
    split = copy.deepcopy(split)

    def resolve(x):
        return members[x]

    for s in split.get("shares", []):
        s["user_id"] = resolve(s["user_id"])
    for i in split.get("items", []):
        i["user_ids"] = [resolve(u) for u in i["user_ids"]]
    e = expense(client, ada, group["id"], amount=1200, split=split)
    got = {o["user_id"]: o["amount"] for o in e["owed"]}
    assert [got.get(m, 0) for m in members] == owed
    assert sum(got.values()) == 1200
    bal = balances(client, ada, group["id"])
    assert [bal[m] for m in members] == [1200 - owed[0], -owed[1], -owed[2]]


def test_refusals_persist_nothing(client, trio):
    group, ada, _ = trio
    gid = group["id"]
    a, b, c = ids(group)
    body = problem(
        client.post(
            f"/v1/groups/{gid}/expenses",
            headers=ada,
            json={
                "description": "x",
                "amount": 10000,
                "split": {
                    "method": "exact",
                    "shares": [{"user_id": a, "value": 5000}, {"user_id": b, "value": 4990}],
                },
            },
        ),
        422,
        "split_does_not_sum",
        "split.shares",
    )
    assert "10" in body["detail"]
    problem(
        client.post(
            f"/v1/groups/{gid}/expenses",
            headers=ada,
            json={"description": "x", "amount": 100, "currency": "USD"},
        ),
        422,
        "fx_rate_missing",
        "fx_rate",
    )
    r = client.post(
        f"/v1/groups/{gid}/expenses", headers=ada, json={"description": "x", "amount": 12.5}
    )
    assert r.status_code == 422
    problem(
        client.post(
            f"/v1/groups/{gid}/expenses",
            headers=ada,
            json={
                "description": "x",
                "amount": 100,
                "paid_by": [{"user_id": a, "amount": 60}, {"user_id": b, "amount": 30}],
            },
        ),
        422,
        "payers_do_not_sum",
        "paid_by",
    )
    problem(
        client.post(
            f"/v1/groups/{gid}/expenses",
            headers=ada,
            json={
                "description": "x",
                "amount": 100,
                "split": {"method": "exact", "shares": [{"user_id": "mbr_nobody", "value": 100}]},
            },
        ),
        422,
        "unknown_member",
    )
    assert client.get(f"/v1/groups/{gid}/expenses", headers=ada).json()["data"] == []
    assert balances(client, ada, gid) == {a: 0, b: 0, c: 0}


def test_several_payers(client, trio):
    group, ada, _ = trio
    a, b, c = ids(group)
    expense(
        client,
        ada,
        group["id"],
        amount=900,
        paid_by=[{"user_id": b, "amount": 600}, {"user_id": c, "amount": 300}],
    )
    assert balances(client, ada, group["id"]) == {a: -300, b: 300, c: 0}


def test_edit_delete_restore_keep_balances_and_history(client, trio):
    group, ada, bob = trio
    gid = group["id"]
    a, b, c = ids(group)
    e = expense(client, ada, gid, amount=900)
    r = client.patch(
        f"/v1/expenses/{e['id']}",
        headers=bob,
        json={
            "amount": 600,
            "description": "lunch",
            "split": {"method": "equal", "shares": [{"user_id": a}, {"user_id": b}]},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert r.json()["description"] == "lunch"
    assert balances(client, ada, gid) == {a: 300, b: -300, c: 0}
    r = client.delete(f"/v1/expenses/{e['id']}", headers=ada)
    assert r.status_code == 200
    assert r.json()["deleted"] is True
    assert balances(client, ada, gid) == {a: 0, b: 0, c: 0}
    problem(
        client.patch(f"/v1/expenses/{e['id']}", headers=ada, json={"amount": 5}),
        409,
        "expense_deleted",
    )
    problem(client.delete(f"/v1/expenses/{e['id']}", headers=ada), 409, "expense_deleted")
    assert client.get(f"/v1/groups/{gid}/expenses", headers=ada).json()["data"] == []
    listed = client.get(f"/v1/groups/{gid}/expenses?include_deleted=true", headers=ada).json()
    assert [x["id"] for x in listed["data"]] == [e["id"]]
    r = client.post(f"/v1/expenses/{e['id']}/restore", headers=ada)
    assert r.status_code == 200, r.text
    problem(client.post(f"/v1/expenses/{e['id']}/restore", headers=ada), 409, "expense_not_deleted")
    assert balances(client, ada, gid) == {a: 300, b: -300, c: 0}
    history = client.get(f"/v1/expenses/{e['id']}", headers=bob).json()["history"]
    assert [(h["version"], h["action"]) for h in history] == [
        (1, "created"),
        (2, "updated"),
        (3, "deleted"),
        (4, "restored"),
    ]
    assert history[0]["snapshot"]["amount"] == 900
    assert history[1]["snapshot"]["amount"] == 600
    # an invalid edit changes nothing
    problem(
        client.patch(
            f"/v1/expenses/{e['id']}",
            headers=ada,
            json={"split": {"method": "percent", "shares": [{"user_id": a, "value": 9000}]}},
        ),
        422,
        "split_does_not_sum",
    )
    assert client.get(f"/v1/expenses/{e['id']}", headers=ada).json()["version"] == 4
    # a change that changes nothing adds no version
    r = client.patch(f"/v1/expenses/{e['id']}", headers=ada, json={"description": "lunch"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 4
    assert len(r.json()["history"]) == 4
    assert balances(client, ada, gid) == {a: 300, b: -300, c: 0}


def test_comments_and_activity(client, trio):
    group, ada, bob = trio
    gid = group["id"]
    e = expense(client, ada, gid, amount=300)
    r = client.post(f"/v1/expenses/{e['id']}/comments", json={"text": "thanks!"}, headers=bob)
    assert r.status_code == 201, r.text
    got = client.get(f"/v1/expenses/{e['id']}", headers=ada).json()
    assert [c["text"] for c in got["comments"]] == ["thanks!"]
    assert got["comments"][0]["member_id"] == ids(group)[1]
    client.delete(f"/v1/expenses/{e['id']}", headers=ada)
    a, b, _ = ids(group)
    client.post(
        f"/v1/groups/{gid}/settlements", json={"from": b, "to": a, "amount": 5}, headers=bob
    )
    feed = client.get(f"/v1/groups/{gid}/activity", headers=bob).json()
    types = [x["type"] for x in feed["data"]]
    assert types == [
        "settlement.recorded",
        "expense.deleted",
        "comment.added",
        "expense.created",
        "member.added",
        "member.added",
        "group.created",
    ]
    page = client.get(f"/v1/groups/{gid}/activity?limit=2", headers=bob).json()
    assert page["has_more"] is True
    assert len(page["data"]) == 2
    nxt = client.get(
        f"/v1/groups/{gid}/activity?limit=2&starting_after={page['data'][1]['id']}", headers=bob
    ).json()
    assert [x["type"] for x in nxt["data"]] == ["comment.added", "expense.created"]


def test_settle_up_and_settlements(client, trio):
    group, ada, bob = trio
    gid = group["id"]
    a, b, c = ids(group)
    expense(client, ada, gid, amount=900)  # a +600, b -300, c -300
    expense(
        client,
        bob,
        gid,
        amount=300,
        split={"method": "equal", "shares": [{"user_id": a}, {"user_id": c}]},
    )  # b paid 300 for a and c
    bal = balances(client, ada, gid)
    assert bal == {a: 450, b: 0, c: -450}
    pairwise = client.get(f"/v1/groups/{gid}/settle-up?simplify=false", headers=ada).json()
    assert {(p["from"], p["to"], p["amount"]) for p in pairwise["payments"]} == {
        (b, a, 150),
        (c, a, 300),
        (c, b, 150),
    }
    simple = client.get(f"/v1/groups/{gid}/settle-up", headers=ada).json()
    assert simple["simplify"] is True
    assert [(p["from"], p["to"], p["amount"]) for p in simple["payments"]] == [(c, a, 450)]
    for p in simple["payments"]:
        r = client.post(
            f"/v1/groups/{gid}/settlements",
            headers=bob,
            json={"from": p["from"], "to": p["to"], "amount": p["amount"], "method": "bank"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["currency"] == "EUR"
        assert r.json()["method"] == "bank"
    assert balances(client, ada, gid) == {a: 0, b: 0, c: 0}
    assert client.get(f"/v1/groups/{gid}/settle-up", headers=ada).json()["payments"] == []
    pairwise = client.get(f"/v1/groups/{gid}/settle-up?simplify=false", headers=ada).json()
    # pairwise nets each pair but keeps every net balance
    net = dict.fromkeys((a, b, c), 0)
    for p in pairwise["payments"]:
        net[p["from"]] += p["amount"]
        net[p["to"]] -= p["amount"]
    assert net == {a: 0, b: 0, c: 0}


def test_settlement_refusals(client, trio):
    group, ada, _ = trio
    gid = group["id"]
    a, b, _ = ids(group)
    url = f"/v1/groups/{gid}/settlements"
    problem(
        client.post(url, headers=ada, json={"from": a, "to": a, "amount": 5}),
        422,
        "same_member",
        "to",
    )
    problem(
        client.post(url, headers=ada, json={"from": a, "to": "mbr_x", "amount": 5}),
        422,
        "unknown_member",
        "to",
    )
    assert client.post(url, headers=ada, json={"from": a, "to": b, "amount": 0}).status_code == 422
    assert client.post(url, headers=ada, json={"from": a, "to": b, "amount": -3}).status_code == 422
    r = client.post(url, headers=ada, json={"from": a, "to": b, "amount": 5, "method": "gold"})
    assert r.status_code == 422
    assert balances(client, ada, gid) == dict.fromkeys(ids(group), 0)


def test_friends_across_groups(potluck, client, trio):
    group, ada, bob = trio
    a, b, c = ids(group)
    expense(client, ada, group["id"], amount=900)  # bob owes ada 300, cy owes ada 300
    other = make_group(client, bob, "ada@example.com", currency="EUR")
    expense(client, bob, other["id"], amount=100)  # ada owes bob 50
    usd = make_group(client, bob, "ada@example.com", currency="USD")
    expense(client, bob, usd["id"], amount=40)  # ada owes bob 20 USD
    r = client.get("/v1/friends", headers=ada)
    assert r.status_code == 200, r.text
    got = {
        f["email"]: {x["currency"]: x["amount"] for x in f["balances"]} for f in r.json()["data"]
    }
    assert got == {"bob@example.com": {"EUR": 250, "USD": -20}, "cy@example.com": {"EUR": 300}}
    bobs = {
        f["email"]: f["balances"] for f in client.get("/v1/friends", headers=bob).json()["data"]
    }
    assert {x["currency"]: x["amount"] for x in bobs["ada@example.com"]} == {"EUR": -250, "USD": 20}


def test_two_person_expenses_outside_groups(potluck, client):
    _, ada = person(potluck, "ada")
    body = {"with": "zed@example.com", "description": "taxi", "amount": 1000, "currency": "EUR"}
    r = client.post("/v1/friends/expenses", json=body, headers=ada)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["kind"] == "direct"
    r = client.post(
        "/v1/friends/expenses",
        headers=ada,
        json={**body, "amount": 300, "paid_by": [{"user_id": "zed@example.com", "amount": 300}]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["group_id"] == first["group_id"]  # the same implicit group
    groups = client.get("/v1/groups", headers=ada).json()["data"]
    assert [(g["id"], g["kind"]) for g in groups] == [(first["group_id"], "direct")]
    friends = client.get("/v1/friends", headers=ada).json()["data"]
    assert friends[0]["email"] == "zed@example.com"
    assert friends[0]["balances"] == [{"currency": "EUR", "amount": 350}]
    problem(
        client.post("/v1/friends/expenses", headers=ada, json={**body, "with": "ada@example.com"}),
        422,
        "validation_error",
        "with",
    )
    # a direct group keeps its two members
    gid = first["group_id"]
    problem(
        client.post(f"/v1/groups/{gid}/members", json={"email": "q@example.com"}, headers=ada),
        409,
        "direct_group",
    )


def test_idempotency_key_replays_an_expense(client, trio):
    group, ada, _ = trio
    gid = group["id"]
    h = {**ada, "Idempotency-Key": "exp-1"}
    body = {"description": "x", "amount": 300}
    r1 = client.post(f"/v1/groups/{gid}/expenses", json=body, headers=h)
    r2 = client.post(f"/v1/groups/{gid}/expenses", json=body, headers=h)
    assert r1.status_code == r2.status_code == 201
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert r1.json() == r2.json()
    assert len(client.get(f"/v1/groups/{gid}/expenses", headers=ada).json()["data"]) == 1
    r3 = client.post(f"/v1/groups/{gid}/expenses", json={**body, "amount": 5}, headers=h)
    problem(r3, 409, "idempotency_key_reused")


def test_events_are_published(potluck, client, trio):
    group, ada, bob = trio
    a, b, _ = ids(group)
    e = expense(client, ada, group["id"], amount=300)
    client.patch(f"/v1/expenses/{e['id']}", json={"amount": 600}, headers=ada)
    client.delete(f"/v1/expenses/{e['id']}", headers=ada)
    client.post(f"/v1/expenses/{e['id']}/restore", headers=ada)
    client.post(
        f"/v1/groups/{group['id']}/settlements", json={"from": b, "to": a, "amount": 5}, headers=ada
    )
    with potluck.db.read() as s:
        rows = s.execute(select(OutboxEvent.type, OutboxEvent.data).order_by(OutboxEvent.id)).all()
    types = [t for t, _ in rows if not t.startswith("user.")]
    assert types == [
        "sharing_group.created",
        "sharing_member.added",
        "sharing_member.added",
        "expense.created",
        "expense.updated",
        "expense.deleted",
        "expense.restored",
        "settlement.recorded",
    ]
    data = dict(rows)  # the last of each type
    assert data["expense.updated"]["amount"] == 600
    assert data["expense.updated"]["currency"] == "EUR"
    assert data["expense.updated"]["group_id"] == group["id"]
    assert data["settlement.recorded"]["amount"] == 5


# --- authorization: a non-member gets 404 from every endpoint ---

ENDPOINTS = [
    ("GET", "/v1/groups/{g}", None),
    ("POST", "/v1/groups/{g}/members", {"email": "eve2@example.com"}),
    ("DELETE", "/v1/groups/{g}/members/{m}", None),
    ("POST", "/v1/groups/{g}/expenses", {"description": "x", "amount": 100}),
    ("GET", "/v1/groups/{g}/expenses", None),
    ("GET", "/v1/expenses/{e}", None),
    ("PATCH", "/v1/expenses/{e}", {"amount": 50}),
    ("DELETE", "/v1/expenses/{e}", None),
    ("POST", "/v1/expenses/{e}/restore", None),
    ("POST", "/v1/expenses/{e}/comments", {"text": "hi"}),
    ("GET", "/v1/groups/{g}/balances", None),
    ("GET", "/v1/groups/{g}/settle-up", None),
    ("GET", "/v1/groups/{g}/settle-up?simplify=false", None),
    ("POST", "/v1/groups/{g}/settlements", {"from": "{m}", "to": "{m0}", "amount": 5}),
    ("GET", "/v1/groups/{g}/activity", None),
    ("GET", "/v1/groups/{g}/reports?by=member", None),
    ("PATCH", "/v1/expenses/{e}", {"repeat": "monthly"}),
    ("PATCH", "/v1/expenses/{e}", {"currency": "USD", "amount": 50, "fx_rate": "0.9"}),
    (
        "POST",
        "/v1/groups/{g}/expenses",
        {"description": "x", "amount": 100, "currency": "USD", "fx_rate": "0.9"},
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
def test_non_members_get_404(potluck, client, trio, method, path, body):
    group, ada, _ = trio
    _, eve = person(potluck, "eve")
    e = expense(client, ada, group["id"], amount=300)
    if path.endswith("/restore"):
        client.delete(f"/v1/expenses/{e['id']}", headers=ada)
    m0, m = ids(group)[0], ids(group)[2]
    fill = {"g": group["id"], "e": e["id"], "m": m, "m0": m0}
    url = path.format(**fill)
    if body is not None:
        body = {k: (v.format(**fill) if isinstance(v, str) else v) for k, v in body.items()}
    r = client.request(method, url, json=body, headers=eve)
    code = (
        "expense_not_found" if "/expenses/" in url and "/groups/" not in url else "group_not_found"
    )
    problem(r, 404, code)
    # and nothing changed for the members
    before = dict(zip(ids(group), (200, -100, -100), strict=True))
    if path.endswith("/restore"):
        before = dict.fromkeys(ids(group), 0)
    assert balances(client, ada, group["id"]) == before
    assert client.get("/v1/groups", headers=eve).json()["data"] == []


def test_lists_paginate_and_refuse_unknown_cursors(client, trio):
    group, ada, _ = trio
    gid = group["id"]
    made = [expense(client, ada, gid, amount=100 + i)["id"] for i in range(3)]
    page = client.get(f"/v1/groups/{gid}/expenses?limit=2", headers=ada).json()
    assert [x["id"] for x in page["data"]] == made[::-1][:2]
    assert page["has_more"] is True
    rest = client.get(
        f"/v1/groups/{gid}/expenses?limit=2&starting_after={made[1]}", headers=ada
    ).json()
    assert [x["id"] for x in rest["data"]] == [made[0]]
    assert rest["has_more"] is False
    for url in (
        f"/v1/groups/{gid}/expenses?starting_after=exp_nope",
        f"/v1/groups/{gid}/activity?starting_after=act_nope",
        "/v1/groups?starting_after=grp_nope",
    ):
        problem(client.get(url, headers=ada), 422, "invalid_cursor", "starting_after")


def test_openapi_names_the_settlement_fields(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["SettlementCreate"]["properties"]) == {"from", "to", "amount", "method"}
    assert set(schemas["PaymentRead"]["properties"]) == {"from", "to", "amount"}
    assert "/v1/groups/{group_id}/settle-up" in spec["paths"]
