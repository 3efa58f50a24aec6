"""Sharing use cases, in one place for the rest of Potluck to import.

``from potluck.sharing import service as sharing``. Each use case takes the caller's session;
the caller commits once. The code lives in ``groups`` (groups, members, claiming places),
``expenses`` (expenses, their versions in the ledger, comments), ``balances`` (balances,
settle-up, settlements, friends) and ``activity``.
"""

from __future__ import annotations

from potluck.sharing.groups import (
    EXPENSES_CODE,
    IOU_BOOK,
    MEMBER_CODE,
    GroupView,
    MemberView,
    add_member,
    claim_places,
    create_group,
    get_group,
    group_members,
    group_scope,
    list_groups,
    member_for_user,
    remove_member,
)

__all__ = [
    "EXPENSES_CODE",
    "IOU_BOOK",
    "MEMBER_CODE",
    "GroupView",
    "MemberView",
    "add_member",
    "claim_places",
    "create_group",
    "get_group",
    "group_members",
    "group_scope",
    "list_groups",
    "member_for_user",
    "remove_member",
]
