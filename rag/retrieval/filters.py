"""Search filters: which documents a search may return, by id, author, date range or any card field.

A filter is resolved against the collection's document cards into a set of document ids before anything is
searched; dense search then passes that set to Chroma as a ``where`` clause, and BM25 drops every other document's
rows before it takes its top k. Neither side ever cuts first and filters after, so a filter never starves the list.

Fields combine with AND; several values of one field (two documents, two authors) with OR. A filter that names an
unknown field, document, author or metadata key, or a malformed date, raises ``InvalidFilter`` (a 400 in the
service, a one-line error in the CLI), never an empty answer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.errors import InvalidFilter
from rag.ingestion.metadata import AUTHOR_SEP, USER_PREFIX, PartialDate, normalize_key, parse_date

DOC_KEYS = ("doc", "docs", "doc_id", "doc_ids")
AUTHOR_KEYS = ("author", "authors")
CARD_FIELDS = ("title", "publisher", "date_from")  # card fields ``where`` may name besides user metadata
FIELDS = (*DOC_KEYS, *AUTHOR_KEYS, "since", "until", "where")
SHOWN = 12  # known values listed in an error message


def _values(value: Any, field: str) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, (dict, list, tuple)) or item is None:
            raise InvalidFilter(f"filter field {field!r}: give a text or a list of texts, not {type(item).__name__}")
        text = (str(item).lower() if isinstance(item, bool) else str(item)).strip()
        if not text:
            raise InvalidFilter(f"filter field {field!r} is empty")
        out.append(text)
    return out


def _date(value: Any, field: str) -> PartialDate:
    if isinstance(value, (list, tuple, dict)):
        raise InvalidFilter(f"filter field {field!r}: give one date")
    try:
        return parse_date(str(value) if not isinstance(value, int) else value)
    except ValueError as exc:
        raise InvalidFilter(f"filter field {field!r}: {exc}") from None


def _fold(text: str) -> str:
    """Case and accents ignored: ``Legieć`` == ``legiec``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _tokens(name: str) -> list[str]:
    return [t for t in "".join(ch if ch.isalnum() else " " for ch in _fold(name)).split() if t]


def author_matches(wanted: str, author: str) -> bool:
    """``Koneska``, ``cvete koneska`` and ``C. Koneska``-less spellings match ``Cvete Koneska``: every word of the
    filter is a word of the name (case and accents ignored)."""
    want, have = _tokens(wanted), set(_tokens(author))
    return bool(want) and all(w in have for w in want)


