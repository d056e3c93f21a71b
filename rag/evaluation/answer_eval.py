"""Answer evaluation: ask every gold question (in-process or through a running service) and score it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rag.evaluation.gold import GoldQuestion
from rag.evaluation.metrics import auroc, mean, percentile, precision_recall
from rag.evaluation.text_match import contains_alias, contains_quote, exact_match, token_f1
from rag.generation.answer import ABSTENTION, STAGES
from rag.text import citation_numbers, strip_citations



@dataclass
class AnswerRecord:
    """What the system said for one gold question, in a transport-neutral form."""

    answer: str
    abstained: bool
    citations: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    backend: str = ""
    confidence: float | None = None
    signals: dict[str, float] = field(default_factory=dict)
    cited_texts: dict[int, str] = field(default_factory=dict)  # n -> full passage text, when known
    # In-process only (the OpenAI wire carries neither): the generator's draft before verification, and what
    # verification changed and why. Without them a wrong abstention in a report cannot be traced to its cause.
    draft: str | None = None
    notes: list[str] = field(default_factory=list)


def score_question(q: GoldQuestion, rec: AnswerRecord) -> dict[str, Any]:
    """Per-question metrics. Correct means answerable, not abstained, and an alias in the answer."""
    text = strip_citations(rec.answer)
    markers = set(citation_numbers(rec.answer))
    cited_ns = {int(c["n"]) for c in rec.citations}
    valid = markers <= cited_ns
    precise = []
    for c in rec.citations:
        passage = rec.cited_texts.get(int(c["n"]), c.get("quote", ""))
        precise.append(any(contains_quote(passage, e.quote) for e in q.evidence) or contains_alias(passage, q.answers))
    correct = bool(q.answerable and not rec.abstained and contains_alias(text, q.answers))
    if q.sides:  # a disagreement: right only when every side is stated and cited to one of its documents
        correct = correct and all(side_cited(side.answers, side.doc_ids, rec) for side in q.sides)
    # The generator's own answer, before verification: whether it holds a gold alias. It separates what the model
    # got wrong from what verification withheld (None when the draft is unknown: remote runs, or unanswerable).
    draft_correct = contains_alias(strip_citations(rec.draft), q.answers) if q.answerable and rec.draft is not None else None
    return {
        "correct": correct,
        "exact_match": bool(q.answerable and exact_match(text, q.answers)),
        "f1": token_f1(text, q.answers) if q.answerable else 0.0,
        "abstained": rec.abstained,
        "citation_valid": valid,
        "citation_precision": mean([float(p) for p in precise]) if precise else None,
        "draft_correct": draft_correct,
    }


def side_cited(aliases: list[str], doc_ids: list[str], rec: AnswerRecord) -> bool:
    """Some answer sentence holds one of ``aliases`` and cites a passage of one of ``doc_ids``."""
    from rag.verification.claims import split_claims

    doc_of = {int(c["n"]): c.get("doc_id") for c in rec.citations}
    return any(contains_alias(claim.text, aliases) and any(doc_of.get(n) in doc_ids for n in claim.cited)
               for claim in split_claims(rec.answer))


def outcome(row: dict[str, Any]) -> int:
    """+1 right, 0 abstained, -1 wrong (an answer to an unanswerable question is wrong)."""
    if row["scores"]["abstained"]:
        return 0
    return 1 if row["answerable"] and row["scores"]["correct"] else -1


def ok(row: dict[str, Any]) -> bool:
    """Right answer to an answerable question, or an abstention on an unanswerable one."""
    return bool(row["scores"]["correct"]) if row["answerable"] else bool(row["scores"]["abstained"])


def risk_coverage(rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(coverage, accuracy among the covered) keeping the most confident questions first."""
    ranked = sorted((r for r in rows if r.get("confidence") is not None), key=lambda r: -r["confidence"])
    out, right = [], 0
    for i, r in enumerate(ranked, start=1):
        right += ok(r)
        out.append((i / len(ranked), right / i))
    return out


