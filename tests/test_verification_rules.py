"""The deterministic layer of verification: quantities, names, negations, comparatives, echoes, citation markers
and abstentions; and the rules-only verifier on the labelled claims (no model)."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from rag.evaluation.claims_eval import CLAIMS_GOLD, data_hash, load_claims
from rag.verification.claim_model import MODEL_FILE, ClaimModel
from rag.verification.claims import is_abstention, split_claims
from rag.verification.quantities import missing_quantities, quantities
from rag.verification.rules import check, names

LEADER = "Since 2020, it has been led by the Iraqi Shahab al-Muhajir. The group is based in Nangarhar."
BRIDGE = "The Morrow Bridge opened in 1932 and was decommissioned in 1990."


@pytest.mark.parametrize(("text", "value", "unit"), [
    ("about 1.5 million people", 1_500_000, None), ("1,500,000 visitors", 1_500_000, None), ("fourteen attacks", 14, None),
    ("one hundred and twelve steps", 112, None), ("twenty-seven metres", 27, "metre"), ("27 m tall", 27, "metre"),
    ("a ten-horsepower engine", 10, "horsepower"), ("It produced 10,000 hp", 10_000, "horsepower"), ("the 1990s", 1990, None),
])
def test_quantities_are_values_with_units(text: str, value: float, unit: str | None) -> None:
    (q,) = quantities(text)
    assert (q.value, q.unit) == (value, unit)


def test_a_quantity_must_be_the_passage_quantity_in_value_and_unit() -> None:
    assert missing_quantities("It produced 10,000 hp", "a ten-horsepower engine")
    assert missing_quantities("It is 27 feet tall", "The tower stands 27 metres tall")
    assert not missing_quantities("It is 27 m tall", "The tower stands 27 metres tall")
    assert not missing_quantities("About 1.5 million came", "about 1,500,000 came")
    assert not missing_quantities("It had fourteen crew", "Fourteen of her crew were lost")


def test_a_number_repeated_from_the_question_may_rest_on_the_same_document_only() -> None:
    """Seeds: "The final death toll was 38" sits two chunks after the caption dated "March 8, 2017"."""
    question = "What was the final death toll of the March 2017 attack on the military hospital in Kabul?"
    claim = "The final death toll of the March 2017 attack on the military hospital in Kabul was 38 people."
    passage = "A bomb went off at the rear of a military hospital in Kabul. The final death toll was 38 people."
    caption = "Afghan policemen arrive at the site of a blast at a military hospital in Kabul, March 8, 2017."
    assert check(claim, question, passage).rejected  # the passage alone does not state the question's 2017
    assert not check(claim, question, passage, document=f"{caption}\n{passage}").rejected
    # A number the question does not state must be in the passage itself, whatever else the document says
    told = check("The death toll was 38 people, 12 of them doctors.", question, passage, document=f"{caption} 12 doctors\n{passage}")
    assert "quantity not in the passage: 12" in told.reasons
    # and a question's number the document does not state is still missing (another source's date is no support)
    assert check(claim, question, passage, document=passage).rejected


def test_names_count_sentence_openers_only_as_the_start_of_a_longer_name() -> None:
    assert names("Shahab al-Muhajir leads it.") >= {"shahab", "muhajir"}
    assert names("Among other things, it records storms.") == set()
    assert names("Installing the burner doubled the beam.") == set()
    assert names("It was founded by Hafiz Saeed Khan.") == {"hafiz", "saeed", "khan"}


def test_rules_catch_what_a_bag_of_words_missed() -> None:
    q = "Who built the Kellsmouth lighthouse?"
    passage = "The Kellsmouth lighthouse was built by the harbour board in 1843."
    assert check("The lighthouse was not built by the harbour board.", q, passage).negation_mismatch
    assert check("It was built before 1843.", "When was it built?", passage).comparative_added
    assert check("It was built in 1851.", "When was it built?", passage).rejected  # a number the passage does not hold
    assert check("The Kellsmouth lighthouse was built.", q, passage).adds_nothing  # an echo of the question
    assert check("This is stated in passage [1].", q, passage).rejected  # a pointer, not an answer
    supported = check("The harbour board built it in 1843.", q, passage)
    assert not supported.rejected and not supported.negation_mismatch and supported.novel_coverage == 1.0


def test_a_passage_that_shares_no_word_with_the_question_cannot_answer_it() -> None:
    """CI saw "Which country is he from?" answered from the author's bio under an ISIS-K title, and kept."""
    bio = "Rohan Kumar is a senior at UC Riverside studying International Affairs. His focus is on Russian foreign policy."
    q = "Which country is he from? (Context: Who has led ISIS-K since 2020? Shahab al-Muhajir has led ISIS-K since 2020.)"
    claim = "He is studying International Affairs and has a focus on Russian foreign policy."
    assert check(claim, q, bio, "The Implications of ISIS-K Drawing First Blood").rejected
    assert not check("He is Iraqi.", q, LEADER, "Prospects for ISIS in Afghanistan").rejected


