"""The evaluation harness: gold-set validity, metric definitions, the gates, reports and comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.components import Components
from rag.embedding import Embedder
from rag.errors import RagError
from rag.evaluation.answer_eval import AnswerRecord, in_process_asker, run_answers, score_question, summarize
from rag.evaluation.config import check_gate, load_config
from rag.evaluation.gold import GoldQuestion, load_gold
from rag.evaluation.metrics import percentile, retrieval_metrics
from rag.evaluation.text_match import contains_alias, exact_match, normalize_answer, token_f1
from rag.generation.backends.fake import FakeGenerator
from rag.ingestion.readers import read_document
from rag.settings import Settings
from rag.verification.claim_model import ClaimModel
from tests.fixtures.cli import run_cli
from tests.fixtures.paths import ROOT

CONFIG = load_config(ROOT / "eval" / "eval.toml")


@pytest.mark.parametrize("set_name", sorted(CONFIG.sets))
def test_gold_sets_are_valid_and_quotes_really_occur(set_name: str) -> None:
    eval_set = CONFIG.sets[set_name]
    gold = load_gold(ROOT / eval_set.gold)
    docs = {p.name: read_document(p.read_bytes(), p.name).text for p in (ROOT / eval_set.docs).iterdir()}
    for q in gold:
        for e in q.evidence:
            assert e.doc_id in docs, (q.id, e.doc_id)
            assert e.quote in docs[e.doc_id], (q.id, e.quote)
    assert sum(not q.answerable for q in gold) >= 2


def test_seed_gold_set_coverage() -> None:
    gold = load_gold(ROOT / "eval" / "gold" / "seeds.jsonl")
    types = {t: sum(q.type == t for q in gold) for t in {q.type for q in gold}}
    assert len(gold) >= 40 and types["unanswerable"] >= 8
    assert {"factoid", "numeric", "date", "list", "paraphrase", "multi_doc", "conflict"} <= set(types)
    first = gold[0]
    assert first.question == "Who has led ISIS-K since 2020?" and "Shahab al-Muhajir" in first.answers
    assert first.evidence[0].doc_id == "002_2399800fba452946.txt"


def test_text_metrics_follow_squad_normalization() -> None:
    assert normalize_answer("The  Iraqi, Shahab al-Muhajir!") == "iraqi shahab al muhajir"
    assert contains_alias("It is led by Shahab al-Muhajir [1].", ["Shahab al-Muhajir"])
    assert not contains_alias("Shahab al-Muhajirs", ["Shahab al-Muhajir"])  # whole words only
    assert exact_match("the Amaq.", ["Amaq"]) and not exact_match("Amaq agency", ["Amaq"])
    assert token_f1("Amaq news agency", ["Amaq"]) == pytest.approx(0.5)
    assert token_f1("nothing", ["Amaq"]) == 0.0


def test_retrieval_metrics_definitions() -> None:
    passages = ["alpha", "the gold quote here", "beta", "second gold bit"]
    m = retrieval_metrics(passages, ["gold quote", "second gold"], ks=(1, 3))
    assert m["hit@1"] == 0.0 and m["hit@3"] == 1.0
    assert m["recall@3"] == 0.5 and m["mrr"] == 0.5
    assert 0 < m["ndcg@10"] < 1
    assert percentile([1, 2, 3, 4, 100], 50) == 3 and percentile([1, 2, 3, 4, 100], 95) == 100


def test_answer_scoring_and_summary() -> None:
    gold = load_gold(ROOT / "eval" / "gold" / "seeds.jsonl")
    q1, unanswerable = gold[0], next(q for q in gold if not q.answerable)
    right = AnswerRecord("Shahab al-Muhajir leads it [1].", False, [{"n": 1, "quote": "Since 2020, it has been led by the Iraqi Shahab al-Muhajir."}])
    bad_cite = AnswerRecord("Shahab al-Muhajir leads it [2].", False, [{"n": 1, "quote": "unrelated"}])
    s_right, s_bad = score_question(q1, right), score_question(q1, bad_cite)
    assert s_right["correct"] and s_right["citation_valid"] and s_right["citation_precision"] == 1.0
    assert not s_bad["citation_valid"] and s_bad["citation_precision"] == 0.0
    abst = score_question(unanswerable, AnswerRecord("I don't know", True, []))
    rows = [{"answerable": True, "scores": s_right, "timings": {"total_ms": 10}},
            {"answerable": True, "scores": s_bad, "timings": {"total_ms": 30}},
            {"answerable": False, "scores": abst, "timings": {"total_ms": 20}}]
    summary = summarize(rows)
    assert summary["accuracy"] == 1.0 and summary["abstention_precision"] == 1.0 and summary["abstention_recall"] == 1.0
    assert summary["citation_validity"] == 0.5 and summary["total_p50_ms"] == 20
    assert "draft_accuracy" not in summary  # no drafts (a remote run): no claim about the generator


def test_the_summary_separates_the_generators_misses_from_verifications() -> None:
    """Accuracy alone could not say whether a miss was the model's draft or verification withholding a right one,
    nor whether a bad citation backed an answer or a low-confidence abstention's closest passage."""
    q1 = load_gold(ROOT / "eval" / "gold" / "seeds.jsonl")[0]
    good = [{"n": 1, "quote": "Since 2020, it has been led by the Iraqi Shahab al-Muhajir."}]
    kept = AnswerRecord("Shahab al-Muhajir leads it [1].", False, good, draft="Shahab al-Muhajir leads it [1].")
    withheld = AnswerRecord("I don't know: the documents do not contain the answer.", True, [],
                            draft="Since 2020 the group is led by Shahab al-Muhajir [1].")
    wrong = AnswerRecord("The documents may not answer this; closest passage: The toll was 38. [1].", True,
                         [{"n": 1, "quote": "The toll was 38."}], draft="Nangarhar elders lead it [1].")
    scored = [score_question(q1, r) for r in (kept, withheld, wrong)]
    assert [s["draft_correct"] for s in scored] == [True, True, False]
    summary = summarize([{"answerable": True, "scores": s, "timings": {}} for s in scored])
    assert summary["accuracy"] == pytest.approx(1 / 3)
    assert summary["draft_accuracy"] == pytest.approx(2 / 3) and summary["right_drafts_kept"] == 0.5
    assert summary["citation_precision"] == 0.5
    assert summary["citation_precision[answers]"] == 1.0 and summary["citation_precision[closest_passage]"] == 0.0


