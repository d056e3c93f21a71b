"""The packaged GGUF is assembled once and verified; a mismatch is a clear error naming both hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import ModelError
from rag.generation.model_files import MODEL_SHA256, MODEL_SIZE, verify_model


@pytest.mark.slow  # assembles and hashes the 1.1 GB GGUF on a fresh clone
def test_real_model_is_assembled_and_verified(model_path: Path) -> None:
    assert model_path.stat().st_size == MODEL_SIZE
    assert model_path.with_suffix(".verified").read_text().startswith(MODEL_SHA256)


def test_hash_mismatch_names_both_hashes(tmp_path: Path) -> None:
    bad = tmp_path / "m.gguf"
    bad.write_bytes(b"x" * 1000)
    with pytest.raises(ModelError) as info:
        verify_model(bad, expected_size=1000)
    assert MODEL_SHA256 in str(info.value)
    assert "44f8354494a5ba03ba1792a8d3e9c534c47a9181980fde7a3f44b06ef2ae7c7f" in str(info.value)
    with pytest.raises(ModelError, match="bytes, expected"):
        verify_model(bad)


def test_missing_model_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        verify_model(tmp_path / "absent.gguf")
