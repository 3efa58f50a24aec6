"""Risk: an explainable fraud score for every wallet payment, decisions and the review queue."""
