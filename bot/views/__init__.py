"""Read-only views over a `StateView`: the read model (totals, sort, partial marks), the terminal
report, the history report and the Prometheus metrics. Nothing here talks to an exchange."""
