"""Imports every table module so that ``Base.metadata`` knows all tables (Alembic, tests)."""

from potluck.analytics import models as analytics_models
from potluck.api import models as api_models
from potluck.bus import models as bus_models
from potluck.checkout import models as checkout_models
from potluck.db import Base
from potluck.identity import models as identity_models
from potluck.ledger import models as ledger_models
from potluck.marketplace import models as marketplace_models
from potluck.notify import models as notify_models
from potluck.payments import models as payments_models
from potluck.payouts import models as payouts_models
from potluck.risk import models as risk_models
from potluck.sharing import models as sharing_models
from potluck.wallets import models as wallets_models
from potluck.wallets import settlement_models as wallets_settlement_models
from potluck.web import models as web_models

metadata = Base.metadata

__all__ = [
    "analytics_models",
    "api_models",
    "bus_models",
    "checkout_models",
    "identity_models",
    "ledger_models",
    "marketplace_models",
    "metadata",
    "notify_models",
    "payments_models",
    "payouts_models",
    "risk_models",
    "sharing_models",
    "wallets_models",
    "wallets_settlement_models",
    "web_models",
]
