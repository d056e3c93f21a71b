"""The ``rag`` command line: ingest, search, ask, chat, eval, serve. A thin layer over the library."""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.errors import RagError
from rag.evaluation.gold import Split
from rag.settings import LLMBackendName, RetrievalMode, Settings, get_settings

if TYPE_CHECKING:
    from rag.components import Components

app = typer.Typer(
    help="Offline-first retrieval-augmented question answering with verified citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error is one line, however long: never wrapped at the terminal width
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SEEDS = Path("seeds")


def one_line(text: object) -> str:
    """``text`` on one line, safe to print with rich (its brackets are not markup)."""
    return escape(" ".join(str(text).split()))


def crash_log(exc: BaseException, command: str = "") -> Path:
    """Append the traceback of an unexpected error to ``<data_dir>/logs/rag-cli.log`` (the temp dir if the data dir
    cannot be written or is not known) and return where it went."""
    import tempfile

    try:
        folder = get_settings().data_dir / "logs"
    except Exception:  # noqa: BLE001 - the settings may be what failed
        folder = Path(tempfile.gettempdir())
    record = (f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {command or 'rag'} (argv: {' '.join(sys.argv)})\n"
              + "".join(traceback.format_exception(exc)))
    for target in (folder, Path(tempfile.gettempdir())):
        try:
            target.mkdir(parents=True, exist_ok=True)
            path = (target / "rag-cli.log").absolute()
            with path.open("a", encoding="utf-8") as log:
                log.write(record)
            return path
        except OSError:
            continue
    return Path("(nowhere: no writable folder)")


def friendly_errors(func: F) -> F:
    """Every failure ends in one clear line on stderr and a non-zero exit, never a traceback: expected ones
    (``RagError``) say what to do; anything else says it was unexpected and where its traceback was written."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise  # typer's own exits and usage errors
        except RagError as exc:
            err.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the point: no traceback on the terminal
            path = crash_log(exc, f"rag {func.__name__.rstrip('_')} {kwargs}")
            err.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {one_line(exc)} "
                      f"(a bug: the traceback is in {escape(str(path))})", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings(**overrides: Any) -> Settings:
    from rag.logging_setup import configure_logging

    base = get_settings()  # raises RagError on invalid values; callers are wrapped by friendly_errors
    settings = base.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _components(settings: Settings | None = None) -> Components:
    """The library's parts, wired once (each command uses only what it touches)."""
    from rag.components import Components

    return Components(settings or _settings())


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders to ingest (default: seeds/).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents under these folders whose file is gone.")] = False,
    reindex: Annotated[bool, typer.Option("--reindex", help="Drop the whole collection first and embed these documents again (after changing the embedding model).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (with the lines cleaning dropped per document).")] = False,
) -> None:
    """Chunk, embed and store documents (.txt .md .html .pdf). Unchanged files are skipped."""
    from rag.ingestion.pipeline import discover

    parts = _components()
    paths = paths or [DEFAULT_SEEDS]
    if reindex:
        discover(paths)  # every path must exist before anything is dropped
        parts.index.reset()
    report = parts.ingestor.ingest_paths(paths, prune=prune, progress=sys.stderr.isatty())
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        out.print(report.summary())
        for path, reason in report.failed.items():
            err.print(f"[yellow]skipped[/] {path}: {reason}")
    if report.failed and not (report.changed or report.unchanged):
        raise typer.Exit(1)


@app.command()
@friendly_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[Optional[int], typer.Option("-k", "--top-k", min=1, max=100, help="Passages to return.")] = None,
    mode: Annotated[Optional[RetrievalMode], typer.Option("--mode", help="Retrieval mode.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print passages as JSON.")] = False,
) -> None:
    """Print the passages ranked for a query."""
    passages = _components().retriever.search(query, k=k, mode=mode)
    if as_json:
        out.print_json(json.dumps([p.to_dict() for p in passages]))
        return
    for p in passages:
        out.print(f"[bold]{p.rank}.[/] [cyan]{p.title}[/] ({p.doc_id}, chars {p.start}-{p.end}, score {p.score:.4f})")
        out.print("   " + " ".join(p.text.split())[:400], highlight=False)


