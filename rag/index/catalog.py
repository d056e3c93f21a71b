"""A collection's document catalog: every document's card metadata and what filters look up in it, built once.

Filters check the ids, authors and metadata keys they name against the whole collection, then match every card.
Doing the per-card work (splitting author lists, parsing dates, folding metadata values) on every search cost 3 to
100 ms per filtered search at 10,085 documents; the catalog does it once per store version, so a search pays only
for comparisons.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rag.index.store import chunk_id
from rag.ingestion.metadata import AUTHOR_SEP, USER_PREFIX, parse_date
from rag.text import fold


@dataclass(frozen=True)
class Catalog:
    """The stored card metadata of a collection's documents (one dict per document, from its first chunk)."""

    cards: Sequence[dict[str, Any]] = field(default_factory=tuple)
    _folded: dict[str, tuple[frozenset[str] | None, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.cards)

    def __len__(self) -> int:
        return len(self.cards)

    @cached_property
    def doc_ids(self) -> frozenset[str]:
        """Every document id."""
        return frozenset(self.ids)

    @cached_property
    def ids(self) -> tuple[str, ...]:
        """The document ids, in card order."""
        return tuple(str(c.get("doc_id", "")) for c in self.cards)

    @cached_property
    def authors_of(self) -> tuple[tuple[str, ...], ...]:
        """Each document's author names, in card order."""
        return tuple(tuple(a for a in str(c.get("author") or "").split(AUTHOR_SEP) if a) for c in self.cards)

    @cached_property
    def authors(self) -> tuple[str, ...]:
        """Every author name any document gives, sorted."""
        return tuple(sorted({a for names in self.authors_of for a in names}))

    @cached_property
    def days(self) -> tuple[tuple[int, int] | None, ...]:
        """Each document's date as its first and last possible day (20190301, 20190331 for ``2019-03``), in card
        order; None for a document without a readable date."""
        out: list[tuple[int, int] | None] = []
        for c in self.cards:
            try:
                date = parse_date(str(c.get("date") or ""))
            except ValueError:
                out.append(None)
                continue
            out.append((date.yyyymmdd(), date.last_yyyymmdd()))
        return tuple(out)

    def folded(self, field_name: str) -> tuple[frozenset[str] | None, ...]:
        """Each document's value of a card field, folded (case and accents ignored) and split where it lists several
        (``a; b``), in card order; None where the document has no such field. Computed once per field."""
        if field_name not in self._folded:
            out: list[frozenset[str] | None] = []
            for c in self.cards:
                value = c.get(field_name)
                if value is None:
                    out.append(None)
                    continue
                text = str(value).lower() if isinstance(value, bool) else str(value)
                out.append(frozenset({fold(v) for v in text.split(AUTHOR_SEP)} | {fold(text)}))
            self._folded[field_name] = tuple(out)
        return self._folded[field_name]

    @cached_property
    def user_keys(self) -> tuple[str, ...]:
        """Every user metadata key any document sets (without the stored prefix), sorted."""
        return tuple(sorted({k[len(USER_PREFIX):] for c in self.cards for k in c if k.startswith(USER_PREFIX)}))

    @cached_property
    def card_ids(self) -> frozenset[str]:
        """The chunk ids of the documents' card chunks (each document's last chunk, when ingested with one)."""
        return frozenset(chunk_id(str(m["doc_id"]), str(m["content_hash"]), int(m["n_chunks"]) - 1, int(m["n_chunks"]))
                         for m in self.cards if m.get("kind") and m.get("content_hash") and m.get("n_chunks"))


__all__ = ["Catalog"]
