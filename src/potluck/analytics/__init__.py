"""Analytics for admins: volumes, counts, fraud rates and top merchants by SQL aggregation."""
