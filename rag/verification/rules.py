"""Deterministic checks of one claim against one passage: what a bag of words misses.

Each check returns a number (a feature) and the hard ones a reason: a quantity or a name the passage does
not hold rejects the claim outright. The rest (negation or comparative added, coverage, similarity)
feed the claim model, together with the model's own yes/no judgement when there is one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.text import content_terms, split_sentences
from rag.verification.claims import META_TERMS
from rag.verification.quantities import missing_quantities, quantities, values

_NEGATION = re.compile(r"\b(not|never|no|none|neither|nor|without|cannot)\b|n't\b", re.IGNORECASE)
_COMPARATIVE = re.compile(
    r"\b(before|after|more than|less than|fewer than|over|under|at least|at most|nearly|almost|only|exactly|"
    r"first|last|earliest|latest|largest|smallest|most|least|all|every|entire|whole|always)\b", re.IGNORECASE)
_APPROXIMATE = re.compile(r"\b(more|less|fewer|over|under|at least|at most|nearly|almost|about|around|roughly|"
                          r"some|twice|half|double|triple|ago)\b", re.IGNORECASE)
_NAME_PARTICLE = re.compile(r"^(al-|el-|bin\b|ibn\b|abu\b|de\b|van\b|von\b|da\b)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][\w'’.-]*")
_DEMONYM_SUFFIXES = ("ians", "ian", "ese", "ish", "ans", "an", "is", "i")
MIN_ROOT = 4


def root(term: str) -> str:
    """A demonym's root: "iraqi" -> "iraq", "afghans" -> "afgh" (a root shorter than MIN_ROOT is never cut)."""
    for suffix in _DEMONYM_SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= MIN_ROOT:
            return term[: -len(suffix)]
    return term


def term_in(term: str, terms: set[str], roots: set[str]) -> bool:
    """``term`` (stemmed) is among ``terms``, or shares a root with one ("iraqi" ~ "iraq", "afghan" ~ "afghanistan")."""
    if term in terms:
        return True
    base = root(term)
    if len(base) < MIN_ROOT:
        return False
    return any(r.startswith(base) or base.startswith(r) for r in roots if len(r) >= MIN_ROOT)


def names(text: str) -> set[str]:
    """Stemmed terms of capitalised words. A sentence's first word is capitalised anyway, so it counts only as
    the start of a longer name ("Shahab al-Muhajir", "Hafiz Saeed Khan"), not alone ("Among", "Installing")."""
    found = []
    for start, end in split_sentences(text) or [(0, len(text))]:
        words = [m.group() for m in _WORD.finditer(text[start:end])]
        for i, word in enumerate(words):
            if not _capitalised(word) or values(word):
                continue
            following = words[i + 1] if i + 1 < len(words) else ""
            if i or _capitalised(following or "x"):
                found.append(word)
    return content_terms(" ".join(found))


def _capitalised(word: str) -> bool:
    """"Kabul", and "al-Muhajir" (a lower-case particle before a capitalised name)."""
    return word[0].isupper() or bool(_NAME_PARTICLE.match(word) and word.split("-", 1)[-1][:1].isupper())


def windows(passage: str) -> list[str]:
    """Windows of two consecutive sentences: support must be local, not stitched across a passage."""
    spans = split_sentences(passage) or [(0, len(passage))]
    return [passage[spans[i][0]: spans[min(i + 1, len(spans) - 1)][1]] for i in range(len(spans))]


def with_antecedent(passage: str, window: str) -> str:
    """``window`` (one of ``windows(passage)``) with the passage's sentence before it, if any: what "the group" or
    "the line" in its first sentence refers to."""
    spans = split_sentences(passage)
    for i, (start, _) in enumerate(spans):
        if passage.startswith(window, start):
            return passage[spans[i - 1][0]: start + len(window)] if i else window
    return window


