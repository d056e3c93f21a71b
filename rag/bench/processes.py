"""Child server processes (``rag serve``, ``chroma run``, ``llama_cpp.server``) started by the benchmarks and the
tests: a free loopback port, the one wait until a process answers, and stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx

from rag.errors import RagError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(proc: subprocess.Popen[bytes], url: str, timeout: float, interval: float = 0.2,
                       name: str = "the server", output: Callable[[], str] = lambda: "",
                       started: float | None = None) -> float:
    """Poll ``url`` until it answers 200; seconds since ``started`` (a ``time.perf_counter()`` value, default: now).

    Fails at once (RagError, with the tail of ``output()``) if ``proc`` exits, and after ``timeout`` seconds.
    """
    started = time.perf_counter() if started is None else started
    while True:
        if proc.poll() is not None:
            raise RagError(f"{name} exited with {proc.returncode}: {output()}")
        try:
            if httpx.get(url, timeout=max(1.0, interval)).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if time.perf_counter() - started > timeout:
            raise RagError(f"{name} did not answer {url} within {timeout:.0f}s")
        time.sleep(interval)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate ``proc`` (this one process only), killing it if it does not exit in ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
