"""Ingestion is idempotent, incremental, prunes on request, and survives being killed midway."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from rag.index.store import parse_chunk_id
from tests.fixtures.cli import run_cli
from tests.fixtures.documents import encrypted_pdf, pdf_bytes
from tests.fixtures.paths import ROOT, RAG_BIN, SEEDS


def per_doc_counts(store) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(parse_chunk_id(cid)[0] for cid in store.all_ids())


def test_reingest_unchanged_writes_nothing(components_factory, seeds_copy: Path) -> None:  # type: ignore[no-untyped-def]
    ing = components_factory().ingestor
    first = ing.ingest_paths([seeds_copy])
    assert len(first.added) == 5 and first.chunks_written == ing.store.count() > 20
    before = sorted(ing.store.all_ids())
    second = ing.ingest_paths([seeds_copy])
    assert second.chunks_written == 0 and not second.changed
    assert len(second.unchanged) == 5
    assert "nothing to do" in second.summary()
    assert sorted(ing.store.all_ids()) == before


def test_changed_file_replaces_exactly_its_chunks(components_factory, seeds_copy: Path) -> None:  # type: ignore[no-untyped-def]
    ing = components_factory().ingestor
    ing.ingest_paths([seeds_copy])
    before = per_doc_counts(ing.store)
    target = seeds_copy / "001_d166f26fbc2a0a2c.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\n\nA new paragraph says the lighthouse keeper is Marta Quill.\n", encoding="utf-8")
    report = ing.ingest_paths([seeds_copy])
    assert report.updated == ["001_d166f26fbc2a0a2c.txt"] and len(report.unchanged) == 4
    after = per_doc_counts(ing.store)
    for doc_id, n in before.items():
        if doc_id != "001_d166f26fbc2a0a2c.txt":
            assert after[doc_id] == n
    ids = [cid for cid in ing.store.all_ids() if cid.startswith("001_d166f26fbc2a0a2c.txt::")]
    assert len({parse_chunk_id(c)[1] for c in ids}) == 1, "old version's chunks remain"
    texts = [t for page in ing.store.pages(("documents",), where={"doc_id": "001_d166f26fbc2a0a2c.txt"}) for t in page.texts]
    assert any("Marta Quill" in t for t in texts)


def test_prune_removes_documents_whose_files_are_gone(components_factory, seeds_copy: Path) -> None:  # type: ignore[no-untyped-def]
    parts = components_factory()
    ing = parts.ingestor
    ing.ingest_paths([seeds_copy])
    total = ing.store.count()
    gone = per_doc_counts(ing.store)["004_1dece5685c29ddfe.txt"]
    (seeds_copy / "004_1dece5685c29ddfe.txt").unlink()
    no_prune = ing.ingest_paths([seeds_copy])
    assert ing.store.count() == total and not no_prune.pruned
    pruned = ing.ingest_paths([seeds_copy], prune=True)
    assert pruned.pruned == ["004_1dece5685c29ddfe.txt"]
    assert ing.store.count() == total - gone
    # BM25 follows the store
    retr = parts.retriever
    assert all(p.doc_id != "004_1dece5685c29ddfe.txt" for p in retr.search("Dragonfly TerrorismTracker", mode="bm25"))


def test_delete_removes_document_everywhere(components_factory, seeds_copy: Path) -> None:  # type: ignore[no-untyped-def]
    parts = components_factory()
    parts.ingestor.ingest_paths([seeds_copy])
    retr = parts.retriever
    assert retr.search("Shahab al-Muhajir", k=1, mode="bm25")[0].doc_id == "002_2399800fba452946.txt"
    assert parts.index.delete_document("002_2399800fba452946.txt") > 0
    retr.refresh()
    for mode in ("bm25", "dense", "hybrid"):
        assert all(p.doc_id != "002_2399800fba452946.txt" for p in retr.search("Shahab al-Muhajir", k=10, mode=mode))


def test_failed_files_are_reported_not_fatal(components_factory, seeds_copy: Path) -> None:  # type: ignore[no-untyped-def]
    (seeds_copy / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (seeds_copy / "empty.txt").write_text("   ")
    report = components_factory().ingestor.ingest_paths([seeds_copy])
    assert len(report.added) == 5
    assert set(Path(p).name for p in report.failed) == {"broken.pdf", "empty.txt"}


def _make_corpus(folder: Path, copies: int) -> None:
    folder.mkdir()
    for i in range(copies):
        for src in sorted(SEEDS.glob("*.txt")):
            text = src.read_text(encoding="utf-8")
            (folder / f"c{i:02d}_{src.name}").write_text(f"Copy {i} of the article.\n\n{text}", encoding="utf-8")


@pytest.mark.server
def test_ingest_killed_midway_then_rerun_has_no_duplicates(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _make_corpus(corpus, copies=6)
    data = tmp_path / "data"
    env = {"RAG_DATA_DIR": str(data), "RAG_EMBED_BATCH_SIZE": "8", "RAG_INGEST_FLUSH_CHUNKS": "8", "RAG_LOG_JSON": "1"}
    import os

    proc = subprocess.Popen([str(RAG_BIN), "ingest", str(corpus)], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    batches = 0
    deadline = time.monotonic() + 300
    assert proc.stderr is not None
    for line in proc.stderr:
        if '"batch written"' in line:
            batches += 1
            if batches >= 5:
                proc.send_signal(signal.SIGKILL)
                break
        assert time.monotonic() < deadline
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"

    rerun = run_cli(["ingest", str(corpus), "--json"], data, env=env)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["added"] or report["updated"]

    clean = tmp_path / "clean"
    assert run_cli(["ingest", str(corpus)], clean).returncode == 0

    from rag.settings import Settings
    from rag.index.store import ChunkStore

    killed_store = ChunkStore(Settings(data_dir=data))
    clean_store = ChunkStore(Settings(data_dir=clean))
    assert per_doc_counts(killed_store) == per_doc_counts(clean_store)
    ids = killed_store.all_ids()
    assert len(ids) == len(set(ids)) == clean_store.count()
    states = killed_store.doc_states()
    assert len(states) == 30
    killed_store.release(), clean_store.release()  # a `rag` process may open these folders now (rag.index.lock)
    found = run_cli(["search", "Who has led ISIS-K since 2020?", "-k", "3", "--json"], data)
    assert found.returncode == 0 and "Shahab al-Muhajir" in json.loads(found.stdout)[0]["text"]


@pytest.mark.slow  # runs `rag` 3 times in fresh processes (~10 s each: torch and the embedding model load every time)
def test_cli_ingest_reports_and_is_idempotent(tmp_path: Path) -> None:
    first = run_cli(["ingest", str(SEEDS)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "5 added" in first.stdout
    second = run_cli(["ingest", str(SEEDS)], tmp_path)
    assert "nothing to do: 5 document(s) unchanged" in second.stdout
    missing = run_cli(["ingest", str(tmp_path / "nope")], tmp_path)
    assert missing.returncode == 1 and "path not found" in missing.stderr and "Traceback" not in missing.stderr


def test_encrypted_and_broken_pdfs_are_skips_not_aborts(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An AES "protected" PDF (owner password only) is read; one that needs a password, or that no parser can
    read, is a reported skip, and the rest of the folder is ingested (issue 13, item 16)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a-note.txt").write_text("The ferry to Kellsmouth sails at noon.\n", encoding="utf-8")
    (folder / "locked.pdf").write_bytes(encrypted_pdf("The lighthouse of Gannet Point opened in 1843"))
    (folder / "secret.pdf").write_bytes(encrypted_pdf("Hidden words", user_password="let-me-in"))
    whole = pdf_bytes("Half a document")
    (folder / "half.pdf").write_bytes(whole[: len(whole) // 2])
    parts = components_factory()
    report = parts.ingestor.ingest_paths([folder])
    assert len(report.added) == 2, report.to_dict()
    assert {Path(p).name for p in report.failed} == {"secret.pdf", "half.pdf"}
    assert "password" in report.failed[str(folder / "secret.pdf")]
    assert parts.retriever.search("Gannet Point lighthouse opened", k=1, mode="bm25")[0].title
    texts = [t for page in parts.store.pages(("documents",)) for t in page.texts]
    assert any("Gannet Point opened in 1843" in t for t in texts)


LEASE = ("# Lease of 4 Harbour Row\n\n(a) The rent of 700 pounds is due on the first day of each month.\n"
         "(c) The tenant must give 90 days notice before leaving.\n\nShare this article\n\n"
         "Copyright 2024 Kellsmouth Lettings Ltd.\n")


def test_ingest_keeps_clauses_and_reports_the_lines_it_dropped(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Cleaning removes only real furniture, and the report lists every removed line per document (issue 13, item 4)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "lease.md").write_text(LEASE, encoding="utf-8")
    parts = components_factory()
    report = parts.ingestor.ingest_paths([folder])
    (doc_id,) = report.added
    assert report.to_dict()["dropped"] == {doc_id: ["Share this article", "Copyright 2024 Kellsmouth Lettings Ltd."]}
    assert "2 furniture lines dropped" in report.summary()
    texts = " ".join(t for page in parts.store.pages(("documents",), where={"kind": "text"}) for t in page.texts)
    assert "(c) The tenant must give 90 days notice before leaving." in texts and "Kellsmouth Lettings" not in texts
    assert parts.store.documents()[0]["publisher"] == "Kellsmouth Lettings"  # the dropped notice names the publisher
    assert parts.retriever.search("how much notice must the tenant give", k=1)[0].doc_id == doc_id


@pytest.mark.slow  # a fresh `rag` process (~10 s: torch and the embedding model load)
def test_cli_ingest_json_lists_dropped_lines(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "lease.md").write_text(LEASE, encoding="utf-8")
    res = run_cli(["ingest", str(folder), "--json"], tmp_path / "data")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert list(report["dropped"].values()) == [["Share this article", "Copyright 2024 Kellsmouth Lettings Ltd."]]


# -- document ids and --prune (issue 13, items 1 and 2) ----------------------------------------------
def _write(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    return folder


def _doc_ids(store) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(d["doc_id"] for d in store.documents())


LONG = "a-very-long-file-name-that-goes-on-and-on-about-the-kellsmouth-harbour-and-its-boats-"
SIMILAR = {  # names the old scheme (stem, lower-cased, cut at 80 characters) turned into one id per pair
    "report.md": "Report one\n\nThe harbour master is Ada Quill.\n",
    "report.txt": "Report two\n\nThe ferry runs twice a day.\n",
    "Notes.md": "Notes one\n\nThe lighthouse is painted white.\n",
    "notes.md": "Notes two\n\nThe oyster festival is in May.\n",
    f"{LONG}2019.md": "Long one\n\nThe breakwater was built in 1901.\n",
    f"{LONG}2020.md": "Long two\n\nThe breakwater was rebuilt in 1988.\n",
    "sub/notes.md": "Notes three\n\nThe branch line closed in 1964.\n",
}


def test_document_ids_are_unique_per_source_and_stable(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Ids keep the relative path with case and extension: no two files share one, and a second run changes nothing.
    A flush group of one chunk makes every pair cross groups (the old code then crashed with KeyError)."""
    folder = _write(tmp_path / "docs", SIMILAR)
    ing = components_factory(ingest_flush_chunks=1).ingestor
    first = ing.ingest_paths([folder])
    assert sorted(first.added) == sorted(SIMILAR) and not first.failed
    assert _doc_ids(ing.store) == sorted(SIMILAR)
    ids = sorted(ing.store.all_ids())
    second = ing.ingest_paths([folder])
    assert sorted(second.unchanged) == sorted(SIMILAR) and not second.changed
    assert sorted(ing.store.all_ids()) == ids
    texts = " ".join(t for page in ing.store.pages(("documents",)) for t in page.texts)
    for text in SIMILAR.values():
        assert text.split("\n\n")[1].strip() in texts


