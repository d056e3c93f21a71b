"""Starting the real `rag serve` process for tests (loopback, free port, stopped by the test)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import RAG_BIN, ROOT, free_port


@contextmanager
def rag_server(data_dir: Path, env: dict[str, str] | None = None, timeout: float = 180) -> Iterator[str]:
    """Run `rag serve` on 127.0.0.1 at a free port; yields the base URL (http://127.0.0.1:N)."""
    port = free_port()
    log = (data_dir.parent / f"serve-{port}.log").open("w")
    full_env = {**os.environ, "RAG_DATA_DIR": str(data_dir), **(env or {})}
    proc = subprocess.Popen([str(RAG_BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rag serve exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("rag serve did not become healthy")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
