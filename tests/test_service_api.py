"""The HTTP service's native API, operations endpoints, auth, bad input and concurrency, against real `rag serve` processes."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, SEEDS, free_port, make_settings, run_cli
from tests.servers import rag_server

pytestmark = pytest.mark.server

LEADER_Q = "Who has led ISIS-K since 2020?"
LEADER_DOC = "002_2399800fba452946"
UPLOAD_LIMIT = 200_000
# (question, expected text in the answer (lowercase), cited doc) answered by the extractive backend.
EXTRACTIVE = [
    (LEADER_Q, "muhajir", LEADER_DOC),
    ("How many attacks per month has IS-K averaged since the Taliban took control?", "14 attacks", "004_1dece5685c29ddfe"),
    ("How many fighters does IS-K have?", "2,000", LEADER_DOC),
    ("What is the capital of Peru?", None, None),  # abstains
]
# Answered by the real model (see tests/test_answering.py).
REAL = [
    (LEADER_Q, "muhajir", LEADER_DOC),
    ("What was the final death toll of the March 2017 attack on the military hospital in Kabul?", "38", "000_bc66558d9afb2305"),
    ("How many attacks per month has IS-K averaged since the Taliban took control?", "14", "004_1dece5685c29ddfe"),
]


# -- shared helpers (also used by test_service_openai.py and test_service_fuzz.py) ---------------------
def seeded_data_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A private data dir holding the ingested seeds: `rag ingest` runs once per session into a template, then it is copied."""
    template = tmp_path_factory.getbasetemp() / "service-seed-template"
    if not (template / "ok").is_file():
        shutil.rmtree(template, ignore_errors=True)
        res = run_cli(["ingest", str(SEEDS)], template / "data")
        assert res.returncode == 0, res.stderr
        (template / "ok").write_text("ingested")
    target = tmp_path_factory.mktemp(name) / "data"
    shutil.copytree(template / "data", target)
    return target


def wait_ready(url: str, headers: dict[str, str] | None = None, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        res = httpx.get(f"{url}/readyz", headers=headers, timeout=10)
        if res.status_code == 200:
            return res.json()
        assert res.status_code == 503, res.text
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {res.text}")
        time.sleep(0.5)


def chat(url: str, question: str, backend: str | None = None, timeout: float = 600, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"model": "any", "messages": [{"role": "user", "content": question}], **extra}
    if backend:
        body["backend"] = backend
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)


