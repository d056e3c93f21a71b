"""The collections of one store, side by side: names, counts, deletion.

Each collection is a Chroma collection with its own BM25 folder (``<data_dir>/bm25/<name>/``) and, for uploads,
its own folder: ``<data_dir>/uploads/`` for the default collection ``rag``, ``<data_dir>/uploads/.collections/<name>/``
for any other (inside ``uploads/`` so ``make clean`` keeps them; a dot folder, so ``rag ingest .rag/uploads`` does
not pick them up into the default collection). Nothing is shared between collections but the embedding model and
the generator, so one collection never answers from another's documents.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import CollectionError, StoreUnavailable, UnknownCollection
from rag.index.lock import release
from rag.index.store import open_client, store_location
from rag.settings import Settings

DEFAULT_COLLECTION = "rag"  # Settings.collection's default: its uploads stay in <data_dir>/uploads/
MODEL_PREFIX = "rag:"  # the OpenAI model id of a collection: rag:<name>
# Chroma's rule: 3-512 characters of [A-Za-z0-9._-], starting and ending with a letter or digit, no "..".
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


def check_collection_name(name: str) -> str:
    """``name`` if Chroma accepts it as a collection name, else ``CollectionError`` saying the rule."""
    if not _NAME.match(name or "") or ".." in name:
        raise CollectionError(f"invalid collection name {name!r}: use 3-512 letters, digits, '.', '_' or '-', starting "
                              "and ending with a letter or digit (e.g. seeds, reports-2024)")
    return name


def uploads_dir(settings: Settings, collection: str | None = None) -> Path:
    """Where the uploads of ``collection`` (default: the configured one) are kept."""
    name = collection or settings.collection
    base = Path(settings.data_dir) / "uploads"
    return base if name == DEFAULT_COLLECTION else base / ".collections" / name


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    chunks: int
    documents: int
    embed_model: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "chunks": self.chunks, "documents": self.documents, "embed_model": self.embed_model}


class Collections:
    """The collections of the configured store (embedded folder or Chroma server)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock_path: Path | None = None
        try:
            self.client, self.lock_path = open_client(settings)
        except StoreUnavailable:
            raise
        except Exception as exc:  # chromadb raises many types for connection failures
            raise StoreUnavailable(f"cannot open the Chroma store at {store_location(settings)}: {exc}") from exc

    def names(self) -> list[str]:
        return sorted(c if isinstance(c, str) else c.name for c in self.client.list_collections())

    def exists(self, name: str) -> bool:
        return name in self.names()

    def info(self) -> list[CollectionInfo]:
        """Every collection with its chunk and document counts (documents: first chunks, a metadata-only scan)."""
        out = []
        for name in self.names():
            collection = self.client.get_collection(name, embedding_function=None)
            chunks = int(collection.count())
            docs = len(collection.get(where={"chunk_index": 0}, include=[])["ids"]) if chunks else 0
            out.append(CollectionInfo(name, chunks, docs, (collection.metadata or {}).get("embed_model")))
        return out

    def delete(self, name: str) -> int:
        """Drop collection ``name`` (its chunks and BM25 folder); returns how many chunks it held. Uploaded originals
        are kept (they are the only copy). Raises ``UnknownCollection`` when there is no such collection."""
        check_collection_name(name)
        if not self.exists(name):
            raise UnknownCollection(f"no collection {name!r}; collections: {', '.join(self.names()) or '(none)'}")
        chunks = int(self.client.get_collection(name, embedding_function=None).count())
        self.client.delete_collection(name)
        shutil.rmtree(Path(self.settings.data_dir) / "bm25" / name, ignore_errors=True)
        return chunks

    def release(self) -> None:
        if self.lock_path is not None:
            release(self.lock_path)
            self.lock_path = None


__all__ = ["DEFAULT_COLLECTION", "MODEL_PREFIX", "CollectionInfo", "Collections", "UnknownCollection",
           "check_collection_name", "uploads_dir"]
