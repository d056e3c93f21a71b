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

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.errors import RagError
from rag.evaluation.gold import Split
from rag.settings import LLMBackendName, Prefer, RetrievalMode, Settings, get_settings
from rag.verification.claim_model import FitPart

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

CollectionOption = Annotated[Optional[str], typer.Option("--collection", help="Collection to use (default: the RAG_COLLECTION setting, 'rag'); see `rag collections`.")]
DocOption = Annotated[Optional[list[str]], typer.Option("--doc", help="Only this document id (repeat for several).")]
AuthorOption = Annotated[Optional[list[str]], typer.Option("--author", help="Only documents by this author; a surname is enough (repeat for several).")]
SinceOption = Annotated[Optional[str], typer.Option("--since", help="Only documents dated on or after this date: 2021, 2021-03 or 2021-03-14.")]
UntilOption = Annotated[Optional[str], typer.Option("--until", help="Only documents dated on or before this date: 2021, 2021-03 or 2021-03-14.")]
PreferOption = Annotated[Optional[Prefer], typer.Option("--prefer", help="When sources disagree on a number or date: newest (lead with the newest source) or all (every value side by side). Default: the RAG_PREFER setting, newest.")]
WhereOption = Annotated[Optional[list[str]], typer.Option("--where", help="Only documents whose metadata KEY is VALUE, written key=value (repeat for several).")]


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


# typer bundles its own click; its usage errors (BadParameter...) share this base class.
_TYPER_USAGE_ERROR = typer.BadParameter.__mro__[2]


