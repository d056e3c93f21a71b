"""Evaluation sets and gate thresholds from ``eval/eval.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError

DEFAULT_CONFIG = Path("eval/eval.toml")
REPORTS_DIR = Path("eval/reports")


@dataclass(frozen=True)
class EvalSet:
    name: str
    gold: Path
    docs: Path


@dataclass
class EvalConfig:
    sets: dict[str, EvalSet]
    gate: dict[str, dict[str, float]] = field(default_factory=dict)

    def eval_set(self, name: str) -> EvalSet:
        if name not in self.sets:
            raise RagError(f"unknown eval set {name!r}; known: {', '.join(sorted(self.sets))}")
        return self.sets[name]


def load_config(path: Path = DEFAULT_CONFIG) -> EvalConfig:
    """Read the eval config; paths in it are relative to the working directory."""
    if not path.is_file():
        raise RagError(f"eval config not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RagError(f"{path}: {exc}") from exc
    sets = {name: EvalSet(name, Path(s["gold"]), Path(s["docs"])) for name, s in data.get("sets", {}).items()}
    gate = {section: {k: float(v) for k, v in values.items()} for section, values in data.get("gate", {}).items()}
    return EvalConfig(sets, gate)


def check_gate(summary: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """Failures as readable lines; empty when every gated metric meets its threshold."""
    failures = []
    for metric, minimum in thresholds.items():
        value = summary.get(metric)
        if value is None:
            failures.append(f"{metric}: not measured in this run")
        elif value < minimum:
            failures.append(f"{metric}: {value:.3f} < {minimum:.3f}")
    return failures
