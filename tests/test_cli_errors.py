"""Every way a ``rag`` command can fail ends in one line on stderr and a non-zero exit, never a traceback; an
unexpected error says where its details went."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import rag.cli
from rag.settings import get_settings
from tests.fixtures.cli import run_cli


def test_an_unknown_log_level_is_a_settings_error(tmp_path: Path) -> None:
    res = run_cli(["documents"], tmp_path, env={"RAG_LOG_LEVEL": "verbose"})
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "RAG_LOG_LEVEL" in line and "verbose" in line and "INFO" in line


def _unexpected(kind: str) -> BaseException:
    if kind == "chromadb":
        from chromadb.errors import InternalError

        return InternalError("Error executing plan: Internal error: error returned from database: database is locked")
    return KeyError("002_2399800fba452946")


@pytest.mark.parametrize("kind", ["KeyError", "chromadb"])
def test_an_unexpected_error_is_one_line_naming_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    error = _unexpected(kind)

    def broken(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(rag.cli, "_components", broken)
    try:
        res = CliRunner().invoke(rag.cli.app, ["delete", "some-doc"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 1, res.output
    assert res.stdout == ""
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: unexpected") and type(error).__name__ in line, line
    log = Path(line.rsplit(" in ", 1)[1].rstrip(")"))
    assert log.is_file() and log.is_relative_to(tmp_path / "data"), line
    text = log.read_text()
    assert "Traceback" in text and type(error).__name__ in text and "rag delete {'doc_id': 'some-doc'}" in text


def test_a_long_error_stays_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.errors import StoreUnavailable

    def broken(*_: Any, **__: Any) -> Any:
        raise StoreUnavailable("cannot open Chroma collection 'rag' at /a/very/long/path/" + "x" * 200 + ": [1] refused\nretry")

    monkeypatch.setattr(rag.cli, "_components", broken)
    res = CliRunner().invoke(rag.cli.app, ["documents"])
    assert res.exit_code == 1
    (line,) = res.stderr.strip().splitlines()
    assert "[1] refused retry" in line  # markup-like text printed as is, the message's own newline folded


@pytest.mark.slow
def test_a_failed_eval_gate_is_a_plain_exit_not_an_unexpected_error(tmp_path: Path) -> None:
    """`rag eval` ends with exit 1 when the gate fails; that is the gate's verdict, not a crash."""
    config = tmp_path / "eval.toml"
    config.write_text('[sets.mini]\ngold = "eval/gold/mini.jsonl"\ndocs = "eval/collections/mini"\n\n'
                      '[gate.retrieval]\n"hit@5" = 1.5\n')
    res = run_cli(["eval", "--set", "mini", "--retrieval-only", "--config", str(config), "--reports", str(tmp_path / "r")],
                  tmp_path / "data")
    assert res.returncode == 1 and "gate failed" in res.stderr and "hit@5" in res.stderr, res.stderr
    assert "unexpected" not in res.stderr and "Traceback" not in res.stderr
