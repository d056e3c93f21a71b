"""Checking a generated answer claim by claim: keep what a passage supports, move citations to the passage
that does, drop the rest, abstain when nothing is left.

For each claim the rule checks run against every passage; passages that fail a hard rule are out. The
model then judges the claim against its best remaining passage (the cited one first), and the claim model
turns rules and judgement into a probability. Without a judge (a backend that cannot read yes/no
probabilities, or the extractive fallback) the rules decide alone, more strictly, and a note says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rag.generation.answer import ABSTENTION, Citation
from rag.generation.prompt import ContextPassage
from rag.text import content_terms, split_sentences
from rag.verification.claim_model import ClaimModel, features
from rag.verification.claims import Claim, is_abstention, split_claims
from rag.verification.judge import Check, Judge
from rag.verification.rules import RuleCheck, check, with_antecedent

log = logging.getLogger(__name__)
# A sentence quoted from its passage (a side of a disagreement, in its source's own words) needs the judge to lean
# yes, not the claim model's bar: that bar is fitted on sentences the model wrote, whose risk is misstating the
# passage. A quote cannot misstate it; its risk is being off the question, which the side rules check.
QUOTED_MIN_JUDGE = 0.5
NO_JUDGE_NOTE = "checked by rules only (the backend gives no yes/no probabilities)"
JUDGE_OFF_NOTE = "checked by rules only (RAG_JUDGE is off)"
OFF_QUESTION_NOTE = "a sentence's passage does not answer the question (RAG_MIN_ANSWERABLE)"


@dataclass
class Verification:
    answer: str
    citations: list[Citation]
    abstained: bool
    claims: list[Claim]
    notes: list[str] = field(default_factory=list)
    judged: bool = False

    @property
    def support(self) -> float:
        """The weakest kept claim's probability of support (0 when nothing was kept)."""
        kept = [max(c.scores[n] for n in c.final) for c in self.claims if c.final]
        return min(kept) if kept else 0.0


