"""Disagreements between sources: passages that give different values for what the
question asks ("about 2,000 fighters" in one analysis, "around 4,000 combatants" in a later one).

Found by rule before generation, so the prompt can ask for every side and the answer can be completed with a
side the model left out: the question must ask for a number or a date; in each passage the sentence closest to
the question that states one gives that passage's value; values that differ (beyond rounding) between documents
are a disagreement (within one document too, for counts the sentence contrasts: "the report gave 61 ... the
registers found 74"). A side only counts once its sentence passes the answer checks (``Answerer.disagreement``).
Each side keeps its source's date so answers can put the newest first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rag.settings import Prefer
from rag.text import STOPWORDS, content_terms, split_sentences
from rag.verification.quantities import Quantity, quantities
from rag.verification.rules import names, root, term_in

if TYPE_CHECKING:
    from rag.embedding import Embedder
    from rag.generation.prompt import ContextPassage
    from rag.verification.claims import Claim

QuestionKind = Literal["count", "date"]
_COUNT = re.compile(r"\bhow\s+(many|much|often|long|large|big|far|old|tall|high|deep|wide)\b"
                    r"|\bwhat\s+(?:was\s+|is\s+)?(?:the\s+)?(number|percentage|share|proportion|size|toll|population)\b",
                    re.IGNORECASE)
_DATE = re.compile(r"\bwhen\b|\b(?:what|which)\s+year\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
# "How often ...?" asks for a rate: a count per period. A number with no period after it is a total, not an answer.
_OFTEN = re.compile(r"\bhow\s+(?:often|frequently)\b", re.IGNORECASE)
_PERIOD = re.compile(r"\b(?:(?:each|every|per|a|an)\s+(?P<unit>day|week|month|quarter|year)\b"
                     r"|(?P<adverb>daily|weekly|monthly|quarterly|yearly|annually)\b)", re.IGNORECASE)
_PER_YEAR = {"day": 365, "week": 52, "month": 12, "quarter": 4, "year": 1, "daily": 365, "weekly": 52, "monthly": 12,
             "quarterly": 4, "yearly": 1, "annually": 1}  # periods in a year: rates compare as counts per year
# Words just before a number that are part of the value as written ("more than a dozen", "about 2,000").
_QUALIFIER = re.compile(r"\b(?:(?:more|fewer|less)\s+than|over|under|about|around|nearly|almost|some|at\s+least|"
                        r"up\s+to|roughly|approximately)(?:\s+an?)?\s+$", re.IGNORECASE)
_HOW_MANY = re.compile(r"\bhow\s+(?:many|much)\b|\bwhat\s+(?:was\s+|is\s+)?(?:the\s+)?number\s+of\b", re.IGNORECASE)
MONEY = "money"  # what "How much did it raise/cost?" counts: a sum with its currency ("£42,000", "12,000 crowns")
_CURRENCY_SIGN = re.compile(r"[£$€¥₹]\s*$")
_CURRENCY_WORDS = frozenset("dollars dollar euros euro pounds pound sterling crowns crown francs franc marks mark "
                            "rupees rupee yen yuan shillings shilling guineas guinea kroner krona lire lira".split())
_CONTRAST = re.compile(r"\b(but|whereas|while|although|though|however|vary|varies|differ|others?|disputed)\b", re.IGNORECASE)
_SCALE_WORDS = frozenset({"dozen", "hundred", "thousand", "million", "billion"})
_LEADING = frozenset({"of", "the", "its", "his", "her", "their"})  # "how many of the crew"
# "How tall ...?" is answered by a length, "how old" by years: the unit kinds (canonical names) per adjective.
_DIMENSIONS = {
    "tall": ("metre", "foot"), "high": ("metre", "foot"), "deep": ("metre", "foot"), "wide": ("metre", "foot"),
    "far": ("kilometre", "mile", "metre"), "long": ("kilometre", "mile", "metre", "foot", "year", "day", "hour", "minute"),
    "old": ("year",), "large": ("acre", "hectare", "tonne"), "big": ("acre", "hectare", "tonne"),
}
_WORDS = re.compile(r"[A-Za-z][\w'’-]*")
# Words that end the counted noun phrase of "how many ... ?": its verb, an auxiliary or a preposition.
_NOT_NOUN = frozenset("do does did is are was were has have had will would can could may might should been be "
                      "in of on at for from per by to with during since after before under over the a an".split())
MIN_DATE_RELEVANCE = 0.6  # a year is the answer to many questions about one topic: dates need a closer sentence
MIN_RELEVANCE = 0.45  # cosine of question and sentence: below it the sentence is about something else
SAME_NOUN = 0.6  # cosine of two nouns that count the same thing ("fighters" ~ "combatants" 0.75; ~ "attacks" 0.48)
MIN_NAMES = 0.5  # share of the question's names the sentence (with the one before) must hold
NOUN_WINDOW = 4  # words after a number in which the counted noun must appear ("around 4,000 combatants")
SAME_EVENT = 0.5  # cosine of an event noun of the sentence and one of the question ("attack" ~ "bombing" 0.55)
# Quoting a side: a sentence longer than QUOTE_WORDS words is cut to the clause that states the value
QUOTE_WORDS = 30
_CLAUSE = re.compile(r"[,;:]\s+")  # a clause boundary ("1,312" is none)
_RELATIVE = frozenset({"which", "who", "whom", "whose", "where", "when"})
_DETERMINER = re.compile(r"\b(?:the|a|an|its|his|her|their|this|that|these|those)\s", re.IGNORECASE)
# "a Taliban attack", "the ISIS-K bombing": a name right before a lower-case word names who did it ("the
# anti-Taliban group" does not name the Taliban as the group)
_ACTOR_EVENT = re.compile(r"(?<![\w-])([A-Z][\w'’-]*)\s+([a-z][a-z-]+)\b")


@dataclass(frozen=True)
class Side:
    """One source's value: as the passage writes it, the passage number it is cited as, and the source's date."""

    value: str
    amount: float  # the value as a number (a year for a date)
    n: int
    doc_id: str
    title: str
    author: str | None
    date: str | None
    sentence: str

    def source_label(self) -> str:
        """"Koneska (2022-08-16)": the first author (else the title) and the date, as an answer attributes it."""
        who = (self.author or "").split("; ")[0].split()[-1:] or [self.title]
        return f"{who[0]} ({self.date})" if self.date else who[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def question_kind(question: str) -> QuestionKind | None:
    """"count" for how many/much/often..., "date" for when/what year; None for anything else."""
    if _COUNT.search(question):
        return "count"
    if _DATE.search(question):
        return "date"
    return None


def find_conflicts(question: str, context: list[ContextPassage], embedder: Embedder, prefer: Prefer = "newest",
                   expand: Callable[[str], str] = lambda text: text, min_names: float = MIN_NAMES,
                   preceding: Callable[[], Mapping[tuple[str, int], str]] | None = None) -> list[Side]:
    """The sides of a disagreement among ``context`` (empty when the sources agree or the question asks for
    neither a count nor a date). One side per distinct value; ``prefer="newest"`` orders them newest source first
    (undated last), ``"all"`` keeps passage order. ``expand`` adds a text's aliases (the collection's alias table),
    so "IS-K" in a passage matches "ISIS-K" in the question. ``min_names`` is the share of the question's names a
    value's sentence (with the one before and the title) must hold. ``preceding`` gives the text of chunks that are not
    in ``context`` but come just before one that is, by (document, chunk index): a passage's first sentence may name
    its subject only there ("... stem the IS-K insurgency." | "The group has averaged 14 attacks per month"). It is
    called only for a question that can have sides (it reads the store).

    A passage's value must be about the same thing: its sentence names everything the question names, is close
    to the question in embedding space, and (for a count) the number counts what the question counts.
    """
    kind = question_kind(question)
    if kind is None or len(context) < 2:
        return []
    counted = _counted_nouns(question) if kind == "count" else []
    if kind == "count" and not counted:
        return []  # "how often", "how much of": nothing to tie a number to, so no safe comparison
    wanted = names(question)
    candidates: list[tuple[ContextPassage, str, str, float]] = []  # passage, sentence, value text, value
    # The last sentence of each passage, by chunk: a passage's first sentence may follow on from the chunk before
    # ("... the schooner Ellen Varley struck the Mawgan Ledges." | "Fourteen of her crew were lost ...").
    spans_of = {c.n: split_sentences(c.text) or [(0, len(c.text))] for c in context}
    before_context = preceding() if preceding else {}
    tails = {key: text[(split_sentences(text) or [(0, 0)])[-1][0]:] for key, text in before_context.items()}
    tails.update({(c.passage.doc_id, c.passage.chunk_index): c.text[spans_of[c.n][-1][0]:] for c in context})
    for c in context:
        if c.passage.kind != "text":
            continue
        spans = spans_of[c.n]
        for i, (start, end) in enumerate(spans):
            sentence = c.text[start:end].strip()
            # The title and the sentence before count for names: "a fire spread ... The record lists 1,312 houses".
            before = tails.get((c.passage.doc_id, c.passage.chunk_index - 1), "") if i == 0 else ""
            terms = content_terms(expand(f"{c.passage.title}\n{before}\n{c.text[spans[max(i - 1, 0)][0]:end]}"))
            if sum(term_in(t, terms, {root(x) for x in terms}) for t in wanted) < min_names * len(wanted):
                continue
            if _other_actor(sentence, question, expand, embedder):
                continue
            found = _values(sentence, question, kind, counted, embedder)
            # "1,310 passengers: 104 in first class, 236 ..." is a breakdown; "1,312 houses ... but a pamphlet
            # claimed above two thousand" is a disagreement inside one sentence.
            for text, value in found if _CONTRAST.search(sentence) else found[:1]:
                candidates.append((c, sentence, text, value))
    if not candidates:
        return []
    sims = np.atleast_1d(embedder.embed_cached([s for _, s, _, _ in candidates]) @ embedder.embed_query(question)).tolist()
    # A document gives one value: that of its sentence closest to the question (all of them when that sentence
    # contrasts values itself). Another value elsewhere in the same document is usually another thing.
    by_doc: dict[str, list[tuple[ContextPassage, str, str, float]]] = {}
    for sim, (c, sentence, text, value) in sorted(zip(sims, candidates, strict=True), key=lambda x: -x[0]):
        if sim < (MIN_DATE_RELEVANCE if kind == "date" else MIN_RELEVANCE):
            break
        chosen = by_doc.setdefault(c.passage.doc_id, [])
        if not chosen or (chosen[0][0].n == c.n and chosen[0][1] == sentence):
            chosen.append((c, sentence, text, value))
    sides: list[Side] = []
    seen: list[float] = []
    for c, sentence, text, value in sorted((x for xs in by_doc.values() for x in xs), key=lambda x: x[0].n):
        if any(_same(value, v) for v in seen):
            continue
        seen.append(value)
        p = c.passage
        sides.append(Side(text, value, c.n, p.doc_id, p.title, p.author, p.date, sentence))
    # Years (or lengths) in one sentence are usually different things, not a disagreement; counts of one thing
    # set against each other are ("the official report gave 61 deaths ... the parish registers found 74").
    if (kind == "date" or not _HOW_MANY.search(question)) and len({s.doc_id for s in sides}) < 2:
        return []
    if len(sides) < 2:
        return []
    if prefer == "newest":
        sides.sort(key=lambda s: s.date or "", reverse=True)  # ISO dates sort as text; undated ("") last
    return sides


def _counted_nouns(question: str) -> list[str]:
    """What a count question counts: the lower-case words between "how many" and its verb ("How many IS-K
    attacks did ..." -> [attacks]; "how many of the crew were lost" -> [crew]); ``MONEY`` for a "how much" with no
    noun ("How much did it raise?"); for "how tall/long/old ...", the unit kinds that answer it; for "how often",
    the lower-case words of the predicate ("How often does ISIS-K carry out attacks in ..." -> [carry, attacks])."""
    often = _OFTEN.search(question)
    if often:
        words = []
        for word in _WORDS.findall(question[often.end():]):
            low = word.lower()
            if low in _NOT_NOUN and not words:
                continue  # "does", "is": the auxiliary before the subject
            if low in _NOT_NOUN:
                break
            if not word[:1].isupper() and low not in STOPWORDS:
                words.append(word)
        return words[:3]
    m = _HOW_MANY.search(question)
    if not m:
        adjective = _COUNT.search(question)
        return list(_DIMENSIONS.get((adjective.group(1) or "").lower(), ())) if adjective else []
    words: list[str] = []
    for word in _WORDS.findall(question[m.end():]):
        low = word.lower()
        if low in _LEADING and not words:
            continue
        if low in _NOT_NOUN:
            break
        words.append(word)
    if m.group().lower().endswith("much"):
        if re.match(r"\s+of\b", question[m.end():]):
            return []  # "How much of its force is foreign?": a share, not a figure to set against another
        if not words:
            return [MONEY]  # "How much did the festival raise?": no noun, so a sum of money
    return [w for w in words if not w[:1].isupper() and w.lower() not in STOPWORDS][:3]


def _values(sentence: str, question: str, kind: QuestionKind, counted: list[str], embedder: Embedder) -> list[tuple[str, float]]:
    """The sentence's values for the question: years not in the question for a date question; for a count, the
    numbers (not years, not the question's own) whose unit, or a word within a few after them, is what the
    question counts (the noun or a synonym: "fighters" ~ "combatants"). For "how often", only numbers with a
    period after them, as counts per year, written with their qualifier and period ("more than a dozen attacks in
    Afghanistan each year" is 12; "14 attacks per month" is 168)."""
    asked = {q.value for q in quantities(question)}
    if kind == "date":
        return [(m.group(), float(m.group())) for m in _YEAR.finditer(sentence) if float(m.group()) not in asked]
    rate = bool(_OFTEN.search(question))
    out = []
    for q in quantities(sentence):
        if q.value in asked or _is_year(q, sentence) or _vague(q, sentence):
            continue
        clause_start = q.start + len(q.text)
        clause = re.split(r"[.,;:()]", sentence[clause_start:], maxsplit=1)[0]
        after = _WORDS.findall(clause)[:NOUN_WINDOW]
        period = _PERIOD.search(clause) if rate else None
        if rate and period is None:
            continue  # "carried out 40 attacks": a total, not how often
        if counted == [MONEY]:  # a sum: its currency sign just before ("£42,000") or its currency word after
            sign = _CURRENCY_SIGN.search(sentence[: q.start])
            if sign or (after and after[0].lower() in _CURRENCY_WORDS):
                out.append(((sign.group().strip() if sign else "") + q.text, q.value))
            continue
        words = ([q.unit] if q.unit else []) + after
        match = next((i for i, w in enumerate(words) if any(_same_noun(c, w, embedder) for c in counted)), None)
        if match is None:
            continue
        # "7,000 AQIS and Taliban fighters" counts other groups' fighters than "How many fighters does ISIS-K have?"
        owners = content_terms(" ".join(w for w in words[:match] if w[:1].isupper()))
        if owners - content_terms(question):
            continue
        if period is not None:  # "more than a dozen attacks in Afghanistan each year": 12 a year; "14 ... per month": 168
            qualifier = _QUALIFIER.search(sentence[: q.start])
            start = qualifier.start() if qualifier else q.start
            per_year = _PER_YEAR[(period.group("unit") or period.group("adverb")).lower()]
            out.append((sentence[start: clause_start + period.end()].strip(), q.value * per_year))
            continue
        out.append((q.text, q.value))
    return out


def _other_actor(sentence: str, question: str, expand: Callable[[str], str], embedder: Embedder) -> bool:
    """The sentence counts another actor's event: "35 people were killed in a Taliban attack" is not about "the ISIS-K
    bombing of Kabul airport". True when a name the question does not use (with its aliases) stands right before a
    word close to one of the question's own lower-case words ("attack" ~ "bombing")."""
    asked = content_terms(expand(question))
    events = [w for w in _WORDS.findall(question) if w.islower() and w not in STOPWORDS and w not in _NOT_NOUN]
    if not events:
        return False
    for actor, noun in _ACTOR_EVENT.findall(sentence):
        if noun in STOPWORDS or noun in _NOT_NOUN or content_terms(expand(actor)) <= asked:
            continue
        vectors = embedder.embed_cached([noun, *events])
        if float(np.max(vectors[1:] @ vectors[0])) >= SAME_EVENT:
            return True
    return False


def _vague(q: Quantity, sentence: str) -> bool:
    """"several thousand", "dozens", "hundreds of": an order of magnitude, not a figure to set against another
    ("a thousand" and "one hundred" are figures)."""
    if q.text.lower().rstrip("s") not in _SCALE_WORDS:
        return False
    before = sentence[: q.start].split()[-1:]
    return not before or before[0].lower() not in ("a", "one")


def _same_noun(a: str, b: str, embedder: Embedder) -> bool:
    if content_terms(a) == content_terms(b):
        return True
    return float(embedder.embed_cached([a.lower()])[0] @ embedder.embed_cached([b.lower()])[0]) >= SAME_NOUN


def _is_year(q: Quantity, sentence: str) -> bool:
    """"in 2019", "2015-2021": a bare four-digit number in the years' range, with no unit and no thousands comma."""
    return q.unit is None and bool(_YEAR.fullmatch(sentence[q.start: q.start + len(q.text)].strip()))


def _same(a: float, b: float) -> bool:
    """One value however written ("1.5 million", "1,500,000"); 1950 and 1952, or 27 and 29 metres, differ."""
    return abs(a - b) < 1e-9 * max(abs(a), abs(b), 1.0)


def conflict_hint(sides: list[Side], prefer: Prefer) -> str:
    """The instruction added to the prompt when the passages disagree: one sentence per source, each spelled out
    with its attribution and citation number (a small model leaves out what is only described)."""
    listed = "; ".join(f"[{s.n}] ({s.source_label()}) gives {s.value}" for s in sides)
    forms = " ".join(f'"According to {s.source_label()}, <what [{s.n}] says, with {s.value}> [{s.n}]."' for s in sides)
    order = ("in this order, newest source first" if prefer == "newest"
             else "side by side, without saying which is right")
    return f"The passages disagree: {listed}. Answer with one sentence per source, {order}: {forms}"


def completion(side: Side) -> str:
    """A sentence stating a side the answer left out, in the source's own words (``quote``), attributed and cited."""
    body = quote(" ".join(side.sentence.split()), side.value).rstrip(".")
    first = body.split(" ", 1)[0]
    # "The white lighthouse" -> "the white lighthouse", "Fourteen of her crew" -> "fourteen ..."; "Pellow chose" stays
    if first.lower() in STOPWORDS or (first.isalpha() and any(q.text == first for q in quantities(first))):
        body = first.lower() + body[len(first):]
    return f"According to {side.source_label()}, {body} [{side.n}]."


def quote(sentence: str, value: str) -> str:
    """The part of a long sentence that states ``value``: from the clause holding it to the sentence's end, with
    the noun phrase a relative clause hangs on, marked with "…" where it is cut. "The keepers' cottages now hold a
    small museum ..., where the logbooks are shown beside an account of the schooner Ellen Varley, which struck the
    Mawgan Ledges in fog in 1887 with the loss of sixteen of her crew" -> "… the schooner Ellen Varley, which struck
    ... sixteen of her crew". The judge reads the whole sentence as about the museum and doubts it answers the
    question (P(yes) 0.48 to 0.64 over runs; the cut quote 0.78). A short sentence is quoted whole."""
    at = sentence.find(value)
    if len(sentence.split()) <= QUOTE_WORDS or at < 0:
        return sentence
    bounds = [0, *(m.end() for m in _CLAUSE.finditer(sentence, 0, at))]
    start = bounds[-1]
    if len(bounds) > 1 and sentence[start:].split(" ", 1)[0].lower() in _RELATIVE:
        before = sentence[bounds[-2]: start]
        noun = [m.start() for m in _DETERMINER.finditer(before)]
        start = bounds[-2] + (noun[-1] if noun else 0)
    return sentence if start == 0 else f"… {sentence[start:]}"


def stated(side: Side, claims: list[Claim], context: list[ContextPassage]) -> bool:
    """Some claim states the side's value and cites a passage of the side's document."""
    doc_of = {c.n: c.passage.doc_id for c in context}
    for claim in claims:
        if any(doc_of.get(n) == side.doc_id for n in claim.final):
            found = {float(y) for y in _YEAR.findall(claim.fact)} | {q.value for q in quantities(claim.fact)}
            # the number as written: a rate's amount is per year ("14 attacks per month" is 168), its text is not
            if found & ({q.value for q in quantities(side.value)} or {side.amount}):
                return True
    return False
