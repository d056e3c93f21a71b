"""`rag export` / `rag import` round-trip a collection exactly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rag.components import Components
from tests.fixtures.cli import run_cli
from tests.fixtures.paths import SEEDS
from tests.fixtures.seeded import make_settings


def _rows(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


@pytest.mark.slow  # runs `rag` 8 times in fresh processes (~10 s each: torch and the embedding model load every time)
def test_export_import_round_trip(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    assert run_cli(["ingest", str(SEEDS)], src).returncode == 0
    first = tmp_path / "a.jsonl.gz"
    res = run_cli(["export", str(first)], src)
    assert res.returncode == 0, res.stderr
    imported = run_cli(["import", str(first)], dst)
    assert imported.returncode == 0, imported.stderr
    second = tmp_path / "b.jsonl.gz"
    assert run_cli(["export", str(second)], dst).returncode == 0
    a, b = _rows(first), _rows(second)
    assert len(a) == len(b) > 20 and a[0] == b[0]
    for x, y in zip(a[1:], b[1:], strict=True):
        rx, ry = json.loads(x), json.loads(y)
        assert (rx["id"], rx["text"], rx["metadata"]) == (ry["id"], ry["text"], ry["metadata"])
        # Chroma re-normalizes vectors for cosine space on write: equal up to float32 rounding
        assert max(abs(p - q) for p, q in zip(rx["embedding"], ry["embedding"], strict=True)) < 1e-6
    row = json.loads(a[1])
    assert len(row["embedding"]) == 384 and row["metadata"]["doc_id"] and row["text"]
    # the restored index answers queries as the original does (dense, and BM25, which import rebuilt)
    for mode in ("dense", "bm25"):
        found = {}
        for name, data in (("src", src), ("dst", dst)):
            res = run_cli(["search", "Who has led ISIS-K since 2020?", "-k", "5", "--mode", mode, "--json"], data)
            assert res.returncode == 0, (mode, name, res.stderr)
            found[name] = [(p["chunk_id"], p["score"]) for p in json.loads(res.stdout)]
        assert [c for c, _ in found["src"]] == [c for c, _ in found["dst"]] and len(found["dst"]) == 5, mode
        assert [x for _, x in found["src"]] == pytest.approx([x for _, x in found["dst"]], abs=1e-5), mode


@pytest.mark.slow  # runs `rag` 7 times in fresh processes (~10 s each: torch and the embedding model load every time)
def test_import_refuses_non_empty_and_bad_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli(["ingest", str(SEEDS)], data).returncode == 0
    dump = tmp_path / "x.jsonl.gz"
    assert run_cli(["export", str(dump)], data).returncode == 0
    again = run_cli(["import", str(dump)], data)
    assert again.returncode == 1 and "not empty" in again.stderr
    assert run_cli(["import", str(dump), "--replace"], data).returncode == 0
    junk = tmp_path / "junk.jsonl.gz"
    junk.write_bytes(b"not gzip at all")
    bad = run_cli(["import", str(junk)], tmp_path / "other")
    assert bad.returncode == 1 and "cannot read export" in bad.stderr and "Traceback" not in bad.stderr
    lines = _rows(dump)
    truncated = tmp_path / "t.jsonl.gz"
    with gzip.open(truncated, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines[:5]) + "\n")
    cut = run_cli(["import", str(truncated)], tmp_path / "third")
    assert cut.returncode == 1 and "truncated" in cut.stderr


def _small_collection(components_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, topic in enumerate(("lighthouse keepers", "oyster festivals", "branch lines")):
        (folder / f"note{i}.txt").write_text(f"Notes on {topic}\n\n" + " ".join(
            f"Sentence {j} about {topic} in Kellsmouth." for j in range(60)) + "\n", encoding="utf-8")
    parts = components_factory()
    parts.ingestor.ingest_paths([folder])
    return parts


def test_import_replace_validates_the_whole_file_before_deleting(components_factory, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A truncated or corrupt backup is refused with every chunk still in place; a good one replaces the
    collection and BM25 follows (issue 13, item 3)."""
    from rag.backup import export_collection, import_collection
    from rag.errors import RagError

    parts = _small_collection(components_factory, tmp_path)
    store = parts.store
    before = sorted(store.all_ids())
    assert len(before) >= 6
    dump = tmp_path / "x.jsonl.gz"
    assert export_collection(store, dump) == len(before)
    lines = _rows(dump)
    raw = dump.read_bytes()
    broken = {
        "cut.jsonl.gz": raw[: len(raw) * 2 // 3],  # a gzip stream cut short (a copy that stopped midway)
        "short.jsonl.gz": gzip.compress(("\n".join(lines[:4]) + "\n").encode()),  # fewer rows than the header says
        "bad-row.jsonl.gz": gzip.compress(("\n".join([*lines[:3], "{not json", *lines[4:]]) + "\n").encode()),
        "bad-dim.jsonl.gz": gzip.compress(("\n".join([*lines[:-1], json.dumps({**json.loads(lines[-1]), "embedding": [0.1, 0.2]})]) + "\n").encode()),
    }
    for name, data in broken.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(RagError):
            import_collection(store, path, replace=True)
        assert sorted(store.all_ids()) == before, f"{name}: the collection changed"

    # A good backup of a different collection replaces this one: its chunks in, the others out.
    other = tmp_path / "other"
    other.mkdir()
    (other / "solo.txt").write_text("Solo note\n\nThe Zorblax ferry leaves Quillon at dawn.\n", encoding="utf-8")
    source = Components(make_settings(tmp_path / "src-data"), embedder=embedder)
    source.ingestor.ingest_paths([other])
    solo = tmp_path / "solo.jsonl.gz"
    n = export_collection(source.store, solo)
    assert import_collection(store, solo, replace=True) == n
    assert sorted(store.all_ids()) == sorted(source.store.all_ids())
    parts.index.lexical.rebuild()
    assert parts.index.lexical.current().ids == set(source.store.all_ids())
