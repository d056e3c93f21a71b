"""Finding the passages that matter: dense, BM25 and their fusion."""

from rag.retrieval.passage import Passage
from rag.retrieval.retriever import Retriever

__all__ = ["Passage", "Retriever"]
