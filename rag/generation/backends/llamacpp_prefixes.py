"""Fixed prompt prefixes kept ready in llama.cpp, so only the tokens after them are evaluated.

llama-cpp-python keeps one sequence in its KV cache and reuses the longest common prefix with the next
prompt. Answering and judging start with different fixed prefixes (the answer instruction, the judge's
instruction and worked examples), so each would evict the other. Here each fixed prefix is evaluated once,
its state saved (and the judge's, the long one, also kept on disk next to the model, keyed by model and
tokens), and restored before a prompt that starts with it when the cache holds less of it.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class _Prefix:
    tokens: list[int]
    state: bytes  # the KV cells of sequence 0 after ``tokens`` (llama_state_seq_get_data)


class PrefixStates:
    """Saved states of fixed prefixes for one ``Llama``; the caller holds the model lock."""

    def __init__(self, llm: Any, cache_dir: Path | None = None) -> None:
        self.llm = llm
        self.cache_dir = cache_dir
        self._prefixes: list[_Prefix] = []

    def cached(self) -> list[int]:
        return [int(t) for t in self.llm._input_ids.tolist()]

    def add(self, tokens: list[int], persist: bool = False) -> None:
        """Evaluate ``tokens`` (once) and remember the state after them."""
        if any(p.tokens == tokens for p in self._prefixes):
            return
        path = self._path(tokens) if persist else None
        prefix = _Prefix(tokens, path.read_bytes() if path is not None and path.is_file() else b"")
        if prefix.state:
            try:
                self._load(prefix)
            except RuntimeError as exc:  # a damaged or foreign cache file is rebuilt
                log.warning("ignoring unusable prefix state", extra={"path": str(path), "error": str(exc)})
                prefix.state = b""
        if not prefix.state:
            self.llm.reset()
            self.llm.eval(tokens)
            prefix.state = self._save()
            if path is not None:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(prefix.state)
                tmp.replace(path)
        self._prefixes.append(prefix)

    def restore_for(self, tokens: list[int]) -> None:
        """Load the saved prefix of ``tokens`` if the KV cache holds less of ``tokens`` than it."""
        have = common_prefix(self.cached(), tokens)
        best = max((p for p in self._prefixes if len(p.tokens) > have and tokens[: len(p.tokens)] == p.tokens),
                   key=lambda p: len(p.tokens), default=None)
        if best is not None:
            self._load(best)

    def eval_suffix(self, tokens: list[int]) -> np.ndarray:
        """Evaluate ``tokens`` reusing the cached prefix; the logits of the last position."""
        self.restore_for(tokens)
        keep = min(common_prefix(self.cached(), tokens), len(tokens) - 1)  # at least one token, for fresh logits
        self.llm.n_tokens = keep
        self.llm.eval(tokens[keep:])
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),)).astype(np.float64)

    def _save(self) -> bytes:
        """Only sequence 0's cells: a few MB for a few hundred tokens (a full LlamaState also copies every logit row)."""
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        return bytes(buffer[:written])

    def _load(self, prefix: _Prefix) -> None:
        import llama_cpp

        self.llm.reset()
        self.llm._ctx.kv_cache_clear()
        data = (ctypes.c_uint8 * len(prefix.state)).from_buffer_copy(prefix.state)
        if llama_cpp.llama_state_seq_set_data(self.llm._ctx.ctx, data, len(prefix.state), 0) != len(prefix.state):
            raise RuntimeError("llama.cpp refused the saved prefix state")
        self.llm.input_ids[: len(prefix.tokens)] = prefix.tokens
        self.llm.n_tokens = len(prefix.tokens)

    def _path(self, tokens: list[int]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(np.asarray(tokens, dtype=np.int32).tobytes()).hexdigest()[:16]
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir / f"prefix-{key}-ctx{self.llm.n_ctx()}.state"
