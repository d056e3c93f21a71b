"""Generation admission: a bounded number of answer requests in flight, each run in its own worker thread.

The llama.cpp model is not thread-safe; the generator serializes generation with a lock held while
its (sync) token iterator is suspended. So each admitted request drives ``Answerer.stream`` from
start to finish in one worker thread, never from the event loop, and the worker closes the
iterator when it stops early. Closing it raises ``GeneratorExit`` at the suspended ``yield`` inside
the generator's ``with lock:`` block, which releases the model for the next request.

* ``GenerationQueue.submit`` admits a request or raises ``QueueFull`` at once (the route answers 429
  with ``Retry-After``): requests never pile up beyond ``capacity`` (waiting + generating).
* The slot is held until the worker thread has finished, not until the HTTP response ends, so a
  client that disconnects frees its slot only once its generation has really stopped (one token later).
* Retrieval inside an admitted request runs before the model lock is taken, so it stays concurrent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

_EVENT, _ERROR, _END = "event", "error", "end"


class QueueFull(Exception):
    """Every generation slot is taken; ``retry_after`` is a hint in whole seconds."""

    def __init__(self, capacity: int, retry_after: int) -> None:
        super().__init__(f"the server is busy: {capacity} answer request(s) are already waiting or generating; "
                         f"retry in about {retry_after}s")
        self.capacity = capacity
        self.retry_after = retry_after


class EventStream(Generic[T]):
    """Events of a sync iterator produced in a worker thread, consumed asynchronously."""

    def __init__(self, queue: GenerationQueue, factory: Callable[[], Iterator[T]]) -> None:
        self._queue = queue
        self._loop = asyncio.get_running_loop()
        self._items: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.finished = threading.Event()
        self._factory = factory

    def _put(self, kind: str, value: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is gone (shutdown); nobody is listening any more
            pass

    def run(self) -> None:
        """Worker-thread body: iterate to the end or until cancelled, then close and free the slot."""
        started = time.perf_counter()
        iterator: Iterator[T] | None = None
        completed = False
        try:
            if self._cancelled.is_set():
                return
            iterator = self._factory()
            for event in iterator:
                if self._cancelled.is_set():
                    break
                self._put(_EVENT, event)
            else:
                completed = True
        except BaseException as exc:  # delivered to the consumer, who maps it to an HTTP error
            self._put(_ERROR, exc)
        finally:
            try:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()  # GeneratorExit inside Answerer.stream: the model lock is released here
            except Exception:  # pragma: no cover - closing must never keep the slot
                log.exception("closing the answer stream failed")
            finally:
                self.finished.set()
                self._queue._release(time.perf_counter() - started if completed else None)
                self._put(_END, None)

    def cancel(self) -> None:
        """Stop after the event being generated now (the client went away)."""
        self._cancelled.set()

    async def events(self) -> AsyncIterator[T]:
        while True:
            kind, value = await self._items.get()
            if kind == _EVENT:
                yield value  # type: ignore[misc]
            elif kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            else:
                return


class GenerationQueue:
    """At most ``capacity`` answer requests admitted at once; each gets a dedicated worker thread."""

    def __init__(self, capacity: int, initial_estimate_s: float = 10.0) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._in_flight = 0
        self._streams: set[EventStream[object]] = set()
        self._avg_s = initial_estimate_s
        self.admitted_total = 0
        self.rejected_total = 0
        # One thread per slot: an admitted request never waits for a thread, only for the model lock.
        self._executor = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="generate")
        self._closed = False

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: about one generation, as recently measured."""
        return max(1, min(120, math.ceil(self._avg_s)))

    def submit(self, factory: Callable[[], Iterator[T]]) -> EventStream[T]:
        """Admit and start a request, or raise ``QueueFull`` without waiting."""
        with self._lock:
            if self._closed or self._in_flight >= self.capacity:
                self.rejected_total += 1
                raise QueueFull(self.capacity, self.retry_after())
            self._in_flight += 1
            self.admitted_total += 1
        try:
            stream: EventStream[T] = EventStream(self, factory)
            with self._lock:
                self._streams.add(stream)  # type: ignore[arg-type]
            self._executor.submit(stream.run)
        except BaseException:
            self._release(None)
            raise
        return stream

    def _release(self, seconds: float | None) -> None:
        with self._lock:
            self._in_flight -= 1
            self._streams = {s for s in self._streams if not s.finished.is_set()}
            if seconds is not None:
                self._avg_s = 0.7 * self._avg_s + 0.3 * seconds

    def shutdown(self) -> None:
        """Refuse new work, ask running work to stop, and do not wait for it."""
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for stream in streams:
            stream.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