def test_a_conflict_is_right_only_with_every_side_cited_to_its_own_source() -> None:
    q = next(q for q in load_gold(ROOT / "eval" / "gold" / "seeds.jsonl") if q.id == "s57")
    assert q.sides is not None and len(q.sides) == 2
    old, new = q.sides[0].doc_ids[0], q.sides[1].doc_ids[0]
    cites = [{"n": 1, "doc_id": old, "quote": ""}, {"n": 2, "doc_id": new, "quote": ""}]
    both = AnswerRecord("ISIS-K has about 2,000 fighters [1]. A later estimate is around 4,000 [2].", False, cites)
    one_side = AnswerRecord("ISIS-K has about 2,000 fighters [1].", False, cites[:1])
    crossed = AnswerRecord("ISIS-K has about 2,000 fighters [2]. A later estimate is around 4,000 [1].", False, cites)
    one_citation = AnswerRecord("Estimates range from 2,000 to 4,000 fighters [1].", False, cites[:1])
    assert score_question(q, both)["correct"]
    assert not any(score_question(q, r)["correct"] for r in (one_side, crossed, one_citation))


def test_a_report_row_keeps_the_draft_and_what_verification_did(seeded_settings: Settings, embedder: Embedder) -> None:
    """A wrong abstention in a report showed only the abstention: the draft that was dropped, and why, were lost."""
    draft = "ISIS-K has been led by a council of twelve Nangarhar elders [1]."
    components = Components(seeded_settings.model_copy(update={"judge": False}), embedder=embedder,
                            generators={"llamacpp": FakeGenerator([draft])})
    gold = GoldQuestion(id="g1", question="Who has led ISIS-K since 2020?", answers=["Shahab al-Muhajir"],
                        evidence=[{"doc_id": "x", "quote": "Shahab al-Muhajir"}], type="factoid", answerable=True, split="test")
    (row,) = run_answers([gold], in_process_asker(components.answerer, None, None))
    assert row["abstained"] and row["draft"] == draft
    assert any("no sentence supported" in note for note in row["notes"]), row["notes"]
    json.dumps(row)  # the report is JSON


