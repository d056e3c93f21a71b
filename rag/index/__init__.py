"""The chunk index of a collection: the Chroma store (source of truth) and the BM25 index that follows it."""
