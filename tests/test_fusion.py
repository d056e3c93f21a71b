"""Hybrid fusion: score fusion keeps what one list is sure of; rank fusion stays available."""

from __future__ import annotations

import pytest

from rag.retrieval.fusion import dbsf_fuse, fuse, rrf_fuse


def _lists() -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """BM25 puts `answer` far ahead (a rare name matched); dense misses it and ranks twenty similar passages closely.
    Three of the dense passages BM25 also finds, at middling ranks of both lists."""
    dense = [(f"d{i:02d}", 0.62 - 0.005 * i) for i in range(20)]
    lexical = [("answer", 19.0)] + [(f"b{i:02d}", 5.0 - 0.05 * i) for i in range(19)]
    for rank, cid in ((12, "d12"), (13, "d13"), (14, "d14")):
        lexical[rank] = (cid, lexical[rank][1])
    return dense, lexical


def test_score_fusion_keeps_a_clear_bm25_winner_that_rank_fusion_buries() -> None:
    dense, lexical = _lists()
    by_rank = [cid for cid, _ in rrf_fuse([[c for c, _ in dense], [c for c, _ in lexical]], 60)]
    by_score = [cid for cid, _ in dbsf_fuse([dense, lexical])]
    # Rank fusion: the three passages both lists hold outrank the one BM25 is sure of.
    assert by_rank.index("answer") >= 3
    assert by_score[0] == "answer"


def test_score_fusion_scales_each_list_by_its_own_spread() -> None:
    # Same ranking, scores ten times apart: the fused scores are the same.
    a = dbsf_fuse([[("x", 1.0), ("y", 0.5), ("z", 0.2)]])
    b = dbsf_fuse([[("x", 10.0), ("y", 5.0), ("z", 2.0)]])
    assert [c for c, _ in a] == [c for c, _ in b] == ["x", "y", "z"]
    assert [s for _, s in a] == pytest.approx([s for _, s in b])
    assert all(0.0 <= s <= 1.0 for _, s in a)


def test_score_fusion_handles_empty_single_and_flat_lists() -> None:
    assert dbsf_fuse([[], []]) == []
    assert dbsf_fuse([[("only", 3.0)]]) == [("only", 0.5)]
    flat = dbsf_fuse([[("b", 1.0), ("a", 1.0)]])
    assert flat == [("a", 0.5), ("b", 0.5)]  # ties broken by id, never by dict order


def test_fuse_dispatches_by_method() -> None:
    dense, lexical = _lists()
    assert fuse("rrf", [dense, lexical], 60) == rrf_fuse([[c for c, _ in dense], [c for c, _ in lexical]], 60)
    assert fuse("dbsf", [dense, lexical], 60) == dbsf_fuse([dense, lexical])
