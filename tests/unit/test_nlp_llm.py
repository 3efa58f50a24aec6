"""The LLM backend with httpx.MockTransport (no network, no database): a valid answer is
used; every kind of unusable answer falls back to the rule parser with a warning."""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest

from potluck.config import Settings
from potluck.nlp import llm
from potluck.nlp.parser import MemberRef, ParseError, owed

MEMBERS = [MemberRef("mbr_a", "Alex Kim"), MemberRef("mbr_b", "Bob Smith")]
IDS = [m.id for m in MEMBERS]
TEXT = "I paid 30 for lunch with Bob"
SETTINGS = Settings(
    database_url="sqlite://",
    secret_key="x" * 40,
    llm_url="http://llm.test/v1/chat/completions",
    llm_api_key="sk-test",
)


def answer(content: str, status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"choices": [{"message": {"content": content}}]})

    return httpx.MockTransport(handler)


def run(transport: httpx.BaseTransport, text: str = TEXT, settings: Settings = SETTINGS):
    return llm.parse(
        text,
        members=MEMBERS,
        me="mbr_a",
        today=date(2026, 11, 21),
        currency="EUR",
        settings=settings,
        transport=transport,
    )


GOOD = {
    "description": "Lunch",
    "amount": 3000,
    "currency": "EUR",
    "category": "food",
    "paid_by": [{"user_id": "mbr_a", "amount": 3000}],
    "split": {
        "method": "shares",
        "shares": [{"user_id": "mbr_a", "value": 1}, {"user_id": "mbr_b", "value": 2}],
    },
}


def test_a_valid_answer_is_used_and_the_request_is_openai_shaped():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        content = "```json\n" + json.dumps(GOOD) + "\n```"  # fenced, as models like to
        return httpx.Response(200, json={"choices": [{"message": {"content": content}}]})

    proposal, source = run(httpx.MockTransport(handler))
    assert source == "llm"
    assert owed(proposal, IDS) == [("mbr_a", 1000), ("mbr_b", 2000)]
    assert proposal.date == date(2026, 11, 21)  # not given: today
    assert "language model" in proposal.warnings[0]
    body = json.loads(seen[0].content)
    assert seen[0].headers["authorization"] == "Bearer sk-test"
    assert body["model"] == SETTINGS.llm_model
    assert body["messages"][0]["role"] == "system"
    assert json.loads(body["messages"][1]["content"])["text"] == TEXT


@pytest.mark.parametrize(
    "transport",
    [
        answer("not json"),
        answer(json.dumps({**GOOD, "amount": 30.0})),  # a float
        answer(json.dumps({**GOOD, "amount": 2999})),  # payers do not sum
        answer(json.dumps({**GOOD, "paid_by": [{"user_id": "mbr_zzz", "amount": 3000}]})),
        answer(json.dumps({**GOOD, "currency": "ZZZ"})),
        answer(json.dumps({**GOOD, "surprise": 1})),  # not the request's shape
        answer("", status=500),
        httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")),
        httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectTimeout("slow"))),
    ],
)
def test_an_unusable_answer_falls_back_to_the_rules(transport):
    proposal, source = run(transport)
    assert source == "rules"
    assert "not usable" in proposal.warnings[0]
    assert owed(proposal, IDS) == [("mbr_a", 1500), ("mbr_b", 1500)]


def test_without_llm_url_no_request_is_made():
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    settings = SETTINGS.model_copy(update={"llm_url": None})
    proposal, source = run(httpx.MockTransport(handler), settings=settings)
    assert source == "rules"
    assert proposal.warnings == []


def test_both_failing_is_cannot_parse_naming_both():
    with pytest.raises(ParseError) as e:
        run(answer("nope"), text="lunch with Bob")
    assert "no amount" in e.value.message
    assert "language model" in e.value.message
