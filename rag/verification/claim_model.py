"""The probability that a passage supports a claim, from the rule features and the model's yes/no judgement.

A logistic model fitted on the dev split of ``eval/gold/claims.jsonl`` (``rag eval --claims --fit``); its
coefficients, the threshold chosen on dev and the hash of the fit data live in ``models/claims.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag.verification.rules import RuleCheck

MODEL_FILE = Path(__file__).resolve().parent / "models" / "claims.json"
FitPart = Literal["both", "with-judge", "rules-only"]  # which of the two models a fit replaces
JUDGE_FEATURE = "judge_logit"
RULE_FEATURES = ("coverage", "novel_coverage", "question_coverage", "negation_mismatch", "comparative_added",
                 "names_missing", "adds_nothing")
# With a judge, only the risk flags join its probability. Coverage is left out on purpose: the claims set's
# unsupported cases are written to look lexically supported, so a fit there learns that coverage means
# "unsupported" (negative weights), which real answers, mostly copied from their passage, would pay for.
JUDGED_FEATURES = (JUDGE_FEATURE, "negation_mismatch", "comparative_added", "names_missing", "adds_nothing")


def features(rule: RuleCheck, judge_p: float | None) -> dict[str, float]:
    """The claim model's inputs for one (claim, passage) pair."""
    out = {name: float(getattr(rule, name)) for name in RULE_FEATURES}
    if judge_p is not None:
        p = min(max(judge_p, 1e-4), 1 - 1e-4)
        out[JUDGE_FEATURE] = math.log(p / (1 - p))
    return out


@dataclass
class Logistic:
    """``sigmoid(bias + sum(w * x))`` over named features."""

    weights: dict[str, float]
    bias: float
    threshold: float = 0.5

    def probability(self, x: dict[str, float]) -> float:
        z = self.bias + sum(w * x.get(name, 0.0) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "bias": self.bias, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Logistic:
        return cls({k: float(v) for k, v in data["weights"].items()}, float(data["bias"]), float(data.get("threshold", 0.5)))


@dataclass
class ClaimModel:
    """Two fitted models: with the judge's probability, and rules only (for backends that cannot judge)."""

    with_judge: Logistic
    rules_only: Logistic
    meta: dict[str, Any] = field(default_factory=dict)

    def probability(self, x: dict[str, float]) -> float:
        return (self.with_judge if JUDGE_FEATURE in x else self.rules_only).probability(x)

    def threshold(self, judged: bool) -> float:
        return (self.with_judge if judged else self.rules_only).threshold

    def save(self, path: Path = MODEL_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"with_judge": self.with_judge.to_dict(), "rules_only": self.rules_only.to_dict(), **self.meta}
        path.write_text(json.dumps(body, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> ClaimModel:
        data = json.loads(path.read_text())
        meta = {k: v for k, v in data.items() if k not in ("with_judge", "rules_only")}
        return cls(Logistic.from_dict(data["with_judge"]), Logistic.from_dict(data["rules_only"]), meta)
