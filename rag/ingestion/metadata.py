"""A document's card (title, authors, date, publisher, source, user metadata) and its id, derived by simple rules.

Where each field comes from, first found wins:

1. what the user set: a sidecar ``NAME.meta.json`` next to the file, or the upload's form fields;
2. what the file declares: Markdown front matter;
3. what the format records: HTML ``<meta>``/``<time>``, PDF document info;
4. what the text says: a byline ("By X", "By: X", "By X · 14 March 2019"), a name line under the title, a closing
   bio ("X is a senior at ...", "X is Head of ..."), a copyright notice naming the publisher;
5. for the date only, when nothing above gives one: the latest explicit date in the text, marked ``date_inferred``
   (the document is "as of" that date at least).

The card's fields are stored in every chunk's metadata as scalars (Chroma accepts str, int, float and bool only):
the date as an ISO string (``2019-03-14``, ``2019-03`` or ``2019``) and as an integer ``date_yyyymmdd`` for range
filters, authors joined by ``"; "``, user keys under ``meta_<key>``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import DocumentError

TITLE_MAX_CHARS = 200
TITLE_MAX_WORDS = 30
TITLE_FALLBACK_WORDS = 12
AUTHOR_SEP = "; "
USER_PREFIX = "meta_"  # user metadata keys in chunk metadata (never clash with the pipeline's own keys)
MAX_AUTHORS = 8
SIDECAR_SUFFIX = ".meta.json"

_NAME_WORD = r"[A-Z][\w'’.-]+"
_PARTICLE = r"(?:van|von|der|de|da|del|di|la|le|al|bin|ibn)"
_NAME = rf"{_NAME_WORD}(?:\s+(?:{_PARTICLE}\s+)?{_NAME_WORD}){{1,3}}"
_NAMES = rf"{_NAME}(?:\s*(?:,|&|\band\b)\s*{_NAME})*"
_BYLINE = re.compile(rf"^\s*(?i:(?:written\s+)?by|authors?)\s*:?\s+(?P<names>{_NAMES})\s*(?:[·•|,–—-]\s*(?P<rest>.+?))?\s*$")
_NAME_LINE = re.compile(rf"^\s*({_NAME})\s*$")
# A closing bio: "Rohan Kumar is a senior at UC Riverside", "Cvete Koneska is Head of Advisory services at Dragonfly".
_BIO_ROLE = (r"(?:senior|junior|head|director|professor|lecturer|fellow|researcher|analyst|editor|writer|journalist|"
             r"correspondent|student|author|contributor|founder|co-founder|partner|associate|manager|consultant|chief|"
             r"president|member|doctoral|ph\.?d|postdoctoral|reporter|columnist|freelance|research|former|visiting|"
             r"assistant|deputy|lead|principal|programme|program|policy|independent|adjunct|graduate|undergraduate|"
             r"scholar|expert|specialist|historian|economist|strategist|officer|advisor|adviser|coordinator)")
_BIO = re.compile(rf"^(?P<name>{_NAME})\s+(?:is|was|has been|serves as|works as)\s+(?:(?:a|an|the)\s+)?(?i:{_BIO_ROLE})\b")
_NOT_A_NAME = {"the", "this", "that", "these", "those", "it", "its", "our", "their", "his", "her", "we", "in", "on", "at",
               "for", "and", "but", "islamic", "united", "new", "north", "south", "east", "west", "central"}
_PUBLISHER_LINE = re.compile(r"^\s*(?i:published\s+by|publisher)\s*:?\s+(?P<name>[A-Z][^.;:|]{1,80}?)\s*\.?\s*$")
_COPYRIGHT = re.compile(r"^\s*(?:copyright\s*)?(?:©|\(c\)|copyright)\s*(?P<year>\d{4}(?:\s*[-–]\s*\d{4})?)?\s*,?\s*"
                        r"(?P<name>[A-Z][\w&'’ .-]{1,80}?)\s*(?:,?\s*(?:LLC|L\.L\.C\.|Ltd|Limited|Inc|GmbH|S\.A\.|plc)\.?)?"
                        r"\s*[.,]?\s*(?:all rights reserved\.?)?\s*$", re.IGNORECASE)

MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                      "september", "october", "november", "december"], start=1)}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
_DAY_MONTH_YEAR = rf"(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\s+(?P<m1>{_MONTH}),?\s+(?P<y1>[12]\d{{3}})"
_MONTH_DAY_YEAR = rf"(?P<m2>{_MONTH})\s+(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<y2>[12]\d{{3}})"
_MONTH_YEAR = rf"(?P<m3>{_MONTH})\s+(?:of\s+)?(?P<y3>[12]\d{{3}})"
_ISO = r"(?P<y4>[12]\d{3})-(?P<m4>[01]\d)(?:-(?P<d4>[0-3]\d))?(?![\d-])"
_SLASH = r"(?P<y5>[12]\d{3})/(?P<m5>[01]?\d)/(?P<d5>[0-3]?\d)"
_DATE_IN_TEXT = re.compile(rf"\b(?:{_DAY_MONTH_YEAR}|{_MONTH_DAY_YEAR}|{_MONTH_YEAR}|{_ISO}|{_SLASH})\b")
_YEAR_ONLY = re.compile(r"^\s*(?P<y>[12]\d{3})\s*$")
# A year standing alone ("in 1979", "2013-2019"), not a part of a bigger number ("2,140", "1979.5", "12019").
_BARE_YEAR = re.compile(r"(?<![\d,.])\b(1[5-9]\d\d|20\d\d)\b(?![,.]\d|\d)")
MIN_YEAR = 1500


# -- dates ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class PartialDate:
    """A calendar date that may lack its day or month (a byline "March 2019", front matter ``2019``)."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        try:
            dt.date(self.year, self.month or 1, self.day or 1)
        except ValueError as exc:
            raise ValueError(f"not a calendar date: {self.iso()}") from exc

    def iso(self) -> str:
        if self.month is None:
            return f"{self.year:04d}"
        return f"{self.year:04d}-{self.month:02d}" + (f"-{self.day:02d}" if self.day else "")

    def yyyymmdd(self) -> int:
        """The first day it can mean, as an integer (``2019-03`` -> 20190301): what range filters compare."""
        return self.year * 10000 + (self.month or 1) * 100 + (self.day or 1)

    def last_yyyymmdd(self) -> int:
        """The last day it can mean (``2019-03`` -> 20190331): an ``until`` bound given as a month includes it all."""
        if self.day:
            return self.yyyymmdd()
        if self.month is None:
            return self.year * 10000 + 1231
        nxt = dt.date(self.year + (self.month == 12), self.month % 12 + 1, 1)
        return self.year * 10000 + self.month * 100 + (nxt - dt.timedelta(days=1)).day

    def human(self) -> str:
        if self.month is None:
            return str(self.year)
        month = dt.date(2000, self.month, 1).strftime("%B")
        return f"{self.day} {month} {self.year}" if self.day else f"{month} {self.year}"


