"""Rewrite a follow-up question into a standalone one by rule, without an LLM call."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import strip_citations

_FOLLOWUP_START = re.compile(r"^\s*(and|but|so|also|then|what about|how about|and what|why|when)\b", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(he|him|his|she|her|hers|it|its|they|them|their|that|this|those|these|there|the group|the same)\b", re.IGNORECASE)
MIN_STANDALONE_TERMS = 4


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


def is_followup(question: str) -> bool:
    """A question that leans on earlier turns: opens with a connective, or is short and uses a pronoun."""
    words = re.findall(r"\w+", question)
    return bool(_FOLLOWUP_START.match(question)) or (bool(_PRONOUN.search(question)) and len(words) <= 12)


def standalone_question(question: str, history: list[Turn]) -> str:
    """The question itself, or with the previous exchange attached so retrieval and the model see its referents."""
    users = [t.content for t in history if t.role == "user" and t.content.strip()]
    if not users or not is_followup(question):
        return question
    previous_q = users[-1].strip()
    answers = [t.content for t in history if t.role == "assistant"]
    previous_a = " ".join(strip_citations(answers[-1]).split()) if answers else ""
    context = previous_q if not previous_a else f"{previous_q} {previous_a}"
    return f"{question.strip()} (Context: {' '.join(context.split())[:400]})"
