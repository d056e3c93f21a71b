"""An answer as claims: its sentences, each with the passage numbers it cites."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag.text import CITATION_MARKER, citation_numbers, content_terms, split_sentences, strip_citations

if TYPE_CHECKING:
    from rag.verification.rules import RuleCheck

_ONE_MARKER = CITATION_MARKER.pattern.replace("(\\d", "(?:\\d")  # the same marker, without capture groups
_MARKER_AFTER_STOP = re.compile(rf"([.!?])\s*((?:{_ONE_MARKER})(?:\s*(?:{_ONE_MARKER}))*)")
_LEADING_MARKERS = re.compile(rf"^\s*((?:(?:{_ONE_MARKER})\s*)+)")
# An abstention speaks about the documents or the speaker's knowledge, not about the world.
_ABSTENTION = re.compile(
    r"\b(i\s+(?:do\s+not|don't|cannot|can't)\s+(?:know|answer|find|tell)|unable\s+to\s+(?:answer|find|determine)"
    r"|no\s+information|cannot\s+be\s+(?:answered|determined))\b"
    r"|\b(?:passages?|documents?|context|sources?|texts?|articles?)\b[^.]*\b(?:do(?:es)?\s*(?:not|n't)|not|never|no)\b"
    r"[^.]*\b(?:contain|say|state|mention|provide|specify|include|give|answer)"
    r"|\bnot\s+(?:mentioned|provided|specified|stated|given|included)\s+in\s+the\s+(?:passages?|documents?|context|sources?|texts?)",
    re.IGNORECASE,
)


_BARE_VERDICT = re.compile(r"^(yes|no)[.!]?$", re.IGNORECASE)
# Words that talk about the sources rather than the world: a sentence made only of them answers nothing.
META_TERMS = content_terms("passage passages document documents text source sources stated states state mentioned "
                           "mentions mention says said according given provided information answer question found find "
                           "seen see shown located contained contains cited refer refers reference")
# What else a pointer sentence may hold: words that only point back ("This fact is stated in passage [1].", "This
# incident is quoted in passage [1].": seeds s64, s75 were answered with nothing else). Not in META_TERMS, which the
# rules read as no content in any claim ("The incident killed 35 people" names an incident).
_POINTER_TERMS = META_TERMS | content_terms("fact facts incident event detail details quote quoted quotes described "
                                            "describes noted notes this that it inferred infer deduced evident "
                                            "supported support indicated indicates shows shown clear")
# An evidence sentence: "This can be inferred from the passage that states "..."" / "This can be seen in passage [1],
# where it says ...". Its lead (up to the quote or the clause that reports the passage) points back at the sentence
# before it ("This", "It") and says where, and the rest is the passage's words. It is that sentence's evidence, not
# an answer: shown alone, after its claim was dropped, it answered nothing (seeds dev s34, s44, s68).
_EVIDENCE_LEAD = re.compile(r"^(?P<lead>(?:this|that|it|these)\b.*?)(?:[\"“:]|\b(?:that|which|where|stating|saying)\b)",
                            re.IGNORECASE)
_SOURCE_NOUN = re.compile(r"\b(?:passages?|documents?|texts?|sources?|articles?|paragraphs?|excerpts?)\b|\[\d", re.IGNORECASE)
# "According to Koneska (2022-08-16), ...": who says it, checked against the cited source's card, not its text.
_ATTRIBUTION = re.compile(r"^according\s+to\s+(?P<source>[^,]{1,120}?),\s+(?P<body>\S.*)$", re.IGNORECASE | re.DOTALL)
# The same attribution after the fact: "The Pashtuns predominate in the Taliban, according to the 2022 analysis."
_TRAILING_ATTRIBUTION = re.compile(r"^(?P<body>\S.*?),?\s+according\s+to\s+(?P<source>[^,]{1,120}?)\s*(?P<end>[.!?]?)$",
                                   re.IGNORECASE | re.DOTALL)
# A source reporting the fact, named by what it is: "The American Kahani author thinks China is ...", "The 2017 U.N.
# report says that ...". The subject must end in a source noun, so "The Taliban believe ..." stays a claim. Read
# whole, the source went unchecked (any passage could back "The U.N. report says ...") and the judge was asked about
# who wrote the window, which it cannot see; now the judge reads the fact, and the source is checked against the
# passage's card (eval/reports/issue12-stop31.md).
_REPORTED = re.compile(
    r"^(?P<source>(?:the|an?|this)\s+[^,]{0,80}?\b(?:author|writer|analyst|analysis|article|report|study|paper|piece)s?)"
    r"\s+(?:thinks|believes|expects|says|states|argues|writes|notes|reports|predicts|suggests|claims|concludes|"
    r"estimates|finds|warns)\s+(?:that\s+)?(?P<body>\S.*)$", re.IGNORECASE | re.DOTALL)
_PASSAGE_NUMBER = re.compile(r"\bpassages?\s+(\d+)\b", re.IGNORECASE)  # "as stated in passage 2" without brackets


@dataclass
class Claim:
    """One answer sentence (markers removed) and the passage numbers it cites."""

    text: str
    cited: list[int]
    final: list[int] = field(default_factory=list)  # the passages that support it, after checking
    scores: dict[int, float] = field(default_factory=dict)  # passage number -> probability that it supports the claim
    notes: list[str] = field(default_factory=list)
    checks: dict[int, RuleCheck] = field(default_factory=dict)  # passage number -> rule features
    answerable: float | None = None  # the judge's P(yes) that its supporting window answers the question (None: not judged)

    @property
    def supported(self) -> bool:
        return bool(self.final)

    @property
    def attribution(self) -> str:
        """The source the sentence names ("Koneska (2022)" in "According to Koneska (2022), ..."), or ""."""
        return split_attribution(self.text)[0]

    @property
    def fact(self) -> str:
        """What the passage must state: the sentence without its attribution."""
        return split_attribution(self.text)[1]


def split_attribution(text: str) -> tuple[str, str]:
    """``("Koneska (2022)", "IS-K has 4,000 fighters.")`` for "According to Koneska (2022), IS-K has 4,000
    fighters." (or "IS-K has 4,000 fighters, according to Koneska (2022).", or "The Koneska report says that ...");
    ``("", text)`` when the sentence names no source."""
    text = text.strip()
    m = _ATTRIBUTION.match(text) or _REPORTED.match(text)
    if m:
        body = m.group("body")
    else:
        m = _TRAILING_ATTRIBUTION.match(text)
        if not m:
            return "", text
        body = m.group("body") + (m.group("end") or ".")
    return m.group("source").strip(), body[:1].upper() + body[1:]


def is_abstention(text: str) -> bool:
    """True for "I don't know" and "the passages do not say ..." sentences, not for facts that contain a negation."""
    return bool(_ABSTENTION.search(text.replace("’", "'")))


def split_claims(answer: str) -> list[Claim]:
    """Answer sentences with the passage numbers cited in (or right after) each one."""
    out: list[Claim] = []
    answer = _MARKER_AFTER_STOP.sub(r" \2\1", answer)  # "fact.[3] Next" -> "fact [3]. Next"
    for start, end in _within_quotes(answer, split_sentences(answer)):
        piece = answer[start:end]
        leading = _LEADING_MARKERS.match(piece)
        if leading and out:  # markers after the full stop belong to the previous sentence
            out[-1].cited.extend(citation_numbers(leading.group(1)))
            piece = piece[leading.end():]
        body = " ".join(strip_citations(piece).split())
        body = re.sub(r"\s+([.,;:!?])", r"\1", body)
        if body:
            out.append(Claim(body, citation_numbers(piece)))
    return _fold_pointers(_join_bare_verdicts(out))


def _within_quotes(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sentence spans with a quotation kept whole: a sentence that opens a quote runs on to the one that closes it
    (\'... states "ISIS was permitted to take credit. Usually, the Taliban is not so lenient."\' is one sentence)."""
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if out and _open_quote(text[out[-1][0]:out[-1][1]]):
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _open_quote(piece: str) -> bool:
    return piece.count('"') % 2 == 1 or piece.count("“") > piece.count("”")