def test_the_same_relative_path_under_two_roots_is_refused_not_merged(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = _write(tmp_path / "a", {"notes.md": "Notes A\n\nThe harbour master is Ada Quill.\n"})
    b = _write(tmp_path / "b", {"notes.md": "Notes B\n\nThe ferry runs twice a day.\n"})
    ing = components_factory().ingestor
    both = ing.ingest_paths([a, b])
    assert both.added == ["notes.md"] and list(both.failed) == [str(b / "notes.md")]
    assert "common parent" in both.failed[str(b / "notes.md")]
    ids = sorted(ing.store.all_ids())
    later = ing.ingest_paths([b])  # a/notes.md still exists: b's file may not take its id
    assert not later.changed and str(a / "notes.md") in later.failed[str(b / "notes.md")]
    assert sorted(ing.store.all_ids()) == ids and ing.store.documents()[0]["source"] == str(a / "notes.md")
    # The common parent gives each its own id.
    parent = ing.ingest_paths([tmp_path])
    assert sorted(parent.added) == ["a/notes.md", "b/notes.md"] and parent.rekeyed == {"notes.md": "a/notes.md"}
    assert _doc_ids(ing.store) == ["a/notes.md", "b/notes.md"]


def test_old_style_ids_are_rekeyed_on_the_next_ingest(components_factory, seeds_copy: Path) -> None:  # type: ignore[no-untyped-def]
    """A collection written under the old scheme (``002_2399800fba452946``) is re-keyed on the next run: each
    source ends up with one document under its new id, nothing duplicated, BM25 equal to the store."""
    parts = components_factory()
    ing = parts.ingestor
    ing.ingest_paths([seeds_copy])
    fresh = sorted(ing.store.all_ids())
    rows = next(ing.store.pages(("documents", "metadatas", "embeddings")))
    old_ids = [cid.replace(".txt::", "::", 1) for cid in rows.ids]
    metas = [{**m, "doc_id": m["doc_id"].removesuffix(".txt")} for m in rows.metadatas]
    for m in metas:
        m.pop("origin", None)
    ing.store.delete_ids(rows.ids)
    ing.store.upsert(old_ids, rows.embeddings, rows.texts, metas)  # type: ignore[arg-type]
    parts.index.lexical.sync()
    assert _doc_ids(ing.store) == sorted(p.stem for p in seeds_copy.iterdir())
    later = components_factory()  # the next run, in a new process: its BM25 comes from disk (old ids)
    report = later.ingestor.ingest_paths([seeds_copy])
    assert report.rekeyed == {p.stem: p.name for p in seeds_copy.iterdir()}
    assert sorted(ing.store.all_ids()) == fresh
    assert _doc_ids(ing.store) == sorted(p.name for p in seeds_copy.iterdir())
    assert later.index.lexical.current().ids == set(fresh)


def test_prune_touches_only_the_roots_being_ingested(components_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Moving a folder and re-ingesting it updates the sources; pruning another folder leaves it alone, and so
    are documents outside the roots whose file is gone (another worker's uploads)."""
    docs = _write(tmp_path / "docs", {"keep.md": "Keep\n\nThe harbour master is Ada Quill.\n",
                                      "gone.md": "Gone\n\nThe ferry runs twice a day.\n"})
    other = _write(tmp_path / "other", {"x.md": "Other\n\nThe lighthouse is painted white.\n",
                                        "y.md": "Other two\n\nThe breakwater was built in 1901.\n"})
    ing = components_factory().ingestor
    ing.ingest_paths([docs])
    moved = docs.rename(tmp_path / "moved")
    again = ing.ingest_paths([moved])
    assert sorted(again.unchanged) == ["gone.md", "keep.md"] and again.chunks_written == 0
    assert {d["source"] for d in ing.store.documents()} == {str(moved / "gone.md"), str(moved / "keep.md")}
    (moved / "gone.md").unlink()
    ing.ingest_paths([other])
    (other / "y.md").unlink()
    pruned = ing.ingest_paths([other], prune=True)
    assert pruned.pruned == ["y.md"]
    assert _doc_ids(ing.store) == ["gone.md", "keep.md", "x.md"]
    assert ing.ingest_paths([moved], prune=True).pruned == ["gone.md"]
    assert _doc_ids(ing.store) == ["keep.md", "x.md"]
