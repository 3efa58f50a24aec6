"""Groups and their members.

A member is a place in a group, identified by a member id (``mbr_…``) and an email. People who
have not registered yet are members by email (``user_id`` null); they claim every place
waiting for their email when they register: identity publishes ``user.registered`` in the
registration transaction and the sharing handler (``handlers.py``) fills ``user_id`` and the
name. A place added for an email that is already registered is linked at once.

Each member has an account in the ledger's ``iou`` book (code ``iou_member``, owner the member
id, no balance limits) and each group one ``iou_expenses`` account, the clearing side of every
expense; all of a group's accounts are in scope ``group:<group_id>``. A member's balance is
that account's credits − debits: positive = is owed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.bus import publish
from potluck.clock import utc
from potluck.errors import DomainError
from potluck.identity.models import User
from potluck.identity.service import normalise_email
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.money import check_currency
from potluck.sharing.models import Activity, SharingGroup, SharingMember

IOU_BOOK = "iou"
MEMBER_CODE = "iou_member"
EXPENSES_CODE = "iou_expenses"
GROUP_KINDS = ("group", "direct")
MAX_MEMBERS = 200
NAME_MAX = 200


@dataclass(frozen=True, slots=True)
class MemberView:
    id: str  # "mbr_…"
    group_id: str
    user_id: str | None  # None until that person registers
    email: str
    name: str
    account_id: str
    active: bool  # False once removed from the group
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GroupView:
    id: str
    name: str
    currency: str
    kind: str
    created_by: str
    created_at: datetime
    members: list[MemberView]


def group_scope(group_id: str) -> str:
    return f"group:{group_id}"


def group_not_found(group_id: str) -> DomainError:
    return DomainError("group_not_found", f"no group {group_id}", status=404)


def member_view(m: SharingMember) -> MemberView:
    return MemberView(
        m.id,
        m.group_id,
        m.user_id,
        m.email,
        m.name,
        m.account_id,
        m.removed_at is None,
        utc(m.created_at),
    )


def _group_view(s: Session, g: SharingGroup, *, include_removed: bool = False) -> GroupView:
    return GroupView(
        g.id,
        g.name,
        g.currency,
        g.kind,
        g.created_by,
        utc(g.created_at),
        _members(s, g.id, include_removed=include_removed),
    )


def _members(s: Session, group_id: str, *, include_removed: bool = False) -> list[MemberView]:
    query = select(SharingMember).where(SharingMember.group_id == group_id)
    if not include_removed:
        query = query.where(SharingMember.removed_at.is_(None))
    rows = s.execute(query.order_by(SharingMember.id)).scalars().all()
    return [member_view(m) for m in rows]


def membership(
    s: Session, group_id: str, *, user_id: str, lock: bool = False
) -> tuple[SharingGroup, SharingMember]:
    """The group and the caller's place in it; 404 ``group_not_found`` for a non-member.

    ``lock``: the group row is locked ``FOR UPDATE`` (PostgreSQL) until commit, for a change
    of membership (see ``lock_group``)."""
    query = (
        select(SharingGroup, SharingMember)
        .join(SharingMember, SharingMember.group_id == SharingGroup.id)
        .where(
            SharingGroup.id == group_id,
            SharingMember.user_id == user_id,
            SharingMember.removed_at.is_(None),
        )
    )
    if lock:
        query = query.with_for_update(of=SharingGroup)
    row = s.execute(query).first()
    if row is None:
        raise group_not_found(group_id)
    return row[0], row[1]


def lock_group(s: Session, group_id: str) -> None:
    """The group row, key-share locked (PostgreSQL) until commit: what must be taken before
    reading the member list that an expense or a settlement is posted against.

    A removal locks the group row ``FOR UPDATE`` (``membership(lock=True)``) before it reads
    the leaving member's balance, so the two serialise on this one row: either the posting
    commits first and the removal then sees its balance, or the removal does and the posting's
    member list (read after this lock) no longer has them. ``FOR KEY SHARE`` is the lock the
    foreign keys of the rows the posting inserts take on the group row anyway, so concurrent
    postings in one group do not wait for each other. On SQLite writers are serialised by
    ``BEGIN IMMEDIATE``; no lock is needed."""
    s.connection().execute(
        select(SharingGroup.id)
        .where(SharingGroup.id == group_id)
        .with_for_update(read=True, key_share=True)
    )


def group_members(session: Session, group_id: str, *, user_id: str) -> list[MemberView]:
    """The group's current members (creation order); 404 when ``user_id`` is not one."""
    membership(session, group_id, user_id=user_id)
    return _members(session, group_id)


