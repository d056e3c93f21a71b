"""Replaying an eval run's stored drafts through verification at other claim thresholds, without generating again.

Generation is most of an answer's time (about 10 s of 15 on 2 cores) and, at temperature 0, the same for the same
prompt, while the claim threshold changes only what verification does with the draft. So the drafts an in-process
run stored, re-verified by the real judge at each candidate threshold, show what each would have answered, in
minutes instead of one full eval per candidate. The judge's answers are memoised across candidates (the same check
gets the same answer). A replay at the threshold the run used must reproduce its stored outcomes: ``agree`` says how
closely it did, and a replay that does not agree is not evidence. With ``RAG_JUDGE=false`` the drafts are re-verified
by the rules alone (what a backend without yes/no probabilities gets); the claim threshold then does not apply.

The threshold is chosen on the +1/0/-1 net of dev questions pooled over the runs (ties: the higher threshold, the
stricter check), the product's own measure, rather than on F1 over the claims set: that set is adversarial by
design, while real drafts are mostly paraphrases of their passage (eval/reports/issue12-stop30.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.components import Components
from rag.errors import RagError
from rag.evaluation.answer_eval import answer_row, in_process_asker, outcome, summarize
from rag.embedding import Embedder
from rag.evaluation.config import EvalSet
from rag.evaluation.gold import load_gold
from rag.evaluation.runner import eval_settings, prepare_collection
from rag.generation.backends.base import GenerationStats, Generator, Prompt
from rag.settings import Settings
from rag.verification.claim_model import MODEL_FILE, ClaimModel
from rag.verification.judge import Check, judge_of

REPLAY_COMMAND = "rag eval --replay R1 --replay R2 ... --claim-thresholds T1,T2,... [--fit] [--write-runs]"
SHOWN_METRICS = ("accuracy", "abstention_precision", "abstention_recall", "citation_precision")


class ReplayGenerator:
    """A real generator whose drafts are replaced by stored ones: ``stream`` yields ``draft``; judging (and anything
    else) goes to the real model, with each check asked once per replay."""

    def __init__(self, real: Generator, judging: bool = True) -> None:
        if judging and judge_of(real) is None:
            raise RagError(f"replaying needs a generator that can judge; {real.name!r} cannot")
        self.real = real
        self.draft = ""
        self._judged: dict[Check, float] = {}

    @property
    def name(self) -> str:
        return self.real.name

    def ready(self) -> bool:
        return self.real.ready()

    def stream(self, prompt: Prompt, max_tokens: int, temperature: float, stats: GenerationStats) -> Iterator[str]:
        stats.completion_tokens += 1
        yield self.draft

    def judge(self, checks: list[Check]) -> list[float] | None:
        missing = list(dict.fromkeys(c for c in checks if c not in self._judged))
        if missing:
            got = self.real.judge(missing)  # type: ignore[attr-defined]
            if not got:
                return got
            self._judged.update(zip(missing, got, strict=True))
        return [self._judged[c] for c in checks]

    def __getattr__(self, attr: str) -> Any:  # the rest of the real generator's surface
        return getattr(self.real, attr)


@dataclass
class ReplayRun:
    """One stored run replayed at one threshold."""

    run: str
    threshold: float
    rows: list[dict[str, Any]]
    summary: dict[str, float]
    net: int
    flips: list[str] = field(default_factory=list)  # "id: stored -> replayed"
    config: dict[str, Any] = field(default_factory=dict)  # the stored run's config, as replayed

    @property
    def agree(self) -> int:
        """Rows whose +1/0/-1 outcome matches the stored run's."""
        return len(self.rows) - len(self.flips)


def replay(settings: Settings, eval_set: EvalSet, report: dict[str, Any], thresholds: Sequence[float], *,
           progress: bool = False, generator: Generator | None = None, embedder: Embedder | None = None) -> list[ReplayRun]:
    """Re-verify ``report``'s stored drafts at each claim threshold, judged by the run's backend (or ``generator``)."""
    from tqdm import tqdm

    stored = {r["id"]: r for r in report.get("questions", []) if r.get("draft") is not None}
    if not stored:
        raise RagError(f"run {report.get('name')!r} has no stored drafts (only in-process runs store them)")
    gold = [q for q in load_gold(eval_set.gold) if q.id in stored]
    base = eval_settings(settings, eval_set)  # RAG_JUDGE=false: the drafts re-verified by the rules alone
    config = report.get("config", {})
    backend = config.get("backend") if config.get("backend") not in (None, "-", "remote") else base.llm_backend
    components = Components(base, embedder=embedder, generators={backend: generator} if generator else None)
    prepare_collection(components, eval_set, progress)
    replaying = ReplayGenerator(components.generators.get(backend), base.judge)
    out = []
    for t in thresholds:
        parts = Components(base.model_copy(update={"claim_threshold": t}), embedder=components.embedder,
                           generators={backend: replaying})
        ask = in_process_asker(parts.answerer, backend, config.get("mode"))
        rows = []
        for q in tqdm(gold, desc=f"replay {report.get('name')} @ {t:g}", unit="q", disable=not progress):
            replaying.draft = stored[q.id]["draft"]
            rows.append(answer_row(q, ask(q.question, q.filter) if q.filter else ask(q.question)))
        flips = [f"{r['id']}: {outcome(stored[r['id']]):+d} -> {outcome(r):+d}" for r in rows
                 if outcome(r) != outcome(stored[r["id"]])]
        replayed = {**config, "claim_threshold": t, "min_confidence": base.min_confidence, "replay_of": report.get("name"),
                    **({} if base.judge else {"judge": False})}
        out.append(ReplayRun(str(report.get("name")), t, rows, summarize(rows), sum(outcome(r) for r in rows), flips, replayed))
    return out