def test_demonyms_and_titles_support_names() -> None:
    r = check("Shahab al-Muhajir is from Iraq.", "Where is the leader from?", LEADER)
    assert r.names_missing == 0 and r.coverage == 1.0
    titled = check("ISIS-K is led by Shahab al-Muhajir.", "Who leads it?", LEADER, "Prospects for ISIS-K in Afghanistan")
    assert titled.names_missing == 0


def test_citation_markers_and_abstentions() -> None:
    claims = split_claims("First fact [1-2]. Second fact (3). Third.[4][5] I don't know the rest.")
    assert [c.cited for c in claims] == [[1, 2], [3], [4, 5], []]
    # The small model also names the word: "2,000 fighters (Passage 1)" was read as uncited and dropped.
    assert [c.cited for c in split_claims("2,000 fighters (Passage 1). Kabul [passages 2, 3]. In (1990) it fell.")] == [[1], [2, 3], []]
    assert is_abstention("I don't know: the documents do not contain the answer.")
    assert is_abstention("The passages do not say who financed it.")
    assert not is_abstention("Details of the deal were not provided by the police.")
    assert not is_abstention("The lighthouse was not built by the harbour board.")


def test_a_pointer_sentence_lends_its_citation_to_the_fact_before_it() -> None:
    """The small model writes "X. This can be found in passage [1]."; the pointer alone once passed as the answer."""
    claims = split_claims("Shahab al-Muhajir has led ISIS-K since 2020. This can be found in passage [1].")
    assert [(c.text, c.cited) for c in claims] == [("Shahab al-Muhajir has led ISIS-K since 2020.", [1])]
    assert [c.cited for c in split_claims("She works at Brookings. This is stated in passage 2.")] == [[2]]
    assert split_claims("This can be found in passage [1].") == []
    assert split_claims("This fact is stated in passage [1].") == [] == split_claims("This incident is quoted in passage [1].")
    assert [c.text for c in split_claims("The incident killed 35 people [1].")] == ["The incident killed 35 people."]
    assert [c.cited for c in split_claims("As stated in passage [3]: Kabul fell in 2021.")] == [[3]]
    assert [c.text for c in split_claims("No. It was closed in 1968 [1].")] == ["No, it was closed in 1968."]


def test_an_evidence_sentence_supports_the_claim_before_it_and_is_never_an_answer() -> None:
    """Seeds dev s68: "X. This can be seen in the passage [1] where it states that ..." showed the evidence sentence
    alone once X was dropped, an answer that answered nothing; s44 split a quotation into two "claims"."""
    draft = ("The Islamic Movement of Uzbekistan currently leads ISIS. This can be seen in the passage [1] where it states "
             "that the movement declared its allegiance to ISIS in 2015.")
    assert [(c.text, c.cited) for c in split_claims(draft)] == [("The Islamic Movement of Uzbekistan currently leads ISIS.", [1])]
    quoted = ('ISIS copies its playbook. This can be inferred from the passage that states "ISIS was permitted to take '
              'credit. Usually, the Taliban is not so lenient."')
    assert [c.text for c in split_claims(quoted)] == ["ISIS copies its playbook."]
    # A quotation that is itself the answer stays one sentence
    assert [c.text for c in split_claims('She said: "We left in 1990. We never came back." [2]')] == [
        'She said: "We left in 1990. We never came back."']
    # Content in the lead is a claim ("the passage about the Doha Agreement"), and so is a first sentence that reports
    # its passage: there is no claim before it to support
    assert len(split_claims("The Taliban led it. This can be seen in the passage about the Doha Agreement, which ...")) == 2
    assert [c.cited for c in split_claims("This passage states that ISIS-K has 2,000 fighters [1].")] == [[1]]


