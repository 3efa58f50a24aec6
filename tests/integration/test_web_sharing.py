"""Sharing pages over HTTP: another person's group is a 404 page, a form sent twice makes one
expense, refusals are shown next to their field, the live preview writes nothing, settle-up
by recording a payment, export and Splitwise import. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from potluck.identity.service import register_user
from potluck.sharing import service as sharing
from potluck.web import sessions
from tests.integration.test_web_auth import error_next_to
from tests.integration.web_helpers import cheap_hashing_fixture, client_fixture  # noqa: F401 - fixtures


class Person:
    def __init__(self, potluck, client: TestClient, name: str) -> None:
        user = register_user(
            potluck, email=f"{name}@example.com", password="correct horse battery", name=name
        )
        self.id = user.id
        self.token = sessions.start_session(potluck, user_id=user.id)
        self.csrf = sessions.load_session(potluck, self.token).csrf_token
        self.client = client

    def get(self, url: str, **kw):
        self.client.cookies.set(sessions.COOKIE, self.token)
        return self.client.get(url, **kw)

    def post(self, url: str, data: dict, **kw):
        self.client.cookies.set(sessions.COOKIE, self.token)
        return self.client.post(
            url, data={"csrf_token": self.csrf, **data}, follow_redirects=False, **kw
        )


def make_group(person: Person, *emails: str) -> str:
    r = person.post(
        "/groups",
        {
            "name": "Flat",
            "currency": "EUR",
            "members": ", ".join(emails),
            "idempotency_key": "new-group",
        },
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


def members(potluck, group_url: str, person: Person) -> dict[str, str]:
    with potluck.db.read() as s:
        group = sharing.get_group(s, group_url.rsplit("/", 1)[1], user_id=person.id)
    return {m.name: m.id for m in group.members}


def expenses(potluck, group_url: str, person: Person) -> list[sharing.ExpenseView]:
    with potluck.db.read() as s:
        rows, _ = sharing.list_expenses(
            s, user_id=person.id, group_id=group_url.rsplit("/", 1)[1], limit=100
        )
    return rows


def test_another_persons_group_is_a_404_page(potluck, client):
    ann, bob = Person(potluck, client, "ann"), Person(potluck, client, "bob")
    group = make_group(ann, "cy@example.com")
    for url in (group, f"{group}/expenses/new", f"{group}/export.csv", "/groups/grp_nope"):
        r = bob.get(url)
        assert r.status_code == 404, url
        assert "text/html" in r.headers["content-type"]
        assert "Page not found" in r.text
    r = bob.post(f"{group}/expenses", {"description": "Sneaky", "amount": "10"})
    assert r.status_code == 404
    r = bob.post(f"{group}/members", {"email": "bob@example.com"})
    assert r.status_code == 404
    assert expenses(potluck, group, ann) == []
    assert "bob" not in members(potluck, group, ann)
    # the API keeps its problem+json
    assert client.get("/v1/nope").headers["content-type"] == "application/problem+json"


def test_expense_form_twice_is_one_expense_and_errors_sit_next_to_fields(potluck, client):
    ann = Person(potluck, client, "ann")
    group = make_group(ann, "bob@example.com", "cy@example.com")
    ids = members(potluck, group, ann)
    form = {
        "description": "Dinner",
        "amount": "60",
        "paid_by": ids["ann"],
        "method": "percent",
        "value_" + ids["ann"]: "50",
        "value_" + ids["bob"]: "25",
        "value_" + ids["cy"]: "25",
        "idempotency_key": "form-1",
    }
    # the live preview: each share, nothing written
    r = ann.post(f"{group}/expenses/preview", form)
    assert r.status_code == 200
    shares = dict(re.findall(r'data-share="(\w+)">([^<]+)<', r.text))
    assert shares == {ids["ann"]: "€30.00", ids["bob"]: "€15.00", ids["cy"]: "€15.00"}
    assert expenses(potluck, group, ann) == []
    # every other split method, through the same preview
    a, b, c = ids["ann"], ids["bob"], ids["cy"]
    cases = [
        ({"method": "equal", f"include_{a}": "on", f"include_{b}": "on"}, ["€30.00", "€30.00"]),
        ({"method": "exact", f"value_{a}": "10", f"value_{b}": "50"}, ["€10.00", "€50.00"]),
        (
            {"method": "shares", f"value_{a}": "2", f"value_{b}": "1", f"value_{c}": "1"},
            ["€30.00", "€15.00", "€15.00"],
        ),
        (
            {
                "method": "adjustment",
                f"include_{a}": "on",
                f"include_{b}": "on",
                f"value_{b}": "-6",
            },
            ["€33.00", "€27.00"],
        ),
        (
            {
                "method": "itemized",
                "item_amount_0": "40",
                f"item_0_{a}": "on",
                "item_amount_1": "10",
                f"item_1_{a}": "on",
                f"item_1_{b}": "on",
                "tax": "10",
            },
            ["€54.00", "€6.00"],
        ),
    ]
    for fields, expected in cases:
        base = {k: v for k, v in form.items() if not k.startswith("value_")}
        r = ann.post(f"{group}/expenses/preview", base | fields)
        assert re.findall(r'data-share="\w+">([^<]+)<', r.text) == expected, fields
    r = ann.post(f"{group}/expenses/preview", form | {"method": "exact", f"value_{c}": "1"})
    assert "The amounts add up to €76.00, not €60.00." in r.text
    assert expenses(potluck, group, ann) == []

    # refusals next to their field, what was typed kept
    r = ann.post(f"{group}/expenses", form | {"amount": "12.345"})
    assert r.status_code == 422
    assert "decimal places" in error_next_to(r.text, "amount")
    assert 'value="Dinner"' in r.text
    r = ann.post(f"{group}/expenses", form | {"value_" + ids["bob"]: "lots"})
    assert "not a percentage" in error_next_to(r.text, "value_" + ids["bob"])
    r = ann.post(f"{group}/expenses", form | {"value_" + ids["bob"]: "20"})  # 95 %
    assert error_next_to(r.text, "method") == "The percentages add up to 95 %, not 100 %."
    assert expenses(potluck, group, ann) == []

    # the same form twice (a double click, a retry): one expense, the same page both times
    first = ann.post(f"{group}/expenses", form)
    second = ann.post(f"{group}/expenses", form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == group
    saved = expenses(potluck, group, ann)
    assert len(saved) == 1
    assert sorted(a for _, a in saved[0].owed) == [1500, 1500, 3000]
    # a new form (a new key) is a new expense
    assert ann.post(f"{group}/expenses", form | {"idempotency_key": "form-2"}).status_code == 303
    assert len(expenses(potluck, group, ann)) == 2


def test_settle_up_export_and_import(potluck, client):
    ann, bob = Person(potluck, client, "ann"), Person(potluck, client, "bob")
    group = make_group(ann, "bob@example.com")
    ids = members(potluck, group, ann)
    r = ann.post(
        f"{group}/expenses",
        {
            "description": "Taxi",
            "amount": "30",
            "method": "equal",
            "paid_by": ids["ann"],
            "include_" + ids["ann"]: "on",
            "include_" + ids["bob"]: "on",
            "idempotency_key": "k",
        },
    )
    assert r.status_code == 303
    page = ann.get(group).text
    assert "bob pays ann" in page
    r = ann.post(
        f"{group}/settlements",
        {
            "from": ids["bob"],
            "to": ids["ann"],
            "amount": "1500",
            "method": "cash",
            "idempotency_key": "pay-1",
        },
    )
    assert r.status_code == 303
    page = ann.get(group).text
    assert "Everyone is settled up." in page
    assert "owes " not in page
    assert "gets back" not in page

    # Bob pays the next one; Ann's "pay from wallet" is refused (her wallet is empty): the
    # settlement service's error is shown and she still owes.
    r = bob.post(
        f"{group}/expenses",
        {
            "description": "Cinema",
            "category": "fun",
            "amount": "30",
            "paid_by": ids["bob"],
            "method": "equal",
            "include_" + ids["ann"]: "on",
            "include_" + ids["bob"]: "on",
            "idempotency_key": "c",
        },
    )
    assert r.status_code == 303
    assert "Pay from wallet" in ann.get(group).text
    # the expense filters: category, member, dates
    fun = ann.get(f"{group}?category=fun").text
    assert "<td>Cinema</td>" in fun
    assert "<td>Taxi</td>" not in fun
    assert "<td>Taxi</td>" in ann.get(f"{group}?member={ids['ann']}").text
    assert "No expenses match these filters" in ann.get(f"{group}?from=2999-01-01").text
    r = ann.post(
        f"{group}/settlements",
        {
            "from": ids["ann"],
            "to": ids["bob"],
            "amount": "1500",
            "method": "wallet",
            "idempotency_key": "wallet-1",
        },
    )
    if r.status_code == 303:  # the wallet payment was tried and failed: a message says so
        page = ann.get(r.headers["location"]).text
        assert "The wallet payment was refused: insufficient funds." in page
    else:
        assert 'class="alert alert-error" role="alert"' in r.text, r.text
        page = r.text
    assert "owes €15.00" in page
    # the dashboard: what Ann owes and is owed across her groups, and the recent activity
    dashboard = ann.get("/dashboard").text
    assert 'You owe <span class="amount-owe">€15.00</span>' in dashboard
    assert 'You are owed <span class="amount-owed">€0.00</span>' in dashboard
    assert "bob added “Cinema” (€30.00) in Flat" in dashboard
    assert "bob paid ann €15.00 in Flat" in dashboard

    r = ann.get(f"{group}/export.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert "Taxi" in r.text
    assert ann.get(f"{group}/export.json").json()["format"] == "potluck.group.v1"

    csv = (
        "Date,Description,Category,Cost,Currency,Ann,Dan\n"
        "2026-03-03,Groceries,Groceries,20.00,EUR,10.00,-10.00\n"
    )
    form = {
        "name": "Imported",
        "me": "Ann",
        "members": "Dan = dan@example.com",
        "idempotency_key": "imp",
    }
    r = ann.post("/groups/import", form, files={"file": ("x.csv", csv.encode(), "text/csv")})
    assert r.status_code == 303, r.text
    imported = r.headers["location"]
    assert members(potluck, imported, ann).keys() == {"ann", "Dan"}
    assert [e.description for e in expenses(potluck, imported, ann)] == ["Groceries"]
    r = ann.post("/groups/import", form | {"idempotency_key": "imp2"})  # no file
    assert r.status_code == 422
    assert "CSV file" in error_next_to(r.text, "file")


@pytest.mark.postgres_only
def test_the_same_form_sent_at_the_same_time_runs_once(potluck, client):
    """Two submissions of one form racing (threads): one effect, both see its result."""
    import threading

    from potluck.web.forms import run_once

    ann = Person(potluck, client, "ann")
    group_id = make_group(ann, "bob@example.com").rsplit("/", 1)[1]
    barrier = threading.Barrier(2)
    results: list[str] = []

    def effect(s):
        e = sharing.create_expense(
            s,
            user_id=ann.id,
            group_id=group_id,
            description="Race",
            amount=100,
            now=potluck.clock.now(),
        )
        return f"/groups/{group_id}#{e.id}"

    def submit():
        barrier.wait(timeout=10)  # both look for the key before either has stored it
        results.append(run_once(potluck, user_id=ann.id, key="same", effect=effect))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2
    assert results[0] == results[1]
    assert len(expenses(potluck, f"/groups/{group_id}", ann)) == 1


def test_type_it_previews_the_parse_and_saves_what_was_previewed(potluck, client):
    ann = Person(potluck, client, "ann")
    group = make_group(ann, "bob@example.com", "cy@example.com")
    ids = members(potluck, group, ann)
    text = "I paid 90 for dinner with bob and cy, bob had wine for 20"
    # htmx: the partial; without JavaScript: the whole page with the parse in it
    partial = ann.post(f"{group}/parse", {"text": text}, headers={"HX-Request": "true"})
    page = ann.post(f"{group}/parse", {"text": text})
    for r in (partial, page):
        assert r.status_code == 200
        shares = dict(re.findall(r'data-share="(\w+)">([^<]+)<', r.text))
        assert shares == {ids["ann"]: "€23.34", ids["bob"]: "€43.33", ids["cy"]: "€23.33"}
    assert "<html" not in partial.text
    assert "<html" in page.text
    assert expenses(potluck, group, ann) == []

    proposal = re.search(r'name="proposal" value="([^"]+)"', partial.text).group(1)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', partial.text).group(1)
    form = {"proposal": html.unescape(proposal), "text": text, "idempotency_key": key}
    for _ in range(2):  # sent twice: saved once
        r = ann.post(f"{group}/expenses/parsed", form)
        assert r.status_code == 303
        assert r.headers["location"] == group
    (saved,) = expenses(potluck, group, ann)
    assert saved.amount == 9000
    assert sorted(saved.owed) == sorted([(ids["ann"], 2334), (ids["bob"], 4333), (ids["cy"], 2333)])
    # a proposal that is not a valid create request is refused on the page, nothing saved
    r = ann.post(
        f"{group}/expenses/parsed",
        form | {"proposal": '{"amount": 1.5}', "idempotency_key": "other"},
    )
    assert r.status_code == 422
    assert "could not be saved" in error_next_to(r.text, "text")
    assert len(expenses(potluck, group, ann)) == 1
