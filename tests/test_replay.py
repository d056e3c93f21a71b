"""Replaying stored drafts at other claim thresholds (``rag eval --replay``).

Real Chroma and the real embedding model over one document of the mini collection; the judge is scripted (a fixed
P(yes)), so which threshold keeps the draft is known in advance. The replay with the real judge is checked against a
stored real run in ``tests/test_eval.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.embedding import Embedder
from rag.errors import RagError
from rag.evaluation.config import EvalSet
from rag.evaluation.replay import ReplayRun, as_report, choose, replay, replay_markdown, write_threshold
from rag.evaluation.report import compare, load_report, write_report
from rag.generation.backends.fake import FakeGenerator
from rag.settings import Settings
from rag.verification.claim_model import MODEL_FILE, ClaimModel
from rag.verification.judge import Check
from tests.fixtures.cli import run_cli
from tests.fixtures.paths import ROOT

DOC = ROOT / "eval" / "collections" / "mini" / "kellsmouth_lighthouse.md"
QUESTION = {"id": "q1", "question": "Who designed the Gannet Point lighthouse?", "answers": ["Thomas Pellow", "Pellow"],
            "evidence": [{"doc_id": "kellsmouth_lighthouse.md", "quote": "to a design by the engineer Thomas Pellow"}],
            "type": "factoid", "answerable": True, "split": "dev"}
DRAFT = "The lighthouse was designed by the engineer Thomas Pellow [1]."


class ScriptedJudge(FakeGenerator):
    """A generator that must not generate (the replay supplies the draft) and judges every check ``p``."""

    name = "llamacpp"

    def __init__(self, p: float) -> None:
        super().__init__(["a replay must never generate"])
        self.p = p
        self.checks: list[Check] = []

    def judge(self, checks: list[Check]) -> list[float]:
        self.checks += checks
        return [self.p] * len(checks)


@pytest.fixture
def eval_set(tmp_path: Path) -> EvalSet:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(DOC, docs / DOC.name)
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps(QUESTION) + "\n")
    return EvalSet("replay-test", gold, docs)


def _stored(abstained: bool) -> dict:  # type: ignore[type-arg]
    """A stored run: the draft above, and what the run answered with it."""
    row = {"id": "q1", "answerable": True, "draft": DRAFT, "split": "dev", "answer": "stored answer",
           "scores": {"abstained": abstained, "correct": not abstained}}
    return {"name": "stored", "set": "replay-test", "config": {"backend": "llamacpp", "mode": "hybrid"}, "questions": [row]}


def test_a_replay_re_verifies_the_stored_draft_at_each_threshold(tmp_path: Path, eval_set: EvalSet, embedder: Embedder) -> None:
    judge = ScriptedJudge(0.7)
    settings = Settings(data_dir=tmp_path / "data", min_confidence=0.0)
    low, high = replay(settings, eval_set, _stored(abstained=True), [0.05, 0.99], generator=judge, embedder=embedder)
    # Kept where the bar is low, dropped where it is above any probability the claim model gives P(yes) 0.7
    assert low.rows[0]["scores"]["correct"] and "Pellow" in low.rows[0]["answer"] and low.net == 1
    assert high.rows[0]["abstained"] and high.net == 0
    # Measured against what the stored run answered (an abstention): the low bar flips it, the high one agrees
    assert (low.agree, low.flips) == (0, ["q1: +0 -> +1"]) and (high.agree, high.flips) == (1, [])
    assert judge.prompts == []  # nothing was generated: the stored draft was verified
    assert len(judge.checks) == len(set(judge.checks))  # each check asked once across both thresholds


def test_a_run_without_drafts_cannot_be_replayed(tmp_path: Path, eval_set: EvalSet, embedder: Embedder) -> None:
    stored = _stored(abstained=False)
    stored["questions"][0]["draft"] = None  # a run through a service stores no drafts
    with pytest.raises(RagError, match="no stored drafts"):
        replay(Settings(data_dir=tmp_path / "data"), eval_set, stored, [0.5], generator=ScriptedJudge(0.7), embedder=embedder)


def test_a_replayed_run_is_a_report_of_its_own(tmp_path: Path, eval_set: EvalSet, embedder: Embedder) -> None:
    """Written with --write-runs: loadable, comparable with the stored run, and carrying what a confidence fit reads
    (each row's signals, and the gate and threshold it was replayed with)."""
    settings = Settings(data_dir=tmp_path / "data", min_confidence=0.0)
    stored = _stored(abstained=True)
    (run,) = replay(settings, eval_set, stored, [0.05], generator=ScriptedJudge(0.7), embedder=embedder)
    write_report(as_report(run, "replay-test", "gateoff"), tmp_path / "reports")
    loaded = load_report("gateoff-stored-t0.05", tmp_path / "reports")
    assert loaded["config"] == {"backend": "llamacpp", "mode": "hybrid", "claim_threshold": 0.05, "min_confidence": 0.0,
                                "replay_of": "stored"}
    (row,) = loaded["questions"]
    assert row["split"] == "dev" and row["draft"] == DRAFT and not row["abstained"] and row["signals"]["support"] > 0
    assert loaded["summary"]["accuracy"] == 1.0
    stored["summary"] = {"accuracy": 0.0}
    assert "q1" in compare(stored, loaded)  # the flip is listed


def test_a_replay_without_the_judge_verifies_by_the_rules_alone(tmp_path: Path, eval_set: EvalSet, embedder: Embedder) -> None:
    """``RAG_JUDGE=false``: the stored drafts are checked as a backend without yes/no probabilities would check them.
    The judge is never asked, the replayed run says so, and no claim threshold can be chosen from it."""
    judge = ScriptedJudge(0.01)  # would drop the draft, if it were asked
    settings = Settings(data_dir=tmp_path / "data", min_confidence=0.0, judge=False)
    (run,) = replay(settings, eval_set, _stored(abstained=True), [0.5501], generator=judge, embedder=embedder)
    assert judge.checks == [] and judge.prompts == []
    assert run.rows[0]["scores"]["correct"] and "Pellow" in run.rows[0]["answer"], run.rows[0]["notes"]
    assert "checked by rules only (RAG_JUDGE is off)" in run.rows[0]["notes"]
    assert run.config["judge"] is False
    with pytest.raises(RagError, match="applies only with the judge"):
        write_threshold(0.5501, [run], tmp_path / "claims.json")


def _run(name: str, threshold: float, net: int, split: str = "dev") -> ReplayRun:
    return ReplayRun(name, threshold, [{"id": "q", "split": split}], {}, net)


def test_the_chosen_threshold_has_the_best_pooled_net_and_ties_go_to_the_stricter() -> None:
    runs = [_run("a", 0.4, 3), _run("a", 0.5, 1), _run("a", 0.55, 0), _run("b", 0.4, -1), _run("b", 0.5, 1), _run("b", 0.55, 0)]
    chosen, pooled = choose(runs)
    assert pooled == {0.4: 2, 0.5: 2, 0.55: 0} and chosen == 0.5
    assert "| 0.5 (chosen) | 2 |" in replay_markdown(runs, chosen, pooled)


def test_a_threshold_is_written_from_dev_questions_only(tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    shutil.copy(MODEL_FILE, path)
    before = path.read_text()
    with pytest.raises(RagError, match="dev questions only"):
        write_threshold(0.42, [_run("dev-run", 0.42, 1), _run("test-run", 0.42, 1, split="test")], path)
    assert path.read_text() == before  # refused before anything was written
    write_threshold(0.42, [_run("dev-run", 0.42, 1)], path)
    model, shipped = ClaimModel.load(path), ClaimModel.load(MODEL_FILE)
    assert model.threshold(judged=True) == 0.42 and model.meta["threshold_data"] == ["dev-run"]
    # Only the judged threshold moves: the weights and the rules-only model are the fitted ones
    assert model.with_judge.weights == shipped.with_judge.weights and model.rules_only == shipped.rules_only


@pytest.mark.parametrize("value", ["abc", "0.4,1.5", ","])
def test_bad_claim_thresholds_are_one_clear_line(tmp_path: Path, value: str) -> None:
    res = run_cli(["eval", "--replay", "anything", "--claim-thresholds", value], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--claim-thresholds" in res.stderr and value in res.stderr
