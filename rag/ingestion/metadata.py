"""Title, author and identity of a document, derived by simple rules."""

from __future__ import annotations

import re
from pathlib import Path

TITLE_MAX_CHARS = 200
TITLE_MAX_WORDS = 30
TITLE_FALLBACK_WORDS = 12
_NAME_WORD = r"[A-Z][\w'’.-]+"
_BYLINE = re.compile(rf"^\s*by:?\s+({_NAME_WORD}(?:\s+{_NAME_WORD}){{1,3}})\s*$", re.IGNORECASE)
_NAME_LINE = re.compile(rf"^\s*({_NAME_WORD}(?:\s+{_NAME_WORD}){{1,3}})\s*$")


def derive_title(text: str, declared: str | None = None) -> str:
    """The declared title, else the first line if it looks like a heading, else the opening words."""
    if declared and declared.strip():
        return declared.strip()[:TITLE_MAX_CHARS]
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if not line:
            continue
        if len(line) <= TITLE_MAX_CHARS and len(line.split()) <= TITLE_MAX_WORDS and not line.endswith("."):
            return line
        words = line.split()
        return " ".join(words[:TITLE_FALLBACK_WORDS]) + ("…" if len(words) > TITLE_FALLBACK_WORDS else "")
    return "Untitled"


def derive_author(text: str, title: str) -> str | None:
    """An author named by a byline ("By: Name") or by a name-only line right after the title."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines[:15]:
        match = _BYLINE.match(line)
        if match:
            return match.group(1)
    for i, line in enumerate(lines[:5]):
        if line.lstrip("# ").strip() == title and i + 1 < len(lines):
            match = _NAME_LINE.match(lines[i + 1])
            if match and len(lines[i + 1]) < 60:
                return match.group(1)
    return None


def doc_id_for(path: Path, root: Path | None) -> str:
    """The path relative to the ingested folder, case and extension kept: ``seeds/a/B.txt`` -> ``a/B.txt``.

    Unique per file under one folder, and stable across runs and machines (moving the folder keeps it). A file
    named on its own (or an upload) is its name.
    """
    rel = path.relative_to(root) if root and path.is_relative_to(root) else Path(path.name)
    return rel.as_posix()
