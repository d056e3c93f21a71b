"""Makefile targets that touch user data."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fixtures.paths import ROOT


def test_make_clean_keeps_uploaded_originals(tmp_path: Path) -> None:
    """`make clean` drops the index and caches but never .rag/uploads/, the only copy of uploaded files (issue 13, item 22)."""
    rag = tmp_path / ".rag"
    for rel in ("uploads/report.md", "uploads/sub/notes.txt", "chroma/chroma.sqlite3", "bm25/rag/manifest.json"):
        (rag / rel).parent.mkdir(parents=True, exist_ok=True)
        (rag / rel).write_text(rel)
    (tmp_path / ".pytest_cache").mkdir()
    res = subprocess.run(["make", "-f", str(ROOT / "Makefile"), "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (rag / "uploads/report.md").read_text() == "uploads/report.md" and (rag / "uploads/sub/notes.txt").is_file()
    assert not (rag / "chroma").exists() and not (rag / "bm25").exists() and not (tmp_path / ".pytest_cache").exists()
    assert "uploads" in res.stdout
