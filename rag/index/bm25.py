"""An incremental, persisted BM25 index (Lucene scoring, English stemming and stopwords).

bm25s precomputes scores, so adding one document means rebuilding everything. This index keeps raw
term frequencies instead, in append-only segments (one sparse matrix each), and scores at query time
from the posting columns of the query's terms only. Adding chunks writes a new segment; removing
chunks marks rows dead; small segments are merged and dead rows compacted away as they pile up.
Document frequencies and lengths are kept for live rows only, so scores equal a full rebuild's.

On disk: ``manifest.json`` (segments and dead rows, replaced atomically), ``vocab.json``
(append-only term list) and one ``seg-*.npz`` per segment, written before the manifest names it.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from scipy import sparse

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
VOCAB = "vocab.json"
FORMAT = 3  # 3: chunk ids stored as a unicode array (2 pickled them)


@dataclass(frozen=True)
class BM25Params:
    """Scoring constants (Lucene defaults) and segment housekeeping thresholds."""

    k1: float = 1.5
    b: float = 0.75
    max_segments: int = 8  # above this, the smaller half of the segments is merged (tiered, like Lucene)
    max_dead_share: float = 0.3  # a segment with more dead rows than this is rewritten


def doc_of(chunk_id: str) -> str:
    """The document id of a chunk id ``doc::hash::i/n`` (document ids may hold ``::`` themselves: split from the right)."""
    return chunk_id.rsplit("::", 2)[0]


class Tokenizer:
    """Lower-cased, stop-worded, stemmed word tokens (the same analysis for chunks and queries)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        if not texts:
            return []
        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)
        return [list(t) for t in tokens]


