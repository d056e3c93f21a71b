"""`rag eval --claims` on a labelled-claims file of the user's choosing (such as the sentences of real drafts), and a
bad line in one as a clear error. Rules only here (the extractive backend cannot judge); the judged claims eval is
measured in the eval reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import invoke

PASSAGE = "Since 2020, it has been led by the Iraqi Shahab al-Muhajir. The group is based in Nangarhar."


def _case(n: int, answer: str, supported: bool, **extra: object) -> dict[str, object]:
    return {"id": f"d{n:04d}", "collection": "seeds", "doc_id": "002", "title": "Prospects for ISIS in Afghanistan",
            "question": "Who has led ISIS-K since 2020?", "passage": PASSAGE, "answer": answer, "supported": supported,
            "pattern": "draft", "split": "test", **extra}


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_claims_file_option_measures_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claims = _write(tmp_path / "drafts.jsonl", [
        _case(1, "Shahab al-Muhajir has led ISIS-K since 2020 [1].", True, source="run/s01", note="stated"),
        _case(2, "Nangarhar has led ISIS-K since 2020 [1].", False, source="run/s02"),
        _case(3, "Hafiz Saeed Khan has led ISIS-K since 2020 [1].", False),
    ])
    res = invoke(["eval", "--claims", "--claims-file", str(claims), "--backend", "extractive",
                  "--reports", str(tmp_path / "r"), "--name", "drafts"], tmp_path / "data", monkeypatch)
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r" / "drafts.json").read_text())
    assert report["claims_file"] == str(claims) and report["judge"] is False
    assert report["test"]["cases"] == 3 and [r["id"] for r in report["rows"]] == ["d0001", "d0002", "d0003"]
    by_id = {r["id"]: r["probability"] for r in report["rows"]}
    assert by_id["d0001"] > by_id["d0003"]  # the rules read this file's sentences: a name the passage lacks


@pytest.mark.parametrize(("line", "expected"), [
    ({"suported": True}, "drafts.jsonl:2: invalid labelled claim (suported: Extra inputs are not permitted)"),
    ({"split": "train"}, "drafts.jsonl:2: invalid labelled claim (split: Input should be 'dev' or 'test')"),
])
def test_a_bad_claims_line_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             line: dict[str, object], expected: str) -> None:
    claims = _write(tmp_path / "drafts.jsonl", [_case(1, "Shahab al-Muhajir has led ISIS-K since 2020 [1].", True),
                                               {**_case(2, "It is Nangarhar [1].", False), **line}])
    res = invoke(["eval", "--claims", "--claims-file", str(claims), "--backend", "extractive",
                  "--reports", str(tmp_path / "r")], tmp_path / "data", monkeypatch)
    assert res.exit_code == 1, res.output
    (message,) = res.stderr.strip().splitlines()
    assert expected in message and "unexpected" not in message, message
    assert not (tmp_path / "r").exists()  # nothing written for a file that could not be read


def test_claims_files_with_a_shared_id_are_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read together (to fit on both), two files must not hold the same case id: the fit's data hash names each once."""
    a = _write(tmp_path / "a.jsonl", [_case(1, "Shahab al-Muhajir has led ISIS-K since 2020 [1].", True)])
    b = _write(tmp_path / "b.jsonl", [_case(1, "Nangarhar has led ISIS-K since 2020 [1].", False)])
    res = invoke(["eval", "--claims", "--claims-file", str(a), "--claims-file", str(b), "--backend", "extractive",
                  "--reports", str(tmp_path / "r")], tmp_path / "data", monkeypatch)
    assert res.exit_code == 1 and f"{b}:1: duplicate id 'd0001' (first at {a}:1)" in res.stderr, res.output
    assert not (tmp_path / "r").exists()


def test_a_claims_file_without_the_split_asked_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claims = _write(tmp_path / "drafts.jsonl", [_case(1, "Shahab al-Muhajir has led ISIS-K since 2020 [1].", True)])
    res = invoke(["eval", "--claims", "--claims-file", str(claims), "--split", "dev", "--backend", "extractive",
                  "--reports", str(tmp_path / "r")], tmp_path / "data", monkeypatch)
    assert res.exit_code == 1 and "no dev claims in" in res.stderr, res.output


def test_the_draft_claims_set_keeps_its_questions_splits() -> None:
    """`eval/gold/draft_claims.jsonl` holds sentences of real drafts, each from one eval question: a sentence from a
    test question must stay in the test split, or fitting on its dev split would tune on test questions."""
    from rag.evaluation.claims_eval import load_claims
    from rag.evaluation.config import load_config
    from rag.evaluation.gold import load_gold
    from tests.fixtures.paths import ROOT

    cases = load_claims(ROOT / "eval" / "gold" / "draft_claims.jsonl")
    assert len({c.id for c in cases}) == len(cases)
    config = load_config(ROOT / "eval" / "eval.toml")
    split_of = {(name, q.id): q.split for name in ("seeds", "mini", "almanac")
                for q in load_gold(ROOT / config.eval_set(name).gold)}
    for c in cases:
        assert c.source and c.note, c.id
        row = c.source.rsplit("/", 1)[1]
        assert split_of[(c.collection, row)] == c.split, c.id
    assert {(c.split, c.supported) for c in cases} == {("dev", True), ("dev", False), ("test", True), ("test", False)}
