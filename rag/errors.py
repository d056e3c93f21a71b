"""Errors the library raises on purpose; the CLI and service turn them into clear messages."""


class RagError(Exception):
    """Base for expected, user-facing failures."""


class DocumentError(RagError):
    """A document cannot be read or parsed."""


class UnsupportedDocumentType(DocumentError):
    """The file type is not one we ingest."""


class StoreUnavailable(RagError):
    """The vector store (e.g. a Chroma server) cannot be reached."""


class EmptyIndex(RagError):
    """Nothing has been ingested yet."""


class ModelError(RagError):
    """A model file is missing, corrupt, or cannot be loaded."""


class LLMUnavailable(RagError):
    """The generator backend failed or timed out."""