@dataclass
class Segment:
    """Term frequencies of a batch of chunks: ``tf[row, term]``, stored column-major for posting lookups."""

    name: str
    ids: list[str]
    lengths: np.ndarray  # tokens per row
    tf: sparse.csc_matrix
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _doc_codes: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.live.size != len(self.ids):
            self.live = np.ones(len(self.ids), dtype=bool)

    @property
    def dead(self) -> int:
        return int(self.live.size - self.live.sum())

    def doc_codes(self, codes: dict[str, int]) -> np.ndarray:
        """Each row's document as an integer code of ``codes`` (doc id -> code, grown as needed); computed once per
        segment (segments never change their rows), so a filtered search costs one array lookup per row."""
        if self._doc_codes is None or self._doc_codes.size != len(self.ids):
            self._doc_codes = np.fromiter((codes.setdefault(doc_of(cid), len(codes)) for cid in self.ids),
                                          dtype=np.int64, count=len(self.ids))
        return self._doc_codes

    def term_counts(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Document frequency of each term column over ``rows`` (default: live rows)."""
        mask = self.live if rows is None else rows
        sub = self.tf[np.flatnonzero(mask)] if not mask.all() else self.tf
        return np.diff(sparse.csc_matrix(sub).indptr) if sub.shape[0] else np.zeros(self.tf.shape[1], dtype=np.int64)

    def save(self, folder: Path) -> None:
        tf = self.tf
        np.savez(folder / f"{self.name}.npz", data=tf.data, indices=tf.indices, indptr=tf.indptr,
                 shape=np.array(tf.shape), lengths=self.lengths, ids=np.array(self.ids, dtype=np.str_))

    @classmethod
    def load(cls, folder: Path, name: str, dead_rows: Iterable[int]) -> Segment:
        with np.load(folder / f"{name}.npz", allow_pickle=False) as z:  # ids are plain strings: never unpickle a file
            tf = sparse.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            seg = cls(name, [str(i) for i in z["ids"]], z["lengths"], tf)
        seg.live[list(dead_rows)] = False
        return seg


class BM25Index:
    """Sparse lexical index over chunks, updated in place; ``search`` returns (chunk id, score)."""

    def __init__(self, params: BM25Params | None = None) -> None:
        self.params = params or BM25Params()
        self.tokenize = Tokenizer()
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self.segments: list[Segment] = []
        self.where: dict[str, tuple[Segment, int]] = {}  # live chunk id -> (segment, row)
        self.df = np.zeros(0, dtype=np.int64)
        self.total_length = 0
        self._unsaved: set[str] = set()
        self.doc_code: dict[str, int] = {}  # document id -> integer code (rows are filtered by document)

    def __len__(self) -> int:
        return len(self.where)

    @property
    def ids(self) -> set[str]:
        return set(self.where)

    # -- updates --------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index chunks as a new segment; ids already present are replaced (an id given twice: its last text)."""
        if not ids:
            return
        if len(set(ids)) != len(ids):  # one row per id, or the earlier rows stay live, unreachable ghosts
            last = {cid: text for cid, text in zip(ids, texts, strict=True)}
            ids, texts = list(last), list(last.values())
        self.remove([i for i in ids if i in self.where])
        rows, cols, counts, lengths = [], [], [], []
        for row, tokens in enumerate(self.tokenize(texts)):
            lengths.append(len(tokens))
            uniq, freq = np.unique(np.array([self._term_id(t) for t in tokens], dtype=np.int64), return_counts=True)
            rows.append(np.full(uniq.size, row)), cols.append(uniq), counts.append(freq)
        width = len(self.terms)
        tf = sparse.csc_matrix(
            (np.concatenate(counts).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(ids), width),
        )
        seg = Segment(f"seg-{uuid.uuid4().hex[:12]}", list(ids), np.array(lengths, dtype=np.int32), tf)
        self._attach(seg)
        self._housekeep()

    def remove(self, ids: Iterable[str]) -> int:
        """Mark chunks dead; returns how many were indexed."""
        removed = 0
        touched: dict[str, tuple[Segment, list[int]]] = {}
        for cid in ids:
            found = self.where.pop(cid, None)
            if found is None:
                continue
            seg, row = found
            touched.setdefault(seg.name, (seg, []))[1].append(row)
            removed += 1
        for seg, rows in touched.values():
            mask = np.zeros(seg.live.size, dtype=bool)
            mask[rows] = True
            self._grow_df()
            self.df[: seg.tf.shape[1]] -= seg.term_counts(mask)
            self.total_length -= int(seg.lengths[rows].sum())
            seg.live[rows] = False
            self._unsaved.add("manifest")
        if removed:
            self._housekeep()
        return removed

    # -- search ---------------------------------------------------------------------------------
    def _allowed_codes(self, docs: Collection[str]) -> np.ndarray:
        """A mask over document codes: True for the codes of ``docs`` (every segment's codes are made first)."""
        for seg in self.segments:
            seg.doc_codes(self.doc_code)
        allowed = np.zeros(len(self.doc_code) + 1, dtype=bool)
        allowed[[self.doc_code[d] for d in docs if d in self.doc_code]] = True
        return allowed

    def count_of(self, docs: Collection[str]) -> int:
        """How many live rows documents ``docs`` have (an upper bound on their chunks: a row replaced by a newer
        segment still counts until it is dropped), without listing their ids."""
        allowed = self._allowed_codes(docs)
        return sum(int(np.count_nonzero(allowed[seg.doc_codes(self.doc_code)] & seg.live)) for seg in self.segments)

    def ids_of(self, docs: Collection[str]) -> list[str]:
        """The live chunk ids of documents ``docs`` (one array lookup per row: no scan of ids)."""
        allowed = self._allowed_codes(docs)
        out: list[str] = []
        for seg in self.segments:
            rows = np.flatnonzero(allowed[seg.doc_codes(self.doc_code)] & seg.live)
            out.extend(seg.ids[r] for r in rows if self._is_row_of(seg, int(r)))
        return out

    def search(self, query: str, k: int, docs: Collection[str] | None = None,
               exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, score) with a positive score; with ``docs``, only rows of those documents compete,
        and rows of ``exclude`` (chunk ids) never do: both are zeroed before the top-k cut, so a filter never starves
        the list. Scores are the collection's: a filter changes which rows compete, not their scores."""
        allowed: np.ndarray | None = None
        if docs is not None:
            allowed = self._allowed_codes(docs)
            if not allowed.any():
                return []
        dropped: dict[int, list[int]] = {}
        for cid in exclude:
            found = self.where.get(cid)
            if found is not None:
                dropped.setdefault(id(found[0]), []).append(found[1])
        n = len(self.where)
        tokens = self.tokenize([query])
        cols = sorted({self.vocab[t] for t in (tokens[0] if tokens else []) if t in self.vocab})
        if not n or not cols:
            return []
        p = self.params
        avgdl = self.total_length / n
        df = self.df[cols].astype(np.float64)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        found: list[tuple[float, str]] = []
        for seg in self.segments:
            usable = [(j, c) for j, c in enumerate(cols) if c < seg.tf.shape[1]]
            if not usable:
                continue
            sub = seg.tf[:, [c for _, c in usable]].tocoo()
            if not sub.nnz:
                continue
            norm = p.k1 * (1 - p.b + p.b * seg.lengths[sub.row] / avgdl)
            term_idf = idf[np.array([j for j, _ in usable])][sub.col]
            scores = np.bincount(sub.row, weights=term_idf * sub.data / (norm + sub.data), minlength=len(seg.ids))
            scores[~seg.live] = 0.0
            if allowed is not None:
                scores[~allowed[seg.doc_codes(self.doc_code)]] = 0.0
            if id(seg) in dropped:
                scores[dropped[id(seg)]] = 0.0
            top = np.argpartition(-scores, k - 1)[:k] if scores.size > k else np.arange(scores.size)
            found.extend((float(scores[r]), seg.ids[r]) for r in top if scores[r] > 0 and self._is_row_of(seg, int(r)))
        found.sort(key=lambda item: (-item[0], item[1]))
        return [(cid, score) for score, cid in found[:k]]

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write new segments, then the vocabulary and the manifest atomically; drop unreferenced segments."""
        if not self._unsaved and (folder / MANIFEST).is_file():
            return
        folder.mkdir(parents=True, exist_ok=True)
        for seg in self.segments:
            if seg.name in self._unsaved or not (folder / f"{seg.name}.npz").is_file():
                seg.save(folder)
        _write_atomic(folder / VOCAB, json.dumps(self.terms))
        manifest = {
            "format": FORMAT,
            "segments": [{"name": s.name, "dead": np.flatnonzero(~s.live).tolist()} for s in self.segments],
        }
        _write_atomic(folder / MANIFEST, json.dumps(manifest))
        keep = {f"{s.name}.npz" for s in self.segments}
        for path in folder.glob("seg-*.npz"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
        self._unsaved.clear()

    @classmethod
    def load(cls, folder: Path, params: BM25Params | None = None) -> BM25Index | None:
        """The saved index, or None when there is none or it cannot be read (the caller re-syncs)."""
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            if manifest.get("format") != FORMAT:
                return None
            index = cls(params)
            index.terms = list(json.loads((folder / VOCAB).read_text()))
            index.vocab = {t: i for i, t in enumerate(index.terms)}
            for entry in manifest["segments"]:
                index._attach(Segment.load(folder, entry["name"], entry["dead"]), fresh=False)
            return index
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, IndexError) as exc:
            log.warning("ignoring unreadable BM25 index", extra={"folder": str(folder), "error": str(exc)})
            return None

    # -- internals ------------------------------------------------------------------------------
    def _is_row_of(self, seg: Segment, row: int) -> bool:
        """``row`` of ``seg`` is where its id lives (each id is scored once, even from an index saved with ghosts)."""
        found = self.where.get(seg.ids[row])
        return found is not None and found[0] is seg and found[1] == row

    def _term_id(self, term: str) -> int:
        tid = self.vocab.get(term)
        if tid is None:
            tid = self.vocab[term] = len(self.terms)
            self.terms.append(term)
        return tid

    def _grow_df(self) -> None:
        if self.df.size < len(self.terms):
            self.df = np.concatenate([self.df, np.zeros(len(self.terms) - self.df.size, dtype=np.int64)])

    def _attach(self, seg: Segment, fresh: bool = True) -> None:
        self.segments.append(seg)
        self._grow_df()
        self.df[: seg.tf.shape[1]] += seg.term_counts()
        self.total_length += int(seg.lengths[seg.live].sum())
        for row in np.flatnonzero(seg.live):
            self.where[seg.ids[row]] = (seg, int(row))
        if fresh:
            self._unsaved.update({seg.name, "manifest"})

    def _detach(self, seg: Segment) -> None:
        self.segments.remove(seg)
        self.df[: seg.tf.shape[1]] -= seg.term_counts()
        self.total_length -= int(seg.lengths[seg.live].sum())
        for row in np.flatnonzero(seg.live):
            self.where.pop(seg.ids[row], None)

    def _housekeep(self) -> None:
        """Rewrite segments that are mostly dead; merge small segments when there are too many."""
        for seg in [s for s in self.segments if s.live.size and s.dead / s.live.size > self.params.max_dead_share]:
            self._merge([seg])
        if len(self.segments) > self.params.max_segments:
            by_size = sorted(self.segments, key=lambda s: s.live.size)
            self._merge(by_size[: max(2, self.params.max_segments // 2)])

    def _merge(self, segs: list[Segment]) -> None:
        width = len(self.terms)
        parts, ids, lengths = [], [], []
        for seg in segs:
            rows = np.flatnonzero(seg.live)
            tf = seg.tf[rows]
            parts.append(sparse.hstack([tf, sparse.csc_matrix((rows.size, width - tf.shape[1]))]) if tf.shape[1] < width else tf)
            ids.extend(seg.ids[r] for r in rows)
            lengths.append(seg.lengths[rows])
        for seg in segs:
            self._detach(seg)
        if ids:
            merged = Segment(f"seg-{uuid.uuid4().hex[:12]}", ids, np.concatenate(lengths),
                             sparse.csc_matrix(sparse.vstack(parts), dtype=np.float32))
            self._attach(merged)
        self._unsaved.add("manifest")
        log.debug("bm25 segments merged", extra={"segments": len(segs), "rows": len(ids)})


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


__all__ = ["BM25Index", "BM25Params", "Segment", "Tokenizer"]