def test_the_claim_model_was_fitted_on_the_current_claims_dev_split() -> None:
    """The stored fit names the data it was fitted on; a changed dev split needs `rag eval --claims --fit`."""
    model = ClaimModel.load(MODEL_FILE)
    dev = [c for c in load_claims(CLAIMS_GOLD) if c.split == "dev"]
    assert model.meta["fit_data_sha256"] == data_hash(dev) and model.meta["fit_command"] == "rag eval --claims --fit"
    assert 0 < model.threshold(judged=True) < 1 and "judge_logit" in model.with_judge.weights


def test_the_rules_only_model_refits_from_its_recorded_command(tmp_path: Path) -> None:
    """The rules-only part is fitted on both claims files' dev splits (`rules_only_fit` names them): refitted here
    without a judge, it gives the shipped weights and threshold, and the judged part and its provenance are kept."""
    from rag.evaluation.claims_eval import case_features, fit, load_many

    shipped = ClaimModel.load(MODEL_FILE)
    files = [CLAIMS_GOLD, Path("eval/gold/draft_claims.jsonl")]
    dev = [c for c in load_many(files) if c.split == "dev"]
    recorded = shipped.meta["rules_only_fit"]
    assert recorded["fit_data_sha256"] == data_hash(dev) and recorded["fit_command"].endswith("--fit-part rules-only")
    scratch = tmp_path / "claims.json"
    shipped.save(scratch)
    refit = fit(dev, case_features(dev, None), scratch, files, "rules-only")
    assert refit.rules_only.threshold == shipped.rules_only.threshold
    assert refit.rules_only.weights == pytest.approx(shipped.rules_only.weights, abs=1e-6)
    assert refit.with_judge == shipped.with_judge and refit.meta == shipped.meta


def test_rules_only_verifier_on_the_claims_test_split() -> None:
    """Without a judge (an openai server without logprobs, the extractive fallback) the rules still reject what they
    can prove wrong: every hard rejection (a quantity the passage does not state) is right at least 90% of the time."""
    cases = [c for c in load_claims(CLAIMS_GOLD) if c.split == "test"]
    rejected = [c for c in cases if check(split_claims(c.answer)[0].text, c.question, c.passage, c.title).rejected]
    assert len(rejected) >= 10
    assert sum(not c.supported for c in rejected) / len(rejected) >= 0.9, json.dumps([c.id for c in rejected if c.supported])


def test_without_a_judge_the_verifier_keeps_what_the_claims_eval_reports() -> None:
    """`rag eval --claims` reports the rules-only claim model at its threshold; the verifier without a judge must
    decide the same way, sentence by sentence, or that report describes a verifier nobody runs. (It did not: the
    verifier kept a sentence when half its new words were in the window, whatever the model said.)"""
    from rag.evaluation.claims_eval import case_features, load_many, score
    from rag.generation.prompt import ContextPassage
    from rag.retrieval import Passage
    from rag.verification.verifier import Verifier

    model = ClaimModel.load(MODEL_FILE)
    cases = [c for c in load_many([CLAIMS_GOLD, Path("eval/gold/draft_claims.jsonl")]) if c.split == "test"]
    scored = score(cases, case_features(cases, None), model)
    reported = {r["id"]: r["probability"] >= scored["threshold"] for r in scored["rows"]}
    verifier = Verifier(model)
    differ = []
    for c in cases:
        context = [ContextPassage(1, Passage("d::h::0/1", c.doc_id, c.title, "/src/d.txt", c.passage, 0, len(c.passage), 0), c.passage)]
        kept = any(claim.final for claim in verifier.verify(c.answer, c.question, context).claims)
        if kept != reported[c.id]:
            differ.append(c.id)
    assert len(cases) > 500 and sum(reported.values()) > 100
    assert not differ, differ
