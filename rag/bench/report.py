"""Benchmark results as Markdown tables ready to paste into BENCHMARKS.md."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}{suffix}" if abs(value) < 10 else f"{value:,.1f}{suffix}"
    return f"{value}{suffix}"


def to_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"# Benchmark run `{r['name']}` ({r['created']}, {r.get('seconds', 0)} s)",
        "",
        f"Machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, torch {m['torch']}. "
        f"Reproduce: `rag bench{' --quick' if r['plan']['quick'] else ''} --name {r['name']}`.",
        "",
        "## Ingestion: pipeline throughput against raw `SentenceTransformer.encode` of the same texts (target ≥ 0.85)",
        "",
        "| corpus | chunks written | seconds | pipeline chunks/s | raw encode chunks/s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, i in r["ingest"].items():
        lines.append(f"| {label} | {i['chunks_written']} of {i['chunks_total']} | {_fmt(i['seconds'])} | "
                     f"{_fmt(i['pipeline_chunks_per_s'])} | {_fmt(i['raw_chunks_per_s'])} | **{_fmt(i['ratio'])}** |")
    lines += [
        "",
        "## Retrieval: latency against the bare query embedding (target: hybrid p50 at 100k ≤ 2x)",
        "",
        "| corpus | chunks | query embedding p50 | mode | p50 | p95 | p50 ratio | hit@5 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, ret in r["retrieval"].items():
        for mode, s in ret["modes"].items():
            lines.append(f"| {label} | {ret['chunks']} | {_fmt(ret['query_embedding']['p50_ms'], ' ms')} | {mode} | "
                         f"{_fmt(s['p50_ms'], ' ms')} | {_fmt(s['p95_ms'], ' ms')} | **{_fmt(s['ratio_p50'])}** | {_fmt(s['hit@5'])} |")
    filtered = {label: ret["filtered"] for label, ret in r["retrieval"].items() if ret.get("filtered")}
    if filtered:
        lines += ["", "## Filtered search: hybrid limited to a tenth of the documents, against unfiltered hybrid in the same run "
                  "(target: p50 ratio ≤ 1.2)", "",
                  "| corpus | documents | allowed | filtered p50 | p95 | ratio to unfiltered | hit@5 | passages outside the filter |",
                  "|---|---|---|---|---|---|---|---|"]
        for label, f in filtered.items():
            lines.append(f"| {label} | {f['documents']} | {f['allowed']} | {_fmt(f['p50_ms'], ' ms')} | {_fmt(f['p95_ms'], ' ms')} | "
                         f"**{_fmt(f['ratio_to_unfiltered'])}** | {_fmt(f['hit@5'])} | {f['leaks']} |")
    a = r.get("answers")
    if a:
        st = a["stages"]
        lines += [
            "",
            f"## Answers: overhead outside the model (target < 10%), {a['questions']} questions",
            "",
            "| stage | p50 | p95 |",
            "|---|---|---|",
        ]
        for key in st:  # the bench's own stages, in its order
            lines.append(f"| {key.removesuffix('_ms')} | {_fmt(st[key]['p50_ms'], ' ms')} | {_fmt(st[key]['p95_ms'], ' ms')} |")
        lines += [
            "",
            f"- Overhead (our total − raw llama.cpp on the same prompt) / raw: **{a['overhead'] * 100:.1f}%**; "
            f"same completion length as raw on {a['same_tokens_as_raw']}/{a['questions']} questions.",
            f"- Total p50 against raw llama.cpp p50 on the same prompts: **{a['ratio_p50']}x** (issue 12's line: 1.5x); "
            f"time to the first verified sentence (first_sentence) p50 {a['first_sentence_ratio_p50']}x raw. Checks start "
            "once the draft is complete (one model writes and judges), so a one-sentence answer shows at its end.",
            f"- Prompt {a['prompt_tokens_mean']} tokens on average, completion {a['completion_tokens_mean']} tokens, "
            f"{a['tokens_per_s_median']} tokens/s (median).",
            f"- Reusing the cached system-prompt prefix saves {a['prefix_reuse_saves_ms']} ms of first-token time (p50).",
            f"- Settings: {a['settings']}.",
        ]
    s = r.get("serve")
    if s:
        lines += [
            "",
            "## `rag serve`: cold start and memory against a bare process loading the same two models",
            "",
            "| figure | rag serve | reference | ratio |",
            "|---|---|---|---|",
            f"| process start → /readyz 200 | {_fmt(s['ready_s'], ' s')} | {_fmt(s['reference_load_s'], ' s')} | **{_fmt(s['ready_ratio'])}** |",
            f"| peak RSS after one answer | {_fmt(s['peak_rss_after_answer_mb'], ' MiB')} | {_fmt(s['reference_rss_mb'], ' MiB')} | **{_fmt(s['rss_ratio'])}** |",
            "",
            f"/healthz answers after {_fmt(s['healthz_s'], ' s')}; peak RSS when ready {_fmt(s['peak_rss_ready_mb'], ' MiB')}.",
        ]
    ld = r.get("load")
    if ld:
        lines += [
            "",
            f"## Load: {ld['requests']} requests, {ld['concurrency']} concurrent, {ld['chat_share']:.0%} chat, "
            f"single-fact gold questions ({ld['wall_s']} s)",
            "",
            "| kind | sent | statuses | p50 | p95 | wrong |",
            "|---|---|---|---|---|---|",
        ]
        for kind, k in ld["kinds"].items():
            wrong = k["wrong"] if isinstance(k["wrong"], int) else len(k["wrong"])
            lines.append(f"| {kind} | {k['sent']} | {k['statuses']} | {_fmt(k['p50_ms'], ' ms')} | {_fmt(k['p95_ms'], ' ms')} | {wrong} |")
        lines += ["", f"5xx: {ld['server_errors']}; 429: {ld['rejected']} (without Retry-After: "
                      f"{ld['rejected_without_retry_after']}); transport errors: {ld['transport_errors']}; wrong: {ld['wrong']}. "
                      "A chat's latency includes waiting for the one model behind the chats admitted before it; "
                      "wrong chat answers (listed in the JSON) are the model's, the service returned them intact."]
    return "\n".join(lines) + "\n"
