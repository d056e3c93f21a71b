"""Each supported format yields its text; markup and binaries do not get through."""

from __future__ import annotations

import io

import pytest

from rag.errors import DocumentError, UnsupportedDocumentType
from rag.ingestion.metadata import derive_author, derive_title, doc_id_for
from rag.ingestion.readers import read_document
from tests.fixtures.documents import encrypted_pdf, pdf_bytes
from tests.fixtures.paths import SEEDS


def test_html_text_extracted_and_markup_dropped() -> None:
    html = b"<html><head><title>T</title><script>var x=1;</script></head><body><nav>Menu</nav><h1>Big News</h1><p>The <b>lighthouse</b> opened in 1871.</p><footer>(c) Site</footer></body></html>"
    doc = read_document(html, "page.html")
    assert doc.title == "Big News"
    assert "The lighthouse opened in 1871." in " ".join(doc.text.split())
    assert "var x" not in doc.text and "Menu" not in doc.text and "<p>" not in doc.text


def test_markdown_title_from_heading() -> None:
    doc = read_document(b"intro\n# The Title\n\nBody.", "a.md")
    assert doc.title == "The Title"


def test_pdf_text_extracted() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.text(0.1, 0.5, "The ferry sails at noon from Kellsmouth")
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf")
    plt.close(fig)
    doc = read_document(buf.getvalue(), "report.pdf")
    assert "ferry sails at noon" in doc.text


def test_corrupt_pdf_is_a_clear_error() -> None:
    with pytest.raises(DocumentError, match="not a readable PDF"):
        read_document(b"%PDF-1.4 garbage garbage", "bad.pdf")


def test_unsupported_and_binary_are_refused() -> None:
    with pytest.raises(UnsupportedDocumentType):
        read_document(b"x", "image.png")
    with pytest.raises(DocumentError, match="binary"):
        read_document(b"\x00\x01\x02text", "data.txt")


def test_latin1_text_is_decoded() -> None:
    assert "café" in read_document("café".encode("cp1252"), "a.txt").text


def test_seed_titles_and_authors() -> None:
    text = (SEEDS / "002_2399800fba452946.txt").read_text(encoding="utf-8")
    title = derive_title(text)
    assert title == "Prospects for ISIS in Afghanistan"
    assert derive_author(text, title) == "Arkadiusz Legieć"
    text4 = (SEEDS / "004_1dece5685c29ddfe.txt").read_text(encoding="utf-8")
    assert derive_author(text4, derive_title(text4)) == "Cvete Koneska"


def test_doc_id_is_the_relative_path_with_case_and_extension(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert doc_id_for(tmp_path / "sub" / "My File.txt", tmp_path) == "sub/My File.txt"
    assert doc_id_for(SEEDS / "000_bc66558d9afb2305.txt", SEEDS) == "000_bc66558d9afb2305.txt"
    assert doc_id_for(tmp_path / "Report.PDF", None) == "Report.PDF"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_text_with_a_bom_is_decoded(encoding: str) -> None:
    """Notepad's "Unicode" files are UTF-16 with a byte order mark, not binaries (issue 13, item 19)."""
    text = "Überblick\n\nThe ferry to Kellsmouth sails at noon; tickets cost 4 €.\n"
    bom = {"utf-16-le": "\ufeff", "utf-16-be": "\ufeff"}.get(encoding, "")
    for name in ("notes.txt", "notes.md"):
        assert read_document((bom + text).encode(encoding), name).text == text
    html = f"<html><body><h1>Überblick</h1><p>{text}</p></body></html>"
    assert "tickets cost 4 €" in read_document(("\ufeff" + html).encode("utf-16-le"), "page.html").text


def test_owner_password_pdf_is_read() -> None:
    """An AES PDF that opens without a password (owner password only) is read (issue 13, item 16)."""
    assert "ferry sails at noon" in read_document(encrypted_pdf("The ferry sails at noon from Kellsmouth"), "locked.pdf").text


def test_unreadable_pdfs_are_document_errors() -> None:
    """A PDF that needs a password, or that breaks the parser in any way, is a DocumentError naming the file."""
    with pytest.raises(DocumentError, match="secret.pdf.*password"):
        read_document(encrypted_pdf("Hidden words", user_password="let-me-in"), "secret.pdf")
    whole = pdf_bytes("The ferry sails at noon")
    for cut in (whole[: len(whole) // 2], whole.replace(b"/Root", b"/Ruut"), whole.replace(b"stream", b"strea", 1)):
        try:
            read_document(cut, "cut.pdf")
        except DocumentError as exc:
            assert "cut.pdf" in str(exc)


def test_html_element_bombs_are_refused_quickly() -> None:
    """Deep nesting or a flood of elements is a DocumentError before any tree is built (issue 13, item 18)."""
    import time

    for bomb in (b"<div>" * 100_000 + b"deep text", b"<b></b>" * 400_000 + b"<p>text</p>", b"<a>" * 2_000_000):
        started = time.perf_counter()
        with pytest.raises(DocumentError, match="bomb.html"):
            read_document(bomb, "bomb.html")
        assert time.perf_counter() - started < 2.0
    # Ordinary pages, with the usual unclosed <p> and <li>, still read.
    page = "<html><body><ul>" + "<li>item" * 3000 + "</ul>" + "<p>para" * 3000 + "<p>The lighthouse opened in 1871.</body></html>"
    assert "The lighthouse opened in 1871." in read_document(page.encode(), "page.html").text