def friendly_errors(func: F) -> F:
    """Every failure ends in one clear line on stderr and a non-zero exit, never a traceback: expected ones
    (``RagError``) say what to do; anything else says it was unexpected and where its traceback was written."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, _TYPER_USAGE_ERROR):
            raise  # typer's own exits, aborts and usage errors
        except RagError as exc:
            err.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the point: no traceback on the terminal
            given = {k: v for k, v in kwargs.items() if v is not None}  # the options used, not every default
            path = crash_log(exc, f"rag {func.__name__.rstrip('_')} {given}")
            err.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {one_line(exc)} "
                      f"(a bug: the traceback is in {escape(str(path))})", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings(**overrides: Any) -> Settings:
    from rag.logging_setup import configure_logging

    base = get_settings()  # raises RagError on invalid values; callers are wrapped by friendly_errors
    if overrides.get("collection") is not None:
        from rag.index.collections import check_collection_name

        check_collection_name(overrides["collection"])  # model_copy does not validate
    settings = base.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _components(settings: Settings | None = None, collection: str | None = None) -> Components:
    """The library's parts for ``collection`` (default: the configured one), wired once (each command uses only what
    it touches)."""
    from rag.components import Components

    return Components(settings or _settings(collection=collection))


def _existing(collection: str | None) -> Components:
    """The parts of a collection that must exist already (search, ask, chat, export...): a misspelt name is an error
    naming the collections there are, never a new empty collection."""
    from rag.index.collections import UnknownCollection

    parts = _components(collection=collection)
    if collection is not None:
        names = parts.collections.names()
        if collection not in names:
            raise UnknownCollection(f"no collection {collection!r}; collections: {', '.join(names) or '(none)'} "
                                    f"(`rag ingest --collection {collection} PATH` creates it)")
    return parts


def _filter(docs: list[str] | None, authors: list[str] | None, since: str | None, until: str | None,
            where: list[str] | None):  # type: ignore[no-untyped-def]
    from rag.retrieval.filters import SearchFilter

    return SearchFilter.from_options(docs, authors, since, until, where)


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders to ingest (default: seeds/).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents under these folders whose file is gone.")] = False,
    reindex: Annotated[bool, typer.Option("--reindex", help="Drop the whole collection first and embed these documents again (after changing the embedding model).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (with the lines cleaning dropped per document).")] = False,
    collection: CollectionOption = None,
) -> None:
    """Chunk, embed and store documents (.txt .md .html .pdf). Unchanged files are skipped. Metadata: Markdown front
    matter, or a NAME.meta.json sidecar next to a file (title, author, date, publisher, any other key)."""
    from rag.ingestion.pipeline import discover

    parts = _components(collection=collection)
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
    doc: DocOption = None, author: AuthorOption = None, since: SinceOption = None, until: UntilOption = None,
    where: WhereOption = None, collection: CollectionOption = None,
) -> None:
    """Print the passages ranked for a query (only from the documents the filter options let through)."""
    flt = _filter(doc, author, since, until, where)
    passages = _existing(collection).retriever.search(query, k=k, mode=mode, where=flt)
    if as_json:
        out.print_json(json.dumps([p.to_dict() for p in passages]))
        return
    if not passages:
        out.print("(no passage matches)")
    for p in passages:
        out.print(f"[bold]{p.rank}.[/] [cyan]{escape(p.byline())}[/] ({escape(p.doc_id)}, chars {p.start}-{p.end}, score {p.score:.4f})")
        out.print("   " + escape(" ".join(p.text.split())[:400]), highlight=False)


@app.command("documents")
@friendly_errors
def documents(as_json: Annotated[bool, typer.Option("--json")] = False, collection: CollectionOption = None) -> None:
    """List the ingested documents with their cards: title, authors, date (inferred ones marked), publisher."""
    from rag.ingestion.metadata import card_of_metadata
    from rag.retrieval.passage import public_source

    cards = [{"doc_id": d["doc_id"], **card_of_metadata(d, public_source(d)), "n_chunks": d.get("n_chunks")}
             for d in _existing(collection).store.documents()]
    if as_json:
        out.print_json(json.dumps(cards, ensure_ascii=False))
        return
    table = Table()
    table.add_column("doc_id", no_wrap=True)  # ids are what `rag delete` and --doc take: never cut
    table.add_column("title", ratio=3)
    table.add_column("author", ratio=2)
    table.add_column("date", no_wrap=True)  # "as of 2017-03" marks an inferred date, as on the page; never cut
    table.add_column("publisher", ratio=1)
    table.add_column("chunks", no_wrap=True)
    for c in cards:
        date = f"as of {c['date']}" if c["date"] and c["date_inferred"] else (c["date"] or "")
        table.add_row(escape(c["doc_id"]), escape(c["title"]), escape(c["author"] or ""), date, escape(c["publisher"] or ""),
                      str(c["n_chunks"] or ""))
    out.print(table)


@app.command()
@friendly_errors
def delete(doc_id: Annotated[str, typer.Argument(help="Document id (see `rag documents`).")],
           collection: CollectionOption = None) -> None:
    """Remove a document and its chunks from the index."""
    removed = _existing(collection).index.delete_document(doc_id)
    if not removed:
        err.print(f"[bold red]error:[/] no document {doc_id!r}")
        raise typer.Exit(1)
    out.print(f"deleted {doc_id}: {removed} chunks")


@app.command("export")
@friendly_errors
def export_(path: Annotated[Path, typer.Argument(help="Output file (.jsonl.gz).")], collection: CollectionOption = None) -> None:
    """Back up the collection: every chunk with text, metadata and embedding."""
    from rag.backup import export_collection

    n = export_collection(_existing(collection).store, path)
    out.print(f"exported {n} chunks to {path}")


@app.command("import")
@friendly_errors
def import_(
    path: Annotated[Path, typer.Argument(help="A file written by `rag export`.")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a non-empty collection.")] = False,
    collection: CollectionOption = None,
) -> None:
    """Restore a collection from `rag export` output (and rebuild the BM25 index)."""
    from rag.backup import import_collection

    index = _components(collection=collection).index
    n = import_collection(index.store, path, replace=replace)
    index.lexical.rebuild()
    out.print(f"imported {n} chunks from {path}")


def _print_answer(answer) -> None:  # type: ignore[no-untyped-def]
    """The answer and its confidence, then its sources with titles and quotes."""
    out.print(answer.answer, highlight=False)
    out.print(f"[dim]confidence {answer.confidence:.2f}[/]", highlight=False)
    if answer.fallback_reason:
        err.print(f"[yellow]note:[/] answered by the {answer.backend} backend ({answer.fallback_reason})")
    if answer.conflicts:
        values = "; ".join(f"{c['value']} [{c['n']}] ({c['date'] or 'undated'})" for c in answer.conflicts)
        out.print(f"[yellow]sources disagree:[/] {escape(values)}", highlight=False)
    if answer.citations:
        out.print("\n[bold]Sources[/]")
        bylines = {p.chunk_id: p.byline() for p in answer.passages}
        for c in answer.citations:
            out.print(f"  \\[{c.n}] [cyan]{escape(bylines.get(c.chunk_id, c.title))}[/] ({escape(c.doc_id)}, chars {c.start}-{c.end})",
                      highlight=False)
            out.print(f"      “{escape(c.quote)}”", highlight=False)


@app.command()
@friendly_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full answer object as JSON.")] = False,
    backend: Annotated[Optional[LLMBackendName], typer.Option("--backend", help="Generator backend.")] = None,
    mode: Annotated[Optional[RetrievalMode], typer.Option("--mode", help="Retrieval mode.")] = None,
    k: Annotated[Optional[int], typer.Option("-k", "--top-k", min=1, max=20, help="Passages given to the generator.")] = None,
    doc: DocOption = None, author: AuthorOption = None, since: SinceOption = None, until: UntilOption = None,
    where: WhereOption = None, collection: CollectionOption = None, prefer: PreferOption = None,
) -> None:
    """Answer one question from the documents, with verified citations (only from the documents the filter options
    let through). When sources disagree, each value is given with its source and date."""
    flt = _filter(doc, author, since, until, where)
    answer = _existing(collection).answerer.run(question, backend=backend, mode=mode, top_k=k, where=flt, prefer=prefer).answer()
    if as_json:
        out.print_json(json.dumps(answer.to_dict(with_passages=False), ensure_ascii=False))
    else:
        _print_answer(answer)


@app.command()
@friendly_errors
def chat(
    backend: Annotated[Optional[LLMBackendName], typer.Option("--backend", help="Generator backend.")] = None,
    doc: DocOption = None, author: AuthorOption = None, since: SinceOption = None, until: UntilOption = None,
    where: WhereOption = None, collection: CollectionOption = None, prefer: PreferOption = None,
) -> None:
    """Interactive questions with history and streamed answers. Commands: /sources /reset /quit. The filter options
    hold for the whole session."""
    from rag.generation.followup import Turn

    flt = _filter(doc, author, since, until, where)
    parts = _existing(collection)
    parts.retriever.allowed_docs(flt)  # an unknown author, document or key is an error before the first question
    answerer = parts.answerer
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
            run = answerer.run(line, history, backend=backend, where=flt, prefer=prefer)
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
    claims_file: Annotated[Optional[list[Path]], typer.Option("--claims-file", help="With --claims: the labelled claims to read, repeatable (default: the claims set; e.g. eval/gold/draft_claims.jsonl, sentences from real drafts).")] = None,
    fit_part: Annotated[FitPart, typer.Option("--fit-part", help="With --claims --fit: which claim model to refit: both, with-judge or rules-only (the other is kept).")] = "both",
    fit: Annotated[bool, typer.Option("--fit", help="With --claims: refit the claim model on the dev split first. With --replay: write the chosen claim threshold into the claim model.")] = False,
    fit_confidence: Annotated[Optional[list[str]], typer.Option("--fit-confidence", help="Fit the answer confidence on the dev rows of these runs (repeat the option; run them with RAG_MIN_CONFIDENCE=0).")] = None,
    replay_runs: Annotated[Optional[list[str]], typer.Option("--replay", help="Re-verify the stored drafts of these runs (repeat the option; dev runs) at each --claim-thresholds value, without generating again.")] = None,
    claim_thresholds: Annotated[str, typer.Option("--claim-thresholds", help="Claim thresholds for --replay, comma-separated.")] = "0.4,0.45,0.5,0.55",
    write_runs: Annotated[bool, typer.Option("--write-runs", help="With --replay: also write each replayed run as a report of its own (<name>-<run>-t<threshold>), for --compare and --fit-confidence.")] = False,
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
        out.print(compare(load_report(compare_runs[0], reports), load_report(compare_runs[1], reports)), highlight=False, markup=False)
        return
    if fit_confidence:
        from rag.evaluation.confidence_fit import fit_confidence as fit_answers

        model = fit_answers([load_report(r, reports) for r in fit_confidence])
        out.print_json(json.dumps({"answered": model.answered.to_dict(), "abstained": model.abstained.to_dict(), **model.meta}))
        return
    settings = _settings()
    if replay_runs:
        from rag.evaluation.replay import as_report, choose, replay, replay_markdown, write_threshold

        thresholds = _thresholds(claim_thresholds)
        config = load_config(config_path)
        runs = []
        reports.mkdir(parents=True, exist_ok=True)
        for ref in replay_runs:
            stored = load_report(ref, reports)
            replayed = replay(settings, config.eval_set(stored["set"]), stored, thresholds, progress=sys.stderr.isatty())
            runs += replayed
            for run in replayed if write_runs else []:
                out.print(f"written: {write_report(as_report(run, stored['set'], name or 'replay'), reports)['json']}")
        chosen, pooled = choose(runs)
        path = reports / f"{name or 'replay'}.md"
        text = replay_markdown(runs, chosen, pooled)
        path.write_text(text)
        out.print(text, highlight=False, markup=False)
        out.print(f"written: {path}")
        if fit:
            out.print(f"claim model: {write_threshold(chosen, runs)}")
        return
    if claims:
        from rag.evaluation.claims_eval import CLAIMS_GOLD, CachedJudge, run_claims, write
        from rag.verification.judge import judge_of

        components = _components(settings)

        def cached_judge():  # type: ignore[no-untyped-def]
            generator = components.generators.get(backend)
            judge = judge_of(generator)
            key = f"{generator.name}:{getattr(generator, 'model_path', settings.llm_model)}"
            return CachedJudge(judge, settings.data_dir / "cache" / "claims-judge.jsonl", key) if judge else None

        report = run_claims(cached_judge, claims_file or [CLAIMS_GOLD], do_fit=fit, split=split or "test",
                            progress=sys.stderr.isatty(), part=fit_part)
        path = write(report, reports, name or "claims")
        out.print(path.read_text(), highlight=False, markup=False)
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
        out.print(text, highlight=False, markup=False)
        out.print(f"written: {path}")
        return
    report = run_eval(settings, config, eval_set, backend=backend, mode=mode, url=url, limit=limit,
                      retrieval_only=retrieval_only, name=name, progress=sys.stderr.isatty(), split=split)
    paths = write_report(report, reports)
    out.print(markdown_summary(report).split("## Questions to look at")[0], highlight=False, markup=False)
    out.print(f"report: {paths['json']}\nsummary: {paths['md']}\nchart: {paths['png']}")
    if report["gate_failures"]:
        err.print("[bold red]gate failed:[/] " + "; ".join(report["gate_failures"]))
        raise typer.Exit(1)


def _thresholds(text: str) -> list[float]:
    """``--claim-thresholds``: comma-separated probabilities in [0, 1]."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"not a comma-separated list of numbers: {text!r}", param_hint="--claim-thresholds") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise typer.BadParameter(f"thresholds must be numbers in [0, 1]: {text!r}", param_hint="--claim-thresholds")
    return values


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
    collection: Annotated[Optional[str], typer.Option("--collection", help="The default collection (requests may name any other).")] = None,
) -> None:
    """Run the HTTP service: OpenAI-compatible chat, native API, web page at /."""
    from service.server import run

    run(_settings(collection=collection), host, port)


