"""POST /v1/groups/{id}/expenses/parse over HTTP, on SQLite and PostgreSQL: a proposal in the
shape of the create request that saves nothing, 422 cannot_parse, 404 for non-members, and the
optional LLM backend against a local fake chat completions server (never the network)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from pydantic import SecretStr

from potluck.api.app import create_app
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


def person(potluck, email: str, name: str) -> dict[str, str]:
    user = register_user(potluck, email=email, password=PASSWORD, name=name)
    token = tokens.encode_access_token(
        key=signing_key(potluck), user_id=user.id, now=potluck.clock.now(), ttl_seconds=3600
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def flat(potluck, client):
    """Alex (caller) with Bob and Ann registered; returns (group, alex's headers, ids by name)."""
    alex = person(potluck, "alex@example.com", "Alex Kim")
    person(potluck, "bob@example.com", "Bob Smith")
    person(potluck, "ann@example.com", "Ann Lee")
    r = client.post(
        "/v1/groups",
        json={
            "name": "Flat",
            "currency": "EUR",
            "members": ["bob@example.com", "ann@example.com"],
        },
        headers=alex,
    )
    assert r.status_code == 201, r.text
    group = r.json()
    by_name = {m["name"].split()[0].lower(): m["id"] for m in group["members"]}
    assert set(by_name) == {"alex", "bob", "ann"}
    return group, alex, by_name


def parse(client, headers, group_id, text):
    return client.post(
        f"/v1/groups/{group_id}/expenses/parse", json={"text": text}, headers=headers
    )


def test_the_issue_example_reads_and_saves_nothing(client, flat):
    group, alex, m = flat
    r = parse(
        client, alex, group["id"], "I paid 90 for dinner with Bob and Ann, Bob had wine for 20"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["parser"] == "rules"
    p = body["proposal"]
    assert (p["amount"], p["currency"], p["category"], p["description"]) == (
        9000,
        "EUR",
        "food",
        "Dinner",
    )
    assert p["paid_by"] == [{"user_id": m["alex"], "amount": 9000}]
    assert p["split"]["method"] == "itemized"
    owed = {o["user_id"]: o["amount"] for o in body["owed"]}
    assert owed == {m["alex"]: 2334, m["bob"]: 4333, m["ann"]: 2333}
    assert sum(owed.values()) == p["amount"]
    # nothing saved
    r = client.get(f"/v1/groups/{group['id']}/expenses", headers=alex)
    assert r.status_code == 200
    assert r.json()["data"] == []
    # the proposal is a create request as it stands, and the expense owes the same
    r = client.post(f"/v1/groups/{group['id']}/expenses", json=p, headers=alex)
    assert r.status_code == 201, r.text
    created = {o["user_id"]: o["amount"] for o in r.json()["owed"]}
    assert created == owed


def test_dates_come_from_the_clock(client, flat, clock):
    group, alex, m = flat
    r = parse(client, alex, group["id"], "Bob paid 30 for a taxi yesterday")
    assert r.status_code == 200, r.text
    p = r.json()["proposal"]
    assert p["date"] == "2025-12-31"  # the fake clock starts on 2026-01-01
    assert p["paid_by"] == [{"user_id": m["bob"], "amount": 3000}]
    assert p["category"] == "transport"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("taxi 30 with Zed", "Zed"),
        ("I paid for dinner with Bob", "no amount"),
        ("Bob owes 30% and Ann owes 80% of 100", "100 %"),
    ],
)
def test_cannot_parse_says_what_is_wrong(client, flat, text, needle):
    group, alex, _ = flat
    r = parse(client, alex, group["id"], text)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "cannot_parse"
    assert needle in body["detail"]
    assert "text" in [e.get("field") for e in body.get("errors", [])]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": "x" * 501}, {"text": 5}])
def test_a_bad_request_is_422(client, flat, body):
    group, alex, _ = flat
    r = client.post(f"/v1/groups/{group['id']}/expenses/parse", json=body, headers=alex)
    assert r.status_code == 422, r.text


