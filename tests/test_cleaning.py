"""Page furniture is dropped by rule; content and offsets survive exactly."""

from __future__ import annotations

import pytest

from rag.ingestion.cleaning import clean_text, is_furniture
from tests.fixtures.paths import SEEDS


@pytest.mark.parametrize(
    "line",
    [
        "Please enter your comment!",
        "Please enter your name here",
        "Previous article",
        "Next article",
        "© 2020 American Kahani LLC. All rights reserved.",
        "Copyright 2021 Example Media",
        "(c) 2019 Acme Corp",
        "Copyright © Example Media Ltd.",
        "© The Guardian",
        "Copyright (C) 2003-2024 Kellsmouth Gazette. All rights reserved.",
        "Leave a Reply",
        "View Comments (0)",
        "Scroll To Top",
        "Source link",
        "Your email address will not be published.",
        "Now Reading",
    ],
)
def test_furniture_lines_are_recognized(line: str) -> None:
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    [
        "Since 2020, it has been led by the Iraqi Shahab al-Muhajir.",
        "The final death toll was 38 people, with dozens more injured.",
        "Next, the group moved north.",
        "Readers who leave a reply often disagree.",
        # Contract clauses and prose that merely start like a notice (issue 13, item 4).
        "(c) The tenant must give 90 days notice before leaving.",
        "(C) the buyer pays the shipping costs;",
        "Copyright law protects a work for 70 years after its author's death.",
        "Copyright in the photographs remains with the estate of the late Marta Quill, who took them in 1962 on the island.",
    ],
)
def test_content_lines_are_kept(line: str) -> None:
    assert not is_furniture(line)


def test_reaction_widget_is_dropped_with_its_options() -> None:
    text = "Body text here.\n\nWhat's Your Reaction?\nIn Love\nNot Sure\nView Comments (0)\n\nMore body text after it.\n"
    clean = clean_text(text)
    assert "In Love" not in clean.text and "Not Sure" not in clean.text
    assert "More body text after it." in clean.text


def test_offsets_map_back_to_source() -> None:
    source = "\n\nTitle\nPrevious article\nFirst sentence here.\nNext article\nSecond sentence.\n"
    clean = clean_text(source)
    for needle in ("Title", "First sentence here.", "Second sentence."):
        start = clean.text.index(needle)
        s, e = clean.source_span(start, start + len(needle))
        assert source[s:e] == needle


def test_seed_furniture_removed_and_body_kept() -> None:
    text = (SEEDS / "003_1dbf526cc40aa5d1.txt").read_text(encoding="utf-8")
    clean = clean_text(text)
    for junk in ("Now Reading", "What's Your Reaction?", "In Love", "Scroll To Top", "All rights reserved", "Leave a Reply"):
        assert junk not in clean.text, junk
    assert "Who is ISIS-K?" in clean.text
    tail = (SEEDS / "001_d166f26fbc2a0a2c.txt").read_text(encoding="utf-8")
    assert "Please enter your comment" not in clean_text(tail).text


def test_dropped_lines_are_listed_and_clauses_survive() -> None:
    source = ("Lease terms\n\n(a) The rent is due on the first day of each month.\n"
              "(c) The tenant must give 90 days notice before leaving.\n\nCopyright 2024 Kellsmouth Lettings Ltd.\n")
    clean = clean_text(source)
    assert "(c) The tenant must give 90 days notice before leaving." in clean.text
    assert clean.dropped_lines == ["Copyright 2024 Kellsmouth Lettings Ltd."]


def test_link_markup_is_dropped_and_its_words_keep_their_offsets() -> None:
    source = ("Intro line.\n[Despite the fall of the caliphate in Iraq and Syria in 2019](#), ISIS-K grew.\n"
              "See [the report](https://example.org/r?id=1) and ![a map](map.png).\n")
    clean = clean_text(source)
    assert "Despite the fall of the caliphate in Iraq and Syria in 2019, ISIS-K grew." in clean.text
    assert "See the report and ![a map](map.png)." in clean.text  # images are not links: kept as written
    assert "](" not in clean.text.replace("](map.png)", "")
    for needle in ("Despite the fall", "in 2019", ", ISIS-K grew.", "the report", " and "):
        start = clean.text.index(needle)
        s, e = clean.source_span(start, start + len(needle))
        assert source[s:e] == needle, needle


def test_seed_link_markup_never_reaches_the_text() -> None:
    source = (SEEDS / "002_2399800fba452946.txt").read_text(encoding="utf-8")
    assert "](#)" in source
    clean = clean_text(source)
    assert "](#)" not in clean.text and "[Despite" not in clean.text
    assert "Despite the fall of the caliphate in Iraq and Syria in 2019" in clean.text
