"""Sharing: Splitwise-style groups, expenses, balances in the ledger's ``iou`` book, settle-up."""
