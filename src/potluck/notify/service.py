"""Webhook use cases: endpoints of a platform, fan-out of events into deliveries, listings.

Sending lives in ``notify.sender`` (a poller, outside any transaction). Every function here
takes the caller's session; the caller commits once.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from potluck.bus.outbox import Event
from potluck.clock import utc
from potluck.config import Settings
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.notify.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from potluck.notify.signing import new_secret

# What an endpoint may subscribe to; "*" means all of these. Add a type here (and to
# docs/events.md) to make it deliverable: the fan-out handler is registered for each.
# wallet.credited is not among them: split.completed carries every party's credit, so a
# platform gets one webhook per split order rather than one per party (and the bus does not
# carry ten more deliveries per order).
DELIVERABLE_EVENTS: tuple[str, ...] = (
    "order.recorded",
    "order.refunded",
    "split.completed",
    "payout.created",
    "payout.processing",
    "payout.completed",
    "payout.failed",
    # checkout: a group order for one of the platform's merchants
    "order.created",
    "order.confirmed",
    "order.failed",
    "group.expired",
    "group.cancelled",
    # payments: intents the platform created, or a group order's shares
    "payment.succeeded",
    "payment.failed",
    "payment.refunded",
    # wallets: a person's payment to one of the platform's merchants (to_party_id)
    "transfer.completed",
    "transfer.failed",
    "transfer.in_review",
    "transfer.rejected",
    # risk: a flagged payment to one of the platform's merchants (recipient "party:<id>")
    "fraud.flagged",
)
ALL_EVENTS = "*"
MAX_URL_LENGTH = 2048
STATUSES = ("pending", "succeeded", "failed")


class WebhookError(DomainError):
    """A refused webhook operation (nothing was written)."""


Resolver = Callable[[str], list[str]]


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local (cloud metadata), multicast, reserved, …"""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(
    url: str, *, settings: Settings, resolve: Resolver = resolve_host, field: str = "url"
) -> str:
    """Refuse URLs Potluck must not POST to; returns the URL unchanged.

    https only, unless ``webhook_allow_insecure_urls``. The host must resolve to public
    addresses only (no loopback, private network, link-local/metadata service), unless
    ``webhook_allow_private_urls``; the sender checks again before each attempt, since a
    name may be re-pointed later.
    """
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError("invalid_url", f"url is longer than {MAX_URL_LENGTH}", field=field)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise WebhookError("invalid_url", f"url is not a valid URL: {exc}", field=field) from exc
    allowed = ("https", "http") if settings.webhook_allow_insecure_urls else ("https",)
    if parts.scheme not in allowed:
        raise WebhookError(
            "invalid_url",
            f"url must start with {' or '.join(f'{s}://' for s in allowed)}",
            field=field,
        )
    host = parts.hostname
    if not host:
        raise WebhookError("invalid_url", "url has no host", field=field)
    if parts.username is not None or parts.password is not None:
        raise WebhookError("invalid_url", "url must not carry credentials", field=field)
    if parts.fragment:
        raise WebhookError("invalid_url", "url must not have a #fragment", field=field)
    if not settings.webhook_allow_private_urls:
        check_host_is_public(host, resolve=resolve, field=field)
    return url


def check_host_is_public(
    host: str, *, resolve: Resolver = resolve_host, field: str = "url"
) -> None:
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host)
        except (OSError, UnicodeError) as exc:  # UnicodeError: not a valid IDNA name
            raise WebhookError(
                "invalid_url", f"url host {host!r} does not resolve", field=field
            ) from exc
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise WebhookError(
            "url_not_allowed",
            f"url host {host!r} is a loopback, private or reserved address",
            field=field,
        )


def check_events(events: Sequence[str]) -> list[str]:
    """The subscribed types, de-duplicated in order; unknown types are refused."""
    if not events:
        raise WebhookError("invalid_events", "events must name at least one type", field="events")
    if ALL_EVENTS in events:
        if len(events) != 1:
            raise WebhookError(
                "invalid_events", "'*' must be the only entry of events", field="events"
            )
        return [ALL_EVENTS]
    unknown = [e for e in events if e not in DELIVERABLE_EVENTS]
    if unknown:
        raise WebhookError(
            "unknown_event_type",
            f"unknown event type(s) {', '.join(sorted(set(unknown)))}; "
            f"known: {', '.join(DELIVERABLE_EVENTS)} or '*'",
            field="events",
        )
    return list(dict.fromkeys(events))


