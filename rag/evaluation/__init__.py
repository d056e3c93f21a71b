"""Evaluation: gold sets, deterministic metrics, runs, reports and the regression gate."""