def as_report(run: ReplayRun, set_name: str, prefix: str) -> dict[str, Any]:
    """A replayed run as an eval report of its own, named ``<prefix>-<run>-t<threshold>``: it can be compared with
    ``--compare`` and, replayed with the gate off (``RAG_MIN_CONFIDENCE=0``), fitted with ``--fit-confidence``
    without generating the dev answers again."""
    return {"name": f"{prefix}-{run.run}-t{run.threshold:g}", "set": set_name,
            "created": dt.datetime.now().isoformat(timespec="seconds"), "config": run.config, "questions": run.rows,
            "summary": run.summary, "gate_failures": []}


def choose(runs: Sequence[ReplayRun]) -> tuple[float, dict[float, int]]:
    """The threshold with the best pooled net over all runs (ties: the higher one), and the pooled net of each."""
    pooled: dict[float, int] = {}
    for r in runs:
        pooled[r.threshold] = pooled.get(r.threshold, 0) + r.net
    best = max(pooled, key=lambda t: (pooled[t], t))
    return best, pooled


def replay_markdown(runs: Sequence[ReplayRun], chosen: float, pooled: dict[float, int]) -> str:
    """The replay table: every run at every threshold, the pooled net, and each threshold's flips."""
    lines = ["# Stored drafts replayed at other claim thresholds", "",
             f"Command: `{REPLAY_COMMAND}`. Net: right +1, abstained 0, wrong -1. `agree`: rows whose outcome matches "
             "the stored run (a replay at the run's own threshold must agree on every row to be evidence).", "",
             "| run | threshold | questions | net | agree | " + " | ".join(m.replace("_", " ") for m in SHOWN_METRICS) + " |",
             "|---|---|---|---|---|" + "---|" * len(SHOWN_METRICS)]
    for r in runs:
        metrics = " | ".join(f"{r.summary.get(m, 0.0):.3f}" for m in SHOWN_METRICS)
        lines.append(f"| {r.run} | {r.threshold:g} | {len(r.rows)} | {r.net} | {r.agree}/{len(r.rows)} | {metrics} |")
    lines += ["", "| threshold | pooled net |", "|---|---|"]
    lines += [f"| {t:g}{' (chosen)' if t == chosen else ''} | {n} |" for t, n in sorted(pooled.items())]
    lines += ["", "## Flips against the stored runs", ""]
    lines += [f"- {r.run} @ {r.threshold:g}: {', '.join(r.flips) or 'none'}" for r in runs]
    return "\n".join(lines) + "\n"


def write_threshold(chosen: float, runs: Sequence[ReplayRun], path: Path = MODEL_FILE) -> Path:
    """Ship ``chosen`` as the claim model's threshold with a judge, with the rule that chose it. Dev rows only: a
    threshold chosen on test questions would make the test numbers a tuning result."""
    unjudged = sorted({r.run for r in runs if r.config.get("judge") is False})
    if unjudged:
        raise RagError(f"a claim threshold applies only with the judge; these runs were replayed without it: {', '.join(unjudged)}")
    not_dev = sorted({r.run for r in runs for row in r.rows if row.get("split") != "dev"})
    if not_dev:
        raise RagError(f"a threshold is chosen on dev questions only; these runs hold other rows: {', '.join(not_dev)}")
    model = ClaimModel.load(path)
    model.with_judge.threshold = chosen
    model.meta["threshold_rule"] = "with_judge: best pooled +1/0/-1 net of dev questions, drafts replayed; rules_only: best F1 on dev"
    model.meta["threshold_command"] = f"{REPLAY_COMMAND} (after every refit: a threshold belongs to its weights)"
    model.meta["threshold_data"] = sorted({r.run for r in runs})
    model.save(path)
    return path
