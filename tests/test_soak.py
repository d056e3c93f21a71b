"""A concurrency soak against one real `rag serve` (embedded Chroma, extractive backend): 2 writer threads upload,
replace and delete documents while 8 reader threads search and ask, for ``SOAK_SECONDS``. No request may get a
5xx, no result list may hold a chunk twice, and afterwards the server's index (Chroma chunk ids, and the BM25
index it saved) must equal a clean ingest of the documents that survived."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from rag.components import Components
from rag.embedding import Embedder
from rag.index.bm25 import BM25Index
from service.documents import DocumentService
from tests.fixtures.paths import SEEDS
from tests.fixtures.seeded import make_settings
from tests.fixtures.servers import rag_server, seeded_data_dir, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.server]
SOAK_SECONDS = 60
WRITERS, READERS, NAMES_PER_WRITER = 2, 8, 4
QUERIES = ["Who has led ISIS-K since 2020?", "Taliban fighters in Nangarhar", "Kabul airport attack", "harbour ledger",
           "drone strike leader killed", "soak marker ledger entry", "recruitment of Salafi students"]


def _sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt")))
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if 8 <= len(s.split()) <= 60]


def bm25_rows(index: BM25Index) -> dict[str, dict[str, int]]:
    """Each live chunk's term frequencies, by term (what a search scores)."""
    rows: dict[str, dict[str, int]] = {}
    csr = {id(seg): seg.tf.tocsr() for seg in index.segments}
    for cid, (seg, row) in index.where.items():
        r = csr[id(seg)][row]
        rows[cid] = {index.terms[c]: int(v) for c, v in zip(r.indices, r.data, strict=True)}
    return rows


class Soak:
    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.server_errors: list[str] = []
        self.duplicates: list[list[str]] = []
        self.transport_errors: list[str] = []
        self.surviving: dict[str, bytes] = {}  # upload name -> content, as the writers left them
        self.sentences = _sentences()

    def record(self, kind: str, res: httpx.Response) -> None:
        with self.lock:
            self.statuses[(kind, res.status_code)] += 1
            if res.status_code >= 500:
                self.server_errors.append(f"{kind} {res.status_code} {res.text[:300]}")

    def unique(self, ids: list[str]) -> None:
        if len(ids) != len(set(ids)):
            with self.lock:
                self.duplicates.append(ids)

    def writer(self, w: int) -> None:
        rng = random.Random(w)
        names = [f"soak-w{w}-{k}.txt" for k in range(NAMES_PER_WRITER)]
        held: dict[str, bytes] = {}
        version = 0
        with httpx.Client(base_url=self.url, timeout=300) as client:
            while not self.stop.is_set():
                name = rng.choice(names)
                try:
                    if name in held and rng.random() < 0.4:
                        res = client.delete(f"/v1/documents/{name}")
                        self.record("delete", res)
                        if res.status_code == 200:
                            del held[name]
                        continue
                    version += 1
                    body = " ".join(rng.sample(self.sentences, rng.randint(2, 12)))
                    data = f"Soak ledger {name}\n\nsoak marker ledger entry {w} {version}. {body}\n".encode()
                    res = client.post("/v1/documents", files={"file": (name, data, "text/plain")})
                    self.record("upload", res)
                    if res.status_code in (200, 201):
                        held[name] = data
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.transport_errors.append(f"writer: {type(exc).__name__}: {exc}")
        with self.lock:
            self.surviving.update(held)

    def reader(self, r: int) -> None:
        rng = random.Random(100 + r)
        with httpx.Client(base_url=self.url, timeout=300) as client:
            while not self.stop.is_set():
                query = rng.choice(QUERIES)
                try:
                    if rng.random() < 0.7:
                        mode = rng.choice(["hybrid", "bm25", "dense"])
                        res = client.post("/v1/search", json={"query": query, "k": rng.choice([5, 20]), "mode": mode})
                        self.record(f"search-{mode}", res)
                        if res.status_code == 200:
                            self.unique([p["chunk_id"] for p in res.json()["passages"]])
                    else:
                        res = client.post("/v1/ask", json={"question": query, "backend": "extractive"})
                        self.record("ask", res)
                        if res.status_code == 200:
                            self.unique([p["chunk_id"] for p in res.json()["passages"]])
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.transport_errors.append(f"reader: {type(exc).__name__}: {exc}")


def test_writers_and_readers_against_one_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder,
                                                 figure) -> None:  # type: ignore[no-untyped-def]
    data_dir = seeded_data_dir(tmp_path_factory, "soak-server")
    with rag_server(data_dir, {"RAG_LLM_BACKEND": "extractive"}) as url:
        wait_ready(url)
        soak = Soak(url)
        threads = [threading.Thread(target=soak.writer, args=(w,)) for w in range(WRITERS)]
        threads += [threading.Thread(target=soak.reader, args=(r,)) for r in range(READERS)]
        for t in threads:
            t.start()
        time.sleep(SOAK_SECONDS)
        soak.stop.set()
        for t in threads:
            t.join(600)
        listed = httpx.get(f"{url}/v1/documents", timeout=120).json()["documents"]
    by_kind = Counter()
    for (kind, status), n in soak.statuses.items():
        by_kind[f"{kind} {status}"] += n
    figure("soak requests by kind and status", dict(sorted(by_kind.items())))
    figure("soak 5xx / duplicate lists / transport errors", [len(soak.server_errors), len(soak.duplicates), len(soak.transport_errors)])
    assert not soak.server_errors, soak.server_errors[:5]
    assert not soak.duplicates, soak.duplicates[:2]
    assert not soak.transport_errors, soak.transport_errors[:5]
    assert sum(n for (kind, _), n in soak.statuses.items() if kind == "upload") > 4, soak.statuses
    assert sum(n for (kind, _), n in soak.statuses.items() if kind.startswith("search")) > 20, soak.statuses
    assert {s for (_, s) in soak.statuses} <= {200, 201}, soak.statuses

    seeds = sorted(p.name for p in SEEDS.iterdir() if p.is_file())
    assert sorted(d["doc_id"] for d in listed) == sorted([*seeds, *soak.surviving])
    uploads = data_dir / "uploads"
    assert {p.name: p.read_bytes() for p in uploads.iterdir() if p.is_file()} == soak.surviving

    # The server is stopped: its store and saved BM25 index, against a clean ingest of what survived.
    served = Components(make_settings(data_dir), embedder=embedder)
    clean = Components(make_settings(tmp_path_factory.mktemp("soak-clean") / "data"), embedder=embedder)
    clean.ingestor.ingest_paths([SEEDS])
    docs = DocumentService(clean, clean.settings.data_dir / "uploads")
    for name, data in sorted(soak.surviving.items()):
        docs.upload(name, data)
    served_ids, clean_ids = sorted(served.store.all_ids()), sorted(clean.store.all_ids())
    assert served_ids == clean_ids
    saved = BM25Index.load(served.settings.bm25_dir)
    assert saved is not None
    figure("soak final index (chunks, documents)", [len(served_ids), len(listed)])
    assert bm25_rows(saved) == bm25_rows(clean.index.lexical.current())
    assert saved.total_length == clean.index.lexical.current().total_length
