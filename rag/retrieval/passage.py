"""The unit retrieval returns and answers cite."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any


def public_source(meta: dict[str, Any]) -> str:
    """Where a document came from, as answers and listings show it: the path relative to the folder it was ingested
    from (its doc id), or the upload's name. Never the stored absolute path, which names the server's folders."""
    source, doc_id = str(meta.get("source", "")), str(meta.get("doc_id", ""))
    if not source or not PurePosixPath(source).is_absolute():
        return source or doc_id
    if doc_id and (source == doc_id or source.endswith("/" + doc_id)):
        return doc_id
    return PurePosixPath(source).name


@dataclass
class Passage:
    """One retrieved chunk with its provenance; ``start``/``end`` are offsets in the source text."""

    chunk_id: str
    doc_id: str
    title: str
    source: str
    text: str
    start: int
    end: int
    chunk_index: int
    score: float = 0.0
    rank: int = 0
    author: str | None = None  # the document's authors, joined by "; "
    date: str | None = None  # the document's date, ISO (2019-03-14, 2019-03 or 2019)
    date_inferred: bool = False  # the date is the latest one the text states ("as of"), not a stated publication date
    publisher: str | None = None
    kind: str = "text"  # "text": a span of the document; "card": its card (title, authors, date, publisher)
    dense_score: float | None = None
    bm25_score: float | None = None

    @classmethod
    def from_record(cls, chunk_id: str, text: str, meta: dict[str, Any]) -> Passage:
        return cls(
            chunk_id=chunk_id,
            doc_id=str(meta.get("doc_id", "")),
            title=str(meta.get("title", "")),
            source=public_source(meta),
            text=text,
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            chunk_index=int(meta.get("chunk_index", 0)),
            author=meta.get("author") or None,
            date=meta.get("date") or None,
            date_inferred=bool(meta.get("date_inferred", False)),
            publisher=meta.get("publisher") or None,
            kind=str(meta.get("kind") or "text"),
        )

    def byline(self) -> str:
        """Title, authors and date as a passage header shows them: ``Title — A and B, 2022-08-01`` (``as of`` marks an
        inferred date)."""
        authors = [a for a in (self.author or "").split("; ") if a]
        who = authors[0] if len(authors) == 1 else ", ".join(authors[:-1]) + " and " + authors[-1] if authors else ""
        when = f"as of {self.date}" if self.date and self.date_inferred else (self.date or "")
        tail = ", ".join(x for x in (who, when) if x)
        return f"{self.title} — {tail}" if tail else self.title

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
