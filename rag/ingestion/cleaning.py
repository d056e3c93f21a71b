"""Rule-based removal of page furniture (comment forms, share widgets, copyright lines...) and link markup.

Furniture lines are dropped whole; link markup ``[words](target)`` keeps its words and drops the brackets and the
target. Nothing is rewritten, only left out, so every kept character maps back to its offset in the extracted source
text: citations can point at the exact span in the original.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field


def _short(words: int) -> str:
    """A lookahead: the (whole) line has at most ``words`` words."""
    return rf"(?=(?:\S+\s+){{0,{words - 1}}}\S+\s*$)"


# A line matching any of these (whole line, case-insensitive) carries no content.
FURNITURE_PATTERNS: tuple[str, ...] = (
    r"please enter your (comment|name|email)( here)?[!.]?",
    r"leave a (reply|comment)",
    r"your email address will not be published.*",
    r"(view|show|load) comments?( \(\d+\))?",
    r"\d* ?comments?",
    r"(previous|next) (article|post|story)",
    # A copyright notice is short and names a year or the © sign; "(c) The tenant must..." is a clause, not a notice.
    _short(12) + r"(©|copyright\s*(©|\(c\))|(copyright|\(c\))\s*\d{4}\b).*",
    _short(15) + r".*\ball rights reserved\.?",
    r"scroll to top",
    r"now reading",
    r"source link",
    r"share (this|on \w+)( article)?:?",
    r"(tweet|share|email|print|whatsapp|facebook|twitter|linkedin)",
    r"(sign up|subscribe) (for|to) (our|the) newsletter.*",
    r"related (posts|articles|stories)",
    r"advertisement",
    r"read more",
    r"file photo:.*",
    r"courtesy [\w .-]{1,40}-?",
    r"the (views|viewpoints|opinions) expressed .* do not necessarily reflect .*",
)
# A header after which short lines (<= 3 words) are widget options ("In Love", "Not Sure").
REACTION_HEADER = re.compile(r"^what'?’?s your reaction\??$", re.IGNORECASE)
_FURNITURE = re.compile(r"^(?:" + "|".join(FURNITURE_PATTERNS) + r")$", re.IGNORECASE)
# Markdown link markup inside a line: the words are content, the brackets and the target are not (they reached
# prompts, quotes and the judge as "[Despite the fall of the caliphate ...](#)"). Images (``![alt](src)``) are kept.
_LINK = re.compile(r"(?<!!)\[([^\[\]\n]+)\]\([^()\s]*\)")


@dataclass
class CleanText:
    """Cleaned text plus the map from its offsets back to the source text's offsets."""

    text: str
    # Parallel lists: a kept run starts at clean_starts[i] in text and source_starts[i] in the source.
    clean_starts: list[int] = field(default_factory=list)
    source_starts: list[int] = field(default_factory=list)
    dropped_lines: list[str] = field(default_factory=list)

    def to_source(self, pos: int) -> int:
        """Source offset of the cleaned-text offset ``pos``."""
        if not self.clean_starts:
            return pos
        i = max(bisect.bisect_right(self.clean_starts, pos) - 1, 0)
        return self.source_starts[i] + (pos - self.clean_starts[i])

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Source ``(start, end)`` of the cleaned span ``[start, end)``."""
        if end <= start:
            return self.to_source(start), self.to_source(start)
        return self.to_source(start), self.to_source(end - 1) + 1


def is_furniture(line: str) -> bool:
    """True when a single line is page furniture."""
    stripped = line.strip()
    return bool(stripped) and bool(_FURNITURE.match(stripped))


def clean_text(source: str) -> CleanText:
    """Drop furniture lines and leading blank lines; keep everything else byte for byte."""
    out: list[str] = []
    clean_starts: list[int] = []
    source_starts: list[int] = []
    dropped: list[str] = []
    length = 0
    offset = 0
    in_reactions = False
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        drop = False
        if REACTION_HEADER.match(stripped):
            in_reactions, drop = True, True
        elif in_reactions and stripped and len(stripped.split()) <= 3:
            drop = True
        else:
            in_reactions = in_reactions and not stripped  # blank lines keep the widget open
            drop = is_furniture(line)
        if not stripped and length == 0:
            drop = True  # leading blank lines
        if drop:
            if stripped:
                dropped.append(stripped)
        else:
            for start, piece in _kept_pieces(line):
                if not clean_starts or source_starts[-1] + (length - clean_starts[-1]) != offset + start:
                    clean_starts.append(length)
                    source_starts.append(offset + start)
                out.append(piece)
                length += len(piece)
        offset += len(line)
    text = "".join(out)
    # Trailing whitespace carries nothing; trimming the end leaves the offset map valid.
    return CleanText(text=text.rstrip(), clean_starts=clean_starts, source_starts=source_starts, dropped_lines=dropped)


def _kept_pieces(line: str) -> list[tuple[int, str]]:
    """The parts of a kept line that are content, each with its offset in the line: all of it, less link markup."""
    pieces: list[tuple[int, str]] = []
    at = 0
    for link in _LINK.finditer(line):
        if link.start() > at:
            pieces.append((at, line[at:link.start()]))
        pieces.append((link.start(1), link.group(1)))
        at = link.end()
    if at < len(line):
        pieces.append((at, line[at:]))
    return pieces
