"""Ingest files into the chunk store: idempotent, incremental, and safe to kill midway.

Order of writes for a changed document: upsert the new chunks (ids carry the new content hash),
then delete the old ones. A run killed at any point leaves either the old version, the new
version, or both partially; the next run sees the document is not complete and redoes it.
Deterministic ids mean nothing is ever duplicated.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rag.embedding import Embedder
from rag.errors import DocumentError
from rag.ingestion.chunking import Chunk, chunk_text
from rag.ingestion.cleaning import CleanText, clean_text
from rag.ingestion.metadata import derive_author, derive_title, doc_id_for
from rag.ingestion.readers import check_size, is_supported, read_document
from rag.index.chunk_index import ChunkIndex
from rag.settings import Settings
from rag.index.store import chunk_id

log = logging.getLogger(__name__)
# Bump when cleaning or chunking rules change so unchanged files are re-processed once.
PIPELINE_VERSION = "2"  # 2: copyright rules match only real notices (a "(c) The tenant..." clause is kept)


@dataclass
class SourceFile:
    path: Path
    doc_id: str


@dataclass
class PreparedDocument:
    """A document cleaned and chunked, ready to embed."""

    doc_id: str
    source: str
    title: str
    author: str | None
    content_hash: str
    clean: CleanText
    chunks: list[Chunk]

    def metadata(self, chunk: Chunk) -> dict[str, Any]:
        start, end = self.clean.source_span(chunk.start, chunk.end)
        meta: dict[str, Any] = {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "chunk_index": chunk.index,
            "n_chunks": len(self.chunks),
            "start": start,
            "end": end,
            "content_hash": self.content_hash,
        }
        if self.author:
            meta["author"] = self.author
        return meta

    def ids(self) -> list[str]:
        return [chunk_id(self.doc_id, self.content_hash, c.index, len(self.chunks)) for c in self.chunks]


@dataclass
class IngestReport:
    """What one ingest run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # doc id -> lines cleaning removed as page furniture
    chunks_written: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.pruned)

    def summary(self) -> str:
        if not self.changed and not self.failed:
            return f"nothing to do: {len(self.unchanged)} document(s) unchanged"
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.pruned)} pruned",
            f"{len(self.failed)} failed",
            f"{sum(map(len, self.dropped.values()))} furniture lines dropped",
            f"{self.chunks_written} chunks written in {self.seconds:.1f}s",
        ]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("added", "updated", "unchanged", "pruned", "failed", "dropped", "chunks_written", "seconds")}


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
                found.setdefault(path, SourceFile(path, doc_id_for(path, root)))
            elif given.is_file():
                raise DocumentError(f"unsupported file type: {given}")
    return list(found.values())


def embed_text(title: str, text: str, settings: Settings) -> str:
    """What is embedded for a chunk: its text, with the document title in front when ``embed_title``."""
    return f"{title}\n{text}" if settings.embed_title else text


def content_hash(data: bytes, settings: Settings) -> str:
    """Hash of the bytes and of everything that shapes the chunks: equal hash, equal chunks."""
    digest = hashlib.sha256(data)
    digest.update(f"|v{PIPELINE_VERSION}|{settings.chunk_size}|{settings.chunk_overlap}|{settings.embed_title}".encode())
    return digest.hexdigest()


def prepare(data: bytes, name: str, doc_id: str, source: str, digest: str, embedder: Embedder, settings: Settings) -> PreparedDocument:
    """Read, clean and chunk one document."""
    raw = read_document(data, name)
    clean = clean_text(raw.text)
    if not clean.text.strip():
        raise DocumentError(f"{name!r} has no text to index")
    title = derive_title(clean.text, raw.title)
    chunks = chunk_text(clean.text, embedder.encode, settings.chunk_size, settings.chunk_overlap, embedder.max_tokens)
    return PreparedDocument(doc_id, source, title, derive_author(clean.text, title), digest, clean, chunks)