@dataclass
class RuleCheck:
    """The rule features of one claim against one passage (its best window), and hard reasons to reject."""

    window: str = ""
    coverage: float = 0.0  # share of the claim's content terms in the window (or the title)
    novel_coverage: float = 0.0  # ... of the terms the claim adds beyond the question
    question_coverage: float = 0.0  # share of the question's terms in the window: is it about the same thing?
    names_missing: int = 0  # capitalised names of the claim the window (and title) do not hold
    negation_mismatch: bool = False  # the claim negates where the window does not, or the reverse
    comparative_added: bool = False  # "before", "more than", "only"... the window does not say
    adds_nothing: bool = False  # no term beyond the question: an echo, unless it is a yes/no answer
    reasons: list[str] = field(default_factory=list)  # hard failures

    @property
    def rejected(self) -> bool:
        return bool(self.reasons)


def check(claim: str, question: str, passage: str, title: str = "",
          all_names: Callable[[str], str] | None = None, document: str = "") -> RuleCheck:
    """The best window's features (hard failures first, then coverage). ``all_names`` adds the other names the
    collection defines for what a text names (its alias table), so "IS-K" in a window holds a claim's "ISIS-K".

    ``document`` is what else the passage's own document shows (its card line and its other passages in the
    context). A number the claim repeats from the question ("the March 2017 attack") is the question's premise: it
    must be in the passage or elsewhere in the same document ("a bomb went off ... The final death toll was 38" under
    a caption dated "March 8, 2017" two chunks before, or a report dated 2017 that says "last month"), never only in
    another source. Every other number must be in the window."""
    named = all_names or (lambda text: text)
    claim_terms = content_terms(claim) - META_TERMS  # "as passage [1] states" is no content
    question_terms = content_terms(question)
    novel = claim_terms - question_terms
    claim_names = names(claim) - question_terms
    best: RuleCheck | None = None
    title_terms = content_terms(title)
    # The passage itself (not its title) must share a word with the question: a bio under an ISIS-K title is not
    # about ISIS-K's leader. The whole passage, not the window, so "it has been led by ..." keeps its antecedent.
    own = content_terms(named(passage))
    off_topic = bool(question_terms) and not _share(question_terms, own, {root(t) for t in own})
    # The question's numbers that the passage's document states (the same for every window)
    premise = ({q.value for q in quantities(question)} - {q.value for q in missing_quantities(question, document)}
               if document else set())
    for window in windows(passage):
        terms = content_terms(named(window)) | title_terms
        roots = {root(t) for t in terms}
        result = RuleCheck(window=window)
        if not claim_terms:
            result.reasons.append("no content: it only points at the passages")
        if off_topic:
            result.reasons.append("off topic: the passage shares no word with the question")
        missing_q = [q for q in missing_quantities(claim, f"{title}\n{window}") if q.value not in premise]
        if missing_q and not _APPROXIMATE.search(claim):  # "more than ten years" may rest on "twelve years"
            result.reasons.append(f"quantity not in the passage: {', '.join(q.text for q in missing_q)}")
        result.names_missing = sum(not term_in(n, terms, roots) for n in claim_names)
        result.coverage = _share(claim_terms, terms, roots)
        result.novel_coverage = _share(novel, terms, roots) if novel else 0.0
        result.question_coverage = _share(question_terms, terms, roots)
        result.negation_mismatch = bool(_NEGATION.search(claim)) != bool(_NEGATION.search(window))
        claim_comparatives = {m.group(1).lower() for m in _COMPARATIVE.finditer(claim)}
        window_comparatives = {m.group(1).lower() for m in _COMPARATIVE.finditer(window)}
        result.comparative_added = bool(claim_comparatives - window_comparatives - {m.group(1).lower() for m in _COMPARATIVE.finditer(question)})
        result.adds_nothing = not novel
        if best is None or _rank(result) > _rank(best):
            best = result
    assert best is not None
    return best


def coverage(text: str, passage: str, title: str = "") -> float:
    """Share of ``text``'s content terms that ``passage`` (or its title) holds, demonym roots matching."""
    terms = content_terms(passage) | content_terms(title)
    return _share(content_terms(text), terms, {root(t) for t in terms})


def _share(wanted: set[str], terms: set[str], roots: set[str]) -> float:
    return sum(term_in(t, terms, roots) for t in wanted) / len(wanted) if wanted else 1.0


def _rank(r: RuleCheck) -> tuple[bool, float, float]:
    return (not r.rejected, r.coverage + r.novel_coverage - r.names_missing, r.question_coverage)
