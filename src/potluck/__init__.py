"""Potluck: a multi-party payments platform on one double-entry ledger."""

__version__ = "0.1.0"
