"""Fitting the answer confidence from dev rows (no model runs)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from rag.evaluation.confidence_fit import fit_confidence
from rag.verification.confidence import SIGNALS


def _rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Answered dev rows whose rightness follows ``support`` (with some mistakes); every other signal is noise."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        support = rng.random()
        right = (support > 0.5) != (rng.random() < 0.15)
        signals = {k: rng.random() for k in SIGNALS}
        signals.update(support=support, judged=1.0)
        rows.append({"id": f"q{i}", "split": "dev", "answerable": True, "abstained": False, "signals": signals,
                     "scores": {"correct": right, "abstained": False}})
    return rows


def test_dev_runs_where_nothing_abstained_still_fit(tmp_path: Path) -> None:
    """A dev run with no abstention left the abstention model with no rows, and the fit died dividing by zero."""
    model = fit_confidence([{"name": "dev-run", "questions": _rows(120)}], tmp_path / "confidence.json")
    assert model.confidence(_rows(1, seed=1)[0]["signals"], abstained=True) == 0.5  # no evidence either way
    assert model.answered.weights["support"] > 0  # the signal that predicts rightness gets the weight
    assert model.meta["fit_rows"] == 120 and model.meta["fit_data"] == ["dev-run"]
    assert 0.0 < model.meta["min_confidence"] < 1.0
    assert (tmp_path / "confidence.json").is_file()
