"""multibalance test suite."""
