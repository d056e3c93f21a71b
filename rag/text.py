"""Small text utilities shared by compression, verification and the extractive backend."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

# A citation marker as answers write it: [1], a group [1, 2], a range [1-2], in parentheses (1), each optionally
# with the word: (Passage 1). The one
# definition every parser, sanitizer and scorer uses, so what verification reads as a citation is exactly
# what prompts neutralize. Parentheses take at most two digits: "(1990)" is a year, not a citation.
_GROUP = r"\d{{1,{d}}}(?:\s*[,\-–]\s*\d{{1,{d}}})*"
_WORD_PREFIX = r"(?i:passages?\s+)?"  # the model also writes "(Passage 1)" and "[passage 2]"
CITATION_MARKER_PATTERN = rf"\[{_WORD_PREFIX}({_GROUP.format(d=3)})\]|\({_WORD_PREFIX}({_GROUP.format(d=2)})\)"
CITATION_MARKER = re.compile(CITATION_MARKER_PATTERN)
MAX_RANGE = 20  # "[1-400]" is not a citation of 400 passages
_WORD = re.compile(r"[\w][\w'’-]*", re.UNICODE)
_NUMBER = re.compile(r"\d[\d,.]*\d|\d")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself according also did does said says say one""".split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` in ``text`` (rule-based, keeps abbreviations like U.S. mostly intact)."""
    spans: list[tuple[int, int]] = []
    for block in re.finditer(r"[^\n]+", text):
        start = block.start()
        for boundary in _SENTENCE_END.finditer(block.group()):
            end = block.start() + boundary.start()
            if text[start:end].strip():
                spans.append((start, end))
            start = block.start() + boundary.end()
        if text[start : block.end()].strip():
            spans.append((start, block.end()))
    return spans


def content_terms(text: str) -> set[str]:
    """Stemmed, lowercased words that carry meaning (stopwords dropped)."""
    text = text.replace("’", "'").replace("‘", "'")
    words = [re.sub(r"'s$", "", w.lower()).strip("'-") for w in _WORD.findall(text)]
    words = [w for part in words for w in re.split(r"[-']", part) if w]
    kept = [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return set(_stemmer().stemWords(kept))


def numbers(text: str) -> set[str]:
    """Numbers in ``text`` with thousands separators removed ("1,500" -> "1500")."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


_CAPITALIZED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’-]*")


def entities(text: str) -> set[str]:
    """Stemmed terms of capitalized words not opening a sentence (names, places, organisations)."""
    found = " ".join(m.group() for m in _CAPITALIZED.finditer(text.strip()))
    return content_terms(found)


def marker_numbers(group: str) -> list[int]:
    """``"1, 3-4"`` -> ``[1, 3, 4]``."""
    out: list[int] = []
    for part in group.split(","):
        ends = [int(x) for x in re.split(r"\s*[-–]\s*", part.strip()) if x]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= MAX_RANGE:
            out.extend(range(ends[0], ends[1] + 1))
        else:
            out.extend(ends)
    return out


def citation_numbers(text: str) -> list[int]:
    """Passage numbers cited in ``text``, in order ("[1, 2] ... [3-4] (5)" -> [1, 2, 3, 4, 5])."""
    return [n for m in CITATION_MARKER.finditer(text) for n in marker_numbers(m.group(1) or m.group(2))]


def strip_citations(text: str) -> str:
    """``text`` without citation markers (each replaced by a space)."""
    return CITATION_MARKER.sub(" ", text)


_YES_NO = re.compile(r"^\s*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|shall|may|might|must)\b",
                     re.IGNORECASE)


def is_yes_no(question: str) -> bool:
    """A question answered by yes or no ("Was it built before 1900?") or by one of two options ("Was it X or Y?")."""
    return bool(_YES_NO.match(question))


def fold(text: str) -> str:
    """Case and accents ignored: ``Legieć`` -> ``legiec``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
