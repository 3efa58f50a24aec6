"""Platform console pages (TestClient, SQLite and PostgreSQL): every console page of another
person's platform is the 404 page; the secret key is shown once; the split-rule preview is
the exact allocation and writes nothing; rules saved; forms sent twice have one effect."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from potluck.identity.service import create_platform, get_platform
from potluck.marketplace import service as marketplace
from potluck.marketplace.models import Order, Party, SplitRuleSet
from potluck.splits import SplitRule, SplitRules, allocate_split
from tests.integration.test_checkout_helpers import person
from tests.integration.web_helpers import cheap_hashing_fixture, client_fixture, sign_in  # noqa: F401 - fixtures

SECRET = re.compile(r'value="(sk_[A-Za-z0-9_-]+)"')
SECTIONS = ("", "/keys", "/parties", "/rules", "/orders", "/payouts", "/ledger", "/webhooks")


def count(potluck, model):
    with potluck.db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_another_persons_platform_is_a_404_page_and_the_key_is_shown_once(potluck, client):
    owner, _ = person(potluck, "olga")
    other, _ = person(potluck, "otto")
    csrf = sign_in(potluck, client, owner)

    # Create a platform from the console: the secret key is in that answer and nowhere else.
    form = {"csrf_token": csrf, "idempotency_key": "new-platform-1", "name": "Eats"}
    created = client.post("/console/platforms", data=form)
    assert created.status_code == 200, created.text
    assert created.headers["cache-control"] == "no-store"
    secret = SECRET.search(created.text).group(1)
    assert (
        client.get("/v1/parties", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    )
    again = client.post("/console/platforms", data=form, follow_redirects=False)
    assert again.status_code == 303
    assert "sk_" not in again.text
    index = client.get("/console")
    assert index.text.count("/console/plt_") == 1
    assert secret not in index.text
    platform_id = re.search(r"/console/(plt_[A-Za-z0-9]+)", index.text).group(1)
    for section in SECTIONS:
        page = client.get(f"/console/{platform_id}{section}")
        assert page.status_code == 200, (section, page.text[:300])
        assert secret not in page.text

    # Rotate: a new key shown once, the old one stops; the same form again rotates nothing.
    rotate = {"csrf_token": csrf, "idempotency_key": "rotate-1"}
    rotated = client.post(f"/console/{platform_id}/keys/rotate", data=rotate)
    new_secret = SECRET.search(rotated.text).group(1)
    assert new_secret != secret
    prefix = get_platform(potluck, platform_id=platform_id, owner_user_id=owner).key_prefix
    assert new_secret.startswith(prefix)
    resent = client.post(f"/console/{platform_id}/keys/rotate", data=rotate)
    assert resent.status_code == 200
    assert SECRET.search(resent.text) is None
    assert get_platform(potluck, platform_id=platform_id, owner_user_id=owner).key_prefix == prefix
    assert (
        client.get("/v1/parties", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )
    ok = client.get("/v1/parties", headers={"Authorization": f"Bearer {new_secret}"})
    assert ok.status_code == 200

    # A webhook endpoint: its signing secret shown once (the form sent twice adds one), then
    # disabled. A refused URL is shown next to the URL field.
    hook = {
        "csrf_token": csrf,
        "idempotency_key": "hook-1",
        "url": "https://93.184.216.34/potluck",
        "events": ["payout.completed", "payout.failed"],
    }
    made = client.post(f"/console/{platform_id}/webhooks", data=hook)
    assert made.status_code == 200
    assert 'data-testid="signing-secret"' in made.text
    twice = client.post(f"/console/{platform_id}/webhooks", data=hook)
    assert twice.status_code == 200
    assert 'data-testid="signing-secret"' not in twice.text
    endpoint_id = re.search(r"/webhooks/(whe_\w+)/disable", twice.text).group(1)
    assert client.get(f"/console/{platform_id}/webhooks").text.count("/webhooks/whe_") == 1
    local = dict(hook, idempotency_key="hook-2", url="https://127.0.0.1/hook")
    refused = client.post(f"/console/{platform_id}/webhooks", data=local)
    assert refused.status_code == 422
    assert 'id="url-error"' in refused.text
    client.post(f"/console/{platform_id}/webhooks/{endpoint_id}/disable", data={"csrf_token": csrf})
    assert "badge-disabled" in client.get(f"/console/{platform_id}/webhooks/{endpoint_id}").text

    # Another person: every console page of that platform is the 404 page, posts change nothing.
    other_csrf = sign_in(potluck, client, other)
    for section in SECTIONS:
        page = client.get(f"/console/{platform_id}{section}")
        assert page.status_code == 404, section
        assert "text/html" in page.headers["content-type"]
    for action in ("keys/rotate", "keys/revoke", "parties"):
        refused = client.post(
            f"/console/{platform_id}/{action}",
            data={
                "csrf_token": other_csrf,
                "idempotency_key": f"x-{action}",
                "name": "Mine",
                "kind": "merchant",
                "currency": "EUR",
            },
        )
        assert refused.status_code == 404, action
    assert client.get("/console/plt_doesnotexist").status_code == 404
    view = get_platform(potluck, platform_id=platform_id, owner_user_id=owner)
    assert (view.key_prefix, view.status) == (prefix, "active")
    assert count(potluck, Party) == 0
    assert client.get(f"/console/{platform_id}/webhooks/{endpoint_id}").status_code == 404

    # The owner revokes the key: it stops authenticating.
    csrf = sign_in(potluck, client, owner)
    revoked = client.post(f"/console/{platform_id}/keys/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 200
    assert get_platform(potluck, platform_id=platform_id, owner_user_id=owner).status == "revoked"
    gone = client.get("/v1/parties", headers={"Authorization": f"Bearer {new_secret}"})
    assert gone.status_code == 401


def test_rule_preview_is_the_exact_allocation_and_forms_sent_twice_act_once(potluck, client):
    owner, _ = person(potluck, "olga")
    platform, _ = create_platform(potluck, name="Eats", owner_user_id=owner)
    pid = platform.id
    csrf = sign_in(potluck, client, owner)

    # Parties through the form; the same form twice adds one party.
    for i, (name, kind) in enumerate(
        (("Pizzeria", "merchant"), ("Courier", "partner"), ("Eats", "platform"))
    ):
        form = {
            "csrf_token": csrf,
            "idempotency_key": f"party-{i}",
            "name": name,
            "kind": kind,
            "currency": "EUR",
        }
        for _ in range(2):
            r = client.post(f"/console/{pid}/parties", data=form, follow_redirects=False)
            assert r.status_code == 303, r.text
    with potluck.db.read() as s:
        parties = {p.name: p.id for p in marketplace.list_parties(s, platform_id=pid, limit=10)[0]}
    assert sorted(parties) == ["Courier", "Eats", "Pizzeria"]
    shop, courier, own = parties["Pizzeria"], parties["Courier"], parties["Eats"]

    # A refused party: the error sits next to its field.
    bad = client.post(
        f"/console/{pid}/parties",
        data={
            "csrf_token": csrf,
            "idempotency_key": "party-bad",
            "name": "X",
            "kind": "merchant",
            "currency": "EURO",
        },
    )
    assert bad.status_code == 422
    assert 'id="currency-error"' in bad.text
    assert 'aria-invalid="true"' in bad.text

    rules = {
        "csrf_token": csrf,
        "idempotency_key": "rules-1",
        "currency": "EUR",
        "rules.0.party": courier,
        "rules.0.type": "percent",
        "rules.0.value": "12.5",
        "rules.1.party": "",
        "rules.1.type": "percent",
        "rules.1.value": "",
        "rules.2.party": own,
        "rules.2.type": "fixed",
        "rules.2.value": "0.99",
        "rules.3.party": own,
        "rules.3.type": "percent",
        "rules.3.value": "3.33",
        "remainder_to": shop,
        "sample_amount": "33.37",
    }
    preview = client.post(f"/console/{pid}/rules/preview", data=rules)
    assert preview.status_code == 200, preview.text
    shown = {
        p: int(a) for p, a in re.findall(r'data-party="(\w+)" data-amount="(\d+)"', preview.text)
    }
    expected = allocate_split(
        3337,
        SplitRules(
            rules=(
                SplitRule(courier, "percent", 1250),
                SplitRule(own, "fixed", 99),
                SplitRule(own, "percent", 333),
            ),
            remainder_to=shop,
        ),
    )
    assert shown == expected
    assert sum(shown.values()) == 3337
    assert re.search(r'data-testid="preview-total" data-amount="3337"', preview.text)
    assert count(potluck, SplitRuleSet) == 0  # a preview writes nothing

    # A wrong value: the preview says so; saving shows it next to that row's field.
    wrong = dict(rules, **{"rules.0.value": "12.555"})
    assert "at most two decimals" in client.post(f"/console/{pid}/rules/preview", data=wrong).text
    refused = client.post(f"/console/{pid}/rules", data=wrong)
    assert refused.status_code == 422
    assert 'id="rules-0-value-error"' in refused.text
    assert re.search(r'id="rules-0-value"[^>]*aria-invalid="true"', refused.text, re.S)
    over = dict(rules, **{"rules.0.value": "99"})  # 99 % + 3.33 % > 100 %
    assert client.post(f"/console/{pid}/rules", data=over).status_code == 422
    assert count(potluck, SplitRuleSet) == 0
    no_js = client.post(f"/console/{pid}/rules", data=dict(rules, action="preview"))
    assert no_js.status_code == 200  # the Preview button without JavaScript: no save
    assert 'data-testid="preview-total" data-amount="3337"' in no_js.text
    assert count(potluck, SplitRuleSet) == 0

    for _ in range(2):  # saved twice with one form: one version
        saved = client.post(f"/console/{pid}/rules", data=rules, follow_redirects=False)
        assert saved.status_code == 303, saved.text
    with potluck.db.read() as s:
        current = marketplace.current_split_rules(s, platform_id=pid, currency="EUR")
    assert current.version == 1
    assert count(potluck, SplitRuleSet) == 1
    assert current.split.to_dict() == {
        "rules": [
            {"party": courier, "type": "percent", "value": 1250},
            {"party": own, "type": "fixed", "value": 99},
            {"party": own, "type": "percent", "value": 333},
        ],
        "remainder_to": shop,
    }
    editor = client.get(f"/console/{pid}/rules?currency=EUR")
    assert 'value="12.5"' in editor.text
    assert "version" in editor.text

    # A test order: recorded once for a form sent twice, split by the saved rules.
    order = {
        "csrf_token": csrf,
        "idempotency_key": "order-1",
        "order_id": "T-1",
        "amount": "33.37",
        "currency": "EUR",
    }
    first = client.post(f"/console/{pid}/orders", data=order, follow_redirects=False)
    second = client.post(f"/console/{pid}/orders", data=order, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert count(potluck, Order) == 1
    potluck.bus.drain()
    page = client.get(first.headers["location"])
    assert page.status_code == 200
    got = {p: int(a) for p, a in re.findall(r'data-party="(\w+)" data-amount="(\d+)"', page.text)}
    assert got == expected
    assert 'data-testid="split-status">completed' in page.text
    # Another order id with a bad amount: the error is next to the amount.
    bad_order = dict(order, idempotency_key="order-2", order_id="T-2", amount="1.234")
    refused = client.post(f"/console/{pid}/orders", data=bad_order)
    assert refused.status_code == 422
    assert 'id="amount-error"' in refused.text
    # The ledger page lists the platform's accounts and the wallet entries.
    ledger_page = client.get(f"/console/{pid}/ledger")
    assert ledger_page.status_code == 200
    assert (
        "split-"
        in client.get(f"/console/{pid}/ledger?account=" + marketplace_wallet(potluck, shop)).text
    )


def marketplace_wallet(potluck, party_id):
    with potluck.db.read() as s:
        return s.scalar(select(Party.wallet_account_id).where(Party.id == party_id))
