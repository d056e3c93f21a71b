"""Split cleaned text into chunks that fit the embedding model's window, with exact character spans."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.node_parser import SentenceSplitter

TokenCounter = Callable[[str], int]


@dataclass(frozen=True)
class Chunk:
    """A chunk of a cleaned document: ``text == cleaned[start:end]``."""

    index: int
    text: str
    start: int
    end: int


def chunk_text(
    text: str,
    tokenize: Callable[[str], list[int]],
    chunk_size: int,
    chunk_overlap: int,
    max_tokens: int,
) -> list[Chunk]:
    """Sentence-aware chunks of at most ``max_tokens`` model tokens (special tokens included).

    llama-index's SentenceSplitter does the splitting with the model's own tokenizer; spans are
    then located in ``text`` so each chunk is an exact substring.
    """
    if not text.strip():
        return []
    overlap = min(chunk_overlap, chunk_size // 2)
    pieces = _split(text, tokenize, chunk_size, overlap)
    # The splitter sums token counts of its splits; the joined text can tokenize a little longer.
    fitted: list[str] = []
    for piece in pieces:
        fitted.extend(_fit(piece, tokenize, chunk_size, max_tokens))
    return _locate(text, fitted)


def _split(text: str, tokenize: Callable[[str], list[int]], size: int, overlap: int) -> list[str]:
    splitter = SentenceSplitter(chunk_size=size, chunk_overlap=overlap, tokenizer=tokenize)
    return [p for p in splitter.split_text(text) if p.strip()]


def _fit(piece: str, tokenize: Callable[[str], list[int]], size: int, max_tokens: int) -> list[str]:
    # +2 for [CLS] and [SEP]
    if len(tokenize(piece)) + 2 <= max_tokens:
        return [piece]
    smaller = max(size * 3 // 4, 16)
    parts = _split(piece, tokenize, smaller, 0)
    if len(parts) <= 1:  # one unbreakable run: cut it by words
        words = piece.split(" ")
        half = max(len(words) // 2, 1)
        parts = [" ".join(words[:half]), " ".join(words[half:])]
    return [p for part in parts if part.strip() for p in _fit(part, tokenize, smaller, max_tokens)]


def _locate(text: str, pieces: list[str]) -> list[Chunk]:
    chunks: list[Chunk] = []
    cursor = 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:
            start = text.find(piece)
        if start >= 0:
            end = start + len(piece)
        else:
            # The splitter normalized whitespace: match the same words with any whitespace between.
            pattern = r"\s+".join(re.escape(w) for w in piece.split())
            match = re.compile(pattern).search(text, cursor) or re.compile(pattern).search(text)
            if match is None:
                continue
            start, end = match.span()
        chunks.append(Chunk(index=len(chunks), text=text[start:end], start=start, end=end))
        cursor = start + 1
    return chunks
