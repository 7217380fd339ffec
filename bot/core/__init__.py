"""The shared vocabulary: account state, money and time helpers, valuation, secrets. No I/O, no project imports above it."""