@dataclass(frozen=True)
class SearchFilter:
    """Which documents a search may return. Empty fields do not filter."""

    doc_ids: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    since: PartialDate | None = None
    until: PartialDate | None = None
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (normalized key, accepted values)

    def __post_init__(self) -> None:
        if self.since and self.until and self.since.yyyymmdd() > self.until.last_yyyymmdd():
            raise InvalidFilter(f"filter: since {self.since.iso()} is after until {self.until.iso()}")

    # -- building -------------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> SearchFilter | None:
        """A filter from its JSON form: ``{"doc": ..., "author": ..., "since": "2021-01-01", "until": ...,
        "where": {"key": "value"}}``; any other key is a metadata key (as if under ``where``). None when empty."""
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise InvalidFilter("the filter must be an object, e.g. {\"author\": \"Koneska\", \"since\": \"2021-01-01\"}")
        docs: list[str] = []
        authors: list[str] = []
        since = until = None
        where: dict[str, list[str]] = {}
        for key, value in data.items():
            if value is None:
                continue
            k = str(key).strip().lower()
            if k in DOC_KEYS:
                docs += _values(value, k)
            elif k in AUTHOR_KEYS:
                authors += _values(value, k)
            elif k == "since":
                since = _date(value, k)
            elif k == "until":
                until = _date(value, k)
            elif k == "where":
                if not isinstance(value, Mapping):
                    raise InvalidFilter("filter field 'where' must be an object of metadata keys and values")
                for wk, wv in value.items():
                    where.setdefault(cls._key(wk), []).extend(_values(wv, str(wk)))
            else:
                where.setdefault(cls._key(key), []).extend(_values(value, str(key)))
        return cls._of(docs, authors, since, until, where)

    @classmethod
    def from_options(cls, docs: Sequence[str] | None = None, authors: Sequence[str] | None = None, since: str | None = None,
                     until: str | None = None, where: Sequence[str] | None = None) -> SearchFilter | None:
        """A filter from command-line options; ``where`` items are ``key=value``."""
        pairs: dict[str, list[str]] = {}
        for item in where or ():
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise InvalidFilter(f"--where {item!r}: write key=value, e.g. --where topic=shipping")
            pairs.setdefault(cls._key(key), []).append(value.strip())
        return cls._of([d for d in docs or () if d.strip()], [a for a in authors or () if a.strip()],
                       _date(since, "since") if since else None, _date(until, "until") if until else None, pairs)

    @staticmethod
    def _key(key: Any) -> str:
        k = normalize_key(str(key))
        if not k:
            raise InvalidFilter(f"filter field {key!r} is not a usable name")
        if k in FIELDS:
            raise InvalidFilter(f"{k!r} is a filter field of its own, not a metadata key: give it at the top level")
        return k

    @classmethod
    def _of(cls, docs: list[str], authors: list[str], since: PartialDate | None, until: PartialDate | None,
            where: dict[str, list[str]]) -> SearchFilter | None:
        made = cls(tuple(dict.fromkeys(docs)), tuple(dict.fromkeys(authors)), since, until,
                   tuple((k, tuple(dict.fromkeys(v))) for k, v in sorted(where.items())))
        return None if made.is_empty() else made

    # -- reading --------------------------------------------------------------------------------------------------
    def is_empty(self) -> bool:
        return not (self.doc_ids or self.authors or self.since or self.until or self.where)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``parse`` reads it back)."""
        out: dict[str, Any] = {}
        if self.doc_ids:
            out["doc"] = list(self.doc_ids)
        if self.authors:
            out["author"] = list(self.authors)
        if self.since:
            out["since"] = self.since.iso()
        if self.until:
            out["until"] = self.until.iso()
        if self.where:
            out["where"] = {k: list(v) if len(v) > 1 else v[0] for k, v in self.where}
        return out

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.to_dict().items())

    # -- applying -------------------------------------------------------------------------------------------------
    def allowed(self, cards: Iterable[Mapping[str, Any]], collection: str = "") -> set[str]:
        """The ids of the documents this filter lets through, given each document's stored card metadata. Raises
        ``InvalidFilter`` for a document id, author or metadata key that no document of the collection has."""
        cards = list(cards)
        where = f" in collection {collection!r}" if collection else ""
        known_ids = {str(c.get("doc_id", "")) for c in cards}
        for doc_id in self.doc_ids:
            if doc_id not in known_ids:
                raise InvalidFilter(f"filter: no document {doc_id!r}{where} (see `rag documents` or GET /v1/documents)")
        all_authors = sorted({a for c in cards for a in str(c.get("author") or "").split(AUTHOR_SEP) if a})
        for wanted in self.authors:
            if not any(author_matches(wanted, a) for a in all_authors):
                shown = ", ".join(all_authors[:SHOWN]) + (", ..." if len(all_authors) > SHOWN else "")
                raise InvalidFilter(f"filter: no document{where} is by an author matching {wanted!r}"
                                    + (f"; its authors: {shown}" if shown else "; its documents name no author"))
        # Only a filter with metadata keys needs the collection's keys (a scan of every card's fields).
        user_keys = sorted({k[len(USER_PREFIX):] for c in cards for k in c if k.startswith(USER_PREFIX)}) if self.where else []
        for key, _ in self.where:
            if key not in CARD_FIELDS and key not in user_keys:
                raise InvalidFilter(f"unknown filter field {key!r}: the documents{where} have the metadata keys "
                                    f"{', '.join(user_keys) or '(none)'}; the built-in fields are doc, author, since, until "
                                    f"and {', '.join(CARD_FIELDS)}")
        if self.doc_ids and not (self.authors or self.since or self.until or self.where):
            return set(self.doc_ids)  # ids alone: checked above, nothing else to match
        return {str(c.get("doc_id", "")) for c in cards if self.matches(c)}

    def matches(self, card: Mapping[str, Any]) -> bool:
        """True when the document whose stored card metadata is ``card`` passes every field of the filter."""
        if self.doc_ids and str(card.get("doc_id", "")) not in self.doc_ids:
            return False
        if self.authors:
            names = [a for a in str(card.get("author") or "").split(AUTHOR_SEP) if a]
            if not any(author_matches(w, a) for w in self.authors for a in names):
                return False
        if self.since or self.until:
            try:
                date = parse_date(str(card.get("date") or ""))
            except ValueError:
                return False  # a document without a date is never inside a date range
            if self.since and date.last_yyyymmdd() < self.since.yyyymmdd():
                return False
            if self.until and date.yyyymmdd() > self.until.last_yyyymmdd():
                return False
        for key, accepted in self.where:
            value = card.get(key if key in CARD_FIELDS else USER_PREFIX + key)
            if value is None:
                return False
            have = {_fold(v) for v in (str(value).lower() if isinstance(value, bool) else str(value)).split(AUTHOR_SEP)}
            have.add(_fold(str(value).lower() if isinstance(value, bool) else str(value)))
            if not any(_fold(a) in have for a in accepted):
                return False
        return True


__all__ = ["SearchFilter", "author_matches"]
