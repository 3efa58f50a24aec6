"""Payment provider adapters behind one interface (``PaymentProvider``).

``make_providers`` builds every adapter that is configured: the sandbox always (it needs
nothing), Stripe and Razorpay when their keys are set. ``settings.payment_provider`` names the
one new intents are created with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from potluck.clock import Clock
    from potluck.config import Settings
    from potluck.db import Database

# The caller's transaction, for an adapter that keeps its state in our database (the sandbox):
# it writes there instead of opening a second transaction, which on SQLite would wait for the
# caller's write lock forever. Adapters that talk HTTP ignore it.
_bound_session: ContextVar[Session | None] = ContextVar("payments_bound_session", default=None)


@contextmanager
def bound_session(session: Session) -> Iterator[None]:
    token = _bound_session.set(session)
    try:
        yield
    finally:
        _bound_session.reset(token)


def current_session() -> Session | None:
    return _bound_session.get()


def make_providers(settings: Settings, db: Database, clock: Clock) -> dict[str, Any]:
    """The configured providers by name: the sandbox always; Stripe and Razorpay when their
    keys and webhook secrets are set."""
    from potluck.payments.providers.sandbox import SandboxProvider

    providers: dict[str, Any] = {"sandbox": SandboxProvider(settings, db, clock)}
    if settings.stripe_api_key is not None and settings.stripe_webhook_secret is not None:
        from potluck.payments.providers.stripe import StripeProvider

        providers["stripe"] = StripeProvider(
            api_key=settings.stripe_api_key.get_secret_value(),
            webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
            api_base=settings.stripe_api_base,
        )
    if (
        settings.razorpay_key_id is not None
        and settings.razorpay_key_secret is not None
        and settings.razorpay_webhook_secret is not None
    ):
        from potluck.payments.providers.razorpay import RazorpayProvider

        providers["razorpay"] = RazorpayProvider(
            key_id=settings.razorpay_key_id.get_secret_value(),
            key_secret=settings.razorpay_key_secret.get_secret_value(),
            webhook_secret=settings.razorpay_webhook_secret.get_secret_value(),
            api_base=settings.razorpay_api_base,
        )
    return providers
