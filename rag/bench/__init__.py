"""Benchmarks and load generation against the library and a running service."""
