"""The start page and the dashboard: what I owe and am owed, recent activity."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from potluck.notify.inbox import list_notifications
from potluck.sharing import service as sharing
from potluck.web.pages import CurrentWebUser, OptionalWebUser, app_of, money, redirect, render

router = APIRouter(include_in_schema=False)

GROUPS_MAX = 100
ACTIVITY_PER_GROUP = 5
RECENT = 12


@dataclass(frozen=True, slots=True)
class Totals:
    currency: str
    owed: int  # others owe me
    owe: int  # I owe others (positive number)

    @property
    def net(self) -> int:
        return self.owed - self.owe


@dataclass(frozen=True, slots=True)
class RecentItem:
    at: datetime
    text: str
    href: str | None


def describe_activity(a: sharing.ActivityView, names: dict[str, str], group: str) -> str:
    """One line for an activity entry, in plain words."""
    d: dict[str, Any] = a.data
    actor = names.get(a.actor_member_id or "", "Someone")
    if a.type.startswith("expense."):
        action = a.type.removeprefix("expense.")
        verb = {"created": "added", "updated": "changed"}.get(action, action)
        amount = money(d.get("amount"), str(d.get("currency", "")))
        return f"{actor} {verb} “{d.get('description', '')}” ({amount}) in {group}"
    if a.type == "settlement.recorded":
        amount = money(d.get("amount"), str(d.get("currency", "")))
        return (
            f"{names.get(str(d.get('from')), 'Someone')} paid "
            f"{names.get(str(d.get('to')), 'someone')} {amount} in {group}"
        )
    if a.type == "member.added":
        return f"{d.get('name') or d.get('email')} joined {group}"
    if a.type == "member.removed":
        return f"{d.get('name') or d.get('email')} left {group}"
    if a.type == "group.created":
        return f"{actor} created {group}"
    if a.type == "comment.added":
        return f"{actor} commented in {group}: {d.get('text', '')}"
    return f"{a.type} in {group}"


@router.get("/")
def start(request: Request, user: OptionalWebUser) -> Response:
    return redirect("/dashboard" if user is not None else "/signin")


@router.get("/dashboard")
def dashboard(request: Request, user: CurrentWebUser) -> Response:
    app = app_of(request)
    owed: dict[str, int] = defaultdict(int)
    owe: dict[str, int] = defaultdict(int)
    recent: list[RecentItem] = []
    with app.db.read() as s:
        groups, _ = sharing.list_groups(s, user_id=user.id, limit=GROUPS_MAX)
        for g in groups:
            names = {m.id: m.name for m in g.members}
            for b in sharing.group_balances(s, g.id, user_id=user.id):
                if b.member.user_id != user.id:
                    continue
                if b.balance > 0:
                    owed[g.currency] += b.balance
                elif b.balance < 0:
                    owe[g.currency] += -b.balance
            rows, _ = sharing.list_activity(s, g.id, user_id=user.id, limit=ACTIVITY_PER_GROUP)
            recent += [
                RecentItem(a.created_at, describe_activity(a, names, g.name), f"/groups/{g.id}")
                for a in rows
            ]
        notes, _ = list_notifications(s, user_id=user.id, limit=RECENT)
    recent += [
        RecentItem(
            n.created_at,
            f"{n.title}: {n.body}" if n.body else n.title,
            (f"/orders/{n.data['group_order']}" if n.data.get("group_order") else None),
        )
        for n in notes
    ]
    recent.sort(key=lambda r: r.at, reverse=True)
    totals = [Totals(c, owed.get(c, 0), owe.get(c, 0)) for c in sorted(set(owed) | set(owe))]
    return render(request, "dashboard.html", totals=totals, recent=recent[:RECENT], groups=groups)
