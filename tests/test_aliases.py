"""Names a collection defines for itself (an abbreviation and its long form, "X or Y", "the K stands for ...") are
mined at ingest into a table per collection and expand BM25 queries: no hand-written list, so any collection works."""

from __future__ import annotations

from pathlib import Path

from rag.index.aliases import AliasTable, abbreviates, count_mentions, mine_aliases
from rag.ingestion.cleaning import clean_text
from rag.ingestion.readers import read_document
from tests.fixtures.paths import ROOT, SEEDS


def _text(path: Path) -> str:
    return clean_text(read_document(path.read_bytes(), path.name).text).text


def test_definitions_are_mined_by_rule() -> None:
    text = ("The Islamic State Khorasan Province (ISKP) grew in 2015. Members of the ISIS faction Khorasan Province, "
            "ISIS-K, fled. ISIS-K or IS-K is an affiliate. The K stands for Khorasan. The Ossery Navigation Board (ONB) "
            "and the PVA (Port of Veltrane Authority) met. Tehrik-i-Taliban Pakistan (TTP) attacked. He met Anna (AB).")
    pairs = mine_aliases(text)
    for pair in [("Islamic State Khorasan Province", "ISKP"), ("Khorasan Province", "ISIS-K"), ("ISIS-K", "IS-K"),
                 ("Khorasan", "IS-K"), ("Ossery Navigation Board", "ONB"), ("Port of Veltrane Authority", "PVA"),
                 ("Tehrik-i-Taliban Pakistan", "TTP")]:
        assert pair in pairs, (pair, pairs)
    assert not any("AB" in p for p in pairs)  # letters that are not the initials define nothing
    assert abbreviates("AQIS", "Al-Qaeda in the Indian Subcontinent".split())
    assert not abbreviates("ISIS", "Islamic State militant group".split())


def test_the_seeds_define_isis_k_and_the_mini_collection_defines_nothing() -> None:
    seeds = AliasTable(p for f in sorted(SEEDS.glob("*.txt")) for p in mine_aliases(_text(f)))
    assert ["IS-K", "ISIS-K", "Khorasan", "Khorasan Province"] in seeds.groups
    expanded = seeds.expand("Who leads the Khorasan branch of the Islamic State?")
    assert "ISIS-K" in expanded and "IS-K" in expanded
    assert seeds.expand("How many attacks per month?") == "How many attacks per month?"
    assert seeds.expand("Who has led ISIS-K since 2020?") == "Who has led ISIS-K since 2020?"  # already the abbreviation
    assert "ISIS-K" in seeds.with_all_names("IS-K is now the most active group") and "Khorasan" not in seeds.with_all_names("Kabul")
    mini = AliasTable(p for f in sorted((ROOT / "eval" / "collections" / "mini").glob("*.md")) for p in mine_aliases(_text(f)))
    assert len(mini) == 0 and mini.expand("Who kept the light?") == "Who kept the light?"


def test_a_written_out_name_is_searched_under_its_abbreviations_where_the_collection_uses_them_more() -> None:
    pairs = [("Khorasan Province", "ISIS-K"), ("ISIS-K", "IS-K"), ("Khorasan", "ISIS-K")]
    text = "Khorasan Province (ISIS-K) grew. ISIS-K attacked. ISIS-K or IS-K is weaker. The K stands for Khorasan."
    assert count_mentions(text, pairs) == {"Khorasan Province": 1, "ISIS-K": 3, "IS-K": 1, "Khorasan": 2}
    table = AliasTable(pairs, count_mentions(text, pairs))
    assert table.abbreviate("How many fighters does the Islamic State's Khorasan Province have?") == \
        "How many fighters does IS-K / ISIS-K have?"
    assert table.abbreviate("Who leads the Khorasan branch?") == "Who leads IS-K / ISIS-K branch?"
    assert table.abbreviate("Who leads ISIS-K?") == "Who leads ISIS-K?"  # already the abbreviation
    assert table.abbreviate("Who leads the Taliban in Kabul?") == "Who leads the Taliban in Kabul?"
    assert AliasTable([]).abbreviate("Who leads Khorasan Province?") == "Who leads Khorasan Province?"
    assert AliasTable(pairs).abbreviate("Who leads Khorasan Province?") == "Who leads Khorasan Province?"  # no counts
    # A collection that keeps writing the name out is searched as the query says (almanac a03).
    kept = "The Genoa Horticultural Society (GHS) paid. The Genoa Horticultural Society chose. The genoa horticultural society."
    ghs = AliasTable([("Genoa Horticultural Society", "GHS")], count_mentions(kept, [("Genoa Horticultural Society", "GHS")]))
    assert ghs.mentions == {"genoa horticultural society": 3, "ghs": 1}
    assert ghs.abbreviate("What did the Genoa Horticultural Society pay?") == "What did the Genoa Horticultural Society pay?"


