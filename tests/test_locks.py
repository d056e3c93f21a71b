"""Two processes on one data dir: the embedded Chroma folder is held by one process, and a second one (a CLI command
next to a running server, a second server) is refused with a clear line and changes nothing; the BM25 folder is
saved by its owner only. Real Chroma, real BM25 files, real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag.components import Components
from rag.errors import StoreUnavailable
from rag.settings import Settings
from rag.bench.processes import free_port
from tests.fixtures.cli import run_cli
from tests.fixtures.paths import ROOT

# A second process that opens the parts for ``settings`` and writes N chunks (random vectors: no model needed),
# then says "ready" and keeps everything open until its stdin closes.
HOLDER = textwrap.dedent("""
    import json, sys
    import numpy as np
    from rag.components import Components
    from rag.settings import Settings
    settings = Settings(**json.loads(sys.argv[1]))
    parts = Components(settings)
    n, prefix = int(sys.argv[2]), sys.argv[3]
    ids = [f"{prefix}{i}::h::00000/00001" for i in range(n)]
    metas = [{"doc_id": f"{prefix}{i}", "title": "t", "source": "s.txt", "chunk_index": 0, "n_chunks": 1, "start": 0,
              "end": 1} for i in range(n)]
    vectors = np.random.default_rng(0).random((n, 384), dtype=np.float32)
    parts.index.write(ids, vectors, [f"{prefix} harbour {i}" for i in range(n)], metas)
    parts.index.lexical.sync()
    print("ready", flush=True)
    sys.stdin.read()
""")


@contextmanager
def holder(settings: Settings, chunks: int = 3, prefix: str = "held") -> Iterator[subprocess.Popen[str]]:
    import json

    args = json.dumps({k: str(v) for k, v in settings.model_dump(include={"data_dir", "chroma_path"}).items() if v is not None})
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, args, str(chunks), prefix], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=60)


def _one_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    (line,) = res.stderr.strip().splitlines()
    return line


# -- item 6: the embedded Chroma folder --------------------------------------------------------------
@pytest.mark.slow  # five `rag` processes and a holder: about 20 s
def test_a_second_process_on_an_embedded_store_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    with holder(settings, chunks=3):
        for args in (["delete", "held0"], ["documents"], ["export", str(tmp_path / "dump.jsonl.gz")],
                     ["serve", "--port", str(free_port())]):
            try:
                res = run_cli(args, data, timeout=120)
            except subprocess.TimeoutExpired:
                pytest.fail(f"rag {args[0]} ran beside the process holding the store")
            line = _one_line(res)
            assert "in use by another rag process" in line and "pid" in line and "/v1/documents" in line, line
            assert "RAG_CHROMA_HOST" in line
        with pytest.raises(StoreUnavailable, match="in use by another rag process"):
            Components(settings).store  # noqa: B018 - opening it is the point
    assert not (tmp_path / "dump.jsonl.gz").exists()
    listed = run_cli(["documents", "--json"], data)  # the holder is gone: the store is free, and unchanged
    assert listed.returncode == 0, listed.stderr
    assert sorted(d["doc_id"] for d in __import__("json").loads(listed.stdout)) == ["held0", "held1", "held2"]


# -- item 7: the BM25 folder ----------------------------------------------------------------------------
def test_only_the_owner_saves_a_shared_bm25_folder(tmp_path: Path) -> None:
    """Two processes whose BM25 folders coincide (one data dir, two Chroma folders, as two workers with the same
    RAG_DATA_DIR have): the second one searches its own chunks from memory and never writes the folder."""
    from rag.index.bm25 import BM25Index

    data = tmp_path / "data"
    first = Settings(data_dir=data, chroma_path=tmp_path / "chroma-a")
    second = Settings(data_dir=data, chroma_path=tmp_path / "chroma-b")
    folder = first.bm25_dir
    with holder(first, chunks=3, prefix="a"):
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        parts = Components(second)
        parts.index.write([f"b{i}::h::00000/00001" for i in range(2)], _vectors(2), ["quill ferry", "quill dock"],
                          [_meta(f"b{i}") for i in range(2)])
        parts.index.lexical.sync()
        parts.index.lexical.save()
        assert {cid for cid, _ in parts.index.lexical.search("quill", 10)} == {"b0::h::00000/00001", "b1::h::00000/00001"}
        after = {p.name: p.read_bytes() for p in folder.iterdir()}
        assert after == before  # not one byte of the owner's files changed
        saved = BM25Index.load(folder)
        assert saved is not None and saved.ids == {f"a{i}::h::00000/00001" for i in range(3)}
    # The owner is gone: the next process to open the folder owns it and saves its own view.
    successor = Components(second)
    successor.index.lexical.sync()
    saved = BM25Index.load(folder)
    assert saved is not None and saved.ids == {"b0::h::00000/00001", "b1::h::00000/00001"}


def _vectors(n: int):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.random.default_rng(1).random((n, 384), dtype=np.float32)


def _meta(doc_id: str) -> dict[str, object]:
    return {"doc_id": doc_id, "title": "t", "source": "s.txt", "chunk_index": 0, "n_chunks": 1, "start": 0, "end": 1}
