"""Benchmarks of orderd against the raw limit of the same machine (see README)."""