def test_gate_thresholds() -> None:
    assert check_gate({"hit@5": 0.97}, {"hit@5": 0.95}) == []
    assert check_gate({"hit@5": 0.90}, {"hit@5": 0.95}) == ["hit@5: 0.900 < 0.950"]
    assert "not measured" in check_gate({}, {"mrr": 0.5})[0]


@pytest.mark.slow  # two full `rag eval --retrieval-only` runs in fresh processes
def test_retrieval_gate_passes_on_seeds_and_fails_when_raised(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    ok = run_cli(["eval", "--retrieval-only", "--name", "gate", "--reports", str(reports)], tmp_path / "data")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads((reports / "gate.json").read_text())
    assert report["summary"]["hit@5"] >= 0.95 and not report["gate_failures"]
    assert (reports / "gate.png").stat().st_size > 1000 and "hit@5" in (reports / "gate.md").read_text()
    strict = tmp_path / "strict.toml"
    strict.write_text((ROOT / "eval" / "eval.toml").read_text().replace('"hit@5" = 0.95', '"hit@5" = 1.01'))
    failed = run_cli(["eval", "--retrieval-only", "--config", str(strict), "--reports", str(reports)], tmp_path / "data")
    assert failed.returncode == 1 and "gate failed" in failed.stderr


@pytest.mark.llm
def test_answer_gate_with_real_model_and_compare(tmp_path: Path, model_path: Path) -> None:
    env = {"RAG_LLM_MODEL_PATH": str(model_path)}
    reports = tmp_path / "reports"
    run = run_cli(["eval", "--limit", "12", "--name", "smoke", "--reports", str(reports)], tmp_path / "data", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((reports / "smoke.json").read_text())
    assert len(report["questions"]) == 12
    assert report["summary"]["accuracy"] >= CONFIG.gate["sample"]["accuracy"]
    assert sum(not r["answerable"] for r in report["questions"]) >= 2  # stratified: abstention is exercised
    assert all(r["backend"] in ("llamacpp", "extractive") for r in report["questions"])
    assert {"retrieve_p50_ms", "generate_p50_ms", "verify_p50_ms"} <= set(report["summary"])
    # Its stored drafts, re-verified by the real judge at the threshold the run used, give the run's outcomes back:
    # what makes a replay at another threshold evidence (`rag eval --replay`)
    shipped = f"{ClaimModel.load().threshold(judged=True):g}"
    replayed = run_cli(["eval", "--replay", "smoke", "--claim-thresholds", shipped, "--name", "smoke-replay",
                        "--reports", str(reports)], tmp_path / "data", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert f"| smoke | {shipped} | 12 | " in replayed.stdout and "| 12/12 |" in replayed.stdout, replayed.stdout
    extractive = run_cli(["eval", "--limit", "12", "--name", "smoke-x", "--backend", "extractive", "--reports", str(reports)],
                         tmp_path / "data", env=env)
    assert (reports / "smoke-x.json").is_file(), extractive.stderr
    diff = run_cli(["eval", "--compare", "smoke", "smoke-x", "--reports", str(reports)], tmp_path / "data")
    assert diff.returncode == 0 and "| accuracy |" in diff.stdout and "Flipped questions" in diff.stdout


@pytest.mark.llm
def test_harness_is_not_tied_to_the_seeds(tmp_path: Path, model_path: Path) -> None:
    env = {"RAG_LLM_MODEL_PATH": str(model_path)}
    reports = tmp_path / "reports"
    # The test split only (27 questions): the whole set with the judge takes over 10 minutes on 2 cores.
    run = run_cli(["eval", "--set", "mini", "--split", "test", "--name", "mini", "--reports", str(reports)],
                  tmp_path / "data", env=env, timeout=900)
    report = json.loads((reports / "mini.json").read_text())
    assert report["summary"]["hit@5"] >= 0.9, run.stdout
    # Loose bounds: this proves the harness runs on another collection; quality is gated by `rag eval` on the full
    # sets (seeds test split with the judge: accuracy 0.71, abstention recall 0.54).
    assert report["summary"]["accuracy"] >= 0.45, run.stdout
    assert report["summary"]["abstention_recall"] >= 0.4, run.stdout


@pytest.mark.slow  # ingests the seeds at two chunk sizes and scores 6 configurations, in a fresh `rag` process
def test_ablation_reports_each_mode_and_chunk_size(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    res = run_cli(["eval", "--ablation", "--chunk-sizes", "64,96", "--reports", str(reports)], tmp_path / "data")
    assert res.returncode == 0, res.stderr
    rows = json.loads((reports / "ablation-seeds.json").read_text())["rows"]
    assert {(r["chunk_size"], r["mode"]) for r in rows} == {(s, m) for s in (64, 96) for m in ("dense", "bm25", "hybrid")}
    assert all(0 <= r["hit@5"] <= 1 for r in rows)


def test_bad_eval_inputs_are_clear(tmp_path: Path) -> None:
    res = run_cli(["eval", "--set", "nope"], tmp_path)
    assert res.returncode == 1 and "unknown eval set" in res.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q"}\n')
    res = run_cli(["eval", "--gold", str(bad), "--retrieval-only"], tmp_path)
    assert res.returncode == 1 and "bad.jsonl:1: invalid gold row (" in res.stderr and "Traceback" not in res.stderr
    missing = run_cli(["eval", "--compare", "a", "b", "--reports", str(tmp_path)], tmp_path)
    assert missing.returncode == 1 and "no eval report" in missing.stderr


def test_a_gold_file_names_a_repeated_id_at_both_lines_and_refuses_an_empty_file(tmp_path: Path) -> None:
    """Gold and claims files share one reader: a repeated id names both places, an empty file is an error (it used
    to load as a set of no questions)."""
    row = '{"id": "g1", "question": "Who?", "answers": ["A"], "evidence": [{"doc_id": "d", "quote": "A"}], "type": "factoid", "answerable": true, "split": "dev"}'
    twice = tmp_path / "twice.jsonl"
    twice.write_text(row + "\n\n" + row + "\n")
    with pytest.raises(RagError, match=rf"twice.jsonl:3: duplicate id 'g1' \(first at .*twice.jsonl:1\)"):
        load_gold(twice)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(RagError, match="no gold rows in .*empty.jsonl"):
        load_gold(empty)


def test_sample_is_stratified_and_deterministic() -> None:
    from rag.evaluation.runner import sample

    gold = load_gold(ROOT / "eval" / "gold" / "seeds.jsonl")
    picked = sample(gold, 12)
    assert len(picked) == 12 and picked == sample(gold, 12)
    assert sum(not q.answerable for q in picked) == round(12 * sum(not q.answerable for q in gold) / len(gold))
    assert len({q.type for q in picked}) >= 5
    assert sample(gold, None) == gold and sample(gold, 500) == gold
