"""Benchmarks and the load test: each prints its figure beside a same-run baseline."""
