"""Checking answers against their passages: claims and their citations, rule checks, the model's yes/no
judgement, and the calibrated probabilities that decide what the user sees."""
