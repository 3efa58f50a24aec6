"""The optional LLM backend: an OpenAI-compatible chat completions endpoint (``llm_url``).

The text, the members (id, name) and the caller go to the model, which is asked for the
create-expense request as JSON. The reply is held to the same rules as a request: the
``ExpenseCreate`` schema, members of the group, payers and shares that sum exactly to the
amount. Anything else (no answer, a timeout, not JSON, wrong sums) falls back to the rule
parser with a warning saying so. Never called inside a database transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date

import httpx
from pydantic import ValidationError

from potluck.config import Settings
from potluck.errors import DomainError
from potluck.money import MoneyError, check_currency
from potluck.nlp.parser import MemberRef, ParseError, Proposal, owed, parse_expense
from potluck.splits.expense import ExpenseSplit, check_payers

Source = str  # "rules" | "llm"

SYSTEM_PROMPT = """You read one shared expense written in plain words and answer with JSON only:
{"description": str, "amount": int, "currency": str, "date": "YYYY-MM-DD", "category": str,
 "paid_by": [{"user_id": str, "amount": int}],
 "split": {"method": "equal"|"exact"|"percent"|"shares"|"adjustment"|"itemized",
           "shares": [{"user_id": str, "value": int|null}],
           "items": [{"amount": int, "user_ids": [str], "description": str}], "tax": 0, "tip": 0}}
Amounts are integers in minor units of the currency (cents: 12.50 EUR is 1250; JPY has none).
user_id is a member id from the list given. "I", "me" and "my" are the member named as "me".
percent values are basis points summing to 10000; exact values sum to the amount; shares are
weights. Categories: food, groceries, transport, travel, housing, utilities, entertainment,
household, shopping, health, general. Dates are relative to "today"."""


class LLMUnusable(Exception):
    """The model's answer cannot be used; the message says why (for the warning)."""


def _content(reply: httpx.Response) -> str:
    reply.raise_for_status()
    try:
        content = reply.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMUnusable("not a chat completions reply") from None
    if not isinstance(content, str):
        raise LLMUnusable("the reply has no text")
    # models like to wrap JSON in a code fence
    fenced = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", content, re.S)
    return fenced.group(1) if fenced else content


def _proposal(
    raw: str, *, members: Sequence[MemberRef], me: str, today: date, currency: str
) -> Proposal:
    from potluck.sharing.schemas import ExpenseCreate  # the create request's own schema

    try:
        body = ExpenseCreate.model_validate_json(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise LLMUnusable(f"the answer does not fit the request schema ({where})") from None
    ids = [m.id for m in members]
    cur = body.currency or currency
    try:
        check_currency(cur)
    except MoneyError as e:
        raise LLMUnusable(str(e)) from None
    paid_by = body.payers() or [(me, body.amount)]
    split = body.split.to_split() if body.split else ExpenseSplit(method="equal")
    warnings = ["read by the language model: check it before saving"]
    if cur != currency:
        warnings.append(f"the amount is in {cur}, the group's currency is {currency}")
    proposal = Proposal(
        description=body.description,
        amount=body.amount,
        currency=cur,
        date=body.date or today,
        category=body.category or "general",
        paid_by=paid_by,
        split=split,
        warnings=warnings,
    )
    try:
        check_payers(proposal.amount, paid_by, ids)
        owed(proposal, ids)
    except DomainError as e:
        raise LLMUnusable(e.message) from None
    return proposal


def parse_with_llm(
    text: str,
    *,
    members: Sequence[MemberRef],
    me: str,
    today: date,
    currency: str,
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
) -> Proposal:
    """Ask the model; raise ``LLMUnusable`` (or an httpx error) when its answer is no good."""
    assert settings.llm_url
    me_name = next((m.name for m in members if m.id == me), "")
    question = {
        "text": text,
        "members": [{"id": m.id, "name": m.name} for m in members],
        "me": {"id": me, "name": me_name},
        "today": today.isoformat(),
        "group_currency": currency,
    }
    key = settings.llm_api_key
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
    payload = {
        "model": settings.llm_model,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(question, ensure_ascii=False)},
        ],
    }
    with httpx.Client(timeout=settings.llm_timeout_seconds, transport=transport) as client:
        reply = client.post(settings.llm_url, json=payload, headers=headers)
    raw = _content(reply)
    return _proposal(raw, members=members, me=me, today=today, currency=currency)


def parse(
    text: str,
    *,
    members: Sequence[MemberRef],
    me: str,
    today: date,
    currency: str,
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
) -> tuple[Proposal, Source]:
    """The LLM's reading when configured and usable, else the rule parser's.

    ``ParseError`` (422 ``cannot_parse``) only when the rule parser refuses too.
    """
    if settings.llm_url:
        try:
            proposal = parse_with_llm(
                text,
                members=members,
                me=me,
                today=today,
                currency=currency,
                settings=settings,
                transport=transport,
            )
            return proposal, "llm"
        except (LLMUnusable, httpx.HTTPError) as e:
            reason = str(e) if isinstance(e, LLMUnusable) else type(e).__name__
            try:
                proposal = parse_expense(
                    text, members=members, me=me, today=today, currency=currency
                )
            except ParseError as refusal:
                raise ParseError(
                    f"{refusal.message} (the language model's answer was not usable: {reason})"
                ) from None
            proposal.warnings.insert(
                0, f"the language model's answer was not usable ({reason}); read by the rules"
            )
            return proposal, "rules"
    return parse_expense(text, members=members, me=me, today=today, currency=currency), "rules"
