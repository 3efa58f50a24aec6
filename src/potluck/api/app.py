"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from potluck import __version__, maintenance
from potluck.api import errors, observability, openapi
from potluck.api.body_limit import BodySizeLimitMiddleware
from potluck.api.idempotency import IdempotencyMiddleware
from potluck.bootstrap import Potluck


def create_app(potluck: Potluck, *, run_workers: bool = False) -> FastAPI:
    """Build the API around a bootstrapped ``Potluck``.

    With ``run_workers`` (embedded mode), the relay and the event workers run in background
    threads of this process for as long as the app is up.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_workers:
            from potluck.payments import reconcile as payments_reconcile
            from potluck.payouts import worker as payouts_worker
            from potluck.wallets import settlement as merchant_settlement

            maintenance.ensure_scheduled(potluck)
            payouts_worker.ensure_recovery_scheduled(potluck)
            payments_reconcile.ensure_scheduled(potluck)
            merchant_settlement.ensure_scheduled(potluck)
            potluck.bus.start()
        try:
            yield
        finally:
            if run_workers:
                potluck.bus.stop()

    app = FastAPI(
        title="Potluck",
        version=__version__,
        description="Multi-party payments on one double-entry ledger. Amounts are integers of "
        "minor units; errors are application/problem+json.",
        lifespan=lifespan,
    )
    app.state.potluck = potluck
    errors.install(app)
    openapi.install(app)

    # Middleware, outermost last: request id, access log, metrics and last-resort errors wrap
    # the body size limit, which wraps the Idempotency-Key layer (it reads whole bodies into
    # memory, so an oversized one must be refused before it), which wraps the routes (and
    # their exception handlers).
    observability.configure_logging(potluck.settings)
    app.state.metrics = observability.Metrics()
    app.add_middleware(IdempotencyMiddleware, potluck=potluck)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=potluck.settings.max_body_bytes)
    app.add_middleware(observability.RequestContextMiddleware, metrics=app.state.metrics)

    from potluck.analytics.api import router as analytics_router
    from potluck.api.ops import router as ops_router
    from potluck.checkout.api import router as checkout_router
    from potluck.identity.api import router as identity_router
    from potluck.ledger.api import router as ledger_router
    from potluck.marketplace.api import router as marketplace_router
    from potluck.nlp.api import router as nlp_router
    from potluck.notify.api import router as notify_router
    from potluck.payments.api import router as payments_router
    from potluck.payouts.api import router as payouts_router
    from potluck.risk.api import router as risk_router
    from potluck.sharing.api import router as sharing_router
    from potluck.wallets.api import router as wallets_router
    from potluck.wallets.settlement_api import router as settlement_router
    from potluck.web.routes import install as install_web_pages
    from potluck.web.routes import router as web_router

    app.include_router(ops_router)
    app.include_router(identity_router)
    app.include_router(ledger_router)
    app.include_router(marketplace_router)
    app.include_router(payouts_router)
    app.include_router(notify_router)
    app.include_router(sharing_router)
    app.include_router(nlp_router)
    app.include_router(payments_router)
    app.include_router(checkout_router)
    app.include_router(wallets_router)
    app.include_router(settlement_router)
    app.include_router(risk_router)
    app.include_router(analytics_router)
    app.include_router(web_router)
    install_web_pages(app)  # page paths: HTML 404/403 pages and sign-in redirects
    return app
