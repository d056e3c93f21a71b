"""Grounded answers: prompt, generator backends, citation verification, the answer object."""
