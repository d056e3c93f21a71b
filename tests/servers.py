"""Starting real server processes for tests: `rag serve`, `chroma run`, `python -m llama_cpp.server`.

Each helper binds 127.0.0.1 at a free port, waits until the process answers, and stops it on exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

from tests.conftest import RAG_BIN, ROOT, free_port

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], within: float, what: str, interval: float = 0.2) -> tuple[T, float]:
    """Call ``probe`` until it returns something other than None; (value, seconds it took, rounded to 10 ms)."""
    started = time.monotonic()
    while True:
        value = probe()
        elapsed = time.monotonic() - started
        if value is not None:
            return value, round(elapsed, 2)
        if elapsed > within:
            raise AssertionError(f"{what}: not seen within {within}s")
        time.sleep(interval)

CHROMA_BIN = Path(sys.executable).with_name("chroma")
LLAMA_ALIAS = "qwen"


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate ``proc`` (this one process only), killing it if it does not exit in ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def _wait_answering(proc: subprocess.Popen[bytes], probe_url: str, name: str, timeout: float, interval: float,
                    output: Callable[[], str] = lambda: "") -> None:
    """Wait until ``probe_url`` answers 200; fail at once if ``proc`` exits, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {output()}")
        try:
            if httpx.get(probe_url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer {probe_url} within {timeout:.0f}s")
        time.sleep(interval)


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
        _wait_answering(proc, f"{url}/healthz", "rag serve", timeout, 0.3, lambda: Path(log.name).read_text()[-2000:])
        yield url
    finally:
        _stop(proc)
        log.close()


def start_chroma(path: Path, port: int, timeout: float = 60) -> subprocess.Popen[bytes]:
    """Start `chroma run --path PATH` on 127.0.0.1:``port`` and wait for its heartbeat; the caller stops it."""
    proc = subprocess.Popen([str(CHROMA_BIN), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_answering(proc, f"http://127.0.0.1:{port}/api/v2/heartbeat", "chroma run", timeout, 0.2)
    except RuntimeError:
        _stop(proc)
        raise
    return proc


@contextmanager
def chroma_server(path: Path) -> Iterator[int]:
    """Run `chroma run` persisting to ``path`` at a free loopback port; yields the port."""
    port = free_port()
    proc = start_chroma(path, port)
    try:
        yield port
    finally:
        _stop(proc)


@contextmanager
def llama_server(model_path: Path, alias: str = LLAMA_ALIAS, n_ctx: int = 2048, n_threads: int = 2,
                 timeout: float = 120, port: int | None = None, interrupt_requests: bool = False) -> Iterator[str]:
    """Run `python -m llama_cpp.server` with ``model_path`` under the name ``alias``; yields the OpenAI base URL (…/v1).

    ``port`` (default: a free one) lets a test restart the server where its clients expect it.
    ``interrupt_requests``: llama_cpp.server's own default (True) ends a running stream early, with no error, as soon
    as another request arrives; with several clients (two `rag serve` workers) it must be off so requests queue.
    """
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(n_threads), "--model_alias", alias,
         "--interrupt_requests", str(interrupt_requests)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_answering(proc, f"{url}/models", "llama_cpp.server", timeout, 0.5)
        yield url
    finally:
        _stop(proc)
