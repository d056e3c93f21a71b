"""Generator backends behind one interface, chosen by ``RAG_LLM_BACKEND``."""

from __future__ import annotations

from rag.generation.backends.base import Generator, GenerationStats
from rag.settings import LLMBackendName, Settings

__all__ = ["Generator", "GenerationStats", "get_generator"]

_cache: dict[tuple[str, str], Generator] = {}


def get_generator(name: LLMBackendName, settings: Settings) -> Generator | None:
    """The generator for ``name`` (loaded once per process); ``None`` for the extractive backend."""
    if name == "extractive":
        return None
    if name == "llamacpp":
        key = (name, f"{settings.llm_model_path or settings.model_dir}|{settings.llm_ctx}|{settings.llm_threads}")
    else:
        key = (name, f"{settings.llm_base_url}|{settings.llm_model}|{settings.llm_timeout}")
    if key not in _cache:
        if name == "llamacpp":
            from rag.generation.backends.llamacpp import LlamaCppGenerator

            _cache[key] = LlamaCppGenerator(settings)
        else:
            from rag.generation.backends.openai_compat import OpenAIGenerator

            _cache[key] = OpenAIGenerator(settings)
    return _cache[key]
