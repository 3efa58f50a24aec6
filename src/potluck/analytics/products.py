"""Which ledger transfer codes are which product's money movements: the one table analytics
reads the ledger through.

A movement counts once, where it happens: a transfer that is only the second leg of the same
money (an IOU's owed side, a split's credits to the parties of an order already counted, the
platform-book leg of a wallet payment to a merchant) maps to no product. One euro can still
pass through several products (a group order's share is checkout volume, the confirmed order
is marketplace volume, its payout is payouts volume), so product volumes do not add up to a
total of money that entered Potluck.

Found with ``grep -rn 'code=' src/potluck/<product>``; a new code lands in "other" until it
is added here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CodeRule:
    code: str
    product: str | None  # None: not counted (a second leg of money counted elsewhere)
    purpose: str | None = None  # only transfers whose metadata "purpose" is this
    book: str | None = None  # only transfers in this book
    note: str = ""


PRODUCTS = ("wallets", "marketplace", "checkout", "payouts", "payments", "sharing", "refunds")
OTHER = "other"

CODE_RULES: tuple[CodeRule, ...] = (
    # wallets (src/potluck/wallets/service.py)
    CodeRule("wallet_transfer", "wallets", note="person to person"),
    CodeRule("wallet_payment", "wallets", book="money", note="person to merchant, money leg"),
    CodeRule("wallet_payment", None, note="person to merchant, platform-book leg"),
    # marketplace (src/potluck/marketplace/orders.py, splitting.py)
    CodeRule("order_payment", "marketplace", note="a paid order enters the platform"),
    CodeRule("split_credit", None, note="the order's split to its parties"),
    # payments (src/potluck/payments/service.py): by the intent's purpose
    CodeRule("payment", "checkout", purpose="group_order", note="a group order share"),
    CodeRule("payment", "payments", purpose="wallet_top_up", note="a wallet top-up"),
    CodeRule("payment", "payments", note="any other payment intent"),
    CodeRule("refund", "refunds", note="payments and marketplace refunds"),
    CodeRule("refund_reversal", "refunds"),
    # payouts (src/potluck/payouts/service.py): the hold, counted when it is posted
    CodeRule("payout", "payouts"),
    # sharing (src/potluck/sharing/expenses.py, balances.py): book iou
    CodeRule("iou_paid", "sharing", note="an expense, by what was paid"),
    CodeRule("iou_owed", None, note="the same expense, by what is owed"),
    CodeRule("iou_settlement", "sharing", note="a settle-up"),
)

# Transfers that moved money: posted ones and posts of holds (a hold itself, its void or
# expiry moved nothing).
MOVING_KINDS = ("posted", "post_pending")