# ---------------------------------------------------------------------------- endpoints


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: str
    platform_id: str
    url: str
    events: list[str]
    description: str | None
    status: str
    created_at: datetime
    disabled_at: datetime | None


def _endpoint_view(e: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=e.id,
        platform_id=e.platform_id,
        url=e.url,
        events=list(e.events),
        description=e.description,
        status=e.status,
        created_at=utc(e.created_at),
        disabled_at=utc(e.disabled_at) if e.disabled_at else None,
    )


def create_endpoint(
    session: Session,
    *,
    platform_id: str,
    url: str,
    events: Sequence[str],
    description: str | None,
    settings: Settings,
    now: datetime,
    resolve: Resolver = resolve_host,
) -> tuple[EndpointView, str]:
    """A new enabled endpoint and its signing secret (returned here; shown to the caller once)."""
    checked_events = check_events(events)
    check_url(url, settings=settings, resolve=resolve)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        platform_id=platform_id,
        url=url,
        events=checked_events,
        description=description,
        secret=secret,
        status="enabled",
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return _endpoint_view(endpoint), secret


def _endpoint(
    session: Session, endpoint_id: str, *, platform_id: str, lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.platform_id == platform_id
    )
    if lock:
        query = query.with_for_update()
    endpoint = session.execute(query).scalar_one_or_none()
    if endpoint is None:
        # Another platform's endpoint is as unknown as one that does not exist.
        raise WebhookError("endpoint_not_found", f"no webhook endpoint {endpoint_id}", status=404)
    return endpoint


def get_endpoint(session: Session, endpoint_id: str, *, platform_id: str) -> EndpointView:
    return _endpoint_view(_endpoint(session, endpoint_id, platform_id=platform_id))


def list_endpoints(
    session: Session, *, platform_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[EndpointView], bool]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.platform_id == platform_id)
    if starting_after is not None:
        _cursor_known(session, WebhookEndpoint, starting_after, platform_id=platform_id)
        query = query.where(WebhookEndpoint.id > starting_after)
    rows = session.execute(query.order_by(WebhookEndpoint.id).limit(limit + 1)).scalars().all()
    return [_endpoint_view(e) for e in rows[:limit]], len(rows) > limit


def disable_endpoint(
    session: Session, endpoint_id: str, *, platform_id: str, now: datetime
) -> EndpointView:
    """Stop sending to an endpoint (idempotent). Its pending deliveries end as failed; its
    history stays listable."""
    endpoint = _endpoint(session, endpoint_id, platform_id=platform_id, lock=True)
    if endpoint.status != "disabled":
        endpoint.status = "disabled"
        endpoint.disabled_at = now
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
            .values(
                status="failed",
                completed_at=now,
                locked_until=None,
                lease=None,
                last_error="endpoint disabled",
            )
        )
        session.flush()
    return _endpoint_view(endpoint)


def _cursor_known(session: Session, model: Any, cursor: str, *, platform_id: str) -> None:
    known = session.scalar(
        select(model.id).where(model.id == cursor, model.platform_id == platform_id)
    )
    if known is None:
        raise WebhookError(
            "invalid_cursor", f"starting_after: no such item {cursor}", field="starting_after"
        )


# ---------------------------------------------------------------------------- fan-out


