"""Offline-first retrieval-augmented question answering: ingestion, retrieval, grounded answers."""

__version__ = "0.1.0"
