"""Turning files into cleaned, chunked, embedded records in the vector store."""
