"""Each supported format yields its text; markup and binaries do not get through."""

from __future__ import annotations

import io

import pytest

from rag.errors import DocumentError, UnsupportedDocumentType
from rag.ingestion.metadata import derive_author, derive_title, doc_id_for
from rag.ingestion.readers import read_document
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


def test_doc_id_is_relative_path_slug(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert doc_id_for(tmp_path / "sub" / "My File.txt", tmp_path) == "sub-my-file"
    assert doc_id_for(SEEDS / "000_bc66558d9afb2305.txt", SEEDS) == "000_bc66558d9afb2305"