def assert_error(res: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert res.status_code == status, (res.status_code, res.text)
    err = res.json()["error"]
    assert set(err) >= {"message", "type", "code"} and err["message"], err
    for word in words:
        assert word.lower() in err["message"].lower(), err
    assert "Traceback" not in res.text
    return err


def assert_answers(data: dict[str, Any], expected: str | None, doc_id: str | None) -> None:
    content = data["choices"][0]["message"]["content"]
    if expected is None:
        assert data["abstained"] and not data["sources"], data
        return
    assert expected in content.lower(), content
    assert not data["abstained"]
    assert doc_id in {s["doc_id"] for s in data["sources"]}, data["sources"]
    for s in data["sources"]:
        assert f"[{s['n']}]" in content


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[tuple[str, Path]]:
    """The default configuration (llama.cpp) with a small upload limit."""
    data_dir = seeded_data_dir(tmp_path_factory, "api-server")
    env = {"RAG_LLM_MODEL_PATH": str(model_path), "RAG_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    with rag_server(data_dir, env) as url:
        yield url, data_dir


@pytest.fixture(scope="module")
def url(server: tuple[str, Path]) -> str:
    return server[0]


# -- operations ---------------------------------------------------------------------------------
def test_health_and_readiness(url: str) -> None:
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = wait_ready(url)
    assert ready["status"] == "ready" and ready["checks"] == {"store": "ok", "generator": "ok"}
    assert ready["chunks"] > 50 and ready["generation"] == {"in_flight": 0, "capacity": 16}


def test_readyz_is_503_with_a_reason_when_the_store_is_down(tmp_path: Path) -> None:
    from tests.conftest import free_port

    env = {"RAG_CHROMA_HOST": "127.0.0.1", "RAG_CHROMA_PORT": str(free_port()), "RAG_CHROMA_TIMEOUT": "1",
           "RAG_LLM_BACKEND": "extractive"}
    with rag_server(tmp_path / "data", env) as down:
        deadline = time.monotonic() + 60
        while True:
            res = httpx.get(f"{down}/readyz", timeout=30)
            assert res.status_code == 503
            if "loading" not in res.json()["checks"]["store"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "chroma" in res.json()["checks"]["store"].lower(), res.text
        assert res.json()["checks"]["generator"].startswith("ok")
        assert httpx.get(f"{down}/healthz").status_code == 200
        assert_error(httpx.post(f"{down}/v1/search", json={"query": "anything"}, timeout=60), 503, "chroma")
        assert_error(chat(down, LEADER_Q, timeout=60), 503, "chroma")


def test_a_broken_model_is_503_but_extractive_answers_still_work(tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = seeded_data_dir(tmp_path_factory, "broken-model")
    broken = data_dir.parent / "broken.gguf"
    broken.write_bytes(b"not a model")
    with rag_server(data_dir, {"RAG_LLM_MODEL_PATH": str(broken)}) as bad:
        deadline = time.monotonic() + 120
        while True:
            res = httpx.get(f"{bad}/readyz", timeout=30)
            assert res.status_code == 503
            if "loading" not in json.dumps(res.json()["checks"]) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert res.json()["checks"]["store"] == "ok" and "model" in res.json()["checks"]["generator"], res.text
        err = assert_error(chat(bad, LEADER_Q, timeout=60), 503, "model")
        assert err["code"] == "model_unavailable" and err["type"] == "server_error"
        ok = chat(bad, LEADER_Q, backend="extractive", timeout=60)
        assert ok.status_code == 200 and "Muhajir" in ok.json()["choices"][0]["message"]["content"]


# -- native answers and search -------------------------------------------------------------------
def test_ask_returns_the_answer_object(url: str) -> None:
    res = httpx.post(f"{url}/v1/ask", json={"question": LEADER_Q, "backend": "extractive"}, timeout=120)
    assert res.status_code == 200, res.text
    data = res.json()
    assert "Muhajir" in data["answer"] and not data["abstained"] and data["backend"] == "extractive"
    assert data["citations"][0]["doc_id"] == LEADER_DOC and data["citations"][0]["quote"]
    assert {"retrieve_ms", "generate_ms", "verify_ms", "total_ms"} <= set(data["timings"])
    assert data["passages"] and data["passages"][0]["text"]

    followup = httpx.post(f"{url}/v1/ask", timeout=120, json={
        "question": "Which country is he from?", "backend": "extractive", "mode": "hybrid", "top_k": 4,
        "history": [{"role": "user", "content": LEADER_Q}, {"role": "assistant", "content": data["answer"]}]})
    assert followup.status_code == 200, followup.text
    assert "Context:" in followup.json()["standalone_question"]


def test_search_returns_ranked_passages(url: str) -> None:
    for mode in ("hybrid", "bm25", "dense"):
        res = httpx.post(f"{url}/v1/search", json={"query": LEADER_Q, "k": 3, "mode": mode}, timeout=60)
        assert res.status_code == 200, res.text
        passages = res.json()["passages"]
        assert len(passages) == 3 and [p["rank"] for p in passages] == [1, 2, 3]
        assert any("Shahab al-Muhajir" in p["text"] for p in passages)
        assert {"doc_id", "title", "source", "start", "end", "score"} <= set(passages[0])


def test_documents_list(url: str) -> None:
    res = httpx.get(f"{url}/v1/documents")
    assert res.status_code == 200
    docs = {d["doc_id"]: d for d in res.json()["documents"]}
    assert {p.stem for p in SEEDS.glob("*.txt")} <= set(docs)
    assert docs[LEADER_DOC]["title"] == "Prospects for ISIS in Afghanistan" and not docs[LEADER_DOC]["uploaded"]


# -- uploads --------------------------------------------------------------------------------------
def _search_texts(url: str, query: str, mode: str = "hybrid") -> list[dict[str, Any]]:
    res = httpx.post(f"{url}/v1/search", json={"query": query, "k": 5, "mode": mode}, timeout=60)
    assert res.status_code == 200, res.text
    return res.json()["passages"]


def test_upload_search_and_delete(server: tuple[str, Path]) -> None:
    url, data_dir = server
    txt = ("Lighthouses of Quillon\n\nThe Zorblax lighthouse on Quillon Island was painted teal in 1987 "
           "by the keeper Marta Velloso. It guides ships past the Quillon reef.\n")
    html = ("<html><head><title>Ignored title</title><script>var x = 'scriptword';</script></head><body>"
            "<nav>menu</nav><h1>Frobnitz Orchard Report</h1><p>The Frobnitz orchard near Vantaa grows "
            "forty-two varieties of blue pears.</p></body></html>")
    res = httpx.post(f"{url}/v1/documents", files={"file": ("quillon lights.txt", txt.encode(), "text/plain")}, timeout=120)
    assert res.status_code == 201, res.text
    up_txt = res.json()
    assert up_txt["doc_id"] == "quillon_lights" and up_txt["status"] == "added" and up_txt["uploaded"]
    assert up_txt["title"] == "Lighthouses of Quillon"
    res = httpx.post(f"{url}/v1/documents", files={"file": ("orchard.html", html.encode(), "text/html")}, timeout=120)
    assert res.status_code == 201, res.text
    up_html = res.json()
    assert up_html["doc_id"] == "orchard" and up_html["title"] == "Frobnitz Orchard Report"

    uploads = data_dir / "uploads"
    assert (uploads / "quillon_lights.txt").read_text() == txt and (uploads / "orchard.html").is_file()
    # Searchable at once, by words (BM25 refreshed) and by meaning.
    for mode in ("bm25", "hybrid"):
        assert _search_texts(url, "Zorblax lighthouse teal", mode)[0]["doc_id"] == "quillon_lights"
        assert _search_texts(url, "Frobnitz blue pears", mode)[0]["doc_id"] == "orchard"
    assert "scriptword" not in json.dumps(_search_texts(url, "scriptword menu", "bm25"))
    again = httpx.post(f"{url}/v1/documents", files={"file": ("quillon lights.txt", txt.encode(), "text/plain")}, timeout=120)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    listed = {d["doc_id"]: d for d in httpx.get(f"{url}/v1/documents").json()["documents"]}
    assert listed["orchard"]["uploaded"] and listed["quillon_lights"]["n_chunks"] >= 1

    answer = httpx.post(f"{url}/v1/ask", json={"question": "What colour was the Zorblax lighthouse painted in 1987?",
                                                "backend": "extractive"}, timeout=120).json()
    assert "teal" in answer["answer"] and answer["citations"][0]["doc_id"] == "quillon_lights"

    for doc_id, query, name in (("quillon_lights", "Zorblax lighthouse teal", "quillon_lights.txt"),
                                ("orchard", "Frobnitz blue pears", "orchard.html")):
        res = httpx.delete(f"{url}/v1/documents/{doc_id}")
        assert res.status_code == 200 and res.json()["chunks_removed"] >= 1, res.text
        assert all(p["doc_id"] != doc_id for p in _search_texts(url, query, "bm25"))
        assert all(p["doc_id"] != doc_id for p in _search_texts(url, query, "hybrid"))
        assert not (uploads / name).exists()
        assert_error(httpx.delete(f"{url}/v1/documents/{doc_id}"), 404, doc_id)
    assert_error(httpx.delete(f"{url}/v1/documents/no-such-doc"), 404, "no-such-doc")


def test_upload_rejections(url: str) -> None:
    def upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> httpx.Response:
        return httpx.post(f"{url}/v1/documents", files={"file": (name, data, content_type)}, timeout=120)

    assert_error(upload("tool.exe", b"MZ\x90\x00"), 415, "unsupported", ".exe")
    assert_error(upload("README", b"plain words"), 415, "unsupported")
    assert_error(upload("big.txt", b"word " * (UPLOAD_LIMIT // 5 + 10)), 413, "limit")
    assert_error(upload("huge.txt", b"w" * (UPLOAD_LIMIT + 200_000)), 413, "larger than the limit")
    assert_error(upload("empty.txt", b""), 400, "empty")
    assert_error(upload("binary.txt", b"\x00\x01\x02" * 100), 400, "binary")
    assert_error(upload("blank.md", b"   \n\n  "), 400, "no text")
    missing = httpx.post(f"{url}/v1/documents", data={"other": "x"}, timeout=30)
    assert_error(missing, 422, "file")
    not_multipart = httpx.post(f"{url}/v1/documents", json={"file": "x"}, timeout=30)
    assert 400 <= not_multipart.status_code < 500 and "error" in not_multipart.json()
    names = {d["doc_id"] for d in httpx.get(f"{url}/v1/documents").json()["documents"]}
    assert not names & {"tool", "readme", "big", "huge", "empty", "binary", "blank"}


def test_upload_path_traversal_is_stored_inside_uploads(server: tuple[str, Path]) -> None:
    url, data_dir = server
    text = b"Traversal test\n\nThe quokka named Biscuitron lives on Rottnest Island.\n"
    for name in ("../../evil.txt", "..\\..\\windows\\evil.txt", "/etc/evil.txt", ".hidden/../../evil.txt"):
        res = httpx.post(f"{url}/v1/documents", files={"file": (name, text, "text/plain")}, timeout=120)
        assert res.status_code in (200, 201), res.text
        assert res.json()["doc_id"] == "evil" and res.json()["filename"] == "evil.txt"
    uploads = (data_dir / "uploads").resolve()
    stored = [p for p in data_dir.parent.rglob("evil*") if p.is_file()]
    assert stored == [uploads / "evil.txt"], stored
    assert not Path("/etc/evil.txt").exists()
    assert res.json()["source"] == str(uploads / "evil.txt")
    assert httpx.delete(f"{url}/v1/documents/evil").status_code == 200
    assert not (uploads / "evil.txt").exists()


HOSTILE_NAMES = [
    "/etc/x.md", "..\\..\\x.md", "../../x.md", "....//....//x.md", "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fx.md",
    "%2e%2e%2f%2e%2e%2fx.md", "a\x00b.md", "../\x00../x.md", "y" * 600 + ".md", "x" * 5000 + ".md", "../" * 300 + "x.md",
]
FOREIGN_NAMES = ["отчёт.md", "報告.md", "../../ü.md"]  # nothing ASCII in the stem: kept apart, extension kept


def _multipart(disposition: bytes, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body whose part header is sent byte for byte (httpx escapes NUL, quotes and newlines in names)."""
    boundary = b"hostile-boundary-7d1c"
    body = (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; " + disposition
            + b"\r\nContent-Type: text/markdown\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n")
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


def _outside(root: Path, inside: Path) -> set[Path]:
    return {p for p in root.rglob("*") if not p.is_relative_to(inside)}


def test_hostile_upload_names_write_nothing_outside_the_data_dir(server: tuple[str, Path]) -> None:
    """Traversal, absolute, NUL, percent-encoded (also RFC 2231 ``filename*``) and overlong names: the file lands
    in <data_dir>/uploads under a plain name, or the upload is refused; nothing appears anywhere else.
    Names in other scripts are stored too, each under its own name, with their extension."""
    url, data_dir = server
    uploads = (data_dir / "uploads").resolve()
    tmp_root = data_dir.parent.parent  # the session's temporary tree, holding every test's data dir
    # Where a naive join of each name could land: the tmp tree, the server's working dir, the filesystem root.
    naive = {(base / n.replace("\\", "/").replace("\x00", "")).resolve()
             for n in HOSTILE_NAMES if len(n) < 255 for base in (uploads, data_dir, ROOT, Path("/"))}
    naive = {p for p in naive if not p.is_relative_to(uploads)}
    before, existed = _outside(tmp_root, data_dir), {p for p in naive if p.exists()}
    inside_before = set(data_dir.rglob("*"))
    text = b"# Hostile names\n\nThe pangolin named Quorvex guards the archive of Tessaly.\n"
    requests = [httpx.post(f"{url}/v1/documents", files={"file": (n, text, "text/markdown")}, timeout=120)
                for n in HOSTILE_NAMES + FOREIGN_NAMES]
    for disposition in (b'filename="a\x00../../x.md"', b'filename="../../x\x00.md"',
                        b"filename*=UTF-8''..%2F..%2Fx.md", b"filename*=UTF-8''%2Fetc%2Fx.md"):
        body, headers = _multipart(disposition, text)
        requests.append(httpx.post(f"{url}/v1/documents", content=body, headers=headers, timeout=120))
    stored: set[str] = set()
    for res in requests:
        assert res.status_code in (200, 201) or 400 <= res.status_code < 500, res.text
        if res.status_code in (200, 201):
            data = res.json()
            assert Path(data["source"]).parent == uploads and "/" not in data["filename"] and "\x00" not in data["filename"], data
            assert len(data["filename"]) <= 255, data["filename"]
            stored.add(data["doc_id"])
    assert stored, "every hostile name was refused: nothing was checked"
    foreign_responses = requests[len(HOSTILE_NAMES):len(HOSTILE_NAMES) + len(FOREIGN_NAMES)]
    assert [r.status_code for r in foreign_responses] == [201] * len(FOREIGN_NAMES), [r.text for r in foreign_responses]
    foreign = [r.json()["filename"] for r in foreign_responses]
    assert len(set(foreign)) == len(FOREIGN_NAMES) and all(f.endswith(".md") for f in foreign), foreign
    assert _outside(tmp_root, data_dir) == before
    assert {p for p in naive if p.exists()} == existed
    # Inside the data dir, only the uploads folder and the index (Chroma, BM25) may gain files.
    settings = make_settings(data_dir)
    index_dirs = [uploads, settings.chroma_dir.resolve(), settings.bm25_dir.parent.resolve()]
    new = {p.resolve() for p in set(data_dir.rglob("*")) - inside_before}
    assert all(any(p.is_relative_to(d) for d in index_dirs) for p in new), new - {p for p in new if p.is_relative_to(uploads)}
    for doc_id in stored:
        assert httpx.delete(f"{url}/v1/documents/{doc_id}", timeout=120).status_code == 200
    assert not any("Quorvex" in _text(p) for p in uploads.iterdir())


def _text(path: Path) -> str:
    """A small regular file's text, else ''."""
    try:
        return path.read_text(errors="replace") if path.is_file() and path.stat().st_size < 1_000_000 else ""
    except OSError:
        return ""


# -- bad input ------------------------------------------------------------------------------------
def test_bad_input_gets_clear_4xx(url: str) -> None:
    post = lambda path, **kw: httpx.post(f"{url}{path}", timeout=60, **kw)  # noqa: E731
    headers = {"Content-Type": "application/json"}
    # Malformed JSON: OpenAI routes answer 400, native ones 422; both in the one error shape.
    assert_error(post("/v1/chat/completions", content=b'{"messages": [', headers=headers), 400, "json")
    assert_error(post("/v1/ask", content=b"{not json", headers=headers), 422, "json")
    assert_error(post("/v1/search", content=b"", headers=headers), 422)
    msgs = lambda *m: {"model": "x", "messages": list(m)}  # noqa: E731
    cases: list[tuple[dict[str, Any], str]] = [
        (msgs({"role": "user", "content": ""}), "empty"),
        (msgs({"role": "user", "content": "   \n"}), "empty"),
        (msgs({"role": "user", "content": "why? " * 1000}), "limit is 4000"),
        (msgs({"role": "tool", "content": "hi"}), "role"),
        (msgs({"role": "function", "content": "hi"}), "role"),
        (msgs({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}), "last message"),
        (msgs({"role": "system", "content": "be brief"}), "last message"),
        (msgs({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}), "text"),
        (msgs({"role": "user", "content": 42}), "content"),
        (msgs({"role": "user"}), "empty"),
        ({"model": "x", "messages": []}, "messages"),
        ({"model": "x"}, "messages"),
        ({"model": "x", "messages": "Who?"}, "messages"),
        ({**msgs({"role": "user", "content": "Who?"}), "n": 3}, "n"),
        ({**msgs({"role": "user", "content": "Who?"}), "backend": "gpt9"}, "backend"),
        ({**msgs({"role": "user", "content": "Who?"}), "backend": "openai"}, "not enabled"),
        ({**msgs({"role": "user", "content": "Who?"}), "top_k": 0}, "top_k"),
        ({**msgs({"role": "user", "content": "Who?"}), "mode": "psychic"}, "mode"),
    ]
    for body, word in cases:
        err = assert_error(post("/v1/chat/completions", json=body), 400, word)
        assert err["type"] == "invalid_request_error"
    assert_error(post("/v1/chat/completions", content=b'["a list"]', headers=headers), 400)
    assert_error(post("/v1/ask", json={"question": ""}), 400, "empty")
    assert_error(post("/v1/ask", json={"question": "x" * 4001}), 400, "limit")
    assert_error(post("/v1/ask", json={"question": "Who?", "history": [{"role": "tool", "content": "x"}]}), 422, "role")
    assert_error(post("/v1/ask", json={"question": "Who?", "top_k": 1000}), 422, "top_k")
    assert_error(post("/v1/search", json={"query": " "}), 400, "empty")
    assert_error(post("/v1/search", json={"query": "x", "k": 0}), 422, "k")
    assert_error(post("/v1/search", json={"query": "x", "mode": "psychic"}), 422, "mode")
    assert_error(post("/v1/chat/completions", content=b"x" * 1_100_000, headers=headers), 413, "larger than the limit")
    assert_error(httpx.get(f"{url}/v1/nowhere"), 404, "not found")
    assert_error(httpx.put(f"{url}/v1/ask", json={}), 405, "not allowed")
    assert_error(httpx.get(f"{url}/v1/models/not-our-model"), 404, "not-our-model")


def test_unexpected_errors_become_a_json_500_without_details(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from rag.settings import Settings
    from service.app import create_app

    app = create_app(Settings(data_dir=tmp_path))  # not started: no component is loaded

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    res = TestClient(app).get("/v1/boom")
    err = assert_error(res, 500, "internal server error")
    assert err["type"] == "server_error" and "secret" not in res.text


# -- concurrency ------------------------------------------------------------------------------------
def test_sixteen_concurrent_chat_requests_all_complete_correctly(url: str) -> None:
    wait_ready(url)
    jobs: list[tuple[str, str | None, str | None, str | None]] = [
        (q, exp, doc, "extractive") for q, exp, doc in (EXTRACTIVE * 4)[:13]]
    jobs += [(q, exp, doc, None) for q, exp, doc in REAL]  # the default backend: the real model
    assert len(jobs) == 16
    barrier = threading.Barrier(len(jobs))

    def run(job: tuple[str, str | None, str | None, str | None]) -> tuple[Any, httpx.Response]:
        barrier.wait()
        return job, chat(url, job[0], job[3])

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    for (question, expected, doc_id, backend), res in results:
        assert res.status_code == 200, (question, res.text)
        data = res.json()
        assert data["backend"] in ((backend,) if backend else ("llamacpp", "extractive")), data
        assert_answers(data, expected, doc_id)
    assert sum(1 for _, r in results if r.json()["backend"] == "llamacpp") >= 2
    assert httpx.get(f"{url}/readyz").json()["generation"]["in_flight"] == 0


def test_metrics_count_requests_and_stage_latencies(url: str) -> None:
    httpx.get(f"{url}/healthz")
    res = httpx.get(f"{url}/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    text = res.text
    assert re.search(r'rag_http_requests_total\{method="GET",route="/healthz",status="200"\} [1-9]', text)
    assert re.search(r'rag_http_requests_total\{method="POST",route="/v1/chat/completions",status="400"\} [1-9]', text)
    assert re.search(r'rag_http_requests_total\{method="DELETE",route="/v1/documents/\{doc_id\}",status="404"\} [1-9]', text)
    for stage in ("retrieve", "generate", "verify", "total"):
        assert re.search(rf'rag_answer_stage_seconds_count\{{stage="{stage}"\}} ([2-9]|\d\d)', text), stage
    assert re.search(r'rag_http_request_duration_seconds_count\{method="GET",route="/healthz"\} [1-9]', text)
    assert re.search(r'rag_answers_total\{abstained="false",backend="llamacpp"\} [1-9]', text)
    assert "rag_generation_in_flight 0.0" in text and "rag_generation_capacity 16.0" in text
    assert 'route="unmatched"' in text  # the 404 above, without a per-path label


# -- auth -------------------------------------------------------------------------------------------
API_KEY = "test-key-5f2c81d0"


def _route_requests() -> list[tuple[str, str]]:
    """(method, concrete path) for every route of the app, found by walking app.routes."""
    from fastapi.routing import APIRoute
    from starlette.routing import Mount, Route

    from rag.settings import Settings
    from service.app import create_app

    app = create_app(Settings(data_dir=Path("/nonexistent-never-opened"), api_key=API_KEY))  # type: ignore[arg-type]
    out: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            out.append(("GET", route.path + "/app.js"))
        elif isinstance(route, (APIRoute, Route)):
            path = re.sub(r"\{[^}]+\}", "some-id", route.path)
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                out.append((method, path))
    return out


def test_api_key_guards_every_route_but_health_and_page(tmp_path_factory: pytest.TempPathFactory) -> None:
    routes = _route_requests()
    paths = {p for _, p in routes}
    assert {"/v1/chat/completions", "/v1/models", "/v1/ask", "/v1/search", "/v1/documents", "/v1/documents/some-id",
            "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/", "/static/app.js"} <= paths
    public = {"/healthz", "/", "/static/app.js"}
    data_dir = seeded_data_dir(tmp_path_factory, "auth-server")
    with rag_server(data_dir, {"RAG_API_KEY": API_KEY, "RAG_LLM_BACKEND": "extractive"}) as url:
        checked = 0
        for method, path in routes:
            for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": f"Basic {API_KEY}"}):
                res = httpx.request(method, f"{url}{path}", headers=headers, timeout=30)
                if path in public:
                    assert res.status_code != 401, (method, path)
                    continue
                assert res.status_code == 401, (method, path, res.status_code)
                assert res.headers["www-authenticate"].startswith("Bearer"), res.headers
                assert res.json()["error"]["type"] == "authentication_error"
                checked += 1
        assert checked >= 3 * 12
        assert httpx.get(f"{url}/healthz").status_code == 200
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and "html" in page.headers["content-type"]
        good = {"Authorization": f"Bearer {API_KEY}"}
        assert httpx.get(f"{url}/v1/models", headers=good).status_code == 200
        assert httpx.get(f"{url}/openapi.json", headers=good).status_code == 200
        res = httpx.post(f"{url}/v1/chat/completions", headers=good, timeout=120,
                         json={"model": "x", "messages": [{"role": "user", "content": LEADER_Q}]})
        assert res.status_code == 200 and "Muhajir" in res.json()["choices"][0]["message"]["content"]
        log_text = "".join(p.read_text() for p in data_dir.parent.glob("serve-*.log"))
    assert "wrong-key" not in log_text and API_KEY not in log_text
    assert "status=401" in log_text


def test_keys_never_reach_the_logs_even_at_debug(tmp_path_factory: pytest.TempPathFactory) -> None:
    """RAG_API_KEY and RAG_LLM_API_KEY stay out of DEBUG JSON logs, whatever clients do with them."""
    key, wrong, llm_key = (f"{name}-{secrets.token_hex(16)}" for name in ("apikey", "wrongkey", "llmkey"))
    data_dir = seeded_data_dir(tmp_path_factory, "key-log-server")
    env = {"RAG_API_KEY": key, "RAG_LOG_LEVEL": "DEBUG", "RAG_LOG_JSON": "true", "RAG_LLM_BACKEND": "extractive",
           # The openai backend is enabled per request against a dead server: its client's DEBUG logs are checked too.
           "RAG_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1", "RAG_LLM_API_KEY": llm_key, "RAG_LLM_TIMEOUT": "2"}
    bearer = {"Authorization": f"Bearer {key}"}
    with rag_server(data_dir, env) as url:
        port = url.rsplit(":", 1)[1]
        wait_ready(url, bearer)
        question = {"model": "x", "messages": [{"role": "user", "content": LEADER_Q}]}
        expected = [
            (200, "GET", "/v1/models", bearer, None),
            (200, "POST", "/v1/chat/completions", bearer, question),
            (200, "POST", "/v1/chat/completions", bearer, {**question, "backend": "openai"}),  # falls back
            (200, "POST", "/v1/chat/completions", bearer, {**question, "stream": True}),
            (200, "GET", f"/readyz?api_key={key}", bearer, None),
            (200, "GET", f"/healthz?token={key}", bearer, None),
            (404, "GET", f"/v1/nowhere?api_key={key}", bearer, None),
            (400, "POST", "/v1/chat/completions", bearer, {"model": "x", "messages": [{"role": "user", "content": ""}]}),
            (401, "GET", "/v1/models", {"Authorization": f"Bearer {wrong}"}, None),
            (401, "POST", "/v1/ask", {"Authorization": f"Bearer {wrong}"}, {"question": LEADER_Q}),
            (401, "GET", "/v1/models", {}, None),
            (401, "GET", f"/v1/models?api_key={key}", {}, None),
            (401, "GET", f"/v1/documents?key={wrong}&access_token={key}", {}, None),
            (401, "GET", "/v1/models", {"Authorization": f"Basic {key}"}, None),
            (401, "GET", "/v1/models", {"X-API-Key": key}, None),
            (401, "GET", "/v1/models", {"Authorization": f"Bearer  {key}x"}, None),
        ]
        for status, method, path, headers, body in expected:
            res = httpx.request(method, f"{url}{path}", headers=headers, json=body, timeout=120)
            assert res.status_code == status, (method, path, res.status_code, res.text)
            assert key not in res.text and wrong not in res.text and llm_key not in res.text, (path, res.text)
        fallback = httpx.post(f"{url}/v1/chat/completions", headers=bearer, json={**question, "backend": "openai"}, timeout=120)
        assert fallback.json()["fallback_reason"], fallback.text  # the openai client really ran (and failed)
    log_text = (data_dir.parent / f"serve-{port}.log").read_text()
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    assert sum(1 for r in lines if r["level"] == "debug") >= 3, log_text[-2000:]  # DEBUG really was on
    assert sum(1 for r in lines if r.get("status") == 401) == sum(1 for e in expected if e[0] == 401)
    for secret in (key, wrong, llm_key):
        assert secret not in log_text


# -- generation queue ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_queue_url(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[str]:
    data_dir = seeded_data_dir(tmp_path_factory, "queue-server")
    with rag_server(data_dir, {"RAG_LLM_MODEL_PATH": str(model_path), "RAG_GENERATION_QUEUE_SIZE": "1"}) as url:
        wait_ready(url)
        yield url


def _in_flight(url: str) -> int:
    return int(httpx.get(f"{url}/readyz", timeout=30).json()["generation"]["in_flight"])


@pytest.mark.llm
def test_full_queue_answers_429_with_retry_after(small_queue_url: str) -> None:
    url = small_queue_url
    barrier = threading.Barrier(4)

    def run(_: int) -> httpx.Response:
        barrier.wait()
        return chat(url, LEADER_Q)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(run, i) for i in range(4)]
        done: list[httpx.Response] = []
        for fut in as_completed(futures):
            done.append(fut.result())
            if len(done) == 3:
                # The three refusals came back at once, while the admitted request still generates:
                # retrieval is not queued, and the slot is still taken.
                assert _in_flight(url) == 1
                assert httpx.post(f"{url}/v1/search", json={"query": LEADER_Q}, timeout=60).status_code == 200
                assert_error(chat(url, LEADER_Q, backend="extractive"), 429, "busy")
    statuses = sorted(r.status_code for r in done)
    assert statuses == [200, 429, 429, 429], statuses
    for res in done:
        if res.status_code == 429:
            err = assert_error(res, 429, "busy")
            assert err["type"] == "rate_limit_error" and int(res.headers["retry-after"]) >= 1
        else:
            assert_answers(res.json(), "muhajir", LEADER_DOC)
    assert _in_flight(url) == 0


@pytest.mark.llm
def test_overload_through_the_load_generator(small_queue_url: str, figure) -> None:  # type: ignore[no-untyped-def]
    """Eight chats and four searches at once against one generation slot, counted by ``rag.bench.load``."""
    from rag.bench.load import run_load
    from tests.test_load import chat_questions, search_questions

    chats, searches = 8, 4
    report = run_load(small_queue_url, search_questions(), chats + searches, chats + searches, chats / (chats + searches),
                      chat_questions=chat_questions())
    data = report.to_dict()
    figure("overload chat statuses", data["kinds"]["chat"]["statuses"])
    figure("overload 429 max latency (ms)", data["kinds"]["chat"]["rejected_max_ms"])
    assert data["kinds"]["chat"]["statuses"] == {"200": 1, "429": chats - 1}, data
    assert data["kinds"]["search"]["statuses"] == {"200": searches}, data  # searches are not queued
    assert report.rejected_without_retry_after == 0 and report.server_errors == 0 and report.transport_errors == 0, data
    assert report.wrong == 0, data
    # Refused at once: every 429 came back before the admitted chat had its answer.
    assert data["kinds"]["chat"]["rejected_max_ms"] < data["kinds"]["chat"]["p50_ms"], data
    assert _in_flight(small_queue_url) == 0


@pytest.mark.llm
def test_client_disconnect_mid_stream_frees_the_slot(small_queue_url: str) -> None:
    url = small_queue_url
    body = {"model": "x", "stream": True, "messages": [{"role": "user", "content": LEADER_Q}]}
    deltas = 0
    with httpx.Client(timeout=600) as client, client.stream("POST", f"{url}/v1/chat/completions", json=body) as res:
        assert res.status_code == 200
        for line in res.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                deltas += 1
                if deltas == 2:
                    assert _in_flight(url) == 1
                    break  # leave mid-answer: the connection closes here
    deadline = time.monotonic() + 120
    while _in_flight(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _in_flight(url) == 0, "the disconnected stream kept its generation slot"
    # The model lock was released too: the next request (queue size 1) gets the model and completes.
    res = chat(url, LEADER_Q)
    assert res.status_code == 200, res.text
    assert_answers(res.json(), "muhajir", LEADER_DOC)
