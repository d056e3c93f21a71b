"""Which process may touch what is on disk: the embedded Chroma folder and the BM25 folder.

Chroma's embedded store (``PersistentClient``) must not be opened by two processes at once: each keeps its own HNSW
index in memory and writes it back, so one overwrites the other's changes and the other serves stale dense results.
``hold_store`` takes an exclusive ``flock`` on ``<chroma_dir>/rag.lock`` for the life of the process; a second
process (another ``rag serve``, or ``rag ingest``/``delete``/``import``/``search``/``ask`` next to a running server) is
refused with ``StoreLocked``, which names the holder and says what to do instead (its HTTP API, or a Chroma server).
Objects in the same process share the one lock (Chroma shares one client per folder within a process too).

The BM25 folder is a cache of the store that any process could rebuild, so it is owned, not refused: the first
process to open it (``bm25_owner``) is the only one that saves it; others keep their index in memory. Every save
(exclusive) and load (shared) also takes ``bm25_io`` on ``<bm25_dir>/.io.lock``, so a reader never pairs one writer's
vocabulary with another's manifest, and a save never deletes segments under a load.

Locks are ``fcntl.flock`` locks: the kernel drops them when the process exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rag.errors import StoreUnavailable

log = logging.getLogger(__name__)
STORE_LOCK = "rag.lock"
BM25_OWNER = ".owner.lock"
BM25_IO = ".io.lock"

_held: dict[Path, int] = {}  # lock file (resolved) -> open descriptor holding the flock, for this process
_guard = threading.Lock()
_io_threads: dict[Path, threading.RLock] = {}  # flock does not order threads of one process: this does


class StoreLocked(StoreUnavailable):
    """Another process holds the embedded store (a 503 in the service, one line from the CLI)."""


def _describe_holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "another process"


def _try_flock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding an exclusive flock, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    os.set_inheritable(fd, False)
    who = f"pid {os.getpid()}: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200]}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, who.encode("utf-8", "replace") + b"\n", 0)
    return fd


def _acquire(path: Path) -> bool:
    """Hold ``path`` for this process (True), or False when another process holds it."""
    path = path.resolve()
    with _guard:
        if path in _held:
            return True
        fd = _try_flock(path)
        if fd is None:
            return False
        _held[path] = fd
        return True


def hold_store(chroma_dir: Path) -> Path:
    """Hold the embedded Chroma folder for this process, or raise ``StoreLocked`` naming the process that has it."""
    chroma_dir.mkdir(parents=True, exist_ok=True)
    path = chroma_dir / STORE_LOCK
    if not _acquire(path):
        raise StoreLocked(
            f"the index at {chroma_dir.resolve()} is in use by another rag process ({_describe_holder(path)}); "
            "an embedded Chroma store cannot be shared between processes. While that process runs, change documents "
            "through its HTTP API (POST or DELETE /v1/documents) and search or ask through it too, or stop it first; "
            "to run several processes on one index, use a Chroma server (RAG_CHROMA_HOST)")
    return path.resolve()


def release(path: Path) -> None:
    """Give up a lock this process holds (only for a process that will not touch that folder again, e.g. before
    handing it to a child ``rag serve``)."""
    with _guard:
        fd = _held.pop(path.resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor drops the flock


def bm25_owner(folder: Path) -> bool:
    """True when this process owns the BM25 folder (and so is the one that saves it)."""
    folder.mkdir(parents=True, exist_ok=True)
    owned = _acquire(folder / BM25_OWNER)
    if not owned:
        log.info("the BM25 index is saved by another process; this one keeps its copy in memory",
                 extra={"folder": str(folder), "owner": _describe_holder(folder / BM25_OWNER)})
    return owned


@contextlib.contextmanager
def bm25_io(folder: Path, exclusive: bool) -> Iterator[None]:
    """Hold the BM25 folder for one save (``exclusive``) or one load (shared, between saves)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BM25_IO
    with _guard:
        thread_lock = _io_threads.setdefault(path.resolve(), threading.RLock())
    with thread_lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)


__all__ = ["StoreLocked", "bm25_io", "bm25_owner", "hold_store", "release"]
