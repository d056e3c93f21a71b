"""The generators one process uses, by name: each created once from the registry, loads serialized.

A failed load is remembered (readiness reports it) and retried on the next request. Tests inject
ready-made generators (e.g. a scripted ``FakeGenerator``) under any name with ``overrides``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import get_args

from rag.embedding import Embedder
from rag.errors import RagError
from rag.generation.backends import Generator, create
from rag.settings import LLMBackendName, Settings

BACKENDS: tuple[LLMBackendName, ...] = get_args(LLMBackendName)
FALLBACK: LLMBackendName = "extractive"


class Generators:
    """Name -> generator, created on first use."""

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder],
                 overrides: Mapping[str, Generator] | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._loaded: dict[str, Generator] = dict(overrides or {})
        self._lock = threading.Lock()
        self.errors: dict[str, str] = {}

    @property
    def default(self) -> str:
        return self.settings.llm_backend

    def get(self, name: str | None = None) -> Generator:
        """The generator for ``name`` (default: the configured backend), loading it once."""
        name = name or self.default
        found = self._loaded.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._loaded:
                try:
                    self._loaded[name] = create(name, self.settings, self._embedder)
                except RagError as exc:
                    self.errors[name] = str(exc)
                    raise
                self.errors.pop(name, None)
            return self._loaded[name]

    def loaded(self, name: str) -> bool:
        return name in self._loaded

    @property
    def loading(self) -> bool:
        """True while some generator is being created."""
        return self._lock.locked()

    def enabled(self) -> list[LLMBackendName]:
        """Backends a request may choose: the configured one, extractive, and openai when a server is configured."""
        enabled = {self.settings.llm_backend, FALLBACK}
        if self.settings.llm_base_url:
            enabled.add("openai")
        return [b for b in BACKENDS if b in enabled]
