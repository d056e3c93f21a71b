"""Eval reports: JSON with every question, a Markdown summary, a PNG chart; and run comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.evaluation.answer_eval import ok, risk_coverage

QUALITY_METRICS = ("hit@1", "hit@5", "mrr", "ndcg@10", "accuracy", "exact_match", "f1", "abstention_precision",
                   "abstention_recall", "citation_validity", "citation_precision", "confidence_auroc")


def write_report(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>.png``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    name = report["name"]
    paths = {"json": folder / f"{name}.json", "md": folder / f"{name}.md", "png": folder / f"{name}.png"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False))
    _chart(report, paths["png"])
    paths["md"].write_text(markdown_summary(report, paths["png"].name))
    return paths


def markdown_summary(report: dict[str, Any], chart: str | None = None) -> str:
    s = report["summary"]
    lines = [f"# Eval run `{report['name']}`", "",
             f"- set: `{report['set']}` ({report['config'].get('gold')}), backend: `{report['config'].get('backend')}`, "
             f"retrieval mode: `{report['config'].get('mode')}`, questions: {int(s.get('questions', 0))}",
             f"- gate: **{'passed' if not report.get('gate_failures') else 'FAILED'}**"]
    lines += [f"  - {f}" for f in report.get("gate_failures", [])]
    if chart:
        lines += ["", f"![metrics]({chart})"]
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in s.items()]
    wrong = [r for r in report.get("questions", []) if r["answerable"] and not r["scores"]["correct"]]
    slipped = [r for r in report.get("questions", []) if not r["answerable"] and not r["abstained"]]
    if wrong or slipped:
        lines += ["", "## Questions to look at", "", "| id | type | question | answer |", "|---|---|---|---|"]
        for r in wrong + slipped:
            lines.append(f"| {r['id']} | {r['type']} | {r['question']} | {_cell(r['answer'])} |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) and not float(v).is_integer() else str(int(v) if isinstance(v, float) else v)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:160]


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["summary"]
    quality = [(k, s[k]) for k in QUALITY_METRICS if k in s]
    stages = [(k.replace("_p50_ms", ""), s[k] / 1000) for k in s if k.endswith("_p50_ms")]
    curve = risk_coverage(report.get("questions", []))
    fig, axes = plt.subplots(1, 3 if curve else 2, figsize=(17 if curve else 12, 4.5),
                             gridspec_kw={"width_ratios": [2, 1, 1] if curve else [2, 1]})
    ax = axes[0]
    bars = ax.barh([k for k, _ in quality][::-1], [v for _, v in quality][::-1], color="#4C72B0")
    ax.bar_label(bars, fmt="%.2f", padding=2)
    ax.set_xlim(0, 1.1)
    ax.set_title(f"Quality ({report['set']}, {report['config'].get('backend')})")
    ax = axes[1]
    if stages:
        bars = ax.barh([k for k, _ in stages][::-1], [v for _, v in stages][::-1], color="#DD8452")
        ax.bar_label(bars, fmt="%.2f s", padding=2)
    ax.set_title("Latency p50 per stage (s)")
    if curve:
        ax = axes[2]
        ax.plot([c for c, _ in curve], [a for _, a in curve], color="#55A868")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("coverage (most confident first)")
        ax.set_ylabel("accuracy of the covered")
        ax.set_title("Risk-coverage")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def load_report(ref: str, folder: Path) -> dict[str, Any]:
    """A report by path or by run name in ``folder``."""
    path = Path(ref)
    if not path.is_file():
        path = folder / f"{ref}.json"
    if not path.is_file():
        raise RagError(f"no eval report {ref!r} (looked for {path})")
    return json.loads(path.read_text())


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Markdown: metric deltas from run A to run B, and the questions whose correctness flipped."""
    lines = [f"# `{a['name']}` → `{b['name']}`", "", "| metric | A | B | Δ |", "|---|---|---|---|"]
    for key in [k for k in a["summary"] if k in b["summary"]]:
        va, vb = a["summary"][key], b["summary"][key]
        lines.append(f"| {key} | {_fmt(va)} | {_fmt(vb)} | {vb - va:+.3f} |")
    qa = {r["id"]: r for r in a.get("questions", [])}
    flips = []
    for r in b.get("questions", []):
        old = qa.get(r["id"])
        if old is None:
            continue
        ok_a, ok_b = ok(old), ok(r)
        if ok_a != ok_b:
            flips.append(f"| {r['id']} | {'fixed' if ok_b else 'broken'} | {r['question']} | {_cell(old['answer'])} | {_cell(r['answer'])} |")
    lines += ["", f"## Flipped questions ({len(flips)})", ""]
    if flips:
        lines += ["| id | change | question | A | B |", "|---|---|---|---|---|", *flips]
    return "\n".join(lines) + "\n"


