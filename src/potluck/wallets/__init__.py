"""Wallets: a wallet per person and currency, top-ups, payments between people and to
merchants (scored by risk/), payment requests, merchant settlement."""
