"""Read supported files (.txt, .md, .html, .pdf) into plain text."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from rag.errors import DocumentError, DocumentTooLarge, EmptyDocument, UnsupportedDocumentType

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
# Elements whose text is never article content.
HTML_DROP_TAGS = ("script", "style", "noscript", "nav", "footer", "form", "header", "aside", "iframe", "svg", "button")
MAX_PDF_PAGES = 2000


@dataclass(frozen=True)
class RawDocument:
    """Text extracted from one file, before cleaning. ``title`` is set when the format names one."""

    text: str
    title: str | None = None


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
    """Extract text from file bytes; ``name`` decides the format by its suffix."""
    suffix = check_supported(name)
    if suffix in PDF_SUFFIXES:
        return _read_pdf(data, name)
    text = decode_text(data, name)
    if suffix in HTML_SUFFIXES:
        return _read_html(text)
    return RawDocument(text=text, title=_markdown_title(text) if suffix != ".txt" else None)


def decode_text(data: bytes, name: str) -> str:
    """Decode text bytes as UTF-8 (BOM tolerated), falling back to cp1252; binary data is refused."""
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


def _read_html(html: str) -> RawDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(HTML_DROP_TAGS):
        tag.decompose()
    heading = soup.find("h1")
    title = heading.get_text(" ", strip=True) if heading else None
    if not title and soup.title and soup.title.string:
        title = soup.title.string.strip()
    body = soup.body or soup
    blocks = [line.strip() for line in body.get_text("\n").splitlines()]
    text = "\n\n".join(line for line in blocks if line)
    return RawDocument(text=text, title=title or None)


def _read_pdf(data: bytes, name: str) -> RawDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            if len(reader.pages) > MAX_PDF_PAGES:
                raise DocumentError(f"{name!r} has {len(reader.pages)} pages; the limit is {MAX_PDF_PAGES}")
            pages = [page.extract_text() or "" for page in reader.pages]
            title = (reader.metadata.title if reader.metadata else None) or None
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise DocumentError(f"{name!r} is not a readable PDF: {exc}") from exc
    return RawDocument(text="\n\n".join(p.strip() for p in pages if p.strip()), title=title)
