"""Follow-up questions are made standalone by rule (no LLM call)."""

from __future__ import annotations

from rag.generation.followup import Turn, is_followup, standalone_question

HISTORY = [Turn("user", "Who has led ISIS-K since 2020?"), Turn("assistant", "Shahab al-Muhajir has led it since 2020 [1].")]


def test_detects_followups() -> None:
    assert is_followup("And who led it before him?")
    assert is_followup("Which country is he from?")
    assert is_followup("What about 2021?")
    assert not is_followup("How many fighters did ISIS-K have in Afghanistan according to the UN report?")


def test_rewrite_carries_the_referent() -> None:
    q = standalone_question("And who led it before him?", HISTORY)
    assert q.startswith("And who led it before him?")
    assert "ISIS-K" in q and "Shahab al-Muhajir" in q and "[1]" not in q


def test_no_history_or_standalone_question_unchanged() -> None:
    assert standalone_question("Which country is he from?", []) == "Which country is he from?"
    full = "How many attacks did IS-K carry out per month after the Taliban takeover?"
    assert standalone_question(full, HISTORY) == full


def test_rewritten_followup_retrieves_the_right_document(retriever) -> None:  # type: ignore[no-untyped-def]
    plain = retriever.search("Which country is he from?", k=3)
    rewritten = retriever.search(standalone_question("Which country is he from?", HISTORY), k=3)
    assert rewritten[0].doc_id == "002_2399800fba452946.txt"
    assert any("Muhajir" in p.text for p in rewritten)
    assert not any("Muhajir" in p.text for p in plain[:1])
