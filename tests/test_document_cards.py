"""Document cards: title, authors, date (stated or inferred "as of"), publisher and source, made at ingest from what
the user set (sidecar, upload fields), the file declares (front matter), the format records (HTML meta, PDF info) or
the text says (byline, closing bio); stored on every chunk, retrievable as a card chunk, and shown to the model."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from rag.errors import DocumentError
from rag.generation.prompt import SYSTEM_PROMPT, build_messages, compress
from rag.ingestion.cleaning import clean_text
from rag.ingestion.metadata import (
    PartialDate,
    build_card,
    find_bio_authors,
    find_byline,
    find_publisher,
    infer_date,
    parse_date,
    split_front_matter,
)
from rag.ingestion.pipeline import PIPELINE_VERSION
from rag.ingestion.readers import read_document
from tests.fixtures.cli import invoke
from tests.fixtures.documents import pdf_bytes
from tests.fixtures.paths import ROOT, SEEDS


def card_of(path: Path) -> dict:  # type: ignore[type-arg]
    raw = read_document(path.read_bytes(), path.name)
    return build_card(clean_text(raw.text).text, raw.text, path.name, declared_title=raw.title).to_dict()


# -- rules ------------------------------------------------------------------------------------------------------------
def test_bylines_name_authors_and_dates() -> None:
    assert find_byline("Title\n\nBy: Cvete Koneska\n\nText.").authors == ["Cvete Koneska"]
    dated = find_byline("# Fjords\n\nBy Ingrid Halvorsen · 14 March 2019\n\nText.")
    assert dated is not None and dated.authors == ["Ingrid Halvorsen"] and dated.date == PartialDate(2019, 3, 14)
    two = find_byline("Report\n\nBy Ana Ruiz and Tomas Brann, March 2020\n")
    assert two is not None and two.authors == ["Ana Ruiz", "Tomas Brann"] and two.date == PartialDate(2020, 3)
    assert find_byline("Report\n\nby the harbour the boats wait.\n") is None  # "by" in a sentence is no byline
    assert find_byline("Prospects\n\nArkadiusz Legieć\n\nText.", "Prospects").authors == ["Arkadiusz Legieć"]


def test_closing_bios_name_authors_but_ordinary_closing_sentences_do_not() -> None:
    text = "Body.\n\nRohan Kumar is a senior at UC Riverside studying International Affairs.\n\nWhat's Your Reaction?\n"
    assert find_bio_authors(text) == ["Rohan Kumar"]
    assert find_bio_authors("Body.\n\nCvete Koneska is Head of Advisory services at Dragonfly, the geopolitical service\n") == ["Cvete Koneska"]
    assert find_bio_authors("Body.\n\nIslamic State is a threat to the region.\n\nThe Taliban is a movement.\n") == []


def test_dates_are_parsed_strictly_and_inferred_from_the_latest_one() -> None:
    assert parse_date("2022-08-01T10:00:00Z") == PartialDate(2022, 8, 1)
    assert parse_date("March 14, 2019") == parse_date("14 March 2019") == PartialDate(2019, 3, 14)
    assert parse_date("2019-03").iso() == "2019-03" and parse_date(2019).iso() == "2019"
    for bad in ("soon", "2019-13-01", "31 February 2020", "2019-03-14 and more"):
        with pytest.raises(ValueError):
            parse_date(bad)
    text = "In August 2015 it began. On March 8, 2017 the hospital was attacked; 2,140 metres; plans for March 2090."
    assert infer_date(text, dt.date(2024, 1, 1)) == PartialDate(2017, 3, 8)
    assert infer_date("It opened in 1843 and closed on 3 February 1887; it was automated in 1979.") == PartialDate(1979)
    assert infer_date("No dates here, only 2,000 fighters and 14 attacks.") is None


def test_publisher_from_a_copyright_notice_or_a_publisher_line() -> None:
    assert find_publisher("Text.\n\n© 2020 American Kahani LLC. All rights reserved.\n") == "American Kahani"
    assert find_publisher("Text.\n\nPublished by Harbour Press\n") == "Harbour Press"
    assert find_publisher("Copyright law protects a work for 70 years after its author's death.\n") is None


def test_the_seeds_and_collections_get_sensible_cards() -> None:
    cards = {p.name: card_of(p) for p in [*SEEDS.glob("*.txt"), *(ROOT / "eval" / "collections").glob("*/*.md")]}
    assert cards["004_1dece5685c29ddfe.txt"]["authors"] == ["Cvete Koneska"]  # "By: Cvete Koneska"
    seed3 = cards["003_1dbf526cc40aa5d1.txt"]
    assert seed3["authors"] == ["Rohan Kumar"] and seed3["publisher"] == "American Kahani"  # closing bio; © line
    assert cards["002_2399800fba452946.txt"]["authors"] == ["Arkadiusz Legieć"]
    assert cards["000_bc66558d9afb2305.txt"]["date"] == "2017-03-08" and cards["000_bc66558d9afb2305.txt"]["date_inferred"]
    almanac = cards["ardesca_botanical_expedition.md"]  # "By Lucia Ferrante · 9 October 2021"
    assert almanac["authors"] == ["Lucia Ferrante"] and almanac["date"] == "2021-10-09" and almanac["date_inferred"] is False
    assert cards["kellsmouth_lighthouse.md"]["authors"] == ["Maren Oakley"]
    for name, card in cards.items():
        assert card["title"] and card["title"] != "Untitled", name
        assert card["source"] == name


# -- what the user and the format state ------------------------------------------------------------------------------
def test_front_matter_sets_fields_and_is_blanked_keeping_offsets() -> None:
    text = ("---\ntitle: \"Harbour Report\"\nauthors:\n  - Ana Ruiz\n  - Tomas Brann\ndate: 2019-03-14\n"
            "publisher: Kell Press\ntopic: shipping\ntags: [ferries, tides]\n---\n# Ignored Heading\n\nThe ferry sails at noon.\n")
    fields, blanked = split_front_matter(text)
    assert fields == {"title": "Harbour Report", "authors": ["Ana Ruiz", "Tomas Brann"], "date": "2019-03-14",
                      "publisher": "Kell Press", "topic": "shipping", "tags": ["ferries", "tides"]}
    assert len(blanked) == len(text) and blanked.index("The ferry") == text.index("The ferry")
    raw = read_document(text.encode(), "report.md")
    assert "title:" not in raw.text and raw.declared["topic"] == "shipping"
    with pytest.raises(DocumentError, match="report.md: front matter: date"):
        _prepare(text.replace("2019-03-14", "next spring").encode(), "report.md")


def test_html_meta_and_time_and_pdf_info_give_the_card() -> None:
    html = ('<html><head><title>T</title><meta name="author" content="Ana Ruiz">'
            '<meta property="og:site_name" content="Kell Gazette"></head><body><header><time datetime="2021-06-02">'
            "2 June</time></header><h1>Tides</h1><p>The tide turns at six.</p></body></html>")
    raw = read_document(html.encode(), "tides.html")
    assert raw.info == {"authors": "Ana Ruiz", "date": "2021-06-02", "publisher": "Kell Gazette"}
    card = _prepare(html.encode(), "tides.html").card
    assert (card.authors, card.date.iso(), card.date_from, card.publisher) == (["Ana Ruiz"], "2021-06-02", "html", "Kell Gazette")

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes("The ferry sails at noon"))))
    writer.add_metadata({"/Author": "Tomas Brann", "/CreationDate": "D:20190314120000+00'00'", "/Title": "Ferries"})
    buf = io.BytesIO()
    writer.write(buf)
    card = _prepare(buf.getvalue(), "ferries.pdf").card
    assert (card.title, card.authors, card.date.iso(), card.date_from) == ("Ferries", ["Tomas Brann"], "2019-03-14", "pdf")


def test_user_fields_win_and_bad_ones_are_refused() -> None:
    text = b"# Tides\n\nBy Ana Ruiz \xc2\xb7 2 June 2021\n\nThe tide turns at six.\n"
    card = _prepare(text, "tides.md", {"author": "Tomas Brann; Ana Ruiz", "date": "2020", "Doc Type": "report",
                                       "pages": 3, "draft": False}).card
    assert card.authors == ["Tomas Brann", "Ana Ruiz"] and card.date.iso() == "2020" and card.date_from == "sidecar"
    assert card.extra == {"doc_type": "report", "pages": 3, "draft": False}
    meta = card.metadata()
    assert all(isinstance(v, (str, int, float, bool)) for v in meta.values())  # Chroma's rule
    assert meta["date_yyyymmdd"] == 20200101 and meta["meta_doc_type"] == "report"
    with pytest.raises(DocumentError, match="nested"):
        _prepare(text, "tides.md", {"owner": {"name": "x"}})


def _prepare(data: bytes, name: str, fields: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    from rag.ingestion.pipeline import prepare
    from rag.settings import Settings

    class NoEmbedder:  # chunking needs only a tokenizer: word pieces are enough here
        max_tokens = 256

        @staticmethod
        def encode(text: str) -> list[int]:
            return list(range(len(text.split())))

    return prepare(data, name, name, f"/docs/{name}", "0" * 64, NoEmbedder(), Settings(), fields)  # type: ignore[arg-type]


# -- stored, listed, retrieved, shown --------------------------------------------------------------------------------
def test_every_chunk_carries_the_card_and_each_document_has_a_card_chunk(seeded_components) -> None:  # type: ignore[no-untyped-def]
    assert PIPELINE_VERSION >= "3"
    store = seeded_components.store
    cards = [m for page in store.pages(("metadatas",), where={"kind": "card"}) for m in page.metadatas]
    assert len(cards) == 5
    koneska = [m for page in store.pages(("metadatas",), where={"doc_id": "004_1dece5685c29ddfe.txt"}) for m in page.metadatas]
    assert koneska and all(m["author"] == "Cvete Koneska" and m["date"] == "2021-10" and m["date_inferred"] for m in koneska)
    assert all(isinstance(v, (str, int, float, bool)) for m in koneska for v in m.values())


@pytest.mark.parametrize(("question", "doc_id"), [
    ("Who wrote the article about ISIS-K drawing first blood?", "003_1dbf526cc40aa5d1.txt"),
    ("Who is the author of Prospects for ISIS in Afghanistan?", "002_2399800fba452946.txt"),
    ("When was the article on IS muscle-flexing in Afghanistan published?", "004_1dece5685c29ddfe.txt"),
])
def test_a_question_about_a_document_finds_its_card(retriever, question: str, doc_id: str) -> None:  # type: ignore[no-untyped-def]
    passages = retriever.search(question, k=5)
    assert any(p.kind == "card" and p.doc_id == doc_id for p in passages), [(p.kind, p.doc_id) for p in passages]


def test_every_passage_shown_to_the_model_carries_title_author_and_date(retriever) -> None:  # type: ignore[no-untyped-def]
    passages = retriever.search("How many attacks per month has IS-K averaged?", k=4)
    messages = build_messages("q?", compress("q?", passages, 0, None))
    assert messages[0]["content"] == SYSTEM_PROMPT
    koneska = next(p for p in passages if p.doc_id == "004_1dece5685c29ddfe.txt")
    n = passages.index(koneska) + 1
    header = ("[{n}] (IS muscle-flexing in Afghanistan threatens Taliban and wider region — Cvete Koneska, as of 2021-10) "
              .format(n=n))
    assert header in messages[1]["content"]


def test_rag_documents_and_the_api_show_the_cards(seeded_settings, app_with, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rag.generation.backends.fake import FakeGenerator

    res = invoke(["documents", "--json"], seeded_settings.data_dir, monkeypatch)
    assert res.exit_code == 0, res.output
    listed = {d["doc_id"]: d for d in json.loads(res.stdout)}
    assert listed["003_1dbf526cc40aa5d1.txt"]["authors"] == ["Rohan Kumar"]
    assert listed["003_1dbf526cc40aa5d1.txt"]["source"] == "003_1dbf526cc40aa5d1.txt"  # never the server's path
    body = app_with(FakeGenerator()).get("/v1/documents").json()
    api = {d["doc_id"]: d for d in body["documents"]}
    assert api["004_1dece5685c29ddfe.txt"]["date"] == "2021-10" and api["004_1dece5685c29ddfe.txt"]["date_inferred"] is True
    assert api["003_1dbf526cc40aa5d1.txt"]["publisher"] == "American Kahani"
    assert {k: api[k]["authors"] for k in api} == {k: listed[k]["authors"] for k in listed}
    table = invoke(["documents"], seeded_settings.data_dir, monkeypatch).stdout
    assert all(doc_id in table for doc_id in listed) and "as of 2021-10" in table  # ids and dates whole, however narrow


def test_sidecar_and_upload_fields_set_the_card_and_a_change_reingests(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\n\nThe tide turns at six in Kellsmouth harbour.\n", encoding="utf-8")
    (folder / "tides.md.meta.json").write_text(json.dumps({"author": "Ana Ruiz", "date": "2019-03-14", "topic": "sea"}))
    parts = components_factory()
    assert parts.ingestor.ingest_paths([folder]).added == ["tides.md"]
    (meta,) = parts.store.documents()
    assert (meta["author"], meta["date"], meta["meta_topic"], meta["date_from"]) == ("Ana Ruiz", "2019-03-14", "sea", "sidecar")
    assert not parts.ingestor.ingest_paths([folder]).changed
    (folder / "tides.md.meta.json").write_text(json.dumps({"author": "Tomas Brann"}))
    assert parts.ingestor.ingest_paths([folder]).updated == ["tides.md"]  # the sidecar is part of the content hash
    (meta,) = parts.store.documents()
    assert meta["author"] == "Tomas Brann" and "meta_topic" not in meta
    (folder / "tides.md.meta.json").write_text("{not json")
    report = parts.ingestor.ingest_paths([folder])
    assert "sidecar" in next(iter(report.failed.values()))
