"""Search filters: which documents a search may return, by id, author, date range or any card field.

A filter is resolved against the collection's document cards into a set of document ids before anything is
searched; dense search then passes that set to Chroma as a ``where`` clause, and BM25 drops every other document's
rows before it takes its top k. Neither side ever cuts first and filters after, so a filter never starves the list.

Fields combine with AND; several values of one field (two documents, two authors) with OR. A filter that names an
unknown field, document, author or metadata key, or a malformed date, raises ``InvalidFilter`` (a 400 in the
service, a one-line error in the CLI), never an empty answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.errors import InvalidFilter
from rag.index.catalog import Catalog
from rag.ingestion.metadata import USER_PREFIX, PartialDate, normalize_key, parse_date
from rag.text import fold

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


def _tokens(name: str) -> list[str]:
    return [t for t in "".join(ch if ch.isalnum() else " " for ch in fold(name)).split() if t]


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
    def allowed(self, catalog: Catalog | Iterable[Mapping[str, Any]], collection: str = "") -> set[str]:
        """The ids of the documents this filter lets through, given the collection's catalog (or its cards). Raises
        ``InvalidFilter`` for a document id, author or metadata key that no document of the collection has."""
        if not isinstance(catalog, Catalog):
            catalog = Catalog(tuple(dict(c) for c in catalog))
        where = f" in collection {collection!r}" if collection else ""
        for doc_id in self.doc_ids:
            if doc_id not in catalog.doc_ids:
                raise InvalidFilter(f"filter: no document {doc_id!r}{where} (see `rag documents` or GET /v1/documents)")
        for wanted in self.authors:
            if not any(author_matches(wanted, a) for a in catalog.authors):
                shown = ", ".join(catalog.authors[:SHOWN]) + (", ..." if len(catalog.authors) > SHOWN else "")
                raise InvalidFilter(f"filter: no document{where} is by an author matching {wanted!r}"
                                    + (f"; its authors: {shown}" if shown else "; its documents name no author"))
        for key, _ in self.where:
            if key not in CARD_FIELDS and key not in catalog.user_keys:
                raise InvalidFilter(f"unknown filter field {key!r}: the documents{where} have the metadata keys "
                                    f"{', '.join(catalog.user_keys) or '(none)'}; the built-in fields are doc, author, "
                                    f"since, until and {', '.join(CARD_FIELDS)}")
        if self.doc_ids and not (self.authors or self.since or self.until or self.where):
            return set(self.doc_ids)  # ids alone: checked above, nothing else to match
        return self._matching(catalog)

    def _matching(self, catalog: Catalog) -> set[str]:
        """The ids of the catalog's documents that pass every field, from the catalog's precomputed columns (what
        ``matches`` decides for one card)."""
        keep = [True] * len(catalog)
        if self.doc_ids:
            wanted = set(self.doc_ids)
            keep = [k and i in wanted for k, i in zip(keep, catalog.ids, strict=True)]
        if self.authors:  # matched once per distinct name, not once per document
            named = {a for a in catalog.authors if any(author_matches(w, a) for w in self.authors)}
            keep = [k and any(a in named for a in names) for k, names in zip(keep, catalog.authors_of, strict=True)]
        if self.since or self.until:
            low = self.since.yyyymmdd() if self.since else 0
            high = self.until.last_yyyymmdd() if self.until else 99_999_999
            keep = [k and span is not None and span[1] >= low and span[0] <= high
                    for k, span in zip(keep, catalog.days, strict=True)]
        for key, accepted in self.where:
            wanted_values = {fold(a) for a in accepted}
            have = catalog.folded(key if key in CARD_FIELDS else USER_PREFIX + key)
            keep = [k and values is not None and not values.isdisjoint(wanted_values) for k, values in zip(keep, have, strict=True)]
        return {doc_id for doc_id, k in zip(catalog.ids, keep, strict=True) if k}

    def matches(self, card: Mapping[str, Any]) -> bool:
        """True when the document whose stored card metadata is ``card`` passes every field of the filter."""
        return bool(self._matching(Catalog((dict(card),))))


__all__ = ["SearchFilter", "author_matches"]