def is_evidence(text: str) -> bool:
    """"This can be inferred from the passage that states "..."": a sentence that points back at the one before it
    and gives where its support is (``_EVIDENCE_LEAD``), as opposed to a claim about the world."""
    m = _EVIDENCE_LEAD.match(text.strip())
    return bool(m) and bool(_SOURCE_NOUN.search(m.group("lead"))) and is_pointer(m.group("lead"))


def is_pointer(text: str) -> bool:
    """"This can be found in passage [1]." says where, not what: no content word beyond the meta vocabulary."""
    if _BARE_VERDICT.match(text.strip()):
        return False
    return not (content_terms(_PASSAGE_NUMBER.sub("passage", text)) - _POINTER_TERMS)


def _fold_pointers(claims: list[Claim]) -> list[Claim]:
    """A pointer sentence is not a claim: its passage numbers go to the sentence before it (the fact it points
    at; the next one when it comes first), and it is dropped. "X. This is stated in passage [1]." checks X against [1].
    So is an evidence sentence after a claim ("X. This can be inferred from passage [1], which states ...")."""
    out: list[Claim] = []
    carried: list[int] = []
    for c in claims:
        if is_pointer(c.text) or (out and is_evidence(c.text)):
            numbers = c.cited or [int(n) for n in _PASSAGE_NUMBER.findall(c.text)]
            if out:
                out[-1].cited.extend(n for n in numbers if n not in out[-1].cited)
            else:
                carried.extend(numbers)
            continue
        if carried:
            c.cited.extend(n for n in carried if n not in c.cited)
            carried = []
        out.append(c)
    return out


def _join_bare_verdicts(claims: list[Claim]) -> list[Claim]:
    """"No. It was closed in 1968 [1]." is one claim: a bare Yes/No is checked with the fact that decides it."""
    out: list[Claim] = []
    for c in claims:
        if out and _BARE_VERDICT.match(out[-1].text):
            verdict = out.pop()
            first = c.text[:1].lower() if c.text[1:2].islower() and c.text[:2] != "I " else c.text[:1]  # keep "ISIS", "I"
            c = Claim(f"{verdict.text.rstrip('.!')}, {first}{c.text[1:]}", verdict.cited + c.cited)
        out.append(c)
    return out
