"""Chunks fit the embedding window and are exact spans of the source."""

from __future__ import annotations

import re

from rag.embedding import Embedder
from rag.ingestion.chunking import chunk_text
from rag.ingestion.cleaning import clean_text
from tests.fixtures.paths import SEEDS

_LINK_MARKS = re.compile(r"\]\([^()\s]*\)|\[")


def test_seed_chunks_fit_window_and_are_exact_substrings(embedder: Embedder) -> None:
    for path in SEEDS.glob("*.txt"):
        source = path.read_text(encoding="utf-8")
        clean = clean_text(source)
        chunks = chunk_text(clean.text, embedder.encode, 96, 16, embedder.max_tokens)
        assert len(chunks) > 1
        for chunk in chunks:
            assert embedder.count_tokens(chunk.text) <= embedder.max_tokens
            assert clean.text[chunk.start : chunk.end] == chunk.text
            s, e = clean.source_span(chunk.start, chunk.end)
            # the source span holds the chunk's words, and link markup the cleaning left out ("[words](#)")
            original = _LINK_MARKS.sub("", source[s:e])
            assert " ".join(original.split()).startswith(" ".join(chunk.text.split())[:40])
        # consecutive chunks overlap or touch: nothing but whitespace is skipped
        for a, b in zip(chunks, chunks[1:]):
            assert clean.text[a.end : b.start].strip() == ""


def test_unbreakable_text_is_still_cut_to_fit(embedder: Embedder) -> None:
    text = " ".join(f"token{i}xyz" for i in range(2000))  # no sentence boundaries at all
    chunks = chunk_text(text, embedder.encode, 200, 20, embedder.max_tokens)
    assert chunks
    assert max(embedder.count_tokens(c.text) for c in chunks) <= embedder.max_tokens


def test_empty_text_gives_no_chunks(embedder: Embedder) -> None:
    assert chunk_text("   \n ", embedder.encode, 96, 16, embedder.max_tokens) == []
