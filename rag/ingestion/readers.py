"""Read supported files (.txt, .md, .html, .pdf) into plain text."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import DocumentError, DocumentTooLarge, EmptyDocument, UnsupportedDocumentType
from rag.ingestion.metadata import split_front_matter

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
# Elements whose text is never article content.
HTML_DROP_TAGS = ("script", "style", "noscript", "nav", "footer", "form", "header", "aside", "iframe", "svg", "button")
MAX_PDF_PAGES = 2000
# An HTML page with more elements or deeper nesting than this is refused before a tree is built: a parse tree
# costs about 600 bytes per element, so a 20 MB "element bomb" would otherwise take gigabytes and minutes.
MAX_HTML_ELEMENTS = 100_000
MAX_HTML_DEPTH = 256
# Byte order marks, longest first (a UTF-32-LE BOM starts with the UTF-16-LE one).
BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_START_TAG = re.compile(rb"<[A-Za-z]")


@dataclass(frozen=True)
class RawDocument:
    """Text extracted from one file, before cleaning. ``title`` is set when the format names one; ``declared`` holds
    the fields of Markdown front matter (what the author of the file set), ``info`` what the format records about the
    document (HTML ``<meta>``/``<time>``, PDF document info): ``author``/``authors``, ``date``, ``publisher``."""

    text: str
    title: str | None = None
    declared: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def check_supported(name: str) -> str:
    """The lower-cased suffix of ``name``; raises ``UnsupportedDocumentType`` for a type we do not ingest."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocumentType(
            f"unsupported file type {suffix or '(none)'!r} for {name!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    return suffix


def check_size(name: str, size: int, limit: int) -> None:
    """Raise ``EmptyDocument`` for no bytes, ``DocumentTooLarge`` above ``limit`` (``RAG_MAX_UPLOAD_BYTES``)."""
    if size == 0:
        raise EmptyDocument(f"{name!r} is empty")
    if size > limit:
        raise DocumentTooLarge(f"{name!r} is larger than the limit of {limit} bytes")


def read_document(data: bytes, name: str) -> RawDocument:
    """Extract text from file bytes; ``name`` decides the format by its suffix.

    Every failure is a ``DocumentError`` naming the file: a parser's own exception (pypdf and bs4 raise many
    kinds) never escapes, so one bad file is a reported skip, never an aborted run or a 500.
    """
    suffix = check_supported(name)
    try:
        if suffix in PDF_SUFFIXES:
            return _read_pdf(data, name)
        text = decode_text(data, name)
        if suffix in HTML_SUFFIXES:
            return _read_html(text, name)
        if suffix == ".txt":
            return RawDocument(text=text)
        declared, text = split_front_matter(text)  # blanked, not cut: offsets still point into the file
        return RawDocument(text=text, title=_markdown_title(text), declared=declared)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure is this file's problem, not the caller's
        raise DocumentError(f"cannot read {name!r}: {type(exc).__name__}: {exc}") from exc


def decode_text(data: bytes, name: str) -> str:
    """Decode text bytes: by their byte order mark (UTF-8, UTF-16, UTF-32), else as UTF-8, falling back to cp1252;
    binary data is refused."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding).removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
            except UnicodeDecodeError as exc:
                raise DocumentError(f"{name!r} starts with a {encoding.upper()} byte order mark but is not {encoding.upper()} text") from exc
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{name!r} looks like a binary file, not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


def check_html_shape(html: str, name: str) -> None:
    """Refuse an element bomb before parsing: more than ``MAX_HTML_ELEMENTS`` tags or nesting deeper than
    ``MAX_HTML_DEPTH`` (unclosed <p>, <li> and void elements are closed the way browsers close them)."""
    elements = len(_START_TAG.findall(html.encode("utf-8", "surrogatepass")))
    if elements > MAX_HTML_ELEMENTS:
        raise DocumentError(f"{name!r} has {elements} HTML elements; the limit is {MAX_HTML_ELEMENTS}")
    _DepthProbe(name).check(html)


class _TooDeep(Exception):
    pass


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_SELF_CLOSING = {"p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "rt", "rp"}


class _DepthProbe:
    """Tracks open elements with the standard library's tokenizer (no tree): stops at the first too-deep tag."""

    def __init__(self, name: str) -> None:
        from html.parser import HTMLParser

        probe = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag: str, attrs: list) -> None:  # type: ignore[type-arg]
                probe.start(tag)

            def handle_endtag(self, tag: str) -> None:
                probe.end(tag)

        self.name = name
        self.stack: list[str] = []
        self.parser = Parser(convert_charrefs=False)

    def start(self, tag: str) -> None:
        if tag in _VOID:
            return
        if tag in _SELF_CLOSING and tag in self.stack[-8:]:
            self.end(tag)
        self.stack.append(tag)
        if len(self.stack) > MAX_HTML_DEPTH:
            raise _TooDeep

    def end(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, max(len(self.stack) - 64, -1), -1):
            if self.stack[i] == tag:
                del self.stack[i:]
                return

    def check(self, html: str) -> None:
        try:
            self.parser.feed(html)
            self.parser.close()
        except _TooDeep:
            raise DocumentError(f"{self.name!r} nests HTML elements deeper than {MAX_HTML_DEPTH} levels") from None