def envelope_body(event: Event) -> str:
    """The exact JSON POSTed for ``event``: ``{id, type, occurred_at, data}``."""
    payload = {
        "id": event.id,
        "type": event.type,
        "occurred_at": utc(event.occurred_at).isoformat(),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def subscribed(events: Sequence[str], event_type: str) -> bool:
    return ALL_EVENTS in events or event_type in events


def fan_out(session: Session, event: Event, *, settings: Settings, now: datetime) -> list[str]:
    """One pending delivery per enabled endpoint of the event's platform that wants it.

    Runs in the event's delivery transaction, whose inbox row makes it happen once per event;
    the (endpoint, event) unique constraint would refuse a second one anyway.
    """
    return fan_out_many(session, [event], settings=settings, now=now)


def fan_out_many(
    session: Session, events: Sequence[Event], *, settings: Settings, now: datetime
) -> list[str]:
    """``fan_out`` for a worker batch: one query for the endpoints of all its platforms (the
    eleven events of a split order cost one SELECT, not eleven)."""
    platform_of = _platforms_of(session, events)
    platforms = set(platform_of.values())
    if not platforms:
        return []
    endpoints = (
        session.execute(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.platform_id.in_(platforms), WebhookEndpoint.status == "enabled")
            .order_by(WebhookEndpoint.id)
        )
        .scalars()
        .all()
    )
    if not endpoints:
        return []
    ids = []
    for event in events:
        platform_id = platform_of.get(event.id)
        if platform_id is None:
            continue
        targets = [
            e
            for e in endpoints
            if e.platform_id == platform_id and subscribed(e.events, event.type)
        ]
        if not targets:
            continue
        body = envelope_body(event)
        expires_at = utc(event.occurred_at) + timedelta(
            seconds=settings.webhook_retry_window_seconds
        )
        for endpoint in targets:
            delivery_id = new_id("whd")
            session.add(
                WebhookDelivery(
                    id=delivery_id,
                    endpoint_id=endpoint.id,
                    platform_id=platform_id,
                    event_id=event.id,
                    event_type=event.type,
                    body=body,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
            ids.append(delivery_id)
    session.flush()
    return ids


def _party_of(event: Event) -> str | None:
    """The merchant party an event without ``platform_id`` concerns, if any."""
    party = event.data.get("to_party_id")
    if isinstance(party, str) and party:
        return party
    recipient = event.data.get("recipient")
    if isinstance(recipient, str) and recipient.startswith("party:"):
        return recipient.removeprefix("party:")
    return None


def _platforms_of(session: Session, events: Sequence[Event]) -> dict[str, str]:
    """Event id -> the platform it concerns: ``platform_id`` in its data, else the platform of
    the merchant party it names (``fraud.flagged`` carries only ``recipient``)."""
    from potluck.marketplace.models import Party

    found: dict[str, str] = {}
    parties: dict[str, str] = {}
    for e in events:
        platform_id = e.data.get("platform_id")
        if isinstance(platform_id, str) and platform_id:
            found[e.id] = platform_id
        elif (party := _party_of(e)) is not None:
            parties[e.id] = party
    if parties:
        owners = {
            row.id: row.platform_id
            for row in session.execute(
                select(Party.id, Party.platform_id).where(Party.id.in_(set(parties.values())))
            )
        }
        for event_id, party in parties.items():
            if party in owners:
                found[event_id] = owners[party]
    return found


# ---------------------------------------------------------------------------- deliveries


@dataclass(frozen=True, slots=True)
class AttemptView:
    attempted_at: datetime
    succeeded: bool
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempts: list[AttemptView]


def list_deliveries(
    session: Session,
    endpoint_id: str,
    *,
    platform_id: str,
    limit: int,
    starting_after: str | None = None,
    status: str | None = None,
) -> tuple[list[DeliveryView], bool]:
    """Deliveries of one endpoint, oldest first, each with its attempts."""
    _endpoint(session, endpoint_id, platform_id=platform_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if starting_after is not None:
        _cursor_known(session, WebhookDelivery, starting_after, platform_id=platform_id)
        query = query.where(WebhookDelivery.id > starting_after)
    rows = session.execute(query.order_by(WebhookDelivery.id).limit(limit + 1)).scalars().all()
    page = rows[:limit]
    attempts: dict[str, list[AttemptView]] = {d.id: [] for d in page}
    if page:
        for a in session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.id)
        ).scalars():
            attempts[a.delivery_id].append(
                AttemptView(
                    attempted_at=utc(a.attempted_at),
                    succeeded=a.succeeded,
                    status_code=a.status_code,
                    error=a.error,
                    duration_ms=a.duration_ms,
                )
            )
    views = [
        DeliveryView(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempt_count=d.attempts,
            next_attempt_at=utc(d.next_attempt_at) if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=utc(d.created_at),
            completed_at=utc(d.completed_at) if d.completed_at else None,
            attempts=attempts[d.id],
        )
        for d in page
    ]
    return views, len(rows) > limit