def member_for_user(session: Session, group_id: str, *, user_id: str) -> MemberView:
    """The caller's own place in the group; 404 ``group_not_found`` for a non-member."""
    return member_view(membership(session, group_id, user_id=user_id)[1])


def get_group(session: Session, group_id: str, *, user_id: str) -> GroupView:
    group, _ = membership(session, group_id, user_id=user_id)
    return _group_view(session, group)


def list_groups(
    session: Session, *, user_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[GroupView], bool]:
    query = (
        select(SharingGroup)
        .join(SharingMember, SharingMember.group_id == SharingGroup.id)
        .where(SharingMember.user_id == user_id, SharingMember.removed_at.is_(None))
    )
    if starting_after is not None:
        try:
            membership(session, starting_after, user_id=user_id)
        except DomainError as exc:
            raise DomainError(
                "invalid_cursor",
                f"starting_after: no group {starting_after}",
                field="starting_after",
            ) from exc
        query = query.where(SharingGroup.id > starting_after)
    rows = session.execute(query.order_by(SharingGroup.id).limit(limit + 1)).scalars().all()
    return [_group_view(session, g) for g in rows[:limit]], len(rows) > limit


def check_emails(emails: list[str], *, field: str = "members") -> list[str]:
    out: list[str] = []
    for i, raw in enumerate(emails):
        try:
            email = normalise_email(raw)
        except ValueError as exc:
            raise DomainError("validation_error", str(exc), field=f"{field}.{i}") from exc
        if email not in out:
            out.append(email)
    return out


def _user(s: Session, user_id: str) -> User:
    user = s.get(User, user_id)
    if user is None:  # a valid token for a deleted user
        raise DomainError("user_not_found", f"no user {user_id}", status=404)
    return user


def user_email(s: Session, user_id: str) -> str:
    return _user(s, user_id).email


def record_activity(
    s: Session,
    *,
    group_id: str,
    type: str,
    actor: str | None,
    subject: str | None,
    data: dict[str, Any],
    now: datetime,
) -> None:
    s.add(
        Activity(
            id=new_id("act"),
            group_id=group_id,
            type=type,
            actor_member_id=actor,
            subject_id=subject,
            data=data,
            created_at=now,
        )
    )


def _add_member(s: Session, group: SharingGroup, email: str, *, now: datetime) -> SharingMember:
    existing = s.scalar(
        select(SharingMember).where(
            SharingMember.group_id == group.id, SharingMember.email == email
        )
    )
    if existing is not None:  # back after a removal: same place, same account
        existing.removed_at = None
        return existing
    user = s.scalar(select(User).where(User.email == email))
    member_id = new_id("mbr")
    account = ledger.create_account(
        s,
        currency=group.currency,
        code=MEMBER_CODE,
        now=now,
        book=IOU_BOOK,
        scope=group_scope(group.id),
        owner=member_id,
    )
    member = SharingMember(
        id=member_id,
        group_id=group.id,
        user_id=user.id if user is not None else None,
        email=email,
        name=user.name if user is not None else email.split("@", 1)[0],
        account_id=account.id,
        created_at=now,
    )
    s.add(member)
    s.flush()
    return member


def _member_event(m: SharingMember, group: SharingGroup) -> dict[str, Any]:
    return {
        "platform_id": None,
        "group_id": group.id,
        "member_id": m.id,
        "user_id": m.user_id,
        "email": m.email,
        "name": m.name,
    }


