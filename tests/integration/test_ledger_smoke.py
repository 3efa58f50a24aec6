from potluck.ledger import service as ledger


def test_posted_transfer_moves_money(db, clock):
    with db.transaction() as s:
        a = ledger.create_account(s, currency="EUR", code="clearing", now=clock.now())
        b = ledger.create_account(
            s,
            currency="EUR",
            code="wallet",
            now=clock.now(),
            flags=ledger.AccountFlags(debits_must_not_exceed_credits=True),
        )
        ledger.create_transfer(s, ledger.NewTransfer(a.id, b.id, 100, client_id="t1"), now=clock.now())
    with db.read() as s:
        assert ledger.get_account(s, b.id).total == 100
        assert ledger.get_account(s, a.id).total == -100
