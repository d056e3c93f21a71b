"""Errors the library raises on purpose; the CLI and service turn them into clear messages."""


class RagError(Exception):
    """Base for expected, user-facing failures."""


class DocumentError(RagError):
    """A document cannot be read or parsed."""


class UnsupportedDocumentType(DocumentError):
    """The file type is not one we ingest."""


class DocumentTooLarge(DocumentError):
    """The document is larger than ``RAG_MAX_UPLOAD_BYTES``."""


class EmptyDocument(DocumentError):
    """The document has no bytes at all."""


class StoreUnavailable(RagError):
    """The vector store (e.g. a Chroma server) cannot be reached."""


class EmbeddingModelMismatch(StoreUnavailable):
    """The collection's vectors were made by another embedding model than the configured one."""


class DocumentConflict(DocumentError):
    """Another source already owns this document id (a collision is refused, never merged)."""


class EmptyIndex(RagError):
    """Nothing has been ingested yet."""


class ModelError(RagError):
    """A model file is missing, corrupt, or cannot be loaded."""


class LLMUnavailable(RagError):
    """The generator backend failed or timed out."""


class InvalidQuestion(RagError):
    """A question or query that cannot be asked."""


class EmptyQuestion(InvalidQuestion):
    """The question is empty or only whitespace."""


class QuestionTooLong(InvalidQuestion):
    """The question is longer than ``RAG_MAX_QUESTION_CHARS``."""


class InvalidFilter(RagError):
    """A search filter that names an unknown field, document, author or metadata key, or a malformed date."""


class CollectionError(RagError):
    """A collection name that is not valid."""


class UnknownCollection(CollectionError):
    """A collection that does not exist (404 in the service)."""
