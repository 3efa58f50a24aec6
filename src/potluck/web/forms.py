"""Form idempotency: a form sent twice does its thing once and shows the same result.

Every creating form carries a hidden ``idempotency_key`` (``new_form_key()``, rendered fresh
with the form). ``run_once`` records ``(user_id, key) → result URL`` in the SAME transaction
as the effect: the key's row is inserted first, so a concurrent second submission waits on
it (PostgreSQL: the primary key; SQLite: the writer lock) and then finds the first one's
result instead of doing the thing again. A refused form (a ``DomainError``) rolls back the
key with the effect, so the corrected form may be sent again with the same key.

    url = run_once(app, user_id=user.id, key=form.get("idempotency_key"),
                   effect=lambda s: f"/groups/{create(s, ...).id}")
    return redirect(url)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.errors import DomainError
from potluck.web.models import WebFormResult

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck

KEY_MAX = 64
KEEP_SECONDS = 24 * 3600


def new_form_key() -> str:
    """A fresh value for a form's hidden ``idempotency_key``."""
    return secrets.token_urlsafe(24)


def _usable(key: object) -> str | None:
    if not isinstance(key, str):
        return None
    key = key.strip()
    return key if 0 < len(key) <= KEY_MAX else None


def stored_result(app: Potluck, *, user_id: str, key: str) -> str | None:
    with app.db.read() as s:
        return s.scalar(
            select(WebFormResult.result_url).where(
                WebFormResult.user_id == user_id, WebFormResult.key == key
            )
        )


def run_once(app: Potluck, *, user_id: str, key: object, effect: Callable[[Session], str]) -> str:
    """Run ``effect(session)`` (which returns the URL to show next) once per form key.

    A repeat of a key that already ran returns the first run's URL without running
    ``effect``. Without a usable key (missing, or longer than ``KEY_MAX``) it simply runs.
    """
    form_key = _usable(key)
    if form_key is None:
        with app.db.transaction() as s:
            return effect(s)
    done = stored_result(app, user_id=user_id, key=form_key)
    if done is not None:
        return done
    try:
        with app.db.transaction() as s:
            s.execute(
                insert(WebFormResult).values(
                    user_id=user_id, key=form_key, result_url="", created_at=app.clock.now()
                )
            )
            url = effect(s)
            s.execute(
                update(WebFormResult)
                .where(WebFormResult.user_id == user_id, WebFormResult.key == form_key)
                .values(result_url=url)
            )
            return url
    except IntegrityError:
        # A concurrent submission of the same form committed first: show its result.
        done = stored_result(app, user_id=user_id, key=form_key)
        if done is None:
            raise
        return done


def submit_once(
    app: Potluck, *, user_id: str, form: Mapping[str, Any], effect: Callable[[Session], str]
) -> str | DomainError:
    """``run_once`` under the form's own ``idempotency_key``: the URL to show next, or the
    service's refusal (a ``DomainError``) for the page to show on the form again. A 404
    refusal (what the form acts on is not there, or not the user's) is raised: the 404 page.
    """
    try:
        return run_once(app, user_id=user_id, key=form.get("idempotency_key"), effect=effect)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return exc


def form_values(form: Mapping[str, Any]) -> dict[str, str]:
    """The form's text fields as typed (to fill the form in again), without the CSRF token."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def prune_form_results(app: Potluck) -> int:
    """Forget form keys older than a day; returns how many."""
    cutoff = app.clock.now() - timedelta(seconds=KEEP_SECONDS)
    with app.db.transaction() as s:
        result = s.execute(delete(WebFormResult).where(WebFormResult.created_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)
