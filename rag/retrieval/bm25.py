"""A persisted BM25 index over the chunk collection (bm25s with an English stemmer)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import bm25s
import Stemmer

log = logging.getLogger(__name__)
META_FILE = "rag_ids.json"


def fingerprint(ids: Iterable[str]) -> str:
    """Identity of a collection state: chunk ids embed each document's content hash."""
    digest = hashlib.sha256()
    for cid in sorted(ids):
        digest.update(cid.encode())
        digest.update(b"\n")
    return digest.hexdigest()


class BM25Index:
    """Sparse lexical index; ``ids[i]`` is the chunk id of row ``i``."""

    def __init__(self, ids: list[str], model: bm25s.BM25 | None, fp: str) -> None:
        self.ids = ids
        self.model = model
        self.fingerprint = fp
        self._stemmer = Stemmer.Stemmer("english")

    @classmethod
    def build(cls, ids: list[str], texts: list[str]) -> BM25Index:
        stemmer = Stemmer.Stemmer("english")
        if not ids:
            return cls([], None, fingerprint([]))
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
        model = bm25s.BM25()
        model.index(tokens, show_progress=False)
        return cls(list(ids), model, fingerprint(ids))

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top ``k`` (chunk id, score) with a positive score."""
        if self.model is None or not self.ids:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)
        if not tokens or not tokens[0]:
            return []
        k = min(k, len(self.ids))
        rows, scores = self.model.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [(self.ids[int(r)], float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def save(self, folder: Path) -> None:
        """Write atomically: a half-written index is never loaded."""
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.model is not None:
            self.model.save(str(tmp), show_progress=False)
        (tmp / META_FILE).write_text(json.dumps({"fingerprint": self.fingerprint, "ids": self.ids}))
        old = folder.with_name(folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> BM25Index | None:
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            ids = list(meta["ids"])
            model = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0) if ids else None
            return cls(ids, model, str(meta["fingerprint"]))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable BM25 index", extra={"folder": str(folder), "error": str(exc)})
            return None


def rrf_fuse(rankings: list[list[str]], k: int) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


__all__ = ["BM25Index", "fingerprint", "rrf_fuse"]