def _read_html(html: str, name: str = "page.html") -> RawDocument:
    from bs4 import BeautifulSoup

    check_html_shape(html, name)
    soup = BeautifulSoup(html, "html.parser")
    info = _html_info(soup)  # before the header and footer (which often hold the byline and date) are dropped
    for tag in soup(HTML_DROP_TAGS):
        tag.decompose()
    heading = soup.find("h1")
    title = heading.get_text(" ", strip=True) if heading else None
    if not title and soup.title and soup.title.string:
        title = soup.title.string.strip()
    body = soup.body or soup
    blocks = [line.strip() for line in body.get_text("\n").splitlines()]
    text = "\n\n".join(line for line in blocks if line)
    return RawDocument(text=text, title=title or None, info=info)


# <meta> names and properties that state a document's author, date and publisher, strongest first.
HTML_AUTHOR_META = ("citation_author", "author", "dc.creator", "dcterms.creator", "article:author", "parsely-author", "byl")
HTML_DATE_META = ("citation_publication_date", "citation_date", "article:published_time", "dc.date", "dcterms.date",
                  "dcterms.issued", "date", "pubdate", "publish-date", "parsely-pub-date", "og:published_time")
HTML_PUBLISHER_META = ("citation_publisher", "og:site_name", "publisher", "dc.publisher", "dcterms.publisher", "application-name")


def _html_info(soup: Any) -> dict[str, Any]:
    """Author(s), date and publisher from ``<meta>`` tags, ``itemprop`` attributes and the first ``<time datetime>``."""
    metas: dict[str, list[str]] = {}
    for tag in soup.find_all("meta"):
        key = str(tag.get("name") or tag.get("property") or tag.get("itemprop") or "").strip().lower()
        content = str(tag.get("content") or "").strip()
        if key and content:
            metas.setdefault(key, []).append(content)
    info: dict[str, Any] = {}
    for key in HTML_AUTHOR_META:
        names = [n for n in metas.get(key, []) if not n.lower().startswith(("http://", "https://"))]
        if names:
            info["authors"] = names if len(names) > 1 else names[0]
            break
    if "authors" not in info:
        tag = soup.find(attrs={"itemprop": "author"}) or soup.find(attrs={"rel": "author"})
        if tag is not None and tag.get_text(" ", strip=True):
            info["authors"] = tag.get_text(" ", strip=True)
    for key in HTML_DATE_META:
        if metas.get(key):
            info["date"] = metas[key][0]
            break
    if "date" not in info:
        time_tag = soup.find("time", attrs={"itemprop": "datePublished"}) or soup.find("time", attrs={"pubdate": True}) \
            or soup.find("time", attrs={"datetime": True})
        if time_tag is not None:
            info["date"] = str(time_tag.get("datetime") or time_tag.get_text(" ", strip=True))
    for key in HTML_PUBLISHER_META:
        if metas.get(key):
            info["publisher"] = metas[key][0]
            break
    return info


def _read_pdf(data: bytes, name: str) -> RawDocument:
    from pypdf import PdfReader

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not _opens_without_password(reader):
                raise DocumentError(f"{name!r} is encrypted with a password; save an unprotected copy to index it")
            if len(reader.pages) > MAX_PDF_PAGES:
                raise DocumentError(f"{name!r} has {len(reader.pages)} pages; the limit is {MAX_PDF_PAGES}")
            pages = [page.extract_text() or "" for page in reader.pages]
            title = (reader.metadata.title if reader.metadata else None) or None
            info = _pdf_info(reader.metadata)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds (PdfReadError, DependencyError, ...)
        raise DocumentError(f"{name!r} is not a readable PDF: {type(exc).__name__}: {exc}") from exc
    return RawDocument(text="\n\n".join(p.strip() for p in pages if p.strip()), title=title, info=info)


def _pdf_info(metadata: Any) -> dict[str, Any]:
    """Author and creation date from the PDF's document info (a date pypdf cannot parse is left out)."""
    if not metadata:
        return {}
    info: dict[str, Any] = {}
    author = metadata.get("/Author")
    if author and str(author).strip():
        info["authors"] = str(author).strip()
    try:
        created = metadata.creation_date
    except Exception:  # noqa: BLE001 - a malformed date string is this PDF's problem; the text may still date it
        created = None
    if created is not None:
        info["date"] = created
    return info


def _opens_without_password(reader: object) -> bool:
    """Decrypt a "protected" PDF that has only an owner password (the empty user password opens it)."""
    from pypdf import PasswordType

    return reader.decrypt("") != PasswordType.NOT_DECRYPTED  # type: ignore[attr-defined]