def _from_match(m: re.Match[str]) -> PartialDate | None:
    g = m.groupdict()
    try:
        if g.get("y1"):
            return PartialDate(int(g["y1"]), MONTHS[g["m1"].rstrip(".").lower()], int(g["d1"]))
        if g.get("y2"):
            return PartialDate(int(g["y2"]), MONTHS[g["m2"].rstrip(".").lower()], int(g["d2"]))
        if g.get("y3"):
            return PartialDate(int(g["y3"]), MONTHS[g["m3"].rstrip(".").lower()])
        if g.get("y4"):
            return PartialDate(int(g["y4"]), int(g["m4"]), int(g["d4"]) if g.get("d4") else None)
        if g.get("y5"):
            return PartialDate(int(g["y5"]), int(g["m5"]), int(g["d5"]))
    except (KeyError, ValueError):
        return None
    return None


def parse_date(value: Any) -> PartialDate:
    """A date as users and formats write it: ``2019-03-14``, ``2019-03``, ``2019``, ``2019-03-14T10:00:00Z``,
    ``14 March 2019``, ``March 14, 2019``, ``March 2019``, a ``date``/``datetime``. Raises ``ValueError`` otherwise."""
    if isinstance(value, dt.datetime):
        return PartialDate(value.year, value.month, value.day)
    if isinstance(value, dt.date):
        return PartialDate(value.year, value.month, value.day)
    if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 2999:
        return PartialDate(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", text):
                return parse_date(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
        year = _YEAR_ONLY.match(text)
        if year:
            return PartialDate(int(year.group("y")))
        m = _DATE_IN_TEXT.fullmatch(text) or _DATE_IN_TEXT.match(text)
        if m is not None:
            rest = text[m.end():]
            if not rest or re.fullmatch(r"[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?|\s*\(.*\)", rest):
                found = _from_match(m)
                if found is not None:
                    return found
    raise ValueError(f"{value!r} is not a date (write 2019-03-14, 2019-03, 2019 or 14 March 2019)")


def dates_in(text: str) -> list[PartialDate]:
    """Every explicit date in ``text`` (day-month-year, month-day-year, month-year, ISO); bare years are not dates."""
    found = []
    for m in _DATE_IN_TEXT.finditer(text):
        d = _from_match(m)
        if d is not None:
            found.append(d)
    return found


def infer_date(text: str, today: dt.date | None = None) -> PartialDate | None:
    """The latest date the text states, not after next year (plans such as "by March 2040" are not the present): a
    full or month date, or a bare year (``in 1979``) when that is later than every full date."""
    limit = (today or dt.date.today()).year + 1
    years = [PartialDate(int(m.group(1))) for m in _BARE_YEAR.finditer(text)]
    dates = [d for d in [*dates_in(text), *years] if MIN_YEAR <= d.year <= limit]
    return max(dates, key=lambda d: (d.yyyymmdd(), d.day is not None, d.month is not None)) if dates else None


# -- titles and authors ---------------------------------------------------------------------------------------------
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


def split_names(names: str) -> list[str]:
    """``"A B, C D and E F"`` -> three names."""
    parts = re.split(r"\s*(?:,|;|&|\band\b)\s*", names)
    return [" ".join(p.split()) for p in parts if p.strip()][:MAX_AUTHORS]


def _looks_like_name(name: str) -> bool:
    words = name.split()
    return 2 <= len(words) <= 5 and words[0].lower() not in _NOT_A_NAME and not any(w.isupper() and len(w) > 1 for w in words)


@dataclass(frozen=True)
class Byline:
    authors: list[str]
    date: PartialDate | None = None


def find_byline(text: str, title: str | None = None, head_lines: int = 15) -> Byline | None:
    """A byline near the top ("By X", "By: X and Y", "By X · 14 March 2019"), else a name-only line right under the
    title (the seed "Prospects for ISIS in Afghanistan" / "Arkadiusz Legieć")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines[:head_lines]:
        m = _BYLINE.match(line)
        if m:
            names = [n for n in split_names(m.group("names")) if _looks_like_name(n)]
            if names:
                date = None
                if m.group("rest"):
                    found = dates_in(m.group("rest"))
                    date = found[0] if found else None
                return Byline(names, date)
    if title is not None:
        for i, line in enumerate(lines[:5]):
            if line.lstrip("# ").strip() == title and i + 1 < len(lines):
                m = _NAME_LINE.match(lines[i + 1])
                if m and len(lines[i + 1]) < 60 and _looks_like_name(m.group(1)):
                    return Byline([m.group(1)])
    return None


def find_bio_authors(text: str, tail_paragraphs: int = 6) -> list[str]:
    """Authors named by a closing bio in the last paragraphs: "Rohan Kumar is a senior at UC Riverside ..."."""
    paragraphs = [p.strip() for p in text.splitlines() if p.strip()]
    found: list[str] = []
    for para in paragraphs[-tail_paragraphs:]:
        m = _BIO.match(para)
        if m and len(para) < 800 and _looks_like_name(m.group("name")) and m.group("name") not in found:
            found.append(m.group("name"))
    return found


def derive_author(text: str, title: str) -> str | None:
    """The first author named by a byline, a name line under the title, or a closing bio."""
    byline = find_byline(text, title)
    if byline:
        return byline.authors[0]
    bio = find_bio_authors(text)
    return bio[0] if bio else None


def find_publisher(text: str) -> str | None:
    """A publisher stated in the text: "Published by X" / "Publisher: X", or the holder of a copyright notice
    ("© 2020 American Kahani LLC. All rights reserved." -> American Kahani)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines[:20] + lines[-20:]:
        m = _PUBLISHER_LINE.match(line)
        if m:
            return m.group("name").strip()
    for line in reversed(lines[-30:]):
        if len(line.split()) > 14:
            continue
        m = _COPYRIGHT.match(line)
        if m and ("©" in line or m.group("year")) and m.group("name")[:1].isupper():
            name = re.sub(r"\s*\ball rights reserved\b.*$", "", m.group("name"), flags=re.IGNORECASE).strip(" .,")
            if name and not name[:4].isdigit() and name.lower() not in ("the author", "the authors", "author"):
                return name
    return None


# -- user metadata --------------------------------------------------------------------------------------------------
_TITLE_KEYS = ("title",)
_AUTHOR_KEYS = ("author", "authors", "by", "byline", "creator")
_DATE_KEYS = ("date", "published", "publication_date", "published_at", "pubdate", "date_published")
_PUBLISHER_KEYS = ("publisher", "site", "site_name", "source_name", "publication")
_KEY_RE = re.compile(r"[^a-z0-9_]+")


def normalize_key(key: str) -> str:
    """``"Doc Type"`` -> ``doc_type``: the form user keys are stored and filtered under."""
    return _KEY_RE.sub("_", unicodedata.normalize("NFKC", str(key)).strip().lower()).strip("_")


def _scalar(value: Any, where: str) -> str | int | float | bool | None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value.strip() if isinstance(value, str) else value
    if isinstance(value, (dt.date, dt.datetime)):
        return PartialDate(value.year, value.month, value.day).iso()
    if isinstance(value, (list, tuple)):
        items = [_scalar(v, where) for v in value]
        return AUTHOR_SEP.join(str(v) for v in items if v not in (None, ""))
    raise DocumentError(f"{where}: nested values are not supported (give a text, number, true/false or a list)")


@dataclass
class DeclaredMetadata:
    """What a user or a format states about a document; empty fields say nothing."""

    title: str | None = None
    authors: list[str] = field(default_factory=list)
    date: PartialDate | None = None
    publisher: str | None = None
    extra: dict[str, str | int | float | bool] = field(default_factory=dict)
    origin: str = ""  # where it was stated: "sidecar", "front matter", "html", "pdf", "upload"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str, where: str, strict: bool = True) -> DeclaredMetadata:
        """Keys as users write them (``title``, ``author``/``authors``, ``date``/``published``, ``publisher``/``site``,
        anything else as user metadata). Raises ``DocumentError`` naming ``where`` for a date or value it cannot use;
        with ``strict=False`` (what a format records, not what a user typed) such a field is left out instead."""
        out = cls(origin=origin)
        for raw_key, value in data.items():
            key = normalize_key(raw_key)
            if not key or value is None or value == "" or value == []:
                continue
            if key in _TITLE_KEYS:
                out.title = str(_scalar(value, f"{where}: {raw_key}"))
            elif key in _AUTHOR_KEYS:
                names = value if isinstance(value, (list, tuple)) else split_names(str(value))
                out.authors = [" ".join(str(n).split()) for n in names if str(n).strip()][:MAX_AUTHORS]
            elif key in _DATE_KEYS:
                try:
                    out.date = parse_date(value)
                except ValueError as exc:
                    if strict:
                        raise DocumentError(f"{where}: {raw_key}: {exc}") from None
            elif key in _PUBLISHER_KEYS:
                out.publisher = str(_scalar(value, f"{where}: {raw_key}"))
            else:
                scalar = _scalar(value, f"{where}: {raw_key}")
                if scalar not in (None, ""):
                    out.extra[key] = scalar  # type: ignore[assignment]
        return out


_FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\n(?P<body>.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Markdown front matter (a ``---`` block at the very top) as a dict, and the text with that block blanked out
    (every character but newlines becomes a space, so offsets into the text still point at the file's characters).

    A YAML subset: ``key: value``, quoted values, ``key: [a, b]`` and ``key:`` followed by ``- item`` lines."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    data: dict[str, Any] = {}
    current: str | None = None
    for line in m.group("body").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = re.match(r"^\s+-\s+(.*)$", line) or re.match(r"^-\s+(.*)$", line)
        if item and current is not None:
            existing = data.get(current)
            data[current] = [*(existing if isinstance(existing, list) else []), _unquote(item.group(1))]
            continue
        kv = re.match(r"^([A-Za-z0-9_][\w .-]*?)\s*:\s*(.*)$", line)
        if not kv:
            continue
        current, value = kv.group(1), kv.group(2).strip()
        if value.startswith("[") and value.endswith("]"):
            data[current] = [_unquote(v) for v in value[1:-1].split(",") if v.strip()]
        elif value:
            data[current] = _unquote(value)
        else:
            data[current] = []
    blanked = re.sub(r"[^\n]", " ", text[: m.end()]) + text[m.end():]
    return data, blanked


def _unquote(value: str) -> Any:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if re.fullmatch(r"-?\d+", value) and not re.fullmatch(r"[12]\d{3}", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+", value):
        return float(value)
    return value


def sidecar_for(path: Path) -> Path | None:
    """The sidecar of ``report.md``: ``report.md.meta.json``, else ``report.meta.json`` (None when there is none)."""
    for candidate in (path.with_name(path.name + SIDECAR_SUFFIX), path.with_name(path.stem + SIDECAR_SUFFIX)):
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's JSON object; ``DocumentError`` naming it when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DocumentError(f"cannot read the metadata sidecar {path.name}: {exc}") from None
    if not isinstance(data, dict):
        raise DocumentError(f"the metadata sidecar {path.name} must hold a JSON object of fields")
    return data


# -- the card -------------------------------------------------------------------------------------------------------
@dataclass
class DocumentCard:
    """What is known about a document as a whole."""

    title: str
    source: str  # the file name as listings show it (never a server path)
    authors: list[str] = field(default_factory=list)
    date: PartialDate | None = None
    date_inferred: bool = False
    date_from: str | None = None  # sidecar, upload, front matter, html, pdf, byline, text
    publisher: str | None = None
    extra: dict[str, str | int | float | bool] = field(default_factory=dict)

    @property
    def author(self) -> str | None:
        return AUTHOR_SEP.join(self.authors) or None

    def metadata(self) -> dict[str, Any]:
        """The card as chunk metadata: scalars only, nothing stored for an unknown field."""
        meta: dict[str, Any] = {"title": self.title}
        if self.authors:
            meta["author"] = self.author
        if self.date is not None:
            meta.update(date=self.date.iso(), date_yyyymmdd=self.date.yyyymmdd(), date_inferred=self.date_inferred,
                        date_from=self.date_from or "")
        if self.publisher:
            meta["publisher"] = self.publisher
        for key, value in self.extra.items():
            meta[USER_PREFIX + key] = value
        return meta

    def text(self) -> str:
        """The card as a retrievable passage: a question about who wrote or published a document finds it."""
        parts = [f'Document card of "{self.title}".']
        parts.append(f"Author: written by {_and(self.authors)}." if self.authors else "Author: not stated in the document.")
        if self.date is not None:
            how = " (as of; inferred from the latest date in the text)" if self.date_inferred else ""
            when = self.date.human() if self.date.human() == self.date.iso() else f"{self.date.human()} ({self.date.iso()})"
            parts.append(f"Published: {when}{how}.")
        else:
            parts.append("Published: date not stated.")
        if self.publisher:
            parts.append(f"Publisher: {self.publisher}.")
        for key, value in self.extra.items():
            parts.append(f"{key.replace('_', ' ').capitalize()}: {value}.")
        parts.append(f"Source file: {self.source}.")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "authors": list(self.authors), "author": self.author,
                "date": self.date.iso() if self.date else None, "date_inferred": self.date_inferred if self.date else None,
                "date_from": self.date_from, "publisher": self.publisher, "source": self.source, "metadata": dict(self.extra)}


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def card_of_metadata(meta: Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
    """A stored chunk's metadata as the public card (what ``rag documents`` and ``GET /v1/documents`` show)."""
    authors = [a for a in str(meta.get("author") or "").split(AUTHOR_SEP) if a]
    date = meta.get("date") or None
    return {
        "title": meta.get("title", ""),
        "authors": authors,
        "author": AUTHOR_SEP.join(authors) or None,
        "date": date,
        "date_inferred": bool(meta.get("date_inferred")) if date else None,
        "date_from": meta.get("date_from") or None,
        "publisher": meta.get("publisher") or None,
        "source": source if source is not None else str(meta.get("source", "")),
        "metadata": {k[len(USER_PREFIX):]: v for k, v in sorted(meta.items()) if k.startswith(USER_PREFIX)},
    }


def build_card(text: str, raw_text: str, source: str, *, declared_title: str | None = None,
               layers: list[DeclaredMetadata] | None = None, today: dt.date | None = None) -> DocumentCard:
    """The card of a cleaned document. ``layers`` are stated metadata, strongest first (sidecar or upload fields,
    front matter, the format's own); ``raw_text`` is the text before cleaning (copyright notices live there);
    ``source`` is the file as listings show it (its document id)."""
    layers = [layer for layer in (layers or []) if layer is not None]
    title = next((layer.title for layer in layers if layer.title), None) or derive_title(text, declared_title)
    card = DocumentCard(title=title[:TITLE_MAX_CHARS], source=source)
    stated_authors = next((layer.authors for layer in layers if layer.authors), None)
    byline = find_byline(text, title)
    card.authors = stated_authors or (byline.authors if byline else None) or find_bio_authors(text)
    stated_date = next((layer for layer in layers if layer.date is not None), None)
    if stated_date is not None:
        card.date, card.date_from = stated_date.date, stated_date.origin
    elif byline is not None and byline.date is not None:
        card.date, card.date_from = byline.date, "byline"
    else:
        inferred = infer_date(text, today)
        if inferred is not None:
            card.date, card.date_inferred, card.date_from = inferred, True, "text"
    card.publisher = next((layer.publisher for layer in layers if layer.publisher), None) or find_publisher(raw_text)
    for layer in reversed(layers):  # the strongest layer's value wins
        card.extra.update(layer.extra)
    return card


def doc_id_for(path: Path, root: Path | None) -> str:
    """The path relative to the ingested folder, case and extension kept: ``seeds/a/B.txt`` -> ``a/B.txt``.

    Unique per file under one folder, and stable across runs and machines (moving the folder keeps it). A file
    named on its own (or an upload) is its name.
    """
    rel = path.relative_to(root) if root and path.is_relative_to(root) else Path(path.name)
    return rel.as_posix()
