"""Generator backends by name: a registry of factories, with the built-ins registered like plugins.

A factory takes the settings and a way to get the embedding model (only the extractive backend needs
it, so it is loaded on demand). ``register`` adds a backend; ``create`` builds one.
"""

from __future__ import annotations

from collections.abc import Callable

from rag.embedding import Embedder
from rag.errors import RagError
from rag.generation.backends.base import GenerationStats, Generator, Prompt
from rag.settings import Settings

__all__ = ["Factory", "GenerationStats", "Generator", "Prompt", "create", "register", "registered"]

Factory = Callable[[Settings, Callable[[], Embedder]], Generator]
_FACTORIES: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Decorator: make ``factory`` the backend called ``name``."""

    def add(factory: Factory) -> Factory:
        _FACTORIES[name] = factory
        return factory

    return add


def registered() -> list[str]:
    return sorted(_FACTORIES)


def create(name: str, settings: Settings, embedder: Callable[[], Embedder]) -> Generator:
    """A new generator for ``name``; raises RagError for an unknown name, ModelError when it cannot load."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise RagError(f"unknown generator backend {name!r}; known: {', '.join(registered())}") from None
    return factory(settings, embedder)


# -- built-ins (imported lazily: llama_cpp and openai load only when chosen) ---------------------------
@register("llamacpp")
def _llamacpp(settings: Settings, embedder: Callable[[], Embedder]) -> Generator:
    from rag.generation.backends.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator(settings)


@register("openai")
def _openai(settings: Settings, embedder: Callable[[], Embedder]) -> Generator:
    from rag.generation.backends.openai_compat import OpenAIGenerator

    return OpenAIGenerator(settings)


@register("extractive")
def _extractive(settings: Settings, embedder: Callable[[], Embedder]) -> Generator:
    from rag.generation.backends.extractive import ExtractiveGenerator

    return ExtractiveGenerator(embedder(), settings.extractive_min_score)


@register("fake")
def _fake(settings: Settings, embedder: Callable[[], Embedder]) -> Generator:
    from rag.generation.backends.fake import FakeGenerator

    return FakeGenerator()
