"""Ingest and search never reach past loopback: a guarded process fails on any other connect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import ROOT, SEEDS

GUARD = '''
import socket, sys
_real = socket.socket.connect
def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
        sys.stderr.write(f"BLOCKED NETWORK CONNECT to {address}\\n")
        raise OSError(f"network blocked in test: {address}")
    return _real(self, address)
socket.socket.connect = _guarded
_real_cx = socket.create_connection
def _guarded_cx(address, *a, **k):
    if not (str(address[0]).startswith("127.") or address[0] in ("localhost", "::1")):
        sys.stderr.write(f"BLOCKED NETWORK CONNECT to {address}\\n")
        raise OSError("network blocked in test")
    return _real_cx(address, *a, **k)
socket.create_connection = _guarded_cx
from rag.cli import main
sys.argv = ["rag"] + sys.argv[1:]
main()
'''


def run_guarded(args: list[str], data_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "guarded_rag.py"
    script.write_text(GUARD)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RAG_DATA_DIR": str(data_dir),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_guard_really_blocks(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(GUARD.split("from rag.cli")[0] + "\nimport socket\nsocket.create_connection(('93.184.216.34', 80), timeout=2)\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "BLOCKED NETWORK CONNECT" in res.stderr


@pytest.mark.slow  # runs a guarded `rag` 2 times in fresh processes (~10 s each: torch and the embedding model load every time)
def test_ingest_and_search_offline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ingest = run_guarded(["ingest", str(SEEDS)], data, tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    search = run_guarded(["search", "Who has led ISIS-K since 2020?", "-k", "1"], data, tmp_path)
    assert search.returncode == 0, search.stderr
    assert "Muhajir" in search.stdout
    assert "BLOCKED" not in ingest.stderr + search.stderr
