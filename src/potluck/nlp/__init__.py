"""Plain-language expense entry: "I paid 90 for dinner with Bob and Ann, Bob had wine for 20"."""
