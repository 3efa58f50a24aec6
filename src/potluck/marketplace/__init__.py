"""Marketplace: parties with wallets, split rules, orders split among parties, refunds.

A platform (secret key) reports a paid order; Potluck splits it by the platform's rules (or the
order's own) and credits each party's wallet through events: ``order.recorded`` →
``wallet.credit.requested`` (one per party) → ``wallet.credited`` → ``split.completed``.
"""
