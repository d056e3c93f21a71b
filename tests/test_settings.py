"""One settings object: env (RAG_*) over an optional TOML file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.settings import Settings
from tests.fixtures.cli import run_cli


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.data_dir == Path(".rag") and s.chroma_dir == Path(".rag/chroma")
    assert s.torch_threads == 1 and s.retrieval_mode == "hybrid" and s.llm_backend == "llamacpp"
    assert not s.server_mode


def test_file_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "rag.toml"
    cfg.write_text('collection = "from-file"\ntop_k = 7\nchroma_host = "127.0.0.1"\n')
    monkeypatch.setenv("RAG_SETTINGS_FILE", str(cfg))
    monkeypatch.setenv("RAG_TOP_K", "3")
    s = Settings()
    assert s.collection == "from-file" and s.top_k == 3 and s.server_mode


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNK_SIZE", "5000")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("RAG_CHUNK_SIZE", "96")
    monkeypatch.setenv("RAG_COLLECTION", "ab")
    with pytest.raises(ValidationError):
        Settings()


def test_cli_reports_bad_settings_without_traceback(tmp_path: Path) -> None:
    res = run_cli(["documents"], tmp_path, env={"RAG_RETRIEVAL_MODE": "fuzzy"})
    assert res.returncode != 0 and "retrieval_mode" in res.stderr and "Traceback" not in res.stderr
