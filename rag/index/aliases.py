"""Names a collection defines for itself, mined at ingest and used to expand BM25 queries.

Rules, all about the document's own text (no hand-written list, so they work on any collection):

- a parenthesised abbreviation after its long form, or the reverse: "Islamic State Khorasan Province (ISKP)",
  "Veltrane Botanic Garden (VBG)", "ONB (Ossery Navigation Board)": kept when the letters follow the initials;
- a compound abbreviation whose suffix starts the long form's initials: "Khorasan (ISIS-K)", "Khorasan Province, ISIS-K,";
- two abbreviations joined by "or": "ISIS-K or IS-K";
- "the K stands for Khorasan": every "…-K" abbreviation of the document gets "Khorasan".

Each document's pairs are stored with its first chunk (``aliases``, a JSON string); the collection's table is their
union, grouped into sets of names for the same thing. A query that names a member only by a long form (by its words)
gets the group's abbreviations appended for BM25, so "the Khorasan branch of the Islamic State" also matches
passages that only say ISIS-K. How often each document uses each name (``alias_mentions``) is stored beside its
pairs: a query that writes out a name the collection mostly abbreviates is searched under the abbreviation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any

META_KEY = "aliases"
MENTIONS_KEY = "alias_mentions"  # {name: times the document uses it}
MAX_PAIRS = 64  # per document
_ACR = r"[A-Z][A-Za-z0-9&]*[A-Z0-9](?:-[A-Z0-9]{1,4})?"  # ISKP, ISIS-K, IS-K, AQIS, Covid19... (2+ letters)
_CAP = r"[A-Z][\w'’]*(?:-[A-Za-z][\w'’]*)*"
_JOIN = r"(?:of|the|in|for|and|de|del|al|la|on|du|von|van|und|y)"
_LONG = rf"{_CAP}(?:\s+(?:{_JOIN}\s+)*{_CAP}){{0,8}}"
_PAREN_AFTER = re.compile(rf"(?P<long>{_LONG})\s+\((?:the\s+)?(?P<acr>{_ACR})\)")
_PAREN_BEFORE = re.compile(rf"\b(?P<acr>{_ACR})\s+\((?P<long>{_LONG})\)")
_APPOSITIVE = re.compile(rf"(?P<long>{_LONG}),\s+(?P<acr>{_ACR}),")
_OR = re.compile(rf"(?<![\w-])(?P<a>{_ACR})\s+or\s+(?P<b>{_ACR})(?![\w-])")
_STANDS_FOR = re.compile(r"\b[Tt]he\s+[\"“'‘]?(?P<letter>[A-Z])[\"”'’]?\s+stands\s+for\s+(?P<word>[A-Z][\w'’-]+)")
_COMPOUND = re.compile(r"(?<![\w-])(?P<acr>[A-Z][A-Z0-9]{0,8}-(?P<suffix>[A-Z]))(?![\w-])")
# A capitalised name as a query writes it, possessives and a leading "the" included: the span ``abbreviate`` replaces.
_NAME_RUN = re.compile(rf"(?:\b[Tt]he\s+)?{_CAP}(?:['’]s)?(?:\s+(?:{_JOIN}\s+)*{_CAP}(?:['’]s)?)*")
_STOP = {"the", "a", "an", "of", "in", "for", "and", "on", "to", "de", "al", "la", "du", "von", "van", "und", "y"}


def _is_acronym(term: str) -> bool:
    letters = [c for c in term if c.isalpha()]
    return 2 <= len(term) <= 12 and sum(c.isupper() for c in letters) >= 2 and " " not in term


def _initials(words: list[str]) -> list[tuple[str, bool]]:
    """(initial, required) per word and hyphen part: capitalized words must be used, connectors and later parts may."""
    out = []
    for word in words:
        parts = [p for p in word.split("-") if p]
        for i, part in enumerate(parts):
            out.append((part[0].upper(), i == 0 and part[0].isupper()))
    return out


def abbreviates(acr: str, words: list[str]) -> bool:
    """True when the letters of ``acr`` are the initials of ``words`` in order (every capitalized word used)."""
    letters = [c.upper() for c in acr if c.isalpha()]
    cands = _initials(words)

    @lru_cache(maxsize=None)
    def match(i: int, j: int) -> bool:
        if i == len(letters):
            return all(not req for _, req in cands[j:])
        if j == len(cands):
            return False
        initial, required = cands[j]
        if initial == letters[i] and match(i + 1, j + 1):
            return True
        return not required and match(i, j + 1)

    return bool(letters) and match(0, 0)


def _long_form(acr: str, long: str) -> str | None:
    """The longest tail of the capitalized run ``long`` that ``acr`` abbreviates (or whose initials are its hyphen
    suffix: "Khorasan" for ISIS-K), else None."""
    words = long.split()
    suffix = acr.rsplit("-", 1)[1] if "-" in acr else None
    for start in range(len(words)):
        tail = words[start:]
        if tail[0].lower() in _STOP:
            continue
        if abbreviates(acr, tail):
            return " ".join(tail)
        if suffix and suffix.isalpha() and "".join(w[0] for w in tail if w[0].isupper()).startswith(suffix.upper()):
            return " ".join(tail)
    return None


def mine_aliases(text: str) -> list[tuple[str, str]]:
    """The (name, name) pairs a document defines for itself (see the module docstring), in order, no repeats."""
    pairs: list[tuple[str, str]] = []

    def add(a: str, b: str) -> None:
        a, b = " ".join(a.split()), " ".join(b.split())
        if a and b and a.casefold() != b.casefold() and (a, b) not in pairs and (b, a) not in pairs:
            pairs.append((a, b))

    for pattern in (_PAREN_AFTER, _APPOSITIVE):
        for m in pattern.finditer(text):
            acr = m.group("acr")
            if _is_acronym(acr):
                long = _long_form(acr, m.group("long"))
                if long:
                    add(long, acr)
    for m in _PAREN_BEFORE.finditer(text):
        acr, long = m.group("acr"), m.group("long")
        if _is_acronym(acr) and not _is_acronym(long) and abbreviates(acr, long.split()):
            add(long, acr)
    for m in _OR.finditer(text):
        if _is_acronym(m.group("a")) and _is_acronym(m.group("b")):
            add(m.group("a"), m.group("b"))
    stands = {m.group("letter"): m.group("word") for m in _STANDS_FOR.finditer(text)}
    if stands:
        for m in _COMPOUND.finditer(text):
            word = stands.get(m.group("suffix"))
            if word:
                add(word, m.group("acr"))
    return pairs[:MAX_PAIRS]


def _mention_pattern(name: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(w) for w in name.split())
    return re.compile(rf"(?<![\w-]){body}(?![\w-])", 0 if _is_acronym(name) else re.IGNORECASE)


def count_mentions(text: str, pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
    """How many times ``text`` uses each name of ``pairs`` (a long form inside a longer one counts too)."""
    names = dict.fromkeys(n for pair in pairs for n in pair)
    return {name: len(_mention_pattern(name).findall(text)) for name in names}


def mentions_to_meta(mentions: Mapping[str, int]) -> str:
    return json.dumps(dict(mentions), ensure_ascii=False)


def mentions_of_meta(meta: Mapping[str, Any]) -> dict[str, int]:
    try:
        raw = json.loads(str(meta.get(MENTIONS_KEY) or "{}"))
    except json.JSONDecodeError:
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}


def pairs_to_meta(pairs: list[tuple[str, str]]) -> str:
    return json.dumps([list(p) for p in pairs], ensure_ascii=False)


def pairs_of_meta(meta: Mapping[str, Any]) -> list[tuple[str, str]]:
    try:
        raw = json.loads(str(meta.get(META_KEY) or "[]"))
    except json.JSONDecodeError:
        return []
    return [(str(a), str(b)) for a, b in raw if isinstance(a, str) and isinstance(b, str)] if isinstance(raw, list) else []


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’]+", text.casefold())


class AliasTable:
    """A collection's names for the same things, grouped; ``expand`` appends a query's missing names."""

    def __init__(self, pairs: Iterable[tuple[str, str]], mentions: Mapping[str, int] | None = None) -> None:
        self.mentions = {k.casefold(): v for k, v in (mentions or {}).items()}  # summed over the collection
        parent: dict[str, str] = {}
        shown: dict[str, str] = {}

        def find(x: str) -> str:
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for a, b in pairs:
            ka, kb = a.casefold(), b.casefold()
            shown.setdefault(ka, a)
            shown.setdefault(kb, b)
            parent[find(ka)] = find(kb)
        groups: dict[str, list[str]] = {}
        for key in shown:
            groups.setdefault(find(key), []).append(shown[key])
        self.groups = [sorted(g) for g in groups.values() if len(g) > 1]
        self._matchers = [(g, [self._matcher(t) for t in g]) for g in self.groups]

    def __len__(self) -> int:
        return len(self.groups)

    @staticmethod
    def _matcher(term: str) -> Any:
        if _is_acronym(term):
            flags = re.IGNORECASE if len([c for c in term if c.isalpha()]) >= 3 else 0
            pattern = re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", flags)
            return lambda query, words: bool(pattern.search(query))
        wanted = [w for w in _words(term) if w not in _STOP]
        need = len(wanted) if len(wanted) < 4 else len(wanted) - 1  # a long name may lose one word ("Province")
        return lambda query, words: bool(wanted) and sum(w in words for w in wanted) >= need

    def _named(self, text: str) -> Iterator[tuple[list[str], list[bool]]]:
        """Each group ``text`` names, with which of its names it uses (one flag per name, in group order)."""
        words = set(_words(text))
        for group, matchers in self._matchers:
            hits = [m(text, words) for m in matchers]
            if any(hits):
                yield group, hits

    def with_all_names(self, text: str) -> str:
        """``text`` with every other name of each group it mentions appended: for checking, where "IS-K" in a
        passage states what a claim says of "ISIS-K" (unlike ``expand``, which adds only what helps a search)."""
        extra: list[str] = []
        for group, hits in self._named(text):
            extra += [t for t, hit in zip(group, hits, strict=True) if not hit]
        return f"{text} {' '.join(extra)}" if extra else text

    def abbreviate(self, query: str) -> str:
        """``query`` with each name it writes out replaced by the group's abbreviations ("How many fighters does the
        Islamic State's Khorasan Province have?" -> "How many fighters does IS-K / ISIS-K have?"), for both searches,
        when the collection uses the abbreviations more often than the written-out names the query used.

        Documents that define a name once and abbreviate it after state their facts under the abbreviation; the
        written-out words ("Islamic", "Province") then match only the defining passages and outrank the facts (seeds
        s120: the fighters passage fell to rank 8). Documents that keep the long form ("the Genoa Horticultural
        Society" three times, "GHS" once) are searched as the query says. The replaced span is the capitalised run
        around the words that matched ("the Islamic State's Khorasan Province"); a query that already uses an
        abbreviation is left alone."""
        out = query
        for group, hits in self._named(query):
            acronyms = [t for t in group if _is_acronym(t)]
            if not acronyms or any(hit and _is_acronym(t) for t, hit in zip(group, hits, strict=True)):
                continue
            written = sum(self.mentions.get(t.casefold(), 0) for t, hit in zip(group, hits, strict=True) if hit)
            if sum(self.mentions.get(t.casefold(), 0) for t in acronyms) <= written:
                continue
            named = {w for t, hit in zip(group, hits, strict=True) if hit for w in _words(t) if w not in _STOP}
            for run in _NAME_RUN.finditer(out):
                if named & set(_words(run.group())):
                    out = f"{out[:run.start()]}{' / '.join(acronyms)}{out[run.end():]}"
                    break
        return out

    def expand(self, query: str) -> str:
        """``query`` with the abbreviations of every group it names only by a longer name or paraphrase appended.

        A query that already uses an abbreviation is left alone: documents define a name once and use the
        abbreviation after, so the abbreviation finds the passages, and adding the long words ("Province") only
        pulls in passages about something else."""
        extra: list[str] = []
        for group, hits in self._named(query):
            if not any(hit and _is_acronym(t) for t, hit in zip(group, hits, strict=True)):
                extra += [t for t, hit in zip(group, hits, strict=True) if not hit and _is_acronym(t)]
        return f"{query} {' '.join(extra)}" if extra else query


def table_of(cards: Iterable[Mapping[str, Any]]) -> AliasTable:
    """The alias table of a collection, from its documents' first-chunk metadata."""
    cards = list(cards)
    mentions: dict[str, int] = {}
    for meta in cards:
        for name, n in mentions_of_meta(meta).items():
            mentions[name] = mentions.get(name, 0) + n
    return AliasTable((p for meta in cards for p in pairs_of_meta(meta)), mentions)


__all__ = ["AliasTable", "META_KEY", "MENTIONS_KEY", "abbreviates", "count_mentions", "mentions_of_meta", "mentions_to_meta",
           "mine_aliases", "pairs_of_meta", "pairs_to_meta", "table_of"]