collections_app = typer.Typer(help="List collections (with counts), or delete one.", no_args_is_help=False)
app.add_typer(collections_app, name="collections")


@collections_app.callback(invoke_without_command=True)
@friendly_errors
def collections(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the collections of the store with their chunk and document counts."""
    if ctx.invoked_subcommand is not None:
        return
    infos = _components().collections.info()
    if as_json:
        out.print_json(json.dumps([i.to_dict() for i in infos]))
        return
    if not infos:
        out.print("(no collections: `rag ingest --collection NAME PATH` creates one)")
        return
    table = Table("collection", "documents", "chunks", "embedding model")
    for i in infos:
        table.add_row(escape(i.name), str(i.documents), str(i.chunks), escape(i.embed_model or ""))
    out.print(table)


@collections_app.command("delete")
@friendly_errors
def collections_delete(
    name: Annotated[str, typer.Argument(help="The collection to delete (see `rag collections`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a collection: every chunk and its BM25 index (uploaded originals are kept)."""
    from rag.index.collections import UnknownCollection, check_collection_name

    check_collection_name(name)
    store = _components().collections
    found = {i.name: i for i in store.info()}
    if name not in found:
        raise UnknownCollection(f"no collection {name!r}; collections: {', '.join(found) or '(none)'}")
    info = found[name]
    if not yes and not typer.confirm(f"Delete collection {name!r} ({info.documents} documents, {info.chunks} chunks)?"):
        err.print("not deleted")
        raise typer.Exit(1)
    removed = store.delete(name)
    out.print(f"deleted collection {name}: {removed} chunks")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
