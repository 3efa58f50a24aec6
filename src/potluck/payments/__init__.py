"""Payments: payment intents, provider adapters (sandbox, stripe, razorpay), provider
webhooks, refunds, reconciliation."""