def create_group(
    session: Session,
    *,
    user_id: str,
    name: str,
    currency: str,
    emails: list[str],
    now: datetime,
    kind: str = "group",
    direct_key: str | None = None,
) -> GroupView:
    """A group with the caller and ``emails`` as members (the caller first)."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise DomainError(
            "validation_error", f"the name must have 1 to {NAME_MAX} characters", field="name"
        )
    try:
        check_currency(currency)
    except Exception as exc:
        raise DomainError("validation_error", str(exc), field="currency") from exc
    if kind not in GROUP_KINDS:
        raise DomainError("validation_error", f"kind must be one of {GROUP_KINDS}", field="kind")
    emails = check_emails(emails)
    creator = _user(session, user_id)
    emails = [creator.email] + [e for e in emails if e != creator.email]
    if len(emails) > MAX_MEMBERS:
        raise DomainError(
            "too_many_members", f"a group has at most {MAX_MEMBERS} members", field="members"
        )
    group_id = new_id("grp")
    expenses = ledger.create_account(
        session,
        currency=currency,
        code=EXPENSES_CODE,
        now=now,
        book=IOU_BOOK,
        scope=group_scope(group_id),
        owner=group_id,
    )
    group = SharingGroup(
        id=group_id,
        name=name,
        currency=currency,
        kind=kind,
        direct_key=direct_key,
        expenses_account_id=expenses.id,
        created_by=user_id,
        created_at=now,
    )
    session.add(group)
    session.flush()
    members = [_add_member(session, group, e, now=now) for e in emails]
    actor = members[0].id
    record_activity(
        session,
        group_id=group_id,
        type="group.created",
        actor=actor,
        subject=group_id,
        data={"name": name, "currency": currency, "kind": kind},
        now=now,
    )
    publish(
        session,
        "sharing_group.created",
        {
            "platform_id": None,
            "group_id": group_id,
            "name": name,
            "currency": currency,
            "kind": kind,
            "created_by": user_id,
            "member_ids": [m.id for m in members],
        },
        now=now,
    )
    for m in members[1:]:
        record_activity(
            session,
            group_id=group_id,
            type="member.added",
            actor=actor,
            subject=m.id,
            data={"email": m.email, "name": m.name},
            now=now,
        )
        publish(session, "sharing_member.added", _member_event(m, group), now=now)
    return _group_view(session, group)


def add_member(
    session: Session, *, user_id: str, group_id: str, email: str, now: datetime
) -> MemberView:
    group, me = membership(session, group_id, user_id=user_id)
    if group.kind == "direct":
        raise DomainError(
            "direct_group",
            "a two-person group outside any group keeps its two members",
            status=409,
        )
    (email,) = check_emails([email], field="email")
    existing = session.scalar(
        select(SharingMember).where(
            SharingMember.group_id == group.id, SharingMember.email == email
        )
    )
    if existing is not None and existing.removed_at is None:
        raise DomainError(
            "already_a_member", f"{email} is already a member", status=409, field="email"
        )
    count = len(_members(session, group.id))
    if count >= MAX_MEMBERS:
        raise DomainError(
            "too_many_members", f"a group has at most {MAX_MEMBERS} members", field="email"
        )
    member = _add_member(session, group, email, now=now)
    session.flush()
    record_activity(
        session,
        group_id=group.id,
        type="member.added",
        actor=me.id,
        subject=member.id,
        data={"email": member.email, "name": member.name},
        now=now,
    )
    publish(session, "sharing_member.added", _member_event(member, group), now=now)
    return member_view(member)


def remove_member(
    session: Session, *, user_id: str, group_id: str, member_id: str, now: datetime
) -> MemberView:
    """Remove a member whose balance is zero (409 ``balance_not_zero`` otherwise).

    The group row is locked first (``FOR UPDATE``): an expense or settlement being posted in
    the group holds it key-share locked (``lock_group``), so the balance read below includes
    it, and one started after this removal reads the member list without the leaving member."""
    group, me = membership(session, group_id, user_id=user_id, lock=True)
    member = session.execute(
        select(SharingMember)
        .where(
            SharingMember.id == member_id,
            SharingMember.group_id == group.id,
            SharingMember.removed_at.is_(None),
        )
        .with_for_update()
    ).scalar_one_or_none()
    if member is None:
        raise DomainError("member_not_found", f"no member {member_id} in this group", status=404)
    balance = ledger.get_account(session, member.account_id).total
    if balance != 0:
        raise DomainError(
            "balance_not_zero",
            f"{member.name}'s balance is {balance}, not zero: settle up first",
            status=409,
        )
    member.removed_at = now
    session.flush()
    record_activity(
        session,
        group_id=group.id,
        type="member.removed",
        actor=me.id,
        subject=member.id,
        data={"email": member.email, "name": member.name},
        now=now,
    )
    publish(session, "sharing_member.removed", _member_event(member, group), now=now)
    return member_view(member)


def claim_places(session: Session, *, user_id: str, email: str, name: str) -> int:
    """Link every place waiting for ``email`` to the person who registered with it."""
    rows = (
        session.execute(
            select(SharingMember).where(
                SharingMember.email == email.strip().lower(), SharingMember.user_id.is_(None)
            )
        )
        .scalars()
        .all()
    )
    for m in rows:
        m.user_id = user_id
        m.name = name
    session.flush()
    return len(rows)
