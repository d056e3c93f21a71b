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


# -- issue 13, item 11: a setting that does not take effect is a start-up error naming it --------------
def settings_error(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    """The one-line error ``get_settings`` (what every command and ``rag serve`` start with) gives for ``env``."""
    from rag.errors import RagError
    from rag.settings import get_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(RagError) as caught:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("key", ["", "   ", "\t\n"])
def test_an_empty_or_blank_api_key_is_an_error(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    message = settings_error(monkeypatch, {"RAG_API_KEY": key})
    assert "RAG_API_KEY" in message and "empty" in message


def test_an_unknown_rag_environment_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(monkeypatch, {"RAG_APIKEY": "secret-value-1"})
    assert "RAG_APIKEY" in message and "RAG_API_KEY" in message  # the culprit, and what was probably meant
    assert "secret-value-1" not in message
    assert "RAG_LOG_LEVL" in settings_error(monkeypatch, {"RAG_LOG_LEVL": "DEBUG"})


def test_an_unknown_key_in_the_settings_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "rag.toml"
    cfg.write_text('data_dir = "/tmp/x"\nRAG_API_KEY = "secret-value-2"\n')
    message = settings_error(monkeypatch, {"RAG_SETTINGS_FILE": str(cfg)})
    assert "RAG_API_KEY" in message and str(cfg) in message and "api_key" in message
    assert "secret-value-2" not in message


def test_a_missing_settings_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "rag.toml"
    message = settings_error(monkeypatch, {"RAG_SETTINGS_FILE": str(missing)})
    assert "RAG_SETTINGS_FILE" in message and str(missing) in message


def test_serve_refuses_to_start_with_an_empty_key(tmp_path: Path) -> None:
    """Before: the server started with no auth while its log said ``auth: true``."""
    import subprocess

    from rag.bench.processes import free_port

    try:
        res = run_cli(["serve", "--port", str(free_port())], tmp_path, env={"RAG_API_KEY": " "}, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("rag serve started with an empty RAG_API_KEY")
    assert res.returncode != 0 and "RAG_API_KEY" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_the_auth_log_line_follows_what_is_installed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An app built around the settings check (a blank key given in code) logs ``auth=False`` and lets requests in;
    a real key logs ``auth=True`` and guards the routes."""
    import logging

    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from service.app import create_app

    for key, guarded in ((" ", False), ("k-123", True)):
        settings = Settings(data_dir=tmp_path, llm_backend="extractive").model_copy(update={"api_key": SecretStr(key)})
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="service.app"), TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            status = client.get("/v1/models").status_code
        (started,) = [r for r in caplog.records if r.getMessage() == "service starting"]
        assert started.auth is guarded and (status == 401) is guarded, (key, status)  # type: ignore[attr-defined]


def test_host_and_origin_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ALLOWED_HOSTS", "rag.example.com, .corp.example")
    monkeypatch.setenv("RAG_CORS_ORIGINS", '["https://app.example"]')
    s = Settings()
    assert s.allowed_hosts == ["rag.example.com", ".corp.example"] and s.cors_origins == ["https://app.example"]
