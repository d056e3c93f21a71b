"""The checks every question and search query passes before anything runs."""

from __future__ import annotations

import re

from rag.errors import EmptyQuestion, InvalidQuestion, QuestionTooLong

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(text: str, what: str = "the question") -> None:
    """Raise ``InvalidQuestion`` for text that is not Unicode: a lone surrogate (JSON's ``"\\ud800"``) that no
    tokenizer can read."""
    bad = _SURROGATE.search(text)
    if bad:
        raise InvalidQuestion(f"{what} is not valid Unicode text: a lone surrogate U+{ord(bad.group()):04X} "
                              f"at character {bad.start() + 1}")


def checked_question(text: str, limit: int) -> str:
    """``text`` stripped; raises ``EmptyQuestion``, ``QuestionTooLong`` (the limit is ``RAG_MAX_QUESTION_CHARS``) or
    ``InvalidQuestion`` (``check_unicode``)."""
    check_unicode(text)
    text = text.strip()
    if not text:
        raise EmptyQuestion("the question is empty")
    if len(text) > limit:
        raise QuestionTooLong(f"the question has {len(text)} characters; the limit is {limit}")
    return text
