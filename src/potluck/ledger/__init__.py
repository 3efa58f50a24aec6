"""The double-entry ledger, with TigerBeetle's semantics.

Every ledger function works inside the caller's transaction (a SQLAlchemy ``Session`` from
``Database.transaction()``): the caller commits once. Balances are checked under row locks
taken in ascending account id order (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the
whole write transaction holds the database lock from ``BEGIN IMMEDIATE``), so concurrent
transfers can neither overdraw an account nor deadlock.

Kinds of transfer:

- ``posted``: moves money now.
- ``pending``: a hold. The debit account's ``debits_pending`` and the credit account's
  ``credits_pending`` grow; available balance shrinks, total does not. May time out.
- ``post_pending``: settles a hold in full or in part; the rest is released.
- ``void_pending`` / ``expire_pending``: releases a hold.

Each transfer writes two append-only entries (debit side 'D', credit side 'C') recording
the changes it made to the two accounts' running totals, so ``audit`` can recompute every
total from the entries.

Other code imports the facade, ``potluck.ledger.service``; the modules behind it are
``types`` (values, errors, limits), ``accounts``, ``transfers`` (with ``planning``), ``holds``
(timeouts), ``audit``, and ``tables`` and ``bulk`` (the SQL they share, the fast write path).
"""
