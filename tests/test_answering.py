"""Grounded answers from the real default backend (llama.cpp running the packaged Qwen model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.generation.answer import ABSTENTION
from rag.generation.followup import Turn
from tests.fixtures.cli import run_cli
from tests.fixtures.paths import SEEDS

pytestmark = pytest.mark.llm

ANSWERABLE = [
    ("Who has led ISIS-K since 2020?", "muhajir", "002_2399800fba452946.txt"),
    ("What was the final death toll of the March 2017 attack on the military hospital in Kabul?", "38", "000_bc66558d9afb2305.txt"),
    ("How many attacks per month has IS-K averaged since the Taliban took control?", "14", "004_1dece5685c29ddfe.txt"),
    ("Which ISIS news agency claimed credit for the Kabul military hospital attack?", "amaq", "000_bc66558d9afb2305.txt"),
]
UNANSWERABLE = ["What is the capital of Peru?", "Who wrote the novel Pride and Prejudice?"]


@pytest.mark.parametrize(("question", "expected", "doc_id"), ANSWERABLE)
def test_real_model_answers_with_right_citation(answerer, question: str, expected: str, doc_id: str) -> None:  # type: ignore[no-untyped-def]
    answer = answerer.ask(question)
    assert not answer.abstained, answer.raw_answer
    assert expected in answer.answer.lower()
    assert answer.backend in ("llamacpp", "extractive")
    assert answer.citations and all(f"[{c.n}]" in answer.answer for c in answer.citations)
    assert doc_id in {c.doc_id for c in answer.citations}
    for c in answer.citations:
        assert c.quote and (SEEDS / c.source).is_file() and c.end > c.start  # relative to the ingested folder
    assert {"retrieve_ms", "generate_ms", "verify_ms", "total_ms"} <= set(answer.timings)
    assert answer.signals["judged"] == 1.0 and 0.0 <= answer.confidence <= 1.0  # the model judged every kept sentence


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_real_model_abstains_when_documents_lack_the_answer(answerer, question: str) -> None:  # type: ignore[no-untyped-def]
    answer = answerer.ask(question)
    assert answer.abstained and answer.answer == ABSTENTION and not answer.citations


def test_streaming_yields_tokens_then_answer(answerer) -> None:  # type: ignore[no-untyped-def]
    run = answerer.run("Who has led ISIS-K since 2020?")
    tokens = list(run)
    assert len(tokens) > 3, "tokens should arrive one by one"
    assert run.done and "".join(tokens) == run.answer().raw_answer


def test_the_model_judges_a_claim_by_its_yes_probability(answerer) -> None:  # type: ignore[no-untyped-def]
    """The judge is the generator itself, read through the same seam the verifier uses: a right claim scores well
    above a role swap and a wrong number on the very same passage."""
    from rag.verification.judge import Check, judge_of

    judge = judge_of(answerer.generators.get(None))
    assert judge is not None
    title, question = "Prospects for ISIS in Afghanistan", "Who has led ISIS-K since 2020?"
    window = ("ISIS-K has about 2,000 fighters in Afghanistan (mainly from Pakistan, Syria, and Iraq). "
              "Since 2020, it has been led by the Iraqi Shahab al-Muhajir.")
    scores = judge.judge([
        Check(title, window, question, "Shahab al-Muhajir has led ISIS-K since 2020."),
        Check(title, window, question, "Nangarhar has led ISIS-K since 2020."),
        Check(title, window, "How many fighters does ISIS-K have?", "ISIS-K has about 20,000 fighters."),
    ])
    assert scores is not None and len(scores) == 3
    right, swapped, wrong_number = scores
    assert right > 0.5 > max(swapped, wrong_number), scores
    assert right - max(swapped, wrong_number) > 0.3, scores


def test_the_claim_less_check_reads_the_window_against_the_question_alone(answerer) -> None:  # type: ignore[no-untyped-def]
    """The real model asked "does this passage answer the question?" leans yes where the window holds the answer and
    no where it holds another fact; its fixed prefix is made on its first use, beside the claim check's."""
    from rag.verification.judge import Check, fixed_parts

    generator = answerer.generators.get(None)
    generator.warm_judge()
    title = "Prospects for ISIS in Afghanistan"
    window = ("ISIS-K has about 2,000 fighters in Afghanistan (mainly from Pakistan, Syria, and Iraq). "
              "Since 2020, it has been led by the Iraqi Shahab al-Muhajir.")
    answers, other = generator.judge([Check(title, window, "Who has led ISIS-K since 2020?"),
                                      Check(title, window, "Who founded ISIS-K in 2015?")])
    assert answers > 0.5 > other, (answers, other)
    cached = [p.tokens for p in generator.prefixes._prefixes]
    for kind in (False, True):
        assert generator.fixed_prefix(*fixed_parts(answers=kind)) in cached