class Verifier:
    """Checks answers against numbered passages with the rules, the judge (if any) and the claim model."""

    def __init__(self, model: ClaimModel, judge: Judge | None = None,
                 rules_threshold: float | None = None, no_judge_note: str = NO_JUDGE_NOTE,
                 all_names: Callable[[str], str] | None = None, judge_answers: bool = False,
                 claim_threshold: float | None = None, min_answerable: float = 0.0) -> None:
        self.model = model
        # with judge_answers: a kept sentence's window must also answer the question at least this much (0 = off)
        self.min_answerable = min_answerable
        self.judge_answers = judge_answers  # also judge whether a kept claim's window answers the question at all
        self.no_judge_note = no_judge_note  # why there is no judge, shown in the answer's notes
        self.judge = judge
        self.rules_threshold = rules_threshold
        self.claim_threshold = claim_threshold  # with a judge; None: the claim model's fitted threshold
        self.all_names = all_names  # the collection's alias table: a text with the other names of what it names
        self._judged: dict[Check, float] = {}  # checks already asked: two claims on one window ask its check once

    def ask(self, check: Check) -> float | None:
        """The judge's P(yes) for ``check``, asked once per verifier (one answer); None when the backend cannot judge.

        An answer's sentences often rest on the same window, and the claim-less check sees only the window and the
        question, so the second sentence would ask the model exactly what the first did (about 1.6 s on 2 cores)."""
        if check not in self._judged:
            got = self.judge.judge([check]) if self.judge else None
            if not got:
                return None
            self._judged[check] = got[0]
        return self._judged[check]

    def verify(self, draft: str, question: str, context: list[ContextPassage], quoted: bool = False) -> Verification:
        """The whole answer checked at once. ``quoted``: the draft quotes its passages (``QUOTED_MIN_JUDGE``)."""
        session = self.session(draft, question, context, quoted)
        for _ in session.decide():
            pass
        return session.result()

    def session(self, draft: str, question: str, context: list[ContextPassage], quoted: bool = False) -> VerificationSession:
        """A check that decides claim by claim (for streaming: each sentence can be shown once it is decided)."""
        return VerificationSession(self, draft, question, context, quoted)

    # -- with a judge ---------------------------------------------------------------------------------
    def judge_claim(self, c: Claim, question: str, by_n: dict[int, ContextPassage], rules: dict[int, RuleCheck],
                    quoted: bool = False) -> None:
        """Judge the claim against its best cited passage; if that fails, against the best other passage. A ``quoted``
        claim passes when the judge leans yes (``QUOTED_MIN_JUDGE``) and no rule flags it. With ``judge_answers``, a
        kept claim's window, with the sentence before it, is then judged against the question alone (``Claim.answerable``)."""
        for n in by_n:
            c.scores.setdefault(n, 0.0)
        usable = [n for n in by_n if not rules[n].rejected]
        cited = [n for n in dict.fromkeys(c.cited) if n in usable]
        others = [n for n in usable if n not in cited]
        threshold = self.model.threshold(judged=True) if self.claim_threshold is None else self.claim_threshold
        off_question = False
        for pool in (cited, others):
            if not pool:
                continue
            n = max(pool, key=lambda m: _rank(rules[m], m))
            got = self.ask(Check(by_n[n].passage.title, rules[n].window, question, c.fact))
            if got is None:  # the backend could not judge after all
                c.notes.append(NO_JUDGE_NOTE)
                self.decide_by_rules(c, question, by_n, rules)
                return
            p = self.model.probability(features(rules[n], got))
            c.scores[n] = p
            r = rules[n]
            clean = not (r.names_missing or r.negation_mismatch or r.comparative_added or r.adds_nothing)
            if p >= threshold or (quoted and clean and got >= QUOTED_MIN_JUDGE):
                if self.judge_answers:  # whether that window answers the question at all, read without the claim.
                    # With the sentence before it: a window whose subject is "the group" does not say whose figure
                    # it gives (eval/reports/issue12-stop22-answerability.md).
                    window = with_antecedent(by_n[n].passage.text, rules[n].window)
                    c.answerable = self.ask(Check(by_n[n].passage.title, window, question))
                    # A true sentence that answers another question (the light's range asked its fog signal's) is
                    # what the claim check lets through most on real drafts (eval/reports/issue12-stop32.md): with
                    # min_answerable it must stand on a window that answers this one. A quoted side is left alone.
                    if not quoted and c.answerable is not None and c.answerable < self.min_answerable:
                        off_question = True
                        continue
                c.final = [n]
                return
        if off_question:
            c.notes.append(OFF_QUESTION_NOTE)

    # -- rules only -----------------------------------------------------------------------------------
    def decide_by_rules(self, c: Claim, question: str, by_n: dict[int, ContextPassage], rules: dict[int, RuleCheck]) -> None:
        """Without a judge: the claim model's rules-only probability on each window no hard rule rejects; the claim is
        kept on the cited windows at or above the threshold, else on the best other one: the judged path's mechanism. On
        real drafts' test split the old rule (a fixed share of new words, or embedding similarity) kept sentences at
        precision 0.60, the fitted model at 0.66 with higher recall (eval/reports/issue12-stop33.md)."""
        threshold = self.model.threshold(judged=False) if self.rules_threshold is None else self.rules_threshold
        for n in by_n:
            p = 0.0 if rules[n].rejected else self.model.probability(features(rules[n], None))
            c.scores[n] = p if p >= threshold else 0.0
        supported = [n for n in by_n if c.scores[n] > 0.0]
        cited = [n for n in dict.fromkeys(c.cited) if n in supported]
        if cited:
            c.final = cited
        elif supported:
            c.final = [max(supported, key=lambda n: (c.scores[n], -n))]


