"""Checking one drafted answer end to end: claims verified one by one (each shown once decided), a
confidence on the result, and the two ways an answer turns into an abstention.

* Confidence gate (``RAG_MIN_CONFIDENCE``): a sentence is shown only once the answer's confidence with it is
  at or above the minimum counting every sentence not yet decided as dropped, so a sentence dropped later can
  never pull the shown answer under the gate; a supported sentence under it waits for the next ones. An answer
  left with nothing says the documents may not answer, and shows the closest passage, cited.
* Rescue: a model that only pointed at passages ("[2]") gets the extractive sentence instead, when that one
  passes the same checks and the same gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rag.generation.answer import ABSTENTION
from rag.generation.backends import Prompt
from rag.generation.conflicts import Side, stated
from rag.retrieval import Passage
from rag.text import content_terms, strip_citations
from rag.verification.claims import Claim, is_abstention
from rag.verification.confidence import UNJUDGED, ConfidenceModel
from rag.verification.rules import coverage
from rag.verification.verifier import Verification, Verifier, citation, sentence

LOW_CONFIDENCE = "The documents may not answer this; closest passage: {quote} [{n}]."
CITED_WITHOUT_ANSWER = "the model cited passages without writing an answer"


@dataclass
class Outcome:
    verification: Verification
    confidence: float
    signals: dict[str, float]
    rescued: bool = False
    low_confidence: bool = False
    notes: list[str] = field(default_factory=list)
    conflicts: list[Side] = field(default_factory=list)  # the sides of a disagreement the answer states


class AnswerCheck:
    """One draft being checked. Iterate ``sentences()`` for the verified sentences as they are decided; then
    ``outcome`` holds the verification, the confidence and its signals."""

    def __init__(self, verifier: Verifier, confidence: ConfidenceModel | None, min_confidence: float, question: str,
                 prompt: Prompt, passages: list[Passage], draft: str, extract: Callable[[], tuple[str, float]],
                 rescue_score: float | None, sides: list[tuple[Side, Claim]] | None = None) -> None:
        self.verifier = verifier
        self.model = confidence
        self.min_confidence = min_confidence
        self.question = question
        self.prompt = prompt
        self.passages = passages
        self.draft = draft
        self._extract = extract
        self._extracted: tuple[str, float] | None = None
        self.rescue_score = rescue_score  # None: no rescue (the draft is already extractive)
        self.sides = sides or []  # a disagreement among the passages: each side with its checked sentence
        self.outcome: Outcome | None = None

    def extracted(self) -> tuple[str, float]:
        """The extractive answer (computed once, only when needed: for signals and the rescue)."""
        if self._extracted is None:
            self._extracted = self._extract()
        return self._extracted

    def sentences(self) -> Iterator[str]:
        session = self.verifier.session(self.draft, self.question, self.prompt.context)
        kept: list[Claim] = []
        # Supported sentences not shown yet: the answer with them is under the gate while the sentences after them
        # are undecided. The gate reads the share of the whole draft kept, counting an undecided sentence as
        # dropped, so what is shown never depends on a sentence that may still fail: gating on the share of the
        # sentences decided so far showed seeds s111's first sentence (1 of 1 kept), then its second was dropped
        # and the answer's final confidence (1 of 2 kept: 0.495) was under the gate (0.529) it had passed.
        pending: list[Claim] = []
        withheld: list[Claim] = []  # supported sentences the gate dropped: the closest passage is what they stand on

        def candidates() -> Iterator[Claim]:
            """The model's supported claims, then the checked sides of a disagreement the answer has not stated (read
            after the model's claims are decided): an answer that gives one side gets the others, each cited, and so
            does an answer whose own sentences all failed. An abstaining model is left alone."""
            yield from (claim for claim in session.decide() if claim.final)
            if not session.model_abstained:
                shown = kept + pending + [claim for _, claim in held]
                yield from (claim for side, claim in self.sides if not stated(side, shown, self.prompt.context))

        def passes(answer: list[Claim]) -> bool:
            return self._confidence(answer, session.claims, session.judged, False) >= self.min_confidence

        # Sentences that state a side of a disagreement are shown together once all are decided, in the sides'
        # order (newest source first with prefer=newest, passage order with prefer=all), whatever order the model
        # wrote them in; an added side would otherwise always come last. They are gated together, as the answer
        # they make: gated one by one, each of a two-sided answer was half of it and fell under the gate.
        held: list[tuple[int, Claim]] = []
        for claim in candidates():
            side = self._side_of(claim)
            if side is not None:
                held.append((side, claim))
                continue
            # Pending sentences are shown together once they pass: gated one by one, the first of two good
            # sentences was half an answer and fell under the gate, then so did the second (mini m28 and m30).
            pending.append(claim)
            if passes(kept + pending):
                kept += pending
                yield from (sentence(c) for c in pending)
                pending = []
        # Every sentence is decided, so the share is final: each one still pending is kept if the answer with it
        # passes, in the draft's order.
        for claim in pending:
            if passes(kept + [claim]):
                kept.append(claim)
                yield sentence(claim)
            else:
                withheld.append(claim)
        if held:
            ordered = [claim for _, claim in sorted(held, key=lambda x: x[0])]
            if not passes(kept + ordered):
                withheld += ordered
            else:
                kept += ordered
                for claim in ordered:
                    yield sentence(claim)
        verification = session.result(kept)
        rescued = False
        if verification.abstained and self.rescue_score is not None and not content_terms(strip_citations(self.draft)):
            text, score = self.extracted()
            if text != ABSTENTION and score >= self.rescue_score:
                rescue = self.verifier.verify(text, self.question, self.prompt.context)
                rescue_kept = [c for c in rescue.claims if c.final]
                # The gate too: an extract is an answer like any other (it was shown below the gate before)
                if not rescue.abstained and self._confidence(rescue_kept, rescue.claims, rescue.judged, False) >= self.min_confidence:
                    verification, rescued, kept = rescue, True, rescue_kept
                    yield rescue.answer
        signals = self.signals(kept, verification)
        confidence = self._score(signals, verification.abstained)
        low = False
        if verification.abstained and withheld:
            verification, low = self._closest_passage(verification, withheld), True
            yield verification.answer
        shown = [] if verification.abstained else kept  # what the answer says (the rescue's claims when rescued)
        conflicts = [side for side, _ in self.sides if stated(side, shown, self.prompt.context)]
        self.outcome = Outcome(verification, confidence, signals, rescued, low, conflicts=conflicts if len(conflicts) > 1 else [])

    def _side_of(self, claim: Claim) -> int | None:
        """The place in ``self.sides`` of the first side ``claim`` states, None when it states none."""
        return next((i for i, (side, _) in enumerate(self.sides) if stated(side, [claim], self.prompt.context)), None)

    # -- confidence -------------------------------------------------------------------------------------
    def _confidence(self, kept: list[Claim], claims: list[Claim], judged: bool, abstained: bool) -> float:
        stub = Verification("", [], abstained, claims, judged=judged)
        return self._score(self.signals(kept, stub), abstained)

    def _score(self, signals: dict[str, float], abstained: bool) -> float:
        if self.model is None:  # not fitted yet: the raw support
            return round(signals["support"] if not abstained else 1.0 - signals["extractive_score"], 4)
        return self.model.confidence(signals, abstained)

    def signals(self, kept: list[Claim], verification: Verification) -> dict[str, float]:
        """The confidence model's inputs (see ``rag.verification.confidence``)."""
        dense = sorted((p.dense_score for p in self.passages if p.dense_score is not None), reverse=True)
        text, score = self.extracted()
        finals = {n for c in kept for n in c.final}
        extract_n = int(text.rsplit("[", 1)[1].rstrip("].")) if text != ABSTENTION and "[" in text else 0
        if kept:
            q_cov = max(c.checks[n].question_coverage for c in kept for n in c.final if n in c.checks) if any(c.checks for c in kept) else 0.0
        else:
            q_cov = max((coverage(self.question, c.passage.text, c.passage.title) for c in self.prompt.context), default=0.0)
        answer_claims = [c for c in verification.claims if not is_abstention(c.text)]
        return {
            "support": min((max(c.scores[n] for n in c.final) for c in kept), default=0.0),
            "judged": float(verification.judged),
            "retrieval_top": dense[0] if dense else 0.0,
            "retrieval_margin": dense[0] - dense[1] if len(dense) > 1 else 0.0,
            "question_coverage": q_cov,
            "extractive_agrees": float(extract_n in finals),
            "extractive_score": score,
            "kept_share": len(kept) / max(len(answer_claims), 1),
            "answerable": min((c.answerable for c in kept if c.answerable is not None), default=UNJUDGED),
        }

    def _closest_passage(self, verification: Verification, withheld: list[Claim]) -> Verification:
        """An abstention that still shows the closest passage, cited as [n]: the one the best-supported withheld
        sentence stood on, quoted at its supporting sentence. The passage covering most of the question's words
        was often a document card (title and authors), not the evidence: seeds s111's gated right answer then
        cited a passage without its answer, and citation precision fell."""
        by_n = {c.n: c for c in self.prompt.context}
        grounds = [(c.scores.get(n, 0.0), c, n) for c in withheld for n in c.final if n in by_n]
        if not grounds:
            return verification
        _, claim, n = max(grounds, key=lambda g: (g[0], -g[2]))
        cited = citation(claim.text, by_n[n], 0.0)
        return Verification(LOW_CONFIDENCE.format(quote=cited.quote, n=n), [cited], True, verification.claims,
                            [*verification.notes, "confidence below RAG_MIN_CONFIDENCE"], verification.judged)
