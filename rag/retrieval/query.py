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


# A question about a document itself (who wrote or published it, when): only these let document cards compete.
_ABOUT_DOCUMENTS = re.compile(
    r"\b(?:who\s+(?:wrote|writes|authored|penned|published|publishes|is\s+the\s+(?:author|writer|publisher))|"
    r"authors?|writers?|byline|written|published|publishers?|publication|publishing|"
    r"(?:which|what)\s+(?:site|website|outlet|newspaper|magazine|journal|think[- ]tank|organi[sz]ation)\s+(?:ran|carried|put\s+out)|"
    r"when\s+(?:was|is|were)\s+.{1,120}?\s+(?:written|dated|posted|released|issued)|"
    r"(?:date|year)\s+of\s+(?:the|this|that)\s+(?:article|document|report|piece|paper|analysis|post)|"
    r"source\s+file)\b",
    re.IGNORECASE)


def asks_about_documents(question: str) -> bool:
    """True for a question about a document itself ("Who wrote the article about ...?", "When was ... published?"):
    such questions are answered by document cards; for any other question the cards do not compete for places."""
    return bool(_ABOUT_DOCUMENTS.search(question))
