"""Ingest files into the chunk store: idempotent, incremental, and safe to kill midway.

Order of writes for a changed document: upsert the new chunks (ids carry the new content hash),
then delete the old ones. A run killed at any point leaves either the old version, the new
version, or both partially; the next run sees the document is not complete and redoes it.
Deterministic ids mean nothing is ever duplicated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rag.embedding import Embedder
from rag.errors import DocumentConflict, DocumentError
from rag.index.aliases import META_KEY as ALIASES_KEY
from rag.index.aliases import MENTIONS_KEY, count_mentions, mentions_to_meta, mine_aliases, pairs_to_meta
from rag.ingestion.chunking import Chunk, chunk_text
from rag.ingestion.cleaning import CleanText, clean_text
from rag.ingestion.metadata import DeclaredMetadata, DocumentCard, build_card, doc_id_for, read_sidecar, sidecar_for
from rag.ingestion.readers import check_size, is_supported, read_document
from rag.index.chunk_index import ChunkIndex
from rag.settings import Settings
from rag.index.store import ChunkStore, DocState, chunk_id

log = logging.getLogger(__name__)
UPLOAD, FILE = "upload", "file"  # a document's origin: uploaded through the API, or ingested from a folder
# Bump when cleaning or chunking rules change so unchanged files are re-processed once.
PIPELINE_VERSION = "6"  # 2: copyright rules match only real notices (a "(c) The tenant..." clause is kept)
# 3: every chunk carries its document's card (authors, date, publisher, user metadata); one card chunk per document
# 4: the first chunk carries the names the document defines (aliases: "Islamic State Khorasan Province (ISKP)")
# 5: ... and how often the document uses each of them (alias_mentions)
# 6: link markup "[words](target)" keeps only its words (rag.ingestion.cleaning)


@dataclass
class SourceFile:
    path: Path
    doc_id: str
    root: Path | None = None  # the folder it was found in (None: the file was named itself)


TEXT, CARD = "text", "card"  # a chunk's kind: a span of the document, or its card (the last chunk)


@dataclass
class PreparedDocument:
    """A document cleaned and chunked, ready to embed. Its last chunk is its card (``card_chunk``)."""

    doc_id: str
    source: str
    card: DocumentCard
    content_hash: str
    clean: CleanText
    chunks: list[Chunk]
    origin: str = FILE
    aliases: list[tuple[str, str]] = field(default_factory=list)  # names the document defines (rag.index.aliases)
    replaces: list[str] = field(default_factory=list)  # other doc ids of the same source (an older id scheme)

    @property
    def title(self) -> str:
        return self.card.title

    @property
    def author(self) -> str | None:
        return self.card.author

    def metadata(self, chunk: Chunk) -> dict[str, Any]:
        """The chunk's position and the document's card, scalars only (Chroma's rule)."""
        start, end = self.clean.source_span(chunk.start, chunk.end)
        is_card = chunk.index == len(self.chunks) - 1
        extra = {ALIASES_KEY: pairs_to_meta(self.aliases),
                 MENTIONS_KEY: mentions_to_meta(count_mentions(self.clean.text, self.aliases))} \
            if chunk.index == 0 and self.aliases else {}
        return {
            **extra,
            "doc_id": self.doc_id,
            "source": self.source,
            "chunk_index": chunk.index,
            "n_chunks": len(self.chunks),
            "start": 0 if is_card else start,
            "end": 0 if is_card else end,
            "content_hash": self.content_hash,
            "origin": self.origin,
            "kind": CARD if is_card else TEXT,
            **self.card.metadata(),
        }

    def ids(self) -> list[str]:
        return [chunk_id(self.doc_id, self.content_hash, c.index, len(self.chunks)) for c in self.chunks]


@dataclass
class IngestReport:
    """What one ingest run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    rekeyed: dict[str, str] = field(default_factory=dict)  # old doc id -> new id of the same source
    failed: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # doc id -> lines cleaning removed as page furniture
    chunks_written: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.pruned or self.rekeyed)

    def summary(self) -> str:
        if not self.changed and not self.failed:
            return f"nothing to do: {len(self.unchanged)} document(s) unchanged"
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.pruned)} pruned",
            *([f"{len(self.rekeyed)} re-keyed"] if self.rekeyed else []),
            f"{len(self.failed)} failed",
            f"{sum(map(len, self.dropped.values()))} furniture lines dropped",
            f"{self.chunks_written} chunks written in {self.seconds:.1f}s",
        ]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("added", "updated", "unchanged", "pruned", "rekeyed", "failed", "dropped", "chunks_written", "seconds")}


def discover(paths: Sequence[Path]) -> list[SourceFile]:
    """Supported files under ``paths`` (folders recursively), each with its doc id."""
    found: dict[Path, SourceFile] = {}
    for given in paths:
        if not given.exists():
            raise DocumentError(f"path not found: {given}")
        root = given.resolve() if given.is_dir() else given.resolve().parent
        files = sorted(p for p in root.rglob("*") if p.is_file()) if given.is_dir() else [given.resolve()]
        for path in files:
            if is_supported(path) and not any(part.startswith(".") for part in path.relative_to(root).parts):
                found.setdefault(path, SourceFile(path, doc_id_for(path, root), root if given.is_dir() else None))
            elif given.is_file():
                raise DocumentError(f"unsupported file type: {given}")
    return list(found.values())


def embed_text(title: str, text: str, settings: Settings) -> str:
    """What is embedded for a chunk: its text, with the document title in front when ``embed_title``."""
    return f"{title}\n{text}" if settings.embed_title else text


def content_hash(data: bytes, settings: Settings, fields: Mapping[str, Any] | None = None) -> str:
    """Hash of the bytes and of everything that shapes the chunks (user-set metadata ``fields`` too): equal hash,
    equal chunks."""
    digest = hashlib.sha256(data)
    digest.update(f"|v{PIPELINE_VERSION}|{settings.chunk_size}|{settings.chunk_overlap}|{settings.embed_title}".encode())
    if fields:
        digest.update(b"|meta|" + json.dumps(fields, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def prepare(data: bytes, name: str, doc_id: str, source: str, digest: str, embedder: Embedder, settings: Settings,
            fields: Mapping[str, Any] | None = None, fields_origin: str = "sidecar") -> PreparedDocument:
    """Read, clean and chunk one document, and make its card (``fields``: what the user set, from a sidecar file or
    an upload's form; they win over everything the file says)."""
    raw = read_document(data, name)
    clean = clean_text(raw.text)
    if not clean.text.strip():
        raise DocumentError(f"{name!r} has no text to index")
    layers = [DeclaredMetadata.from_mapping(fields, fields_origin, f"{name}: {fields_origin}")] if fields else []
    if raw.declared:
        layers.append(DeclaredMetadata.from_mapping(raw.declared, "front matter", f"{name}: front matter"))
    if raw.info:
        kind = "pdf" if name.lower().endswith(".pdf") else "html"
        layers.append(DeclaredMetadata.from_mapping(raw.info, kind, name, strict=False))
    card = build_card(clean.text, raw.text, doc_id, declared_title=raw.title, layers=layers)
    chunks = chunk_text(clean.text, embedder.encode, settings.chunk_size, settings.chunk_overlap, embedder.max_tokens)
    chunks.append(Chunk(index=len(chunks), text=card.text(), start=0, end=0))
    return PreparedDocument(doc_id, source, card, digest, clean, chunks, aliases=mine_aliases(clean.text))


def sidecar_fields(path: Path) -> dict[str, Any] | None:
    """The fields of ``path``'s metadata sidecar (``NAME.meta.json``), or None when it has none."""
    sidecar = sidecar_for(path)
    return read_sidecar(sidecar) if sidecar is not None else None


@dataclass
class Catalog:
    """What the store holds about documents: first-chunk metadata by id, doc ids by source path, chunk ids by doc."""

    meta: dict[str, dict[str, Any]]
    states: dict[str, DocState]
    by_source: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for doc_id, meta in self.meta.items():
            self.by_source.setdefault(str(meta.get("source", "")), []).append(doc_id)

    @classmethod
    def of_store(cls, store: ChunkStore) -> Catalog:
        return cls({m["doc_id"]: m for m in store.documents()}, store.doc_states())

    @classmethod
    def of_document(cls, store: ChunkStore, doc_id: str, source: str) -> Catalog:
        """Only what concerns one document: its id, and other ids of the same source (no full scan)."""
        meta = {m["doc_id"]: m for m in store.documents(where={"$or": [{"doc_id": doc_id}, {"source": source}]})}
        states = {d: DocState(d, ids) for d in {doc_id, *meta} if (ids := store.ids_of_doc(d))}
        return cls(meta, states)

    def aliases(self, doc_id: str, source: str) -> list[str]:
        """Other documents of this source file (ids from an older scheme, or from ingesting another root)."""
        return [d for d in self.by_source.get(source, []) if d != doc_id and d in self.states]


def check_owner(doc_id: str, source: str, origin: str, meta: dict[str, Any] | None) -> None:
    """Refuse (``DocumentConflict``) when another source already owns ``doc_id``: a collision is never merged.

    The same file, the same name uploaded again (through any worker), or a file whose old location is gone (its
    folder moved) may take the id over; an existing different file, or an upload against a folder's file, may not.
    """
    if meta is None:
        return
    old_source, old_origin = str(meta.get("source", "")), str(meta.get("origin", FILE))
    if old_source == source:
        return
    if old_origin != origin:
        owner = "an uploaded document" if old_origin == UPLOAD else f"the ingested file {old_source}"
        raise DocumentConflict(f"document id {doc_id!r} already belongs to {owner}: rename this file, or delete that "
                               f"document first (`rag delete {doc_id}` or DELETE /v1/documents/{doc_id})")
    if origin == UPLOAD:
        return
    if old_source and Path(old_source).exists():
        raise DocumentConflict(f"document id {doc_id!r} already belongs to {old_source}, which still exists (the same "
                               "relative path under two folders): ingest their common parent folder, or delete that document first")


class Ingestor:
    """Writes prepared documents into the store in embedding batches."""

    def __init__(self, settings: Settings, index: ChunkIndex, embedder: Embedder) -> None:
        self.settings = settings
        self.index = index
        self.store = index.store
        self.embedder = embedder

    def ingest_paths(self, paths: Sequence[Path], prune: bool = False, progress: bool = False) -> IngestReport:
        """Ingest files and folders; with ``prune``, drop documents under the given folders whose file is gone."""
        started = time.perf_counter()
        report = IngestReport()
        files = discover(paths)
        catalog = Catalog.of_store(self.store)
        with tqdm(total=len(files), desc="ingest", unit="file", disable=not progress, leave=False) as bar:
            docs = self._changed_documents(files, catalog, report, bar)
            report.chunks_written += self._write(docs, catalog.states, report)
        if prune:
            roots = [p.resolve() for p in paths if p.is_dir()]
            self._prune(roots, {f.doc_id for f in files}, catalog, report)
        self._finish(report, started)
        return report

    def prepare_bytes(self, data: bytes, name: str, doc_id: str, source: str, origin: str = UPLOAD,
                      fields: Mapping[str, Any] | None = None) -> PreparedDocument:
        """Read, clean and chunk one document given as bytes (an upload): the slow, store-free half of
        ``ingest_bytes``, safe to run outside any lock. ``source`` is where the file is kept; ``fields`` are
        metadata the user set (title, author, date, publisher, any other key)."""
        check_size(name, len(data), self.settings.max_upload_bytes)
        doc = prepare(data, name, doc_id, source, content_hash(data, self.settings, fields), self.embedder, self.settings,
                      fields, "upload")
        doc.origin = origin
        return doc

    def write_prepared(self, doc: PreparedDocument) -> IngestReport:
        """Store a prepared document (embed and write; nothing when the store holds exactly it already).
        Raises ``DocumentConflict`` when its id belongs to another source."""
        started = time.perf_counter()
        report = IngestReport()
        catalog = Catalog.of_document(self.store, doc.doc_id, doc.source)
        check_owner(doc.doc_id, doc.source, doc.origin, catalog.meta.get(doc.doc_id))
        if self._unchanged(doc.doc_id, doc.source, doc.origin, doc.content_hash, catalog, report) is None:
            doc.replaces = catalog.aliases(doc.doc_id, doc.source)
            self._record(doc, catalog, report)
            report.chunks_written += self._write(iter([doc]), catalog.states, report)
        self._finish(report, started)
        return report

    def ingest_bytes(self, data: bytes, name: str, doc_id: str, source: str, origin: str = UPLOAD,
                     fields: Mapping[str, Any] | None = None) -> IngestReport:
        """Ingest one document given as bytes (an upload); ``source`` is where it is kept."""
        return self.write_prepared(self.prepare_bytes(data, name, doc_id, source, origin, fields))

    # -- internals ------------------------------------------------------------------------------
    def _origin(self, path: Path) -> str:
        """Files in ``<data_dir>/uploads`` are uploads (``rag ingest .rag/uploads`` restores them as such)."""
        try:
            return UPLOAD if path.resolve().is_relative_to((self.settings.data_dir / "uploads").resolve()) else FILE
        except OSError:
            return FILE

    def _changed_documents(self, files: list[SourceFile], catalog: Catalog, report: IngestReport, bar: tqdm) -> Iterator[PreparedDocument]:
        claimed: dict[str, Path] = {}
        for source in files:
            try:
                first = claimed.setdefault(source.doc_id, source.path)
                if first != source.path:
                    raise DocumentConflict(f"document id {source.doc_id!r} is also the id of {first} in this run (the same "
                                           "relative path under two folders): ingest their common parent folder instead")
                doc = self._prepare_if_changed(source.path.read_bytes(), source.path.name, source.doc_id, str(source.path),
                                               self._origin(source.path), catalog, report, sidecar_fields(source.path))
            except Exception as exc:  # noqa: BLE001 - one file that cannot be read or chunked is a reported skip, never an abort
                report.failed[str(source.path)] = str(exc) if isinstance(exc, (DocumentError, OSError)) else f"{type(exc).__name__}: {exc}"
                log.warning("document skipped", extra={"path": str(source.path), "error": str(exc)})
                continue
            finally:
                bar.update(1)
            if doc is not None:
                yield doc

    def _prepare_if_changed(self, data: bytes, name: str, doc_id: str, source: str, origin: str, catalog: Catalog,
                            report: IngestReport, fields: Mapping[str, Any] | None = None) -> PreparedDocument | None:
        """The document cleaned and chunked, or None (recorded as unchanged) when the store already holds exactly it."""
        check_size(name, len(data), self.settings.max_upload_bytes)
        check_owner(doc_id, source, origin, catalog.meta.get(doc_id))
        digest = content_hash(data, self.settings, fields)
        if self._unchanged(doc_id, source, origin, digest, catalog, report):
            return None
        doc = prepare(data, name, doc_id, source, digest, self.embedder, self.settings, fields)
        doc.origin = origin
        doc.replaces = catalog.aliases(doc_id, source)
        self._record(doc, catalog, report)
        return doc

    def _unchanged(self, doc_id: str, source: str, origin: str, digest: str, catalog: Catalog, report: IngestReport) -> bool | None:
        """True (recorded) when the store holds exactly this content under ``doc_id``; its chunks then follow the file
        (a moved folder updates ``source``) and other ids of the same source are retired."""
        state = catalog.states.get(doc_id)
        if state is None or not state.is_complete(digest):
            return None
        meta = catalog.meta.get(doc_id) or {}
        if meta.get("source") != source or meta.get("origin") != origin:
            self.store.update_metadata(state.ids, {"source": source, "origin": origin})
        for alias in catalog.aliases(doc_id, source):
            self._retire_alias(alias, doc_id, catalog, report)
        report.unchanged.append(doc_id)
        return True

    def _record(self, doc: PreparedDocument, catalog: Catalog, report: IngestReport) -> None:
        (report.updated if doc.doc_id in catalog.states else report.added).append(doc.doc_id)
        for alias in doc.replaces:
            report.rekeyed[alias] = doc.doc_id
        if doc.clean.dropped_lines:
            report.dropped[doc.doc_id] = list(doc.clean.dropped_lines)

    def _retire_alias(self, alias: str, doc_id: str, catalog: Catalog, report: IngestReport) -> None:
        state = catalog.states.pop(alias, None)
        if state is not None:
            self.index.remove(state.ids)
            report.rekeyed[alias] = doc_id
            log.info("document re-keyed", extra={"old": alias, "new": doc_id})

    def _write(self, docs: Iterator[PreparedDocument], states: dict, report: IngestReport) -> int:
        """Embed and upsert in batches across documents; retire a document's old chunks once its new ones are in."""
        batch: list[tuple[PreparedDocument, Chunk, str]] = []
        pending: dict[str, int] = {}  # doc_id -> chunks not yet written (ids are unique within a run)
        written = 0

        def flush() -> None:
            nonlocal written
            if not batch:
                return
            ids = [cid for _, _, cid in batch]
            metas = [d.metadata(c) for d, c, _ in batch]
            vectors = self.embedder.embed([embed_text(d.title, c.text, self.settings) for d, c, _ in batch])
            self.index.write(ids, vectors, [c.text for _, c, _ in batch], metas)
            written += len(batch)
            log.info("batch written", extra={"chunks": len(batch), "total": written})
            finished = []
            for doc, _, _ in batch:
                pending[doc.doc_id] -= 1
                if pending[doc.doc_id] == 0:
                    finished.append(doc)
            batch.clear()
            for doc in finished:
                del pending[doc.doc_id]
                self._retire_old(doc, states)

        for doc in docs:
            if doc.doc_id in pending:  # discover and check_owner make this impossible; never merge two documents
                raise DocumentConflict(f"document id {doc.doc_id!r} was given twice in one run")
            pending[doc.doc_id] = len(doc.chunks)
            for chunk, cid in zip(doc.chunks, doc.ids(), strict=True):
                batch.append((doc, chunk, cid))
                if len(batch) >= self.settings.ingest_flush_chunks:
                    flush()
        flush()
        return written

    def _retire_old(self, doc: PreparedDocument, states: dict) -> None:
        """Once a document's new chunks are in: delete its old version's chunks, and those of its old ids."""
        state = states.get(doc.doc_id)
        if state is not None:
            keep = set(doc.ids())
            stale = [cid for cid in state.ids if cid not in keep]
            self.index.remove(stale)
        for alias in doc.replaces:
            old = states.pop(alias, None)
            if old is not None:
                self.index.remove(old.ids)

    def _prune(self, roots: list[Path], seen: set[str], catalog: Catalog, report: IngestReport) -> None:
        """Remove documents whose file was under one of ``roots`` and is gone; nothing outside the roots."""
        for doc_id, state in list(catalog.states.items()):
            if doc_id in seen:
                continue
            source = str((catalog.meta.get(doc_id) or {}).get("source") or self._any_source(state.ids[0]))
            if not source or not os.path.isabs(source) or Path(source).exists():
                continue
            if any(Path(source).is_relative_to(root) for root in roots):
                self.index.remove(state.ids)
                report.pruned.append(doc_id)

    def _any_source(self, cid: str) -> str:
        got = self.store.get([cid])
        return str(got[0][2].get("source", "")) if got else ""

    def _finish(self, report: IngestReport, started: float) -> None:
        if report.changed:
            self.index.lexical.sync()  # also catches anything a killed earlier run left out
        report.seconds = time.perf_counter() - started
        log.info("ingest finished", extra={"summary": report.summary()})
