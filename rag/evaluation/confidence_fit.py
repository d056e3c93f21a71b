"""Fitting the answer confidence on dev questions: from eval reports run with the gate off
(``RAG_MIN_CONFIDENCE=0``), whose rows carry each answer's signals and whether it was right.

The default ``RAG_MIN_CONFIDENCE`` is chosen on the same dev rows: the threshold with the best +1/0/-1 score
(right +1, abstained 0, wrong -1), the lowest one on ties. A precision target (answers kept right 90% of the time)
was tried first: on the seeds it chose 0.70 and answered 8 of 51 answerable test questions (score 0.09 against
0.26 ungated), so the score, the product's own measure, decides.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.evaluation.answer_eval import ok
from rag.verification.claim_model import Logistic
from rag.verification.confidence import MODEL_FILE, SIGNALS, ConfidenceModel

FIT_COMMAND = "RAG_MIN_CONFIDENCE=0 rag eval --set S --split dev --name R (per set); rag eval --fit-confidence R1 --fit-confidence R2 ..."
MIN_ROWS = 10


def dev_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [r for rep in reports for r in rep.get("questions", []) if r.get("split") == "dev" and r.get("signals")]
    if len(rows) < MIN_ROWS:
        raise RagError(f"only {len(rows)} dev questions with signals in these reports; run `rag eval --split dev` first")
    return rows


def _fit(rows: list[dict[str, Any]]) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    labels = [ok(r) for r in rows]
    if not labels:  # no rows of this kind (dev runs where nothing abstained): no information, 0.5
        return Logistic({}, 0.0)
    if len(set(labels)) < 2:  # all right or all wrong: a constant model
        rate = sum(labels) / len(labels)
        return Logistic({}, _logit(min(max(rate, 0.01), 0.99)))
    lr = LogisticRegression(C=1.0, max_iter=2000).fit([[r["signals"].get(k, 0.0) for k in SIGNALS] for r in rows], labels)
    return Logistic(dict(zip(SIGNALS, (float(w) for w in lr.coef_[0]), strict=True)), float(lr.intercept_[0]))


def _logit(p: float) -> float:
    import math

    return math.log(p / (1 - p))


def choose_min_confidence(rows: list[dict[str, Any]], model: ConfidenceModel) -> float:
    answered = [(model.confidence(r["signals"], False), ok(r)) for r in rows if not r["abstained"]]
    best_score, best_t = float("-inf"), 0.0
    for t in sorted({0.0, *(c for c, _ in answered)}):
        kept = [right for c, right in answered if c >= t]
        score = sum(1 if right else -1 for right in kept)
        if score > best_score:
            best_score, best_t = score, t
    return round(best_t, 4)


def fit_confidence(reports: list[dict[str, Any]], path: Path = MODEL_FILE) -> ConfidenceModel:
    rows = dev_rows(reports)
    model = ConfidenceModel(_fit([r for r in rows if not r["abstained"]]), _fit([r for r in rows if r["abstained"]]))
    digest = hashlib.sha256(json.dumps([[r["id"], r["signals"], ok(r)] for r in rows], sort_keys=True).encode()).hexdigest()[:16]
    model.meta = {"fit_command": FIT_COMMAND, "fit_data": [rep["name"] for rep in reports], "fit_rows": len(rows),
                  "fit_data_sha256": digest, "threshold_rule": "best +1/0/-1 score on dev"}
    # The gate's domain: the kinds of answered rows it was fitted on (judged by the model, or by the rules alone).
    model.meta["fit_judged"] = sorted({float(r["signals"].get("judged", 0.0)) for r in rows if not r["abstained"]})
    model.meta["min_confidence"] = choose_min_confidence(rows, model)
    model.save(path)
    return model
