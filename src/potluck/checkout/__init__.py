"""Checkout: merchant catalogue, group orders paid in shares, expiry and fallback,
merchant orders."""
