"""A calibrated confidence on every answer: the probability that it is right.

Signals: the weakest kept claim's support probability, whether a judge checked it, retrieval (the top
dense score and its margin over the next), how much of the question the supporting window covers, whether
the extractive answer points at the same sentence, the share of the draft that survived, and the judge's
weakest P(yes) that a kept sentence's window answers the question as asked. Two small
logistic models turn them into a probability: one for answers (P(the answer is right)) and one for
abstentions (P(the documents really do not answer)). They are fitted on dev questions only
(``rag eval --fit-confidence``) and stored in ``models/confidence.json`` with the fit data's hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.verification.claim_model import Logistic

MODEL_FILE = Path(__file__).resolve().parent / "models" / "confidence.json"
SIGNALS = ("support", "judged", "retrieval_top", "retrieval_margin", "question_coverage", "extractive_agrees",
           "extractive_score", "kept_share", "answerable")
UNJUDGED = 0.5  # "answerable" when no judge read the window (rules only, or no sentence kept): neither yes nor no


@dataclass
class ConfidenceModel:
    answered: Logistic
    abstained: Logistic
    meta: dict[str, Any] = field(default_factory=dict)

    def reads(self, signal: str) -> bool:
        """True when either model weighs ``signal`` (a signal that costs model time is computed only then)."""
        return any(m.weights.get(signal, 0.0) != 0.0 for m in (self.answered, self.abstained))

    def confidence(self, signals: dict[str, float], abstained: bool) -> float:
        return round((self.abstained if abstained else self.answered).probability(signals), 4)

    def save(self, path: Path = MODEL_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"answered": self.answered.to_dict(), "abstained": self.abstained.to_dict(), **self.meta},
                                   indent=2) + "\n")

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> ConfidenceModel | None:
        """The fitted model, or None before the first fit (answers then carry the raw support as confidence)."""
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        meta = {k: v for k, v in data.items() if k not in ("answered", "abstained")}
        return cls(Logistic.from_dict(data["answered"]), Logistic.from_dict(data["abstained"]), meta)
