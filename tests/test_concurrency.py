"""Shared parts under concurrent use, as the service uses them: uploads and syncs change the BM25 index while
searches read it; chunking and query embedding share the embedding model's tokenizer. Real BM25, real Chroma,
the real tokenizer; each test runs its threads for a fixed number of rounds (no timing asserts)."""

from __future__ import annotations

import threading
from collections.abc import Callable
import numpy as np
import pytest

from rag.components import Components
from rag.embedding import Embedder
from rag.index.bm25 import BM25Index
from tests.fixtures.paths import SEEDS

WORDS = ("taliban kabul nangarhar haqqani recruitment drone airport province leader fighters attack network "
         "salafi students border police mosque district commander militia").split()


def run_together(*workers: Callable[[], None] | threading.Thread) -> list[BaseException]:
    """Run each worker (a function, or a thread not yet started) until all end; the exceptions they raised."""
    errors: list[BaseException] = []
    threads = [w if isinstance(w, threading.Thread) else threading.Thread(target=w) for w in workers]
    for t in threads:
        work = t.run

        def guarded(work: Callable[[], None] = work) -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted on
                errors.append(exc)

        t.run = guarded  # type: ignore[method-assign]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _text(rng: np.random.Generator, n: int = 30) -> str:
    return " ".join(rng.choice(WORDS, size=n))


# -- item 8: BM25 read while it changes ----------------------------------------------------------------
def test_bm25_search_while_a_chunk_is_being_added(components_factory: Callable[..., Components]) -> None:
    """A search through the retriever and an upload's BM25 update, interleaved as a busy server interleaves them:
    the search has its index in hand, the update is halfway (its new word in the vocabulary, not yet counted),
    then the search reads. Reads must never see a half-made change (the bug: IndexError, a 500)."""
    components = components_factory(bm25_refresh_seconds=1e9)
    rng = np.random.default_rng(3)
    ids = [f"d{i}::h::00000/00001" for i in range(40)]
    metas = [{"doc_id": f"d{i}", "title": "t", "source": "s.txt", "chunk_index": 0, "n_chunks": 1, "start": 0, "end": 1}
             for i in range(40)]
    components.index.write(ids, rng.random((40, 384), dtype=np.float32), [_text(rng) for _ in ids], metas)
    lexical, retriever = components.index.lexical, components.retriever
    index = lexical.current()
    reader_searching, writer_halfway, reader_done = threading.Event(), threading.Event(), threading.Event()
    tokenize, attach = index.tokenize, index._attach
    found: list[list[str]] = []

    def search() -> None:
        try:
            found.append([p.chunk_id for p in retriever.search("zyzzyva kabul", k=20, mode="bm25")])
        finally:
            reader_done.set()

    def write() -> None:
        reader_searching.wait(timeout=3)
        lexical.add(["new::h::00000/00001"], ["zyzzyva kabul border"])

    reader = threading.Thread(target=search)

    def tokenize_hook(texts):  # type: ignore[no-untyped-def]
        if threading.current_thread() is reader:  # the search has its index: let the writer get halfway
            reader_searching.set()
            writer_halfway.wait(timeout=3)  # reads under the lock: the writer cannot get there, go on
        return tokenize(texts)

    def attach_hook(seg, fresh=True):  # type: ignore[no-untyped-def]
        writer_halfway.set()  # the new word is in the vocabulary, its counts are not yet attached
        reader_done.wait(timeout=3)
        return attach(seg, fresh)

    index.tokenize, index._attach = tokenize_hook, attach_hook  # type: ignore[method-assign]
    errors = run_together(reader, threading.Thread(target=write))
    index.tokenize, index._attach = tokenize, attach  # type: ignore[method-assign]
    assert not errors, errors
    assert found and len(found[0]) == len(set(found[0]))
    assert [cid for cid, _ in index.search("zyzzyva", 20)] == ["new::h::00000/00001"]  # the add completed


def test_bm25_add_with_one_id_twice_keeps_one_row() -> None:
    """The last text given for an id wins; no ghost row stays behind in counts or results."""
    index = BM25Index()
    index.add(["a", "b", "a"], ["kabul airport attack", "haqqani network", "taliban fighters in kabul"])
    reference = BM25Index()
    reference.add(["b", "a"], ["haqqani network", "taliban fighters in kabul"])
    assert len(index) == 2 and index.total_length == reference.total_length
    assert index.search("kabul", 10) == reference.search("kabul", 10)
    assert [cid for cid, _ in index.search("kabul taliban airport", 10)] == ["a"]
    assert index.search("airport", 10) == []


# -- item 9: the tokenizer shared by chunking and query embedding -------------------------------------
def test_tokenizer_shared_by_chunking_and_query_embedding(embedder: Embedder) -> None:
    """Chunk sizing (``encode``, ``count_tokens``) in one thread and query embedding in others: no
    "Already borrowed", and a query embeds exactly as it does alone (truncation stays on)."""
    long_text = (SEEDS / sorted(p.name for p in SEEDS.glob("*.txt"))[0]).read_text(encoding="utf-8")[:20_000]
    query = "Who has led ISIS-K since 2020? " * 60  # longer than the model's 256 tokens: truncated when embedded
    alone = embedder.embed_query(query)
    rounds, stop = 60, threading.Event()
    drift: list[float] = []

    def chunker() -> None:
        try:
            for _ in range(rounds):
                embedder.encode(long_text)
                embedder.count_tokens(long_text[:5000])
        finally:
            stop.set()

    def searcher() -> None:
        while not stop.is_set():
            vector = embedder.embed_query(query)
            if not np.allclose(vector, alone, atol=1e-4):
                drift.append(float(np.abs(vector - alone).max()))

    errors = run_together(chunker, searcher, searcher)
    assert not errors, errors
    assert not drift, drift[:3]
