"""Payouts: a party's wallet paid out to a bank account (holds, state machine, retries)."""