class VerificationSession:
    """One answer being checked: ``decide()`` yields each answer claim once it is decided (kept or dropped),
    ``result()`` assembles the verified answer from the decided claims."""

    def __init__(self, verifier: Verifier, draft: str, question: str, context: list[ContextPassage],
                 quoted: bool = False) -> None:
        self.verifier = verifier
        self.quoted = quoted
        self.draft = draft
        self.question = question
        self.by_n = {c.n: c for c in context}
        # What each document shows in the context (its card and all its passages): where a number the question
        # states is looked up. The card counts: "in early 2017" is the premise of a report dated 2017 that says
        # "last month" (seeds s17 was dropped because no passage repeats its own year).
        self.documents: dict[str, str] = {}
        for c in context:
            doc = self.documents.get(c.passage.doc_id, c.passage.byline())
            self.documents[c.passage.doc_id] = f"{doc}\n{c.passage.text}"
        self.claims = split_claims(draft)
        self.notes: list[str] = []
        self.decided: list[Claim] = []
        self.judged = verifier.judge is not None
        self.model_abstained = not draft.strip() or (is_abstention(draft) and not any(c.cited for c in self.claims))

    def decide(self) -> Iterator[Claim]:
        if self.model_abstained:
            return
        v = self.verifier
        if not self.judged:
            self.notes.append(v.no_judge_note)
        for c in self.claims:
            if is_abstention(c.text):
                continue
            bad = [n for n in c.cited if n not in self.by_n]
            if bad:
                self.notes.append(f"dropped out-of-range citation(s) {bad}")
            rules = {n: check(c.fact, self.question, p.passage.text, p.passage.title, v.all_names, self.documents[p.passage.doc_id])
                     for n, p in self.by_n.items()}
            if c.attribution:  # "According to X (2022), ...": only a passage by X (its card: title, authors, date,
                # publisher), or quoting X, can support it
                for n, p in self.by_n.items():
                    card_and_text = f"{p.passage.byline()}\n{p.passage.publisher or ''}\n{p.passage.text}"
                    if not attribution_matches(c.attribution, v.all_names(card_and_text) if v.all_names else card_and_text):
                        rules[n].reasons.append(f"the source named ({c.attribution}) is not this passage's")
            if self.judged:
                v.judge_claim(c, self.question, self.by_n, rules, self.quoted)
            else:
                v.decide_by_rules(c, self.question, self.by_n, rules)
            c.checks = rules
            if c.final and c.cited and not set(c.final) & set(c.cited):
                self.notes.append(f"citation {c.cited} moved to {c.final}")
            self.decided.append(c)
            yield c

    def result(self, kept: list[Claim] | None = None) -> Verification:
        """The verified answer from ``kept`` (default: every decided claim that a passage supports)."""
        if self.model_abstained:
            return Verification(ABSTENTION, [], True, self.claims, ["model abstained"] if self.draft.strip() else ["empty output"])
        kept = [c for c in self.decided if c.final] if kept is None else kept
        notes = list(dict.fromkeys([*self.notes, *(n for c in self.claims for n in c.notes)]))
        if not kept:
            return Verification(ABSTENTION, [], True, self.claims, [*notes, "no sentence supported by the passages"], self.judged)
        if len(kept) < len(self.claims):
            notes.append(f"dropped {len(self.claims) - len(kept)} unsupported sentence(s)")
        text = " ".join(sentence(c) for c in kept)
        return Verification(text, _citations(kept, self.by_n), False, self.claims, notes, self.judged)


def attribution_matches(source: str, text: str) -> bool:
    """The names and numbers of "Koneska (2022-08-16)" (or "CSIS") are all in ``text``: the passage's card line
    (title, authors, date) and its words, so "according to CSIS" stands on a passage that quotes CSIS."""
    terms = content_terms(text)
    return content_terms(" ".join(re.findall(r"[A-Z][\w'’-]*", source))) <= terms and set(re.findall(r"\d+", source)) <= set(re.findall(r"\d+", text))


def sentence(c: Claim) -> str:
    """A kept claim as shown: its text with its final citation markers."""
    return _with_markers(c.text, c.final)


def _rank(r: RuleCheck, n: int) -> tuple[float, int]:
    return (r.coverage + r.novel_coverage + r.question_coverage - r.names_missing, -n)


def _with_markers(sentence: str, cited: list[int]) -> str:
    """``"It opened in 1932 [2]."``: markers go before the closing punctuation."""
    markers = "".join(f"[{n}]" for n in cited)
    body, end = (sentence[:-1], sentence[-1]) if sentence[-1:] in ".!?" else (sentence, ".")
    return f"{body.rstrip()} {markers}{end}"


def _citations(kept: list[Claim], by_n: dict[int, ContextPassage]) -> list[Citation]:
    out: dict[int, Citation] = {}
    for c in kept:
        for n in c.final:
            if n not in out:
                out[n] = citation(c.text, by_n[n], round(c.scores.get(n, 0.0), 4))
    return sorted(out.values(), key=lambda c: c.n)


def citation(claim: str, cp: ContextPassage, score: float) -> Citation:
    """``cp`` cited for ``claim``, quoted at the passage sentence sharing the most content words with it."""
    p = cp.passage
    start, end = best_sentence(claim, p.text)
    return Citation(n=cp.n, doc_id=p.doc_id, title=p.title, source=p.source, chunk_id=p.chunk_id,
                    quote=" ".join(p.text[start:end].split()), start=p.start + start, end=p.start + end, score=score)


def best_sentence(claim: str, passage_text: str) -> tuple[int, int]:
    """Span of the passage sentence sharing the most content words with ``claim``."""
    spans = split_sentences(passage_text) or [(0, len(passage_text))]
    terms = content_terms(claim)
    return max(spans, key=lambda sp: len(terms & content_terms(passage_text[sp[0]: sp[1]])))