def test_a_fact_stated_under_the_abbreviation_is_found_for_the_written_out_name(retriever) -> None:  # type: ignore[no-untyped-def]
    # Seeds gold s120: the words "Islamic", "State", "Province" matched the passages that define ISIS-K, and the
    # passage with the number fell to rank 8 before the query was abbreviated.
    passages = retriever.search("How many fighters does the Islamic State's Khorasan Province have in Afghanistan?", k=5)
    assert any("about 2,000 fighters" in p.text for p in passages), [p.text[:80] for p in passages]


def test_bm25_finds_a_passage_that_only_uses_the_abbreviation(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Harbour history\n\nThe Kellsmouth Harbour Trust (KHT) was founded in 1921 to run the quays.\n")
    (folder / "b.md").write_text("# Works\n\nIn 1958 the KHT dredged the outer channel to eight metres.\n")
    (folder / "c.md").write_text("# Works\n\nIn 1961 the Kellsmouth town council dredged the outer channel to nine metres.\n")
    (folder / "d.md").write_text("# Notes\n\nKellsmouth is a fishing town; its harbour faces south.\n")
    parts = components_factory()
    parts.ingestor.ingest_paths([folder])
    table = parts.index.aliases()
    assert table.groups == [["KHT", "Kellsmouth Harbour Trust"]]
    question = "When did the Kellsmouth Harbour Trust dredge the outer channel?"
    ranked = [p.doc_id for p in parts.retriever.search(question, k=3, mode="bm25")]
    assert ranked.index("b.md") < ranked.index("c.md"), ranked
    unexpanded = dict(parts.index.lexical.search(question, 10))
    expanded = dict(parts.index.lexical.search(table.expand(question), 10))
    b, c = (next(cid for cid in unexpanded if cid.startswith(d)) for d in ("b.md", "c.md"))
    assert unexpanded[b] <= unexpanded[c] < expanded[b]  # only the expansion puts the KHT passage above the council's
    assert parts.index.delete_document("a.md") and len(parts.index.aliases()) == 0  # the table follows the documents


def test_verification_reads_a_name_through_the_collections_aliases() -> None:
    from rag.verification.rules import check

    table = AliasTable([("ISIS-K", "IS-K"), ("Khorasan Province", "ISIS-K")])
    passage = "IS-K is now the most active anti-Taliban group, estimated at around 4,000 combatants."
    claim, question = "The group ISIS-K has around 4,000 combatants.", "How many combatants does the group have?"
    assert check(claim, question, passage).names_missing == 1  # without the table, ISIS-K is a name the passage lacks
    assert check(claim, question, passage, all_names=table.with_all_names).names_missing == 0
    assert check("The group Hamas has around 4,000 combatants.", question, passage, all_names=table.with_all_names).names_missing == 1


def test_an_attribution_may_use_another_name_the_collection_defines() -> None:
    from rag.verification.verifier import attribution_matches

    table = AliasTable([("CSIS", "Center for Strategic International Studies")])
    passage = "CSIS estimates that ISIS-K has launched nearly 100 attacks in Afghanistan and Pakistan killing 819."
    long_form = "the Center for Strategic International Studies"
    assert not attribution_matches(long_form, passage)
    assert attribution_matches(long_form, table.with_all_names(passage))
    assert not attribution_matches("the Council on Foreign Relations", table.with_all_names(passage))