def test_followup_uses_history(answerer) -> None:  # type: ignore[no-untyped-def]
    history = [Turn("user", "Who has led ISIS-K since 2020?"), Turn("assistant", "Shahab al-Muhajir has led ISIS-K since 2020 [1].")]
    # "his group" means nothing without the history. (Not "Which country is he from?": the judge doubts "from Iraq"
    # against "the Iraqi ...", P(yes) 0.57-0.59, and that answer is dropped; see the issue 12 note.)
    answer = answerer.ask("How many fighters does his group have?", history)
    assert "Context:" in answer.standalone_question
    # The history reaches retrieval: the passage about ISIS-K's fighters is found (without it, the question
    # alone ranks the 7,000 AQIS and Taliban fighters first).
    assert any("2,000 fighters" in p.text for p in answer.passages), [p.text[:80] for p in answer.passages]
    # The judge may not confirm the bare "2,000 fighters (Passage 1)" the model writes; it must never say another number.
    assert answer.abstained or "2,000" in answer.answer or "2000" in answer.answer, answer.answer


def test_extractive_backend_answers_without_llm(answerer) -> None:  # type: ignore[no-untyped-def]
    answer = answerer.ask("Who has led ISIS-K since 2020?", backend="extractive")
    assert answer.backend == "extractive" and "Muhajir" in answer.answer
    assert answer.citations[0].doc_id == "002_2399800fba452946.txt" and answer.prompt_tokens == 0
    peru = answerer.ask("What is the capital of Peru?", backend="extractive")
    assert peru.abstained


def test_cli_ask_json_and_errors(tmp_path: Path, model_path: Path) -> None:
    env = {"RAG_LLM_MODEL_PATH": str(model_path)}
    assert run_cli(["ingest", str(SEEDS)], tmp_path, env=env).returncode == 0
    res = run_cli(["ask", "Who has led ISIS-K since 2020?", "--json"], tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert "Muhajir" in data["answer"] and data["citations"][0]["doc_id"] == "002_2399800fba452946.txt"
    assert set(data["timings"]) >= {"retrieve_ms", "generate_ms", "verify_ms"}
    plain = run_cli(["ask", "Who has led ISIS-K since 2020?", "--backend", "extractive"], tmp_path, env=env)
    assert plain.returncode == 0 and "Sources" in plain.stdout and "Prospects for ISIS in Afghanistan" in plain.stdout
    empty = run_cli(["ask", "anything?"], tmp_path / "empty", env=env)
    assert empty.returncode == 1 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    bad_model = run_cli(["ask", "Who has led ISIS-K since 2020?"], tmp_path, env={"RAG_LLM_MODEL_PATH": str(broken)})
    assert bad_model.returncode == 1 and "model file" in bad_model.stderr and "Traceback" not in bad_model.stderr


def test_cli_chat_session(tmp_path: Path, model_path: Path) -> None:
    env = {"RAG_LLM_MODEL_PATH": str(model_path)}
    assert run_cli(["ingest", str(SEEDS)], tmp_path, env=env).returncode == 0
    script = "Who has led ISIS-K since 2020?\n/sources\n/reset\n/nonsense\n/quit\n"
    res = run_cli(["chat"], tmp_path, env=env, input=script)
    assert res.returncode == 0, res.stderr
    assert "Muhajir" in res.stdout
    assert "Prospects for ISIS in Afghanistan" in res.stdout  # /sources
    assert "history cleared" in res.stdout
    assert "unknown command" in res.stderr
