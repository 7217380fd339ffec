"""History fed by a `StateView`: the snapshot and daily-close recorder, and the trade journal's figures."""
