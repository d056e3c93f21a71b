"""The ``rag`` command line: ingest, search, ask, chat, eval, serve. A thin layer over the library."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from rag.errors import RagError
from rag.settings import LLMBackendName, RetrievalMode, Settings, get_settings

app = typer.Typer(
    help="Offline-first retrieval-augmented question answering with verified citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SEEDS = Path("seeds")


def friendly_errors(func: F) -> F:
    """Turn expected failures into one clear line on stderr and exit code 1 (never a traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RagError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _settings(**overrides: Any) -> Settings:
    from rag.logging_setup import configure_logging

    base = get_settings()
    settings = base.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_json)
    return settings


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders to ingest (default: seeds/).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents whose source file is gone.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Chunk, embed and store documents (.txt .md .html .pdf). Unchanged files are skipped."""
    from rag.ingestion.pipeline import Ingestor

    settings = _settings()
    report = Ingestor(settings).ingest_paths(paths or [DEFAULT_SEEDS], prune=prune, progress=sys.stderr.isatty())
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
    mode: Annotated[Optional[str], typer.Option("--mode", help="dense, bm25 or hybrid.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print passages as JSON.")] = False,
) -> None:
    """Print the passages ranked for a query."""
    from rag.retrieval import Retriever

    settings = _settings()
    passages = Retriever(settings).search(query, k=k, mode=_mode(mode))
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
    from rag.store import ChunkStore

    docs = ChunkStore(_settings()).documents()
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
    from rag.ingestion.pipeline import Ingestor

    removed = Ingestor(_settings()).delete(doc_id)
    if not removed:
        err.print(f"[bold red]error:[/] no document {doc_id!r}")
        raise typer.Exit(1)
    out.print(f"deleted {doc_id}: {removed} chunks")


def _mode(value: str | None) -> RetrievalMode | None:
    if value is None:
        return None
    if value not in ("dense", "bm25", "hybrid"):
        raise typer.BadParameter(f"--mode must be dense, bm25 or hybrid, not {value!r}")
    return value  # type: ignore[return-value]


def _backend(value: str | None) -> LLMBackendName | None:
    if value is None:
        return None
    if value not in ("llamacpp", "openai", "extractive"):
        raise typer.BadParameter(f"--backend must be llamacpp, openai or extractive, not {value!r}")
    return value  # type: ignore[return-value]


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
