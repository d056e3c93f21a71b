"""The document routes (list, upload, delete), with hostile names and bad uploads, against a real `rag serve`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.api import LEADER_DOC, assert_error
from tests.fixtures.paths import ROOT, SEEDS
from tests.fixtures.seeded import make_settings
from tests.fixtures.servers import UPLOAD_LIMIT

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def url(api_server: tuple[str, Path]) -> str:
    return api_server[0]


def test_documents_list(url: str) -> None:
    res = httpx.get(f"{url}/v1/documents")
    assert res.status_code == 200
    docs = {d["doc_id"]: d for d in res.json()["documents"]}
    assert {p.name for p in SEEDS.glob("*.txt")} <= set(docs)
    assert docs[LEADER_DOC]["title"] == "Prospects for ISIS in Afghanistan" and not docs[LEADER_DOC]["uploaded"]


# -- uploads --------------------------------------------------------------------------------------
def _search_texts(url: str, query: str, mode: str = "hybrid") -> list[dict[str, Any]]:
    res = httpx.post(f"{url}/v1/search", json={"query": query, "k": 5, "mode": mode}, timeout=60)
    assert res.status_code == 200, res.text
    return res.json()["passages"]


def test_upload_search_and_delete(api_server: tuple[str, Path]) -> None:
    url, data_dir = api_server
    txt = ("Lighthouses of Quillon\n\nThe Zorblax lighthouse on Quillon Island was painted teal in 1987 "
           "by the keeper Marta Velloso. It guides ships past the Quillon reef.\n")
    html = ("<html><head><title>Ignored title</title><script>var x = 'scriptword';</script></head><body>"
            "<nav>menu</nav><h1>Frobnitz Orchard Report</h1><p>The Frobnitz orchard near Vantaa grows "
            "forty-two varieties of blue pears.</p></body></html>")
    res = httpx.post(f"{url}/v1/documents", files={"file": ("quillon lights.txt", txt.encode(), "text/plain")}, timeout=120)
    assert res.status_code == 201, res.text
    up_txt = res.json()
    txt_id = up_txt["doc_id"]  # a name that needed cleaning keeps a short hash of the original: quillon_lights-<hash>.txt
    assert txt_id.startswith("quillon_lights-") and txt_id.endswith(".txt") and txt_id == up_txt["filename"]
    assert up_txt["status"] == "added" and up_txt["uploaded"]
    assert up_txt["title"] == "Lighthouses of Quillon"
    res = httpx.post(f"{url}/v1/documents", files={"file": ("orchard.html", html.encode(), "text/html")}, timeout=120)
    assert res.status_code == 201, res.text
    up_html = res.json()
    assert up_html["doc_id"] == "orchard.html" and up_html["title"] == "Frobnitz Orchard Report"

    uploads = data_dir / "uploads"
    assert (uploads / txt_id).read_text() == txt and (uploads / "orchard.html").is_file()
    # Searchable at once, by words (BM25 refreshed) and by meaning.
    for mode in ("bm25", "hybrid"):
        assert _search_texts(url, "Zorblax lighthouse teal", mode)[0]["doc_id"] == txt_id
        assert _search_texts(url, "Frobnitz blue pears", mode)[0]["doc_id"] == "orchard.html"
    assert "scriptword" not in json.dumps(_search_texts(url, "scriptword menu", "bm25"))
    again = httpx.post(f"{url}/v1/documents", files={"file": ("quillon lights.txt", txt.encode(), "text/plain")}, timeout=120)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    listed = {d["doc_id"]: d for d in httpx.get(f"{url}/v1/documents").json()["documents"]}
    assert listed["orchard.html"]["uploaded"] and listed[txt_id]["n_chunks"] >= 1

    answer = httpx.post(f"{url}/v1/ask", json={"question": "What colour was the Zorblax lighthouse painted in 1987?",
                                                "backend": "extractive"}, timeout=120).json()
    assert "teal" in answer["answer"] and answer["citations"][0]["doc_id"] == txt_id

    for doc_id, query, name in ((txt_id, "Zorblax lighthouse teal", txt_id),
                                ("orchard.html", "Frobnitz blue pears", "orchard.html")):
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
    assert not names & {"tool.exe", "README", "big.txt", "huge.txt", "empty.txt", "binary.txt", "blank.md"}


def test_upload_path_traversal_is_stored_inside_uploads(api_server: tuple[str, Path]) -> None:
    url, data_dir = api_server
    text = b"Traversal test\n\nThe quokka named Biscuitron lives on Rottnest Island.\n"
    for name in ("../../evil.txt", "..\\..\\windows\\evil.txt", "/etc/evil.txt", ".hidden/../../evil.txt"):
        res = httpx.post(f"{url}/v1/documents", files={"file": (name, text, "text/plain")}, timeout=120)
        assert res.status_code in (200, 201), res.text
        assert res.json()["doc_id"] == "evil.txt" and res.json()["filename"] == "evil.txt"
    uploads = (data_dir / "uploads").resolve()
    stored = [p for p in data_dir.parent.rglob("evil*") if p.is_file()]
    assert stored == [uploads / "evil.txt"], stored
    assert not Path("/etc/evil.txt").exists()
    assert res.json()["source"] == "evil.txt"  # the upload's name, never the server's path
    assert httpx.delete(f"{url}/v1/documents/evil.txt").status_code == 200
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


def test_hostile_upload_names_write_nothing_outside_the_data_dir(api_server: tuple[str, Path]) -> None:
    """Traversal, absolute, NUL, percent-encoded (also RFC 2231 ``filename*``) and overlong names: the file lands
    in <data_dir>/uploads under a plain name, or the upload is refused; nothing appears anywhere else.
    Names in other scripts are stored too, each under its own name, with their extension."""
    url, data_dir = api_server
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
            assert data["source"] == data["filename"] and (uploads / data["filename"]).is_file(), data
            assert "/" not in data["filename"] and "\x00" not in data["filename"], data
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
