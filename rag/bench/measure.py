"""Small measuring helpers shared by the benchmarks: latency summaries, ratios, peak memory."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rag.evaluation.metrics import percentile

T = TypeVar("T")


def summarize_ms(values: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean of millisecond latencies, rounded for reports."""
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0, "n": 0}
    return {"p50_ms": round(percentile(values, 50), 2), "p95_ms": round(percentile(values, 95), 2),
            "mean_ms": round(sum(values) / len(values), 2), "n": len(values)}


def ratio(value: float, reference: float) -> float | None:
    """``value / reference`` rounded, or None when the reference is zero."""
    return round(value / reference, 3) if reference else None


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(result, milliseconds)."""
    started = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - started) * 1000


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory (VmHWM) of a live process, in MiB; 0 when unknown (not Linux)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return round(int(match.group(1)) / 1024, 1) if match else 0.0


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import os
    import platform

    import torch

    mem_kb = 0
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    return {"cpus": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__}
