"""The checks every question and search query passes before anything runs."""

from __future__ import annotations

from rag.errors import EmptyQuestion, QuestionTooLong


def checked_question(text: str, limit: int) -> str:
    """``text`` stripped; raises ``EmptyQuestion`` or ``QuestionTooLong`` (the limit is ``RAG_MAX_QUESTION_CHARS``)."""
    text = text.strip()
    if not text:
        raise EmptyQuestion("the question is empty")
    if len(text) > limit:
        raise QuestionTooLong(f"the question has {len(text)} characters; the limit is {limit}")
    return text