class Ingestor:
    """Writes prepared documents into the store in embedding batches."""

    def __init__(self, settings: Settings, index: ChunkIndex, embedder: Embedder) -> None:
        self.settings = settings
        self.index = index
        self.store = index.store
        self.embedder = embedder

    def ingest_paths(self, paths: Sequence[Path], prune: bool = False, progress: bool = False) -> IngestReport:
        """Ingest files and folders; with ``prune``, drop documents whose source file is gone."""
        started = time.perf_counter()
        report = IngestReport()
        files = discover(paths)
        states = self.store.doc_states()
        with tqdm(total=len(files), desc="ingest", unit="file", disable=not progress, leave=False) as bar:
            docs = self._changed_documents(files, states, report, bar)
            report.chunks_written += self._write(docs, states, report)
        if prune:
            self._prune({f.doc_id for f in files}, states, report)
        self._finish(report, started)
        return report

    def ingest_bytes(self, data: bytes, name: str, doc_id: str, source: str) -> IngestReport:
        """Ingest one document given as bytes (an upload); ``source`` is where it is kept."""
        started = time.perf_counter()
        report = IngestReport()
        states = {d: s for d, s in self.store.doc_states().items() if d == doc_id}
        doc = self._prepare_if_changed(data, name, doc_id, source, states, report)
        if doc is not None:
            report.chunks_written += self._write(iter([doc]), states, report)
        self._finish(report, started)
        return report

    # -- internals ------------------------------------------------------------------------------
    def _changed_documents(self, files: list[SourceFile], states: dict, report: IngestReport, bar: tqdm) -> Iterator[PreparedDocument]:
        for source in files:
            try:
                doc = self._prepare_if_changed(source.path.read_bytes(), source.path.name, source.doc_id, str(source.path), states, report)
            except Exception as exc:  # noqa: BLE001 - one file that cannot be read or chunked is a reported skip, never an abort
                report.failed[str(source.path)] = str(exc) if isinstance(exc, (DocumentError, OSError)) else f"{type(exc).__name__}: {exc}"
                log.warning("document skipped", extra={"path": str(source.path), "error": str(exc)})
                continue
            finally:
                bar.update(1)
            if doc is not None:
                yield doc

    def _prepare_if_changed(self, data: bytes, name: str, doc_id: str, source: str, states: dict,
                            report: IngestReport) -> PreparedDocument | None:
        """The document cleaned and chunked, or None (recorded as unchanged) when the store already holds exactly it."""
        check_size(name, len(data), self.settings.max_upload_bytes)
        digest = content_hash(data, self.settings)
        state = states.get(doc_id)
        if state is not None and state.is_complete(digest):
            report.unchanged.append(doc_id)
            return None
        doc = prepare(data, name, doc_id, source, digest, self.embedder, self.settings)
        (report.updated if doc_id in states else report.added).append(doc_id)
        if doc.clean.dropped_lines:
            report.dropped[doc_id] = list(doc.clean.dropped_lines)
        return doc

    def _write(self, docs: Iterator[PreparedDocument], states: dict, report: IngestReport) -> int:
        """Embed and upsert in batches across documents; retire a document's old chunks once its new ones are in."""
        batch: list[tuple[PreparedDocument, Chunk, str]] = []
        pending: dict[str, int] = {}  # doc_id -> chunks not yet written
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
            pending[doc.doc_id] = len(doc.chunks)
            for chunk, cid in zip(doc.chunks, doc.ids(), strict=True):
                batch.append((doc, chunk, cid))
                if len(batch) >= self.settings.ingest_flush_chunks:
                    flush()
        flush()
        return written

    def _retire_old(self, doc: PreparedDocument, states: dict) -> None:
        state = states.get(doc.doc_id)
        if state is not None:
            keep = set(doc.ids())
            stale = [cid for cid in state.ids if cid not in keep]
            self.index.remove(stale)

    def _prune(self, seen: set[str], states: dict, report: IngestReport) -> None:
        sources = {m["doc_id"]: m.get("source", "") for m in self.store.documents()}
        for doc_id, state in states.items():
            if doc_id in seen:
                continue
            source = sources.get(doc_id) or self._any_source(state.ids[0])
            if source and os.path.isabs(source) and not Path(source).exists():
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
