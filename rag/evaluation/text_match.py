"""Deterministic text matching: SQuAD-style normalization, alias containment, quote containment."""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—…"})
_QUOTE_CHARS = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "\u00a0": " ", "–": "-", "—": "-"})


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles, collapse whitespace."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalize_passage(text: str) -> str:
    """Typography-insensitive form used to find a quote inside a passage."""
    return " ".join(text.translate(_QUOTE_CHARS).split())


def contains_quote(passage: str, quote: str) -> bool:
    return normalize_passage(quote) in normalize_passage(passage)


def contains_alias(text: str, aliases: list[str]) -> bool:
    """True when the normalized text contains any normalized alias as whole words."""
    norm = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(a)} " in norm for a in aliases if normalize_answer(a))


def exact_match(prediction: str, aliases: list[str]) -> bool:
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(a) for a in aliases)


def token_f1(prediction: str, aliases: list[str]) -> float:
    """Best SQuAD token F1 of the prediction against any alias."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for alias in aliases:
        gold = normalize_answer(alias).split()
        common = Counter(pred) & Counter(gold)
        same = sum(common.values())
        if not pred or not gold or same == 0:
            continue
        precision, recall = same / len(pred), same / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
