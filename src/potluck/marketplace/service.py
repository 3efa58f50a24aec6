"""Marketplace use cases, in one place for the rest of Potluck to import.

``from potluck.marketplace import service as marketplace`` then ``marketplace.create_party``,
``marketplace.record_order``, … Each use case takes the caller's session; the caller commits
once. The code lives in ``parties``, ``accounts`` (the platform's PSP receivable and
clearing accounts), ``rules`` (versioned split rules), ``orders``, ``splitting`` (the
splitter and the wallet credits, run by the event handlers) and ``refunds``.
"""

from __future__ import annotations

from potluck.marketplace.accounts import CLEARING_CODE, PSP_RECEIVABLE_CODE, platform_accounts
from potluck.marketplace.orders import (
    AllocationView,
    OrderView,
    RefundView,
    get_order,
    list_orders,
    record_order,
)
from potluck.marketplace.parties import (
    PARTY_KINDS,
    WALLET_CODE,
    PartyView,
    create_party,
    get_party,
    list_parties,
    platform_book,
    platform_scope,
    wallet_balance,
)
from potluck.marketplace.refunds import refund_order
from potluck.marketplace.rules import (
    RuleSetView,
    check_split_parties,
    current_split_rules,
    put_split_rules,
)
from potluck.marketplace.splitting import (
    SplitCreditView,
    apply_credit,
    apply_credits,
    credit_transfer_id,
    list_split_history,
    split_order,
    split_orders,
)

__all__ = [
    "CLEARING_CODE",
    "PARTY_KINDS",
    "PSP_RECEIVABLE_CODE",
    "WALLET_CODE",
    "AllocationView",
    "OrderView",
    "PartyView",
    "RefundView",
    "RuleSetView",
    "SplitCreditView",
    "apply_credit",
    "apply_credits",
    "check_split_parties",
    "create_party",
    "credit_transfer_id",
    "current_split_rules",
    "get_order",
    "get_party",
    "list_orders",
    "list_parties",
    "list_split_history",
    "platform_accounts",
    "platform_book",
    "platform_scope",
    "put_split_rules",
    "record_order",
    "refund_order",
    "split_order",
    "split_orders",
    "wallet_balance",
]