@app.command("documents")
@friendly_errors
def documents(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the ingested documents."""
    docs = _components().store.documents()
    if as_json:
        out.print_json(json.dumps(docs))
        return
    table = Table("doc_id", "title", "author", "chunks", "source")
    for d in docs:
        table.add_row(d["doc_id"], d.get("title", ""), d.get("author", ""), str(d.get("n_chunks", "")), d.get("source", ""))
    out.print(table)


@app.command()
@friendly_errors
def delete(doc_id: Annotated[str, typer.Argument(help="Document id (see `rag documents`).")]) -> None:
    """Remove a document and its chunks from the index."""
    removed = _components().index.delete_document(doc_id)
    if not removed:
        err.print(f"[bold red]error:[/] no document {doc_id!r}")
        raise typer.Exit(1)
    out.print(f"deleted {doc_id}: {removed} chunks")


@app.command("export")
@friendly_errors
def export_(path: Annotated[Path, typer.Argument(help="Output file (.jsonl.gz).")]) -> None:
    """Back up the collection: every chunk with text, metadata and embedding."""
    from rag.backup import export_collection

    n = export_collection(_components().store, path)
    out.print(f"exported {n} chunks to {path}")


@app.command("import")
@friendly_errors
def import_(
    path: Annotated[Path, typer.Argument(help="A file written by `rag export`.")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a non-empty collection.")] = False,
) -> None:
    """Restore a collection from `rag export` output (and rebuild the BM25 index)."""
    from rag.backup import import_collection

    index = _components().index
    n = import_collection(index.store, path, replace=replace)
    index.lexical.rebuild()
    out.print(f"imported {n} chunks from {path}")


def _print_answer(answer) -> None:  # type: ignore[no-untyped-def]
    """The answer and its confidence, then its sources with titles and quotes."""
    out.print(answer.answer, highlight=False)
    out.print(f"[dim]confidence {answer.confidence:.2f}[/]", highlight=False)
    if answer.fallback_reason:
        err.print(f"[yellow]note:[/] answered by the {answer.backend} backend ({answer.fallback_reason})")
    if answer.citations:
        out.print("\n[bold]Sources[/]")
        for c in answer.citations:
            out.print(f"  [{c.n}] [cyan]{c.title}[/] ({c.doc_id}, chars {c.start}-{c.end})", highlight=False)
            out.print(f"      “{c.quote}”", highlight=False)


@app.command()
@friendly_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full answer object as JSON.")] = False,
    backend: Annotated[Optional[LLMBackendName], typer.Option("--backend", help="Generator backend.")] = None,
    mode: Annotated[Optional[RetrievalMode], typer.Option("--mode", help="Retrieval mode.")] = None,
    k: Annotated[Optional[int], typer.Option("-k", "--top-k", min=1, max=20, help="Passages given to the generator.")] = None,
) -> None:
    """Answer one question from the documents, with verified citations."""
    answer = _components().answerer.ask(question, backend=backend, mode=mode, top_k=k)
    if as_json:
        out.print_json(json.dumps(answer.to_dict(with_passages=False), ensure_ascii=False))
    else:
        _print_answer(answer)


@app.command()
@friendly_errors
def chat(
    backend: Annotated[Optional[LLMBackendName], typer.Option("--backend", help="Generator backend.")] = None,
) -> None:
    """Interactive questions with history and streamed answers. Commands: /sources /reset /quit."""
    from rag.generation.followup import Turn

    answerer = _components().answerer
    history: list[Turn] = []
    last = None
    out.print("Ask a question about the documents. /sources shows the last answer's sources, /reset clears history, /quit leaves.")
    while True:
        try:
            line = input("\n? ").strip()
        except EOFError:
            break
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/reset":
            history.clear()
            out.print("(history cleared)")
            continue
        if line == "/sources":
            if last is None or not last.citations:
                out.print("(the last answer has no sources)" if last else "(no answer yet)")
            else:
                _print_answer(last)
            continue
        if line.startswith("/"):
            err.print(f"unknown command {line}; use /sources, /reset or /quit")
            continue
        try:
            run = answerer.run(line, history, backend=backend)
            for i, sentence in enumerate(run.verified()):  # each sentence once it passed its check
                out.print(("" if i == 0 else " ") + sentence, end="", highlight=False, soft_wrap=True)
            last = run.answer()
        except RagError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            continue
        out.print(f"  [dim](confidence {last.confidence:.2f})[/]", highlight=False)
        if last.citations:
            out.print("[dim]" + "  ".join(f"[{c.n}] {c.title}" for c in last.citations) + "[/]", highlight=False)
        history += [Turn("user", line), Turn("assistant", last.answer)]


@app.command("eval")
@friendly_errors
def evaluate(
    set_name: Annotated[str, typer.Option("--set", help="Eval set from the config (seeds, mini, ...).")] = "seeds",
    gold: Annotated[Optional[Path], typer.Option("--gold", help="Gold JSONL file (overrides the set's).")] = None,
    docs: Annotated[Optional[Path], typer.Option("--docs", help="Documents the gold file is about (with --gold).")] = None,
    backend: Annotated[Optional[LLMBackendName], typer.Option("--backend", help="Generator backend.")] = None,
    mode: Annotated[Optional[RetrievalMode], typer.Option("--mode", help="Retrieval mode.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="Evaluate a running service (http://host:port) instead of in-process.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Evaluate an evenly spread sample of N questions.")] = None,
    retrieval_only: Annotated[bool, typer.Option("--retrieval-only", help="Retrieval metrics only (no LLM, seconds).")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="Run name (default: <set>-<timestamp>).")] = None,
    compare_runs: Annotated[Optional[tuple[str, str]], typer.Option("--compare", help="Compare two runs (names or JSON paths): A B.")] = None,
    ablation: Annotated[bool, typer.Option("--ablation", help="Retrieval metrics per mode and chunk size, side by side.")] = False,
    claims: Annotated[bool, typer.Option("--claims", help="Measure the verifier on labelled claims (eval/gold/claims.jsonl).")] = False,
    fit: Annotated[bool, typer.Option("--fit", help="With --claims: refit the claim model on the dev split first.")] = False,
    fit_confidence: Annotated[Optional[list[str]], typer.Option("--fit-confidence", help="Fit the answer confidence on the dev rows of these runs (repeat the option; run them with RAG_MIN_CONFIDENCE=0).")] = None,
    split: Annotated[Optional[Split], typer.Option("--split", help="Questions or claims of this split only (default: all; --claims: test).")] = None,
    chunk_sizes: Annotated[str, typer.Option("--chunk-sizes", help="Chunk sizes for --ablation, comma-separated.")] = "64,96,128,200",
    config_path: Annotated[Path, typer.Option("--config", help="Eval config with sets and gate thresholds.")] = Path("eval/eval.toml"),
    reports: Annotated[Path, typer.Option("--reports", help="Where reports are written.")] = Path("eval/reports"),
) -> None:
    """Evaluate against gold questions; write a JSON + Markdown + PNG report; exit 1 below the gate."""
    from rag.evaluation.config import EvalSet, load_config
    from rag.evaluation.report import compare, load_report, markdown_summary, write_report
    from rag.evaluation.runner import ablation_markdown, run_ablation, run_eval

    if compare_runs:
        out.print(compare(load_report(compare_runs[0], reports), load_report(compare_runs[1], reports)), highlight=False)
        return
    if fit_confidence:
        from rag.evaluation.confidence_fit import fit_confidence as fit_answers

        model = fit_answers([load_report(r, reports) for r in fit_confidence])
        out.print_json(json.dumps({"answered": model.answered.to_dict(), "abstained": model.abstained.to_dict(), **model.meta}))
        return
    settings = _settings()
    if claims:
        from rag.evaluation.claims_eval import run_claims, write
        from rag.verification.judge import judge_of

        components = _components(settings)
        report = run_claims(lambda: judge_of(components.generators.get(backend)), do_fit=fit, split=split or "test",
                            progress=sys.stderr.isatty())
        path = write(report, reports, name or "claims")
        out.print(path.read_text(), highlight=False)
        out.print(f"written: {path}")
        return
    config = load_config(config_path)
    eval_set = config.eval_set(set_name)
    if gold:
        eval_set = EvalSet(gold.stem, gold, docs or eval_set.docs)
    if ablation:
        sizes = [int(x) for x in chunk_sizes.split(",") if x.strip()]
        result = run_ablation(settings, eval_set, sizes)
        text = ablation_markdown(result)
        reports.mkdir(parents=True, exist_ok=True)
        path = reports / f"ablation-{eval_set.name}.md"
        path.write_text(text)
        (reports / f"ablation-{eval_set.name}.json").write_text(json.dumps(result, indent=2))
        out.print(text, highlight=False)
        out.print(f"written: {path}")
        return
    report = run_eval(settings, config, eval_set, backend=backend, mode=mode, url=url, limit=limit,
                      retrieval_only=retrieval_only, name=name, progress=sys.stderr.isatty(), split=split)
    paths = write_report(report, reports)
    out.print(markdown_summary(report).split("## Questions to look at")[0], highlight=False)
    out.print(f"report: {paths['json']}\nsummary: {paths['md']}\nchart: {paths['png']}")
    if report["gate_failures"]:
        err.print("[bold red]gate failed:[/] " + "; ".join(report["gate_failures"]))
        raise typer.Exit(1)


@app.command()
@friendly_errors
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="CI smoke size: seeds, a 600-chunk corpus, 2 answers (< 3 min).")] = False,
    scales: Annotated[Optional[str], typer.Option("--scales", help="Synthetic corpus sizes in chunks, comma-separated (default 10000,100000; quick 600).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Run name (default: bench-quick or bench-full).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the JSON and Markdown results go.")] = Path("eval/bench"),
    sources: Annotated[Optional[list[Path]], typer.Option("--source", help="Documents the synthetic corpus recombines (default: seeds/ and eval/collections/mini/).")] = None,
    parts: Annotated[str, typer.Option("--parts", help="Benchmarks to run besides seeds ingestion: retrieval,answers,serve,load.")] = "retrieval,answers,serve,load",
) -> None:
    """Measure ingestion, retrieval, answers, serving and load, each against an in-run reference; write tables."""
    from rag.bench.runner import BenchPlan, run_bench

    settings = _settings()
    sizes = [int(x) for x in scales.split(",") if x.strip() and x.strip() != "0"] if scales is not None else None
    plan = BenchPlan.preset(quick, sizes, tuple(p.strip() for p in parts.split(",") if p.strip()))
    run_name = name or ("bench-quick" if quick else "bench-full")
    results = run_bench(settings, plan, DEFAULT_SEEDS, Path("eval/gold/seeds.jsonl"),
                        sources or [DEFAULT_SEEDS, Path("eval/collections/mini")], out_dir, run_name)
    out.print((out_dir / f"{run_name}.md").read_text(), highlight=False)
    out.print(f"written: {out_dir / run_name}.json and .md in {results['seconds']} s")


@app.command("synth-corpus")
@friendly_errors
def synth_corpus(
    folder: Annotated[Path, typer.Argument(help="Output folder (docs/ and questions.jsonl are written there).")],
    chunks: Annotated[int, typer.Option("--chunks", min=100, help="About how many chunks the corpus should make.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same corpus).")] = 0,
    sources: Annotated[Optional[list[Path]], typer.Option("--source", help="Documents to recombine (default: seeds/ and eval/collections/mini/).")] = None,
) -> None:
    """Write a synthetic corpus with planted facts and a gold file of questions about them."""
    from rag.bench.corpus import generate_corpus

    info = generate_corpus(folder, chunks, sources or [DEFAULT_SEEDS, Path("eval/collections/mini")], seed=seed)
    out.print(f"{info.documents} documents (~{info.estimated_chunks} chunks) in {info.docs_dir}; "
              f"{info.planted} planted questions in {info.questions}")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Run the HTTP service: OpenAI-compatible chat, native API, web page at /."""
    from service.server import run

    run(_settings(), host, port)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