def accuracy_at(curve: list[tuple[float, float]], coverage: float) -> float:
    """Accuracy of the most confident ``coverage`` share of questions."""
    return next((acc for cov, acc in curve if cov >= coverage - 1e-9), 0.0)


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Aggregate metrics over scored questions (see eval/README.md for definitions)."""
    answerable = [r for r in rows if r["answerable"]]
    scores = [r["scores"] for r in rows]
    out: dict[str, float] = {
        "questions": float(len(rows)),
        "score": mean([float(outcome(r)) for r in rows]),
        "accuracy": mean([float(r["scores"]["correct"]) for r in answerable]),
        "exact_match": mean([float(r["scores"]["exact_match"]) for r in answerable]),
        "f1": mean([r["scores"]["f1"] for r in answerable]),
    }
    p, rcl = precision_recall([s["abstained"] for s in scores], [not r["answerable"] for r in rows])
    out["abstention_precision"], out["abstention_recall"] = p, rcl
    with_citations = [s for s in scores if not s["abstained"]]
    out["citation_validity"] = mean([float(s["citation_valid"]) for s in with_citations]) if with_citations else 1.0
    # (abstained, precision) of each answerable question with citations
    cited = [(bool(s["abstained"]), s["citation_precision"]) for r, s in zip(rows, scores, strict=True)
             if r["answerable"] and s["citation_precision"] is not None]
    out["citation_precision"] = mean([p for _, p in cited]) if cited else 0.0
    # The same split by what the citation backs: an answer's claims, or the closest passage a low-confidence
    # abstention shows (it says the passage may not answer, so a miss there misleads less than an answer's).
    for part, abstained in (("answers", False), ("closest_passage", True)):
        chosen = [p for a, p in cited if a is abstained]
        if chosen:
            out[f"citation_precision[{part}]"] = mean(chosen)
    drafted = [r for r in answerable if r["scores"].get("draft_correct") is not None]
    if drafted:  # in-process runs: how far the generator's drafts reach, and how much of that verification keeps
        right_drafts = [r for r in drafted if r["scores"]["draft_correct"]]
        out["draft_accuracy"] = mean([float(r["scores"]["draft_correct"]) for r in drafted])
        out["right_drafts_kept"] = mean([float(r["scores"]["correct"]) for r in right_drafts]) if right_drafts else 0.0
    kinds = sorted({r.get("unanswerable_kind") or "unspecified" for r in rows if not r["answerable"]})
    for kind in kinds:
        chosen = [r for r in rows if not r["answerable"] and (r.get("unanswerable_kind") or "unspecified") == kind]
        out[f"abstention_recall[{kind}]"] = mean([float(r["scores"]["abstained"]) for r in chosen])
    if any(r.get("confidence") is not None for r in rows):
        rated = [r for r in rows if r.get("confidence") is not None]
        out["confidence_auroc"] = auroc([r["confidence"] for r in rated], [ok(r) for r in rated])
        curve = risk_coverage(rows)
        out["accuracy@80%coverage"] = accuracy_at(curve, 0.8)
        out["accuracy@90%coverage"] = accuracy_at(curve, 0.9)
    for stage in STAGES:
        values = [r["timings"].get(stage) for r in rows if r["timings"].get(stage) is not None]
        if values:
            out[f"{stage[:-3]}_p50_ms"] = percentile(values, 50)
            out[f"{stage[:-3]}_p95_ms"] = percentile(values, 95)
    return out


def run_answers(gold: Iterable[GoldQuestion], ask: Callable[..., AnswerRecord], progress: bool = False) -> list[dict[str, Any]]:
    """Ask each question and score it; one row per question with everything needed to audit it. ``ask(question)``,
    or ``ask(question, filter)`` for a question asked with a filter (type ``filtered``)."""
    from tqdm import tqdm

    questions = list(gold)
    return [answer_row(q, ask(q.question, q.filter) if q.filter else ask(q.question))
            for q in tqdm(questions, desc="eval", unit="q", disable=not progress)]


def answer_row(q: GoldQuestion, rec: AnswerRecord) -> dict[str, Any]:
    """A report's row for one question: what was asked, what the system said, and its scores."""
    return {
        "id": q.id, "type": q.type, "split": q.split, "unanswerable_kind": q.unanswerable_kind, "question": q.question,
        "answerable": q.answerable, "gold_answers": q.answers, "answer": rec.answer, "abstained": rec.abstained,
        "confidence": rec.confidence, "signals": rec.signals, "backend": rec.backend, "citations": rec.citations,
        "timings": rec.timings, "draft": rec.draft, "notes": rec.notes, "scores": score_question(q, rec),
    }


def in_process_asker(answerer: Any, backend: str | None, mode: str | None) -> Callable[..., AnswerRecord]:
    """Ask through the library."""
    from rag.retrieval.filters import SearchFilter

    def ask(question: str, filter: dict[str, Any] | None = None) -> AnswerRecord:  # noqa: A002 - the gold field's name
        a = answerer.run(question, backend=backend, mode=mode, where=SearchFilter.parse(filter)).answer()
        return AnswerRecord(
            answer=a.answer, abstained=a.abstained, citations=[c.__dict__ for c in a.citations], timings=a.timings,
            backend=a.backend, confidence=a.confidence, signals=a.signals, cited_texts={c.n: a.passages[c.n - 1].text for c in a.citations if c.n <= len(a.passages)},
            draft=a.raw_answer, notes=list(a.notes),
        )

    return ask


def remote_asker(base_url: str, api_key: str | None, timeout: float = 300) -> Callable[..., AnswerRecord]:
    """Ask a running service through its OpenAI-compatible endpoint with the official client."""
    import time

    import openai

    client = openai.OpenAI(base_url=base_url.rstrip("/") + "/v1", api_key=api_key or "none", timeout=timeout, max_retries=0)

    def ask(question: str, filter: dict[str, Any] | None = None) -> AnswerRecord:  # noqa: A002 - the gold field's name
        started = time.perf_counter()
        resp = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": question}],
                                              extra_body={"filter": filter} if filter else None)
        extra = resp.model_extra or {}
        content = resp.choices[0].message.content or ""
        return AnswerRecord(
            answer=content, abstained=bool(extra.get("abstained", content.strip() == ABSTENTION)),
            citations=list(extra.get("sources", [])), backend=str(extra.get("backend", "remote")),
            confidence=extra.get("confidence"),
            timings={"total_ms": (time.perf_counter() - started) * 1000},
        )

    return ask
