"""A bounded load generator for a running `rag serve`: search and chat requests over gold questions, mixed.

``run_load`` sends ``requests`` requests with at most ``concurrency`` in flight; a share ``chat_share`` of them
(spread evenly, not at random, so a run is repeatable) go to ``/v1/chat/completions``, the rest to ``/v1/search``.
Every response is checked against the gold set: a chat answer is wrong when it lacks every gold alias (or does
not abstain on an unanswerable question); a search is wrong when no gold evidence document is in its results.
The report counts statuses, server errors (5xx), refusals (429, and those without ``Retry-After``), transport
failures and wrong answers, with latency percentiles per kind of request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from rag.evaluation.gold import GoldQuestion
from rag.evaluation.metrics import percentile
from rag.evaluation.text_match import contains_alias
from rag.text import strip_citations

Kind = Literal["search", "chat"]
KINDS: tuple[Kind, ...] = ("search", "chat")
DEFAULT_TIMEOUT_S = 600.0  # per request: a chat waits for every answer queued before it on a CPU
DEFAULT_SEARCH_K = 5
PERCENTILES = (50, 95)
SNIPPET_CHARS = 200


@dataclass
class KindStats:
    """Outcomes of one kind of request."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # of 200 responses
    rejected_ms: list[float] = field(default_factory=list)  # of 429 responses
    wrong: list[dict[str, str]] = field(default_factory=list)
    rejected_without_retry_after: int = 0
    transport_errors: list[str] = field(default_factory=list)
    backends: Counter[str] = field(default_factory=Counter)  # chat: which generator answered

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            **{f"p{p}_ms": round(percentile(self.latencies_ms, p), 1) for p in PERCENTILES},
            "max_ms": round(max(self.latencies_ms, default=0.0), 1),
            "rejected_max_ms": round(max(self.rejected_ms, default=0.0), 1),
            "wrong": self.wrong,
            "rejected_without_retry_after": self.rejected_without_retry_after,
            "transport_errors": self.transport_errors,
            "backends": dict(self.backends),
        }


@dataclass
class LoadReport:
    """What a load run saw; ``to_dict()`` is its JSON form."""

    base_url: str
    requests: int
    concurrency: int
    chat_share: float
    wall_s: float = 0.0
    kinds: dict[str, KindStats] = field(default_factory=lambda: {k: KindStats() for k in KINDS})

    def _total(self, pick: Any) -> int:
        return sum(pick(stats) for stats in self.kinds.values())

    @property
    def statuses(self) -> Counter[int]:
        total: Counter[int] = Counter()
        for stats in self.kinds.values():
            total.update(stats.statuses)
        return total

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def rejected(self) -> int:
        return self.statuses[429]

    @property
    def rejected_without_retry_after(self) -> int:
        return self._total(lambda s: s.rejected_without_retry_after)

    @property
    def wrong(self) -> int:
        return self._total(lambda s: len(s.wrong))

    @property
    def transport_errors(self) -> int:
        return self._total(lambda s: len(s.transport_errors))

    @property
    def answered(self) -> int:
        return self.statuses[200]

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url, "requests": self.requests, "concurrency": self.concurrency,
            "chat_share": self.chat_share, "wall_s": round(self.wall_s, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": self.server_errors, "rejected": self.rejected,
            "rejected_without_retry_after": self.rejected_without_retry_after,
            "transport_errors": self.transport_errors, "wrong": self.wrong,
            "kinds": {kind: stats.to_dict() for kind, stats in self.kinds.items()},
        }


def plan(requests: int, chat_share: float, questions: Sequence[GoldQuestion],
         chat_questions: Sequence[GoldQuestion]) -> list[tuple[Kind, GoldQuestion]]:
    """The request sequence: chats spread evenly through it, each kind cycling through its questions."""
    out: list[tuple[Kind, GoldQuestion]] = []
    chats = 0
    for i in range(requests):
        if math.floor((i + 1) * chat_share) > math.floor(i * chat_share):
            out.append(("chat", chat_questions[chats % len(chat_questions)]))
            chats += 1
        else:
            out.append(("search", questions[(i - chats) % len(questions)]))
    return out