def test_a_non_member_gets_404(potluck, client, flat):
    group, _, _ = flat
    stranger = person(potluck, "eve@example.com", "Eve")
    r = parse(client, stranger, group["id"], "taxi 30")
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "group_not_found"
    r = parse(client, stranger, "grp_nope", "taxi 30")
    assert r.status_code == 404


def test_needs_a_person(client, flat):
    group, _, _ = flat
    r = client.post(f"/v1/groups/{group['id']}/expenses/parse", json={"text": "taxi 30"})
    assert r.status_code == 401


# --- the LLM backend, against a local fake chat completions server ---------------------------


class FakeLLM:
    """A local OpenAI-compatible endpoint: answers with ``self.content`` (or ``self.status``)."""

    def __init__(self) -> None:
        self.content = ""
        self.status = 200
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers["content-length"])
                fake.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                reply = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": fake.content}}]}
                ).encode()
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm(potluck, monkeypatch):
    fake = FakeLLM()
    monkeypatch.setattr(potluck.settings, "llm_url", fake.url)
    monkeypatch.setattr(potluck.settings, "llm_api_key", SecretStr("sk-test"))
    monkeypatch.setattr(potluck.settings, "llm_timeout_seconds", 5.0)
    yield fake
    fake.close()


def test_llm_answer_is_used_when_valid(client, flat, llm):
    group, alex, m = flat
    llm.content = json.dumps(
        {
            "description": "Dinner",
            "amount": 9000,
            "currency": "EUR",
            "date": "2025-12-30",
            "category": "food",
            "paid_by": [{"user_id": m["alex"], "amount": 9000}],
            "split": {
                "method": "exact",
                "shares": [
                    {"user_id": m["alex"], "value": 2000},
                    {"user_id": m["bob"], "value": 5000},
                    {"user_id": m["ann"], "value": 2000},
                ],
            },
        }
    )
    r = parse(client, alex, group["id"], "I paid 90 for dinner, Bob owes 50, Ann and I 20 each")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["parser"] == "llm"
    assert {o["user_id"]: o["amount"] for o in body["owed"]} == {
        m["alex"]: 2000,
        m["bob"]: 5000,
        m["ann"]: 2000,
    }
    assert body["proposal"]["date"] == "2025-12-30"
    # the model got the text, the members and who "I" is; with the key
    sent = llm.requests[-1]
    assert sent["auth"] == "Bearer sk-test"
    question = json.loads(sent["body"]["messages"][-1]["content"])
    assert question["text"].startswith("I paid 90")
    assert question["me"]["id"] == m["alex"]
    assert {x["id"] for x in question["members"]} == set(m.values())


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ("this is not JSON", 200),
        (json.dumps({"description": "Dinner", "amount": 90.5}), 200),  # a float amount
        (  # shares that do not sum to the amount
            json.dumps(
                {
                    "description": "Dinner",
                    "amount": 9000,
                    "split": {"method": "exact", "shares": [{"user_id": "mbr_x", "value": 1}]},
                }
            ),
            200,
        ),
        ("", 500),
    ],
)
def test_an_unusable_llm_answer_falls_back_to_the_rules(client, flat, llm, content, status):
    group, alex, m = flat
    llm.content, llm.status = content, status
    r = parse(
        client, alex, group["id"], "I paid 90 for dinner with Bob and Ann, Bob had wine for 20"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["parser"] == "rules"
    assert "language model" in body["warnings"][0]
    assert {o["user_id"]: o["amount"] for o in body["owed"]} == {
        m["alex"]: 2334,
        m["bob"]: 4333,
        m["ann"]: 2333,
    }
    assert llm.requests  # it was asked


def test_llm_fallback_still_refuses_what_the_rules_cannot_read(client, flat, llm):
    group, alex, _ = flat
    llm.content = "nope"
    r = parse(client, alex, group["id"], "dinner with Bob")
    assert r.status_code == 422
    assert r.json()["code"] == "cannot_parse"