def chat_is_wrong(q: GoldQuestion, body: dict[str, Any]) -> bool:
    content = str(body["choices"][0]["message"]["content"])
    if not q.answerable:
        return not body.get("abstained", False)
    return bool(body.get("abstained")) or not contains_alias(strip_citations(content), q.answers)


def search_is_wrong(q: GoldQuestion, body: dict[str, Any], k: int) -> bool:
    """Wrong when no gold evidence document is among the top ``k`` passages (unanswerable questions are not judged)."""
    if not q.answerable:
        return False
    found = {p["doc_id"] for p in body["passages"][:k]}
    return not found & {e.doc_id for e in q.evidence}


async def _one(client: httpx.AsyncClient, kind: Kind, q: GoldQuestion, report: LoadReport, k: int) -> None:
    stats = report.kinds[kind]
    stats.sent += 1
    if kind == "chat":
        path, payload = "/v1/chat/completions", {"model": "rag", "messages": [{"role": "user", "content": q.question}]}
    else:
        path, payload = "/v1/search", {"query": q.question, "k": k}
    started = time.perf_counter()
    try:
        res = await client.post(path, json=payload)
    except httpx.HTTPError as exc:
        stats.transport_errors.append(f"{q.id}: {type(exc).__name__}: {exc}")
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    stats.statuses[res.status_code] += 1
    if res.status_code == 429:
        stats.rejected_ms.append(elapsed_ms)
        if not res.headers.get("retry-after", "").isdigit():
            stats.rejected_without_retry_after += 1
    if res.status_code != 200:
        return
    stats.latencies_ms.append(elapsed_ms)
    body = res.json()
    if kind == "chat":
        stats.backends[str(body.get("backend"))] += 1
        wrong = chat_is_wrong(q, body)
        got = str(body["choices"][0]["message"]["content"])
    else:
        wrong = search_is_wrong(q, body, k)
        got = ", ".join(p["doc_id"] for p in body["passages"][:k])
    if wrong:
        stats.wrong.append({"id": q.id, "question": q.question, "got": got[:SNIPPET_CHARS]})


async def run_load_async(base_url: str, questions: Sequence[GoldQuestion], requests: int, concurrency: int,
                         chat_share: float, api_key: str | None = None, chat_questions: Sequence[GoldQuestion] | None = None,
                         timeout: float = DEFAULT_TIMEOUT_S, search_k: int = DEFAULT_SEARCH_K) -> LoadReport:
    """Send the planned requests with at most ``concurrency`` in flight; see the module docstring."""
    if not questions or requests < 1 or concurrency < 1 or not 0.0 <= chat_share <= 1.0:
        raise ValueError("need questions, requests >= 1, concurrency >= 1 and 0 <= chat_share <= 1")
    report = LoadReport(base_url, requests, concurrency, chat_share)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    slots = asyncio.Semaphore(concurrency)

    async def bounded(kind: Kind, q: GoldQuestion) -> None:
        async with slots:
            await _one(client, kind, q, report, search_k)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(bounded(kind, q) for kind, q in plan(requests, chat_share, questions, chat_questions or questions)))
    report.wall_s = time.perf_counter() - started
    return report


def run_load(base_url: str, questions: Sequence[GoldQuestion], requests: int, concurrency: int, chat_share: float,
             api_key: str | None = None, chat_questions: Sequence[GoldQuestion] | None = None,
             timeout: float = DEFAULT_TIMEOUT_S, search_k: int = DEFAULT_SEARCH_K) -> LoadReport:
    """Blocking form of ``run_load_async`` (runs its own event loop)."""
    return asyncio.run(run_load_async(base_url, questions, requests, concurrency, chat_share, api_key, chat_questions,
                                      timeout, search_k))
